/**
 * A meek reflector and server in one, with a mock Moat behind it (test code, its own process so it can run
 * inside a namespace with `ip netns exec`), for the box's Moat client over lyrebird's meek_lite:
 *
 *   front    TLS on --host:--port with a certificate of the private network's test CA (its names: the
 *            front and the reflector), what the censor sees; inside, meek's HTTP protocol
 *            (./meek-server.ts): each POST carries `X-Session-Id`, its body is the client's next upstream
 *            bytes, the answer's body the bytes the upstream sent meanwhile. A session is one TCP
 *            connection to the upstream its Host names, closed after 120 s without a request.
 *   bridge   with --bridge ADDR:PORT --bridge-host NAME: sessions whose Host is NAME (the reflector a
 *            meek_lite bridge line's `url=` names) go to that address, a bridge's ORPort: the box's tor
 *            reaches the private network's bridge through meek, as through a real meek bridge's CDN.
 *   moat     every other Host: a mock Moat, HTTPS (the test CA's certificate for --moat-host) answering
 *            POST /moat/circumvention/settings and /defaults and GET|POST /moat/circumvention/builtin with
 *            the JSON in --answers FILE ({"settings": {...}, "defaults": {...}, "builtin": {...}}), as
 *            rdsys's Moat does. Every request is printed: `MOAT <METHOD> <PATH> <BODY> from <ADDR>`.
 *
 * With --moat-public ADDR:PORT the mock Moat also listens there (HTTPS, the same answers): the Moat a box
 * reaches through tor's exit once it routes, to refresh its built-in lines.
 * Prints `LISTENING <port>` once bound; exits when its stdin closes (its harness is gone).
 * Usage: meek-moat.ts --host ADDR --port N --cert FILE --key FILE --moat-cert FILE --moat-key FILE
 *        --answers FILE [--moat-public ADDR:PORT] [--bridge ADDR:PORT --bridge-host NAME]
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { requiredArg } from './args.js';
import { MeekServer } from './meek-server.js';

const arg = (name: string): string => requiredArg('meek-moat', name);

const answers = JSON.parse(readFileSync(arg('answers'), 'utf8')) as Record<string, unknown>;

// --- the mock Moat (upstream of the meek server) ---
function readBody(req: IncomingMessage, max = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) req.destroy(new Error('too long'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function moatHandler(req: IncomingMessage, res: ServerResponse): void {
  void readBody(req).then((body) => {
    const text = body.toString('utf8').replace(/\s+/g, ' ');
    process.stdout.write(`MOAT ${req.method} ${req.url} ${text} from ${req.socket.remoteAddress ?? '?'}\n`);
    const m = /^\/moat\/circumvention\/(settings|defaults|builtin)$/.exec(req.url ?? '');
    const kind = m?.[1];
    const allowed = kind === 'builtin' ? ['GET', 'POST'] : ['POST'];
    if (!kind || !allowed.includes(req.method ?? '') || answers[kind] === undefined) {
      res.writeHead(404, { 'Content-Type': 'application/vnd.api+json' });
      res.end(JSON.stringify({ errors: [{ code: 404, detail: 'not found' }] }));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/vnd.api+json' });
    res.end(JSON.stringify(answers[kind]));
  });
}
const moatTls = { cert: readFileSync(arg('moat-cert')), key: readFileSync(arg('moat-key')) };
const moat = createHttpsServer(moatTls, moatHandler);
// the same Moat on a public address of the simulated internet (--moat-public ADDR:PORT), for a box that
// asks it through tor (the exit connects there) once it routes: the built-in lines' refresh
const publicAt = process.argv.indexOf('--moat-public');
const moatPublic = publicAt >= 0 ? /^([0-9.]+):([0-9]+)$/.exec(process.argv[publicAt + 1] ?? '') : null;
if (publicAt >= 0 && !moatPublic) {
  process.stderr.write('meek-moat: --moat-public must be ADDR:PORT\n');
  process.exit(2);
}

// --- the meek server: one per front, each session's upstream chosen by the reflector's name (Host) ---
let moatPort = 0;
const bridgeAt = process.argv.indexOf('--bridge');
const bridge = bridgeAt >= 0 ? /^([0-9.]+):([0-9]+)$/.exec(process.argv[bridgeAt + 1] ?? '') : null;
if (bridgeAt >= 0 && !bridge) {
  process.stderr.write('meek-moat: --bridge must be ADDR:PORT\n');
  process.exit(2);
}
const bridgeHost = bridge ? arg('bridge-host').toLowerCase() : null;
const server = new MeekServer({
  upstreamFor: (host) => {
    if (bridge && host === bridgeHost) return () => connect(Number(bridge[2]), bridge[1]);
    return () => connect(moatPort, '127.0.0.1');
  },
  // per session, not per request: `meek: session opened for HOST (N now)`, closed, expired, refused
  log: (line) => process.stdout.write(`${line}\n`),
});
server.start();

const front = createHttpsServer(
  { cert: readFileSync(arg('cert')), key: readFileSync(arg('key')), minVersion: 'TLSv1.2' },
  (req, res) => {
    void server.handle(req, res);
  },
);
front.on('tlsClientError', (err) => {
  if (process.env.MEEK_DEBUG) process.stderr.write(`meek: TLS ${err.message}\n`);
});
front.on('connection', () => {
  if (process.env.MEEK_DEBUG) process.stderr.write('meek: connection\n');
});

moat.listen(0, '127.0.0.1', () => {
  moatPort = (moat.address() as AddressInfo).port;
  const listening = () =>
    front.listen(Number(arg('port')), arg('host'), () => {
      const a = front.address();
      process.stdout.write(`LISTENING ${a && typeof a === 'object' ? a.port : 0}\n`);
    });
  if (moatPublic)
    createHttpsServer(moatTls, moatHandler).listen(Number(moatPublic[2]), moatPublic[1], listening);
  else listening();
});
process.stdin.resume();
process.stdin.once('end', () => process.exit(0));
