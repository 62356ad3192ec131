/**
 * Small fetches (the manifest and its signature) over an injected Connect (tor's SocksPort in production):
 * one HTTP GET, a byte cap (a server that sends more is cut, nothing of it used) and a deadline for the
 * whole transfer. The bytes are untrusted until their signature holds (./minisign.ts).
 */
import { request } from 'node:http';
import { isObxError, obxError } from '../errors.js';
import type { Connect } from './socks5.js';

export interface FetchSmallOptions {
  readonly url: URL;
  readonly connect: Connect;
  readonly maxBytes: number;
  /** The whole fetch, connect included (default 120 s: onion services are slow to reach). */
  readonly timeoutMs?: number;
  /** What the request calls itself (default `onionbox-update`; each caller its own, as its SOCKS username). */
  readonly userAgent?: string;
}

export async function fetchSmall(options: FetchSmallOptions): Promise<Buffer> {
  const { url } = options;
  const timeoutMs = options.timeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(obxError('UPDATE_FETCH_FAILED', `${url.href}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  let socket: Awaited<ReturnType<Connect>> | null = null;
  try {
    const work = (async () => {
      socket = await options.connect(url);
      const s = socket;
      return await new Promise<Buffer>((resolve, reject) => {
        const req = request({
          method: 'GET',
          path: `${url.pathname}${url.search}`,
          headers: {
            Host: url.host,
            'Accept-Encoding': 'identity',
            Connection: 'close',
            'User-Agent': options.userAgent ?? 'onionbox-update',
          },
          createConnection: () => s,
        });
        req.once('error', (err) =>
          reject(obxError('UPDATE_FETCH_FAILED', `${url.href}: ${err.message}`, { cause: err })),
        );
        req.once('response', (res) => {
          // the refusal first: destroying the response emits 'aborted' at once, which is not the reason
          if (res.statusCode !== 200) {
            reject(obxError('UPDATE_FETCH_FAILED', `${url.href}: HTTP ${res.statusCode}`));
            res.destroy();
            return;
          }
          const chunks: Buffer[] = [];
          let length = 0;
          res.on('data', (chunk: Buffer) => {
            length += chunk.length;
            if (length > options.maxBytes) {
              reject(obxError('UPDATE_FETCH_FAILED', `${url.href}: longer than ${options.maxBytes} bytes`));
              res.destroy();
              return;
            }
            chunks.push(chunk);
          });
          res.once('end', () => resolve(Buffer.concat(chunks)));
          res.once('error', (err) =>
            reject(obxError('UPDATE_FETCH_FAILED', `${url.href}: ${err.message}`, { cause: err })),
          );
          res.once('aborted', () => reject(obxError('UPDATE_FETCH_FAILED', `${url.href}: cut short`)));
        });
        req.end();
      });
    })();
    work.catch(() => undefined);
    return await Promise.race([work, deadline]);
  } catch (err) {
    if (isObxError(err)) throw err;
    throw obxError('UPDATE_FETCH_FAILED', `${url.href}: ${String(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
    (socket as Awaited<ReturnType<Connect>> | null)?.destroy();
  }
}
