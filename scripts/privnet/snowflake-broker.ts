/**
 * A snowflake broker and relay endpoint for the simulated world (test code, its own process so it can run
 * inside a namespace with `ip netns exec`; messages in snowflake-protocol.ts):
 *
 *   broker   HTTPS on --host:--port (a test CA's certificate for the broker's and its front's names):
 *            POST /client, /proxy, /answer, matching one client's offer to one proxy's poll and giving
 *            that proxy --relay-url as its relay (when the proxy's accepted pattern allows its host).
 *   relay    plain HTTP on --relay-host:--relay-port that takes a WebSocket upgrade and records what
 *            arrives. It is not a snowflake server: nothing answers the client's turbotunnel session
 *            (no KCP, no smux, no ORPort behind it), which no Debian package provides.
 *
 * Prints one line per event (`BROKER ...`, `RELAY ...`, addresses and sizes, the first bytes in hex),
 * `LISTENING <port>` once both are bound; exits when its stdin closes (its harness is gone).
 * Usage: snowflake-broker.ts --host ADDR --port N --cert FILE --key FILE --relay-host ADDR
 *        --relay-port N --relay-url URL
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { requiredArg } from './args.js';
import {
  clientAnswer,
  clientError,
  decodeClientOffer,
  decodeProxyAnswer,
  decodeProxyPoll,
  proxyAnswerStatus,
  proxyMatch,
  proxyNoMatch,
  Rendezvous,
  relayHostAccepted,
  sdpCandidates,
  tlsClientHelloAt,
  WsFrameReader,
  wsAccept,
  wsFrame,
} from './snowflake-protocol.js';

const arg = (name: string): string => requiredArg('snowflake-broker', name);

const say = (line: string) => process.stdout.write(`${line}\n`);
const relayURL = arg('relay-url');
const relayHost = new URL(relayURL).hostname;
// the real broker holds a client about 10 s for a proxy, and a proxy's poll about as long
const rendezvous = new Rendezvous(20_000, 10_000);

function readBody(req: IncomingMessage, max = 1 << 16): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) req.destroy(new Error('too long'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function broker(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const from = req.socket.remoteAddress ?? '?';
  const sni = (req.socket as TLSSocket & { servername?: string | false }).servername || '-';
  const where = `from ${from} sni ${sni} host ${req.headers.host ?? '-'}`;
  const body = await readBody(req);
  if (req.method !== 'POST') {
    say(`BROKER ${req.method} ${req.url} ${where}: refused`);
    send(res, 405, '');
    return;
  }
  try {
    if (req.url === '/client') {
      const offer = decodeClientOffer(body);
      say(
        `BROKER CLIENT ${where} version 1.0 nat ${offer.nat} fingerprint ${offer.fingerprint || '-'} candidates ${JSON.stringify(sdpCandidates(offer.offer))}`,
      );
      const answer = await rendezvous.client(offer);
      if (answer === null) {
        say('BROKER CLIENT no proxy answered');
        send(res, 200, clientError('no snowflake proxies currently available'));
      } else {
        say(`BROKER CLIENT ANSWERED candidates ${JSON.stringify(sdpCandidates(answer))}`);
        send(res, 200, clientAnswer(answer));
      }
    } else if (req.url === '/proxy') {
      const poll = decodeProxyPoll(body);
      const offer = await rendezvous.proxy(poll);
      if (offer === null) {
        send(res, 200, proxyNoMatch());
        return;
      }
      const accepted = relayHostAccepted(poll.acceptedRelayPattern, relayHost);
      say(
        `BROKER MATCH proxy ${poll.sid} ${where} version ${poll.version} type ${poll.type} nat ${poll.nat} pattern ${poll.acceptedRelayPattern || '-'} relay ${accepted ? relayURL : '-'}`,
      );
      send(res, 200, proxyMatch(offer.offer, offer.nat, accepted ? relayURL : ''));
    } else if (req.url === '/answer') {
      const a = decodeProxyAnswer(body);
      const delivered = rendezvous.answer(a);
      say(`BROKER ANSWER proxy ${a.sid} ${where} ${delivered ? 'delivered' : 'client gone'}`);
      send(res, 200, proxyAnswerStatus(delivered));
    } else {
      say(`BROKER POST ${req.url} ${where}: not found`);
      send(res, 404, '');
    }
  } catch (err) {
    say(`BROKER BAD ${req.url} ${where}: ${(err as Error).message}`);
    send(res, 400, '');
  }
}

const httpsServer = createHttpsServer(
  { cert: readFileSync(arg('cert')), key: readFileSync(arg('key')) },
  (req, res) => {
    broker(req, res).catch((err: Error) => {
      say(`BROKER ERROR ${err.message}`);
      res.destroy();
    });
  },
);

// the relay: a WebSocket upgrade, then every message recorded
const relay = createHttpServer((_req, res) => {
  res.writeHead(426);
  res.end();
});
let relayBytes = 0;
relay.on('upgrade', (req: IncomingMessage, socket: Socket) => {
  const key = req.headers['sec-websocket-key'];
  const from = `${socket.remoteAddress ?? '?'}`;
  if (typeof key !== 'string' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  say(`RELAY CONNECT ${req.url} from ${from}`);
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${wsAccept(key)}\r\n\r\n`,
  );
  const reader = new WsFrameReader();
  let messages = 0;
  socket.on('data', (chunk: Buffer) => {
    let frames: ReturnType<WsFrameReader['push']>;
    try {
      frames = reader.push(chunk);
    } catch (err) {
      say(`RELAY BAD ${(err as Error).message}`);
      socket.destroy();
      return;
    }
    for (const f of frames) {
      if (f.opcode === 0x9) socket.write(wsFrame(0xa, f.payload));
      else if (f.opcode === 0x8) {
        say(`RELAY CLOSE from ${from}`);
        socket.end(wsFrame(0x8));
      } else if (f.opcode === 0x1 || f.opcode === 0x2 || f.opcode === 0x0) {
        messages++;
        relayBytes += f.payload.length;
        const hello = tlsClientHelloAt(f.payload);
        if (hello >= 0) say(`RELAY TLS-CLIENT-HELLO in message ${messages} at byte ${hello}`);
        // the first messages in full (hex, 64 bytes at most), then a count now and then
        if (messages <= 5 || messages % 50 === 0) {
          say(
            `RELAY MESSAGE ${messages} ${f.payload.length} bytes (total ${relayBytes}) ${f.payload.subarray(0, 64).toString('hex')}`,
          );
        }
      }
    }
  });
  socket.on('close', () => say(`RELAY GONE ${from} after ${messages} messages`));
  socket.on('error', () => undefined);
});

const port = Number(arg('port'));
httpsServer.listen(port, arg('host'), () => {
  relay.listen(Number(arg('relay-port')), arg('relay-host'), () => say(`LISTENING ${port}`));
});

process.stdin.on('end', () => {
  rendezvous.close();
  process.exit(0);
});
process.stdin.resume();
