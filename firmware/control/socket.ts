/**
 * Local control socket between the `onionbox` CLI and onionboxd: a Unix socket in the state directory,
 * mode 0600, owned by onionboxd's user (`onionbox` on the box, from its unit; so root or that user may
 * connect), carrying one JSON request and one JSON reply per connection. The commands, their arguments
 * and handlers are all in firmware/control/commands.ts. The web page does not use it: it runs inside
 * onionboxd.
 */
import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describeError, ObxError } from '../errors.js';

export type IpcHandler = (args: Record<string, unknown>) => Promise<unknown>;

export interface IpcRequest {
  cmd: string;
  args: Record<string, unknown>;
}

export type IpcReply = { ok: true; result: unknown } | { ok: false; code: string; error: string };

const MAX_REQUEST = 64 * 1024;

export function socketPath(stateDir: string): string {
  return join(stateDir, 'onionboxd.sock');
}

export class IpcServer {
  readonly #handlers = new Map<string, IpcHandler>();
  #server: Server | null = null;

  constructor(readonly path: string) {}

  register(cmd: string, handler: IpcHandler): void {
    this.#handlers.set(cmd, handler);
  }

  async start(): Promise<void> {
    await unlink(this.path).catch(() => undefined);
    const server = createServer((sock) => {
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
        void this.#handle(line).then((reply) => sock.end(`${JSON.stringify(reply)}\n`));
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    await chmod(this.path, 0o600);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.path).catch(() => undefined);
  }

  async #handle(line: string): Promise<IpcReply> {
    let req: IpcRequest;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (
        !parsed ||
        typeof parsed !== 'object' ||
        typeof (parsed as IpcRequest).cmd !== 'string' ||
        typeof (parsed as IpcRequest).args !== 'object' ||
        (parsed as IpcRequest).args === null
      ) {
        throw new Error('request must be {"cmd": string, "args": object}');
      }
      req = parsed as IpcRequest;
    } catch (err) {
      return { ok: false, code: 'OBX_ERR_CLI_USAGE', error: describeError(err) };
    }
    const handler = this.#handlers.get(req.cmd);
    if (!handler) return { ok: false, code: 'OBX_ERR_CLI_USAGE', error: `unknown command "${req.cmd}"` };
    try {
      return { ok: true, result: await handler(req.args) };
    } catch (err) {
      const code = err instanceof ObxError ? err.code : 'OBX_ERR_INTERNAL';
      return { ok: false, code, error: describeError(err) };
    }
  }
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
