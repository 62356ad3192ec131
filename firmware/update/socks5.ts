/**
 * A SOCKS5 CONNECT with username/password authentication (RFC 1928, RFC 1929), for tor's SocksPort on
 * loopback. The update fetches use their own username: tor's IsolateSOCKSAuth (on by default) then never
 * puts them on a circuit with anything else. The target host goes to tor as a name (ATYP 3), so names,
 * onion addresses included, are resolved by tor, never by the box.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { obxError } from '../errors.js';

export interface Socks5Options {
  readonly proxyHost: string;
  readonly proxyPort: number;
  readonly username: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  /** The whole handshake, from TCP connect to the CONNECT reply (default 120 s: onion services are slow). */
  readonly timeoutMs?: number;
}

/** RFC 1928 reply codes, and the onion ones tor sends with ExtendedErrors. */
const REPLIES: Readonly<Record<number, string>> = {
  1: 'general failure',
  2: 'not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
  240: 'onion service descriptor not found',
  241: 'onion service descriptor invalid',
  242: 'onion service introduction failed',
  243: 'onion service rendezvous failed',
  244: 'onion service missing client authorization',
  245: 'onion service wrong client authorization',
  246: 'onion address invalid',
  247: 'onion service introduction timed out',
};

function field(value: string, what: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length < 1 || bytes.length > 255) {
    throw obxError('UPDATE_SOCKS_FAILED', `${what} must be 1-255 bytes`);
  }
  return bytes;
}

/** Resolves with a connected socket whose next bytes are the target's; the caller owns it. */
export async function socks5Connect(options: Socks5Options): Promise<Socket> {
  const user = field(options.username, 'username');
  const pass = field(options.password, 'password');
  const host = field(options.host, 'host');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw obxError('UPDATE_SOCKS_FAILED', 'bad target port');
  }
  const socket = netConnect({ host: options.proxyHost, port: options.proxyPort });
  let failure: Error | null = null;
  let cancel: ((err: Error) => void) | null = null;
  const fail = (err: Error) => {
    failure ??= err;
    cancel?.(failure);
  };
  const onError = (err: Error) => fail(obxError('UPDATE_SOCKS_FAILED', err.message, { cause: err }));
  const onClose = () => fail(obxError('UPDATE_SOCKS_FAILED', 'the SOCKS server closed the connection'));
  socket.on('error', onError);
  socket.on('close', onClose);
  socket.on('end', onClose);
  // Paused-mode reads: when the last 'readable' listener goes, the socket is neither flowing nor paused,
  // so the HTTP client that takes it over gets every byte after the reply.
  const read = (n: number) =>
    new Promise<Buffer>((resolve, reject) => {
      if (failure) return reject(failure);
      const done = () => {
        socket.off('readable', tryRead);
        cancel = null;
      };
      const tryRead = () => {
        const bytes = socket.read(n) as Buffer | null;
        if (bytes === null) return;
        done();
        if (bytes.length === n) resolve(bytes);
        else reject(obxError('UPDATE_SOCKS_FAILED', 'the SOCKS server closed the connection'));
      };
      cancel = (err) => {
        done();
        reject(err);
      };
      socket.on('readable', tryRead);
      tryRead();
    });
  const timer = setTimeout(
    () => fail(obxError('UPDATE_SOCKS_FAILED', 'the SOCKS handshake timed out')),
    options.timeoutMs ?? 120_000,
  );
  try {
    socket.write(Buffer.from([5, 1, 2])); // version 5, one method: username/password
    const method = await read(2);
    if (method[0] !== 5 || method[1] !== 2) {
      throw obxError('UPDATE_SOCKS_FAILED', 'the SOCKS server does not accept username/password');
    }
    socket.write(Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]));
    const auth = await read(2);
    if (auth[1] !== 0) throw obxError('UPDATE_SOCKS_FAILED', 'the SOCKS server refused the username');
    const port = Buffer.from([options.port >> 8, options.port & 0xff]);
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), host, port]));
    const head = await read(4);
    if (head[0] !== 5) throw obxError('UPDATE_SOCKS_FAILED', 'not a SOCKS5 reply');
    const code = head[1] ?? 1;
    if (code !== 0) {
      throw obxError(
        'UPDATE_SOCKS_FAILED',
        `${options.host}:${options.port}: ${REPLIES[code] ?? `reply ${code}`}`,
      );
    }
    const atyp = head[3];
    const addrLength = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? ((await read(1))[0] ?? 0) : -1;
    if (addrLength < 0) throw obxError('UPDATE_SOCKS_FAILED', 'bad address type in the SOCKS reply');
    await read(addrLength + 2);
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    socket.off('error', onError);
    socket.off('close', onClose);
    socket.off('end', onClose);
  }
  return socket;
}

/** Opens the byte stream to a URL's host: what the download is given (tests pass plain loopback). */
export type Connect = (url: URL) => Promise<Socket>;

export interface TorConnectOptions {
  readonly socksHost?: string;
  readonly socksPort: number;
  /** Update fetches' own SOCKS username (stream isolation); the password is not a secret to tor. */
  readonly username: string;
  readonly password?: string;
  readonly timeoutMs?: number;
}

/**
 * Production's Connect: through tor's SocksPort, then TLS for an https mirror (the system's CAs, no
 * pinning: the manifest's signature is the trust). http:// is for onion services, end-to-end already.
 */
export function torConnect(options: TorConnectOptions): Connect {
  return async (url) => {
    const https = url.protocol === 'https:';
    if (!https && url.protocol !== 'http:')
      throw obxError('UPDATE_DOWNLOAD_FAILED', `no ${url.protocol} URLs`);
    const host = url.hostname;
    const socket = await socks5Connect({
      proxyHost: options.socksHost ?? '127.0.0.1',
      proxyPort: options.socksPort,
      username: options.username,
      password: options.password ?? 'onionbox',
      host,
      port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    if (!https) return socket;
    return await new Promise<Socket>((resolve, reject) => {
      const tls = tlsConnect({ socket, servername: host });
      const timer = setTimeout(() => {
        tls.destroy();
        reject(obxError('UPDATE_DOWNLOAD_FAILED', 'TLS handshake timed out'));
      }, options.timeoutMs ?? 120_000);
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(tls);
      });
      tls.once('error', (err) => {
        clearTimeout(timer);
        reject(obxError('UPDATE_DOWNLOAD_FAILED', `TLS: ${err.message}`, { cause: err }));
      });
    });
  };
}
