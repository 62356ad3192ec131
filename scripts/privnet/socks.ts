/**
 * A minimal SOCKS5 client (RFC 1928, no auth, CONNECT only) and an HTTP GET over it, for tests and the
 * privnet probe. Reaches tor's SocksPort over TCP or a unix socket.
 */
import { createConnection, type Socket } from 'node:net';

export type SocksEndpoint = { host: string; port: number } | { path: string };

export interface SocksOptions {
  /** SOCKS5 username/password: tor isolates streams by it (IsolateSOCKSAuth). */
  auth?: { user: string; pass: string };
  timeoutMs?: number;
}

export function socksConnect(
  proxy: SocksEndpoint,
  host: string,
  port: number,
  opts: SocksOptions = {},
): Promise<Socket> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const sock = 'path' in proxy ? createConnection(proxy.path) : createConnection(proxy);
    let stage = 0;
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`SOCKS connect to ${host}:${port} timed out`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.once('error', fail);
    sock.once('connect', () => {
      sock.write(Buffer.from(opts.auth ? [5, 1, 2] : [5, 1, 0]));
    });
    const request = () => {
      const hostBuf = Buffer.from(host, 'utf8');
      const req = Buffer.concat([
        Buffer.from([5, 1, 0, 3, hostBuf.length]),
        hostBuf,
        Buffer.from([port >> 8, port & 0xff]),
      ]);
      sock.write(req);
      stage = 2;
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0) {
        if (buf.length < 2) return;
        const method = buf[1];
        buf = buf.subarray(2);
        if (method === 2 && opts.auth) {
          const u = Buffer.from(opts.auth.user);
          const p = Buffer.from(opts.auth.pass);
          sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
          stage = 1;
          return;
        }
        if (method !== 0) return fail(new Error(`SOCKS server refused methods (${method})`));
        request();
      }
      if (stage === 1) {
        if (buf.length < 2) return;
        if (buf[1] !== 0) return fail(new Error('SOCKS auth refused'));
        buf = buf.subarray(2);
        request();
      }
      if (stage === 2) {
        if (buf.length < 10) return;
        if (buf[1] !== 0) return fail(new Error(`SOCKS CONNECT to ${host}:${port} failed, reply ${buf[1]}`));
        const atyp = buf[3];
        const len = atyp === 1 ? 10 : atyp === 4 ? 22 : 7 + (buf[4] ?? 0);
        if (buf.length < len) return;
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('error', fail);
        const rest = buf.subarray(len);
        if (rest.length > 0) sock.unshift(rest);
        resolve(sock);
      }
    };
    sock.on('data', onData);
  });
}

/** HTTP/1.0 GET through SOCKS; returns status and body. */
export async function socksHttpGet(
  proxy: SocksEndpoint,
  host: string,
  port: number,
  path: string,
  opts: SocksOptions = {},
): Promise<{ status: number; body: Buffer }> {
  const sock = await socksConnect(proxy, host, port, opts);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`GET ${path} timed out`));
    }, opts.timeoutMs ?? 30_000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, sep < 0 ? all.length : sep).toString('latin1');
      const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(head);
      if (!m) return reject(new Error(`not an HTTP reply: ${JSON.stringify(head.slice(0, 80))}`));
      resolve({ status: Number(m[1]), body: sep < 0 ? Buffer.alloc(0) : all.subarray(sep + 4) });
    });
    sock.write(`GET ${path} HTTP/1.0\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`);
  });
}
