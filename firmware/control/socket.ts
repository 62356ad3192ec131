/**
 * onionboxd's local sockets, one JSON request and one JSON reply per connection (or, for a stream
 * command, one JSON line per event until either side closes). Two of them, in the state directory
 * (/var/lib/onionbox, 0711: anyone may pass through, nobody may list it):
 *
 *   onionboxd.sock  the `onionbox` CLI's (firmware/control/commands.ts): mode 0600, owned by onionboxd's
 *                   user `onionbox`, so only that user and root may connect.
 *   web.sock        the page's (firmware/control/web-commands.ts): mode 0660, group `onionbox-web`, so
 *                   only `onionbox`, the page's user `onionbox-web` (the group's one member besides
 *                   onionbox) and root may connect. It carries only the page's commands, never the CLI's.
 *                   Where that group does not exist (a development machine), it stays 0600 and only root
 *                   and onionboxd's user may connect.
 *
 * A failed command's reply carries its OBX_ERR_ code, its message and its field details, so a client
 * shows the same words onionboxd would.
 */
import { chmod, chown, readFile, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { describeError, ObxError } from '../errors.js';

export type IpcHandler = (args: Record<string, unknown>) => Promise<unknown>;
/**
 * A stream command: starts sending with `send` (one JSON line each) and returns what stops it (called
 * when the connection closes). Throws to refuse the request (an error reply, then the end).
 */
export type IpcStreamHandler = (args: Record<string, unknown>, send: (value: unknown) => void) => () => void;

export interface IpcRequest {
  cmd: string;
  args: Record<string, unknown>;
}

export type IpcReply =
  | { ok: true; result: unknown }
  | {
      ok: false;
      code: string;
      /** `OBX_ERR_…: message`, for the CLI. */
      error: string;
      /** The error's own message and field details (ObxError), for a client that rebuilds the error. */
      message?: string;
      details?: Record<string, string>;
    };

const MAX_REQUEST = 64 * 1024;
/** A stream's reader that falls this far behind is cut off rather than let onionboxd buffer for it. */
const MAX_STREAM_BACKLOG = 1024 * 1024;

export function socketPath(stateDir: string): string {
  return join(stateDir, 'onionboxd.sock');
}

/** The page's socket (firmware/control/web-commands.ts). */
export function webSocketPath(stateDir: string): string {
  return join(stateDir, 'web.sock');
}

/** The group whose members (besides onionboxd's user) may use the page's socket: the page's user's. */
export const WEB_GROUP = 'onionbox-web';

/** A group's gid from /etc/group's text (pure), or null when there is no such group. */
export function groupId(etcGroup: string, name: string): number | null {
  for (const line of etcGroup.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && /^[0-9]+$/.test(f[2] ?? '')) return Number(f[2]);
  }
  return null;
}

export interface IpcServerOptions {
  /** The socket file's mode (default 0600). */
  mode?: number;
  /**
   * A group given the socket (with `mode` 0660): the file is chowned to it; when the group does not
   * exist the socket stays 0600.
   */
  group?: string;
  /** /etc/group's text (tests); read from the file by default. */
  etcGroup?: () => Promise<string>;
}

export class IpcServer {
  readonly #handlers = new Map<string, IpcHandler>();
  readonly #streams = new Map<string, IpcStreamHandler>();
  readonly #opts: IpcServerOptions;
  #server: Server | null = null;
  /** Open connections (a stream's stays open): ended at stop(), or the server would wait for them. */
  readonly #open = new Set<Socket>();
  /** What the socket file was given at start (tests, logs). */
  access: { mode: number; gid: number | null } = { mode: 0o600, gid: null };

  constructor(
    readonly path: string,
    opts: IpcServerOptions = {},
  ) {
    this.#opts = opts;
  }

  register(cmd: string, handler: IpcHandler): void {
    this.#handlers.set(cmd, handler);
  }

  registerStream(cmd: string, handler: IpcStreamHandler): void {
    this.#streams.set(cmd, handler);
  }

