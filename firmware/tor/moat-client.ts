/**
 * The Moat client's I/O (issue 21), run by onionbox-moat.service as tor's user (debian-tor) with tor's
 * private resolv.conf, as tor's own transports run: lyrebird's meek_lite client started with the
 * pluggable-transport managed protocol (pt-managed.ts), then per request a SOCKS5 connection to it whose
 * username carries `url=` and `front=`, TLS to Moat's own host inside the meek tunnel, and one HTTP/1.1
 * request. Nothing here reads the answer: onionboxd validates it (moat.ts) where it enters.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { obxError } from '../errors.js';
import { followLines, LastLines } from '../lib/child-lines.js';
import { socks5Connect } from '../update/socks5.js';
import { MOAT_ANSWER_MAX_BYTES, type MoatEndpoint, type MoatRequest, moatUrl } from './moat.js';
import { ptClientEnv, ptHandshake, socksArgs } from './pt-managed.js';

export interface MeekClient {
  port: number;
  stop(): Promise<void>;
}

/** Starts lyrebird's meek_lite client and resolves with its SOCKS port (CMETHODS DONE). */
export function startMeekClient(opts: {
  lyrebird: string;
  stateDir: string;
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
  /** lyrebird's own flags (its log: `-enableLogging -logLevel DEBUG`, into the state directory). */
  args?: readonly string[];
}): Promise<MeekClient> {
  const child = spawn(opts.lyrebird, [...(opts.args ?? [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...(opts.env ?? process.env), ...ptClientEnv('meek_lite', opts.stateDir) },
  });
  const stop = () => stopChild(child);
  const lines: string[] = [];
  const last = new LastLines(10);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, port = 0) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        void stop();
        reject(err);
      } else resolve({ port, stop });
    };
    const timer = setTimeout(
      () => finish(obxError('TOR_MOAT_FAILED', 'lyrebird did not report its meek_lite port in time')),
      opts.timeoutMs ?? 30_000,
    );
    child.once('error', (err) =>
      finish(obxError('TOR_MOAT_FAILED', `lyrebird: ${err.message}`, { cause: err })),
    );
    child.once('exit', (code, signal) =>
      finish(
        obxError(
          'TOR_MOAT_FAILED',
          `lyrebird exited (${code ?? signal}) before it was ready: ${last.last(3).join(' | ')}`,
        ),
      ),
    );
    followLines([child.stdout], (line) => {
      lines.push(line);
      const h = ptHandshake(lines, 'meek_lite');
      if (h.state === 'ready') finish(null, h.port);
      else if (h.state === 'failed') finish(obxError('TOR_MOAT_FAILED', `lyrebird: ${h.message}`));
    });
    followLines([child.stderr], (line) => last.push(line));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdin?.end(); // TOR_PT_EXIT_ON_STDIN_CLOSE
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(timer);
}

export interface MoatResponse {
  status: number;
  body: string;
}

/** One Moat request through the meek_lite client's SOCKS port. */
export async function moatFetch(opts: {
  endpoint: MoatEndpoint;
  socksPort: number;
  request: MoatRequest;
  timeoutMs?: number;
}): Promise<MoatResponse> {
  const { endpoint, request } = opts;
  const url = moatUrl(endpoint.service, request.path);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const creds = socksArgs([
    ['url', endpoint.url],
    ['front', endpoint.front],
  ]);
  let socket: Socket;
  try {
    socket = await socks5Connect({
      proxyHost: '127.0.0.1',
      proxyPort: opts.socksPort,
      ...creds,
      host: url.hostname,
      port: url.port === '' ? 443 : Number(url.port),
      timeoutMs,
    });
  } catch (err) {
    throw obxError('TOR_MOAT_FAILED', `meek_lite: ${(err as Error).message}`, { cause: err });
  }
  const tls = tlsConnect({ socket, servername: url.hostname });
  return await new Promise<MoatResponse>((resolve, reject) => {
    const timer = setTimeout(() => {
      tls.destroy();
      reject(obxError('TOR_MOAT_FAILED', `no answer from ${url.pathname} in time`));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      tls.destroy();
      reject(obxError('TOR_MOAT_FAILED', err.message, { cause: err }));
    };
    const req = httpRequest(
      {
        method: request.kind === 'builtin' ? 'GET' : 'POST',
        host: url.hostname,
        path: url.pathname,
        headers: {
          'Content-Type': 'application/vnd.api+json',
          'Content-Length': Buffer.byteLength(request.body),
          Connection: 'close',
        },
        createConnection: () => tls,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MOAT_ANSWER_MAX_BYTES) {
            res.destroy();
            fail(new Error(`answer longer than ${MOAT_ANSWER_MAX_BYTES} bytes`));
          } else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          tls.destroy();
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(request.body);
  });
}
