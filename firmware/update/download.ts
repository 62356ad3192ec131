/**
 * The bundle download: HTTP GET over an injected connection (tor's SocksPort in production, plain
 * loopback in tests), with a hard cap from the manifest, a stall timeout, resume after a drop with HTTP
 * Range, the SHA-256 checked, then fsync and rename into place. The partial file is kept as `DEST.part`
 * across drops, restarts and power cuts so the next attempt resumes; it is removed when the server sends
 * more than the manifest announced or the hash does not match. Nothing here trusts the server: the
 * manifest (signature checked before) says what the file must be.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rename, stat, unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:http';
import { dirname } from 'node:path';
import { isObxError, type ObxError, obxError } from '../errors.js';
import { fsyncDirectory } from '../lib/atomic-write.js';
import type { Connect } from './socks5.js';

export interface DownloadOptions {
  readonly url: URL;
  /** Where the verified bundle ends up (the data partition); `${dest}.part` while it downloads. */
  readonly dest: string;
  /** From the signed manifest: the exact size (the cap) and SHA-256 (lower-case hex). */
  readonly size: number;
  readonly sha256: string;
  readonly connect: Connect;
  /** No byte for this long (headers or body) counts as a drop (default 60 s). */
  readonly stallMs?: number;
  /** Connections tried before giving up; each after a drop or stall resumes (default 5). */
  readonly attempts?: number;
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

/** One connection's outcome: done, or a drop to resume from. Fatal problems throw. */
type Attempt = { done: true } | { done: false; error: ObxError };

export function partPath(dest: string): string {
  return `${dest}.part`;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

export async function downloadBundle(options: DownloadOptions): Promise<void> {
  const part = partPath(options.dest);
  const attempts = options.attempts ?? 5;
  let last: ObxError = obxError('UPDATE_DOWNLOAD_FAILED', 'no attempt made');
  let complete = false;
  for (let i = 0; i < attempts && !complete; i++) {
    options.signal?.throwIfAborted();
    let offset = await sizeOf(part);
    if (offset > options.size) {
      await unlink(part);
      offset = 0;
    }
    if (offset === options.size) {
      complete = true;
      break;
    }
    const result = await attempt(options, part, offset);
    if (result.done) complete = true;
    else last = result.error;
  }
  if (!complete) throw last;
  await verifyAndPlace(part, options.dest, options.sha256);
}

async function verifyAndPlace(part: string, dest: string, sha256: string): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(part)) hash.update(chunk as Buffer);
  const got = hash.digest('hex');
  if (got !== sha256) {
    await unlink(part).catch(() => undefined);
    throw obxError('UPDATE_HASH_MISMATCH', `SHA-256 ${got}, the manifest says ${sha256}`);
  }
  await rename(part, dest);
  await fsyncDirectory(dirname(dest));
}

function contentRangeStart(value: string | undefined, size: number): number | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value ?? '');
  if (!m) return null;
  if (m[3] !== '*' && Number(m[3]) !== size) return null;
  return Number(m[1]);
}

async function attempt(options: DownloadOptions, part: string, offset: number): Promise<Attempt> {
  const { url, size } = options;
  let socket: Awaited<ReturnType<Connect>>;
  try {
    socket = await options.connect(url);
  } catch (err) {
    if (isObxError(err)) return { done: false, error: err };
    return { done: false, error: obxError('UPDATE_DOWNLOAD_FAILED', String(err), { cause: err }) };
  }
  const headers: Record<string, string> = {
    Host: url.host,
    'Accept-Encoding': 'identity',
    Connection: 'close',
    'User-Agent': 'onionbox-update',
  };
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  const req = request({
    method: 'GET',
    path: `${url.pathname}${url.search}`,
    headers,
    createConnection: () => socket,
  });
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      req.destroy();
    }, options.stallMs ?? 60_000);
  };
  const onAbort = () => req.destroy();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let file: FileHandle | null = null;
  let written = offset;
  try {
    arm();
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
      req.end();
    });
    arm();
    let append = false;
    if (res.statusCode === 206 && offset > 0) {
      if (contentRangeStart(res.headers['content-range'], size) !== offset) {
        // A range we did not ask for: start over on the next connection.
        await unlink(part).catch(() => undefined);
        res.destroy();
        return { done: false, error: obxError('UPDATE_DOWNLOAD_FAILED', 'the server sent another range') };
      }
      append = true;
    } else if (res.statusCode === 416) {
      await unlink(part).catch(() => undefined);
      res.destroy();
      return { done: false, error: obxError('UPDATE_DOWNLOAD_FAILED', 'the server refused the range') };
    } else if (res.statusCode !== 200) {
      res.destroy();
      throw obxError('UPDATE_DOWNLOAD_FAILED', `HTTP ${res.statusCode} from ${url.host}`);
    }
    if (!append) written = 0; // 200: the whole file again, from the start (a server that ignores Range)
    const length = res.headers['content-length'];
    if (length !== undefined && written + Number(length) > size) {
      res.destroy();
      await unlink(part).catch(() => undefined);
      throw obxError(
        'UPDATE_DOWNLOAD_OVERSIZE',
        `announced ${written + Number(length)} bytes, the manifest ${size}`,
      );
    }
    file = await open(part, append ? 'a' : 'w', 0o600);
    for await (const chunk of res as AsyncIterable<Buffer>) {
      arm();
      if (written + chunk.length > size) {
        res.destroy();
        await file.close();
        file = null;
        await unlink(part).catch(() => undefined);
        throw obxError('UPDATE_DOWNLOAD_OVERSIZE', `more than the manifest's ${size} bytes; cut at the cap`);
      }
      await file.write(chunk);
      written += chunk.length;
      options.onProgress?.(written, size);
    }
    await file.sync();
    if (written === size) return { done: true };
    return {
      done: false,
      error: obxError('UPDATE_DOWNLOAD_FAILED', `closed after ${written} of ${size} bytes`),
    };
  } catch (err) {
    if (isObxError(err, 'UPDATE_DOWNLOAD_OVERSIZE') || isObxError(err, 'UPDATE_DOWNLOAD_FAILED')) throw err;
    options.signal?.throwIfAborted();
    if (file) await file.sync().catch(() => undefined);
    if (stalled) {
      return { done: false, error: obxError('UPDATE_DOWNLOAD_STALLED', `after ${written} of ${size} bytes`) };
    }
    const detail = `${err instanceof Error ? err.message : String(err)} after ${written} of ${size} bytes`;
    return { done: false, error: obxError('UPDATE_DOWNLOAD_FAILED', detail, { cause: err }) };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    await file?.close().catch(() => undefined);
    socket.destroy();
  }
}