  async start(): Promise<void> {
    await unlink(this.path).catch(() => undefined);
    const server = createServer((sock) => {
      this.#open.add(sock);
      sock.once('close', () => this.#open.delete(sock));
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_REQUEST) {
          sock.end(
            `${JSON.stringify({ ok: false, code: 'OBX_ERR_CLI_USAGE', error: 'request too large' })}\n`,
          );
          return;
        }
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = '';
        sock.removeAllListeners('data');
        const stream = this.#stream(line, sock);
        if (stream) return;
        void this.#handle(line).then((reply) => sock.end(`${JSON.stringify(reply)}\n`));
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    this.#server = server;
    await chmod(this.path, 0o600);
    this.access = { mode: 0o600, gid: null };
    const { group, mode } = this.#opts;
    if (group !== undefined && mode !== undefined) {
      const etcGroup = await (this.#opts.etcGroup ?? (() => readFile('/etc/group', 'utf8')))();
      const gid = groupId(etcGroup, group);
      if (gid !== null) {
        // As a member of the group, onionboxd's user may give the file to it without a capability.
        await chown(this.path, -1, gid);
        await chmod(this.path, mode);
        this.access = { mode, gid };
      }
    }
  }

  /** A stream command's start (true), or false when `line` is not one. */
  #stream(line: string, sock: Socket): boolean {
    let req: IpcRequest;
    try {
      req = parseRequest(line);
    } catch {
      return false;
    }
    const handler = this.#streams.get(req.cmd);
    if (!handler) return false;
    let stop: (() => void) | null = null;
    try {
      stop = handler(req.args, (value) => {
        if (sock.destroyed) return;
        if (sock.writableLength > MAX_STREAM_BACKLOG) {
          sock.destroy();
          return;
        }
        sock.write(`${JSON.stringify({ ok: true, result: value })}\n`);
      });
    } catch (err) {
      sock.end(`${JSON.stringify(errorReply(err))}\n`);
      return true;
    }
    sock.once('close', () => stop?.());
    // The client may not send more once its stream runs; anything it sends ends the stream.
    sock.on('data', () => sock.destroy());
    return true;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const sock of this.#open) sock.destroy();
      await closed;
    }
    await unlink(this.path).catch(() => undefined);
  }

  async #handle(line: string): Promise<IpcReply> {
    let req: IpcRequest;
    try {
      req = parseRequest(line);
    } catch (err) {
      return { ok: false, code: 'OBX_ERR_CLI_USAGE', error: describeError(err) };
    }
    const handler = this.#handlers.get(req.cmd);
    if (!handler) return { ok: false, code: 'OBX_ERR_CLI_USAGE', error: `unknown command "${req.cmd}"` };
    try {
      return { ok: true, result: await handler(req.args) };
    } catch (err) {
      return errorReply(err);
    }
  }
}

function parseRequest(line: string): IpcRequest {
  const parsed = JSON.parse(line) as unknown;
  if (
    !parsed ||
    typeof parsed !== 'object' ||
    typeof (parsed as IpcRequest).cmd !== 'string' ||
    typeof (parsed as IpcRequest).args !== 'object' ||
    (parsed as IpcRequest).args === null ||
    Array.isArray((parsed as IpcRequest).args)
  ) {
    throw new Error('request must be {"cmd": string, "args": object}');
  }
  return parsed as IpcRequest;
}

/** A thrown error as a reply: an ObxError keeps its code, message and details; anything else is internal. */
function errorReply(err: unknown): IpcReply {
  if (err instanceof ObxError) {
    return {
      ok: false,
      code: err.code,
      error: describeError(err),
      message: err.message,
      details: { ...err.details },
    };
  }
  return { ok: false, code: 'OBX_ERR_INTERNAL', error: describeError(err) };
}

/** Sends one request to onionboxd and returns its reply (throws if the daemon is not running). */
export function ipcCall(
  path: string,
  cmd: string,
  args: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<IpcReply> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`onionboxd did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ cmd, args })}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as IpcReply);
      } catch {
        reject(new Error('onionboxd sent a malformed reply'));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach onionboxd at ${path}: ${err.message}`));
    });
  });
}
