/**
 * Our tor control-port client: one socket, commands answered in order, async events (650) dispatched to
 * listeners. Authentication: SAFECOOKIE only (HMAC-SHA256 challenge, server hash verified), with the
 * cookie read from the one path the caller pins (the torrc's CookieAuthFile):
 *   - a listener offering NULL (no secret at all) is not our tor (ours always has CookieAuthentication 1):
 *     refused with OBX_ERR_TOR_AUTH_NULL_REFUSED, and we never send an AUTHENTICATE without a secret;
 *   - a listener naming another COOKIEFILE is refused (OBX_ERR_TOR_COOKIE_PATH_REFUSED) before any file
 *     is read: a process that squats the control port during tor's restart cannot make us read (and
 *     prove knowledge of) a file of its choosing;
 *   - plain COOKIE would hand the cookie itself to whoever listens: refused, SAFECOOKIE proves both sides.
 * Parsing lives in protocol.ts; this file only does I/O.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { obxError } from '../errors.js';
import { Listeners } from '../lib/listeners.js';
import {
  type ControlReply,
  isOk,
  parseCircuitStatus,
  parseEvent,
  parseGetInfo,
  parseKeywords,
  parseNetworkStatus,
  quoteString,
  ReplySplitter,
  type RouterStatus,
  replyText,
  type TorEvent,
} from './protocol.js';

export type ControlEndpoint = { host: string; port: number } | { path: string };

export interface ControlOptions {
  /** TCP (127.0.0.1:9051) or a Unix ControlSocket. */
  endpoint: ControlEndpoint;
  /** The cookie's path as the torrc pins it (CookieAuthFile): the only file ever read, and the only
   * COOKIEFILE a listener may name. */
  cookieFile: string;
}

const SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
const CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';

/** Only printable ASCII without newlines goes onto the wire: a command can never smuggle a second one. */
function assertCommand(cmd: string): void {
  if (!/^[\x20-\x7e]+$/.test(cmd))
    throw obxError('TOR_VALUE_INVALID', 'control command with control characters');
}

interface Pending {
  resolve: (reply: ControlReply) => void;
  reject: (err: Error) => void;
}

export class TorControl {
  #sock: Socket | null = null;
  #splitter = new ReplySplitter();
  #pending: Pending[] = [];
  // a listener's bug must not break the connection: contained (the supervisor logs its own)
  readonly #listeners = new Listeners<TorEvent>(() => undefined);
  readonly #closeListeners = new Listeners<Error | undefined>(() => undefined);
  #closed = false;
  #events = new Set<string>();

  /** A command without a reply after this long closes the connection. */
  commandTimeoutMs = 30_000;

  readonly endpoint: ControlEndpoint;
  readonly cookieFile: string;

  constructor(opts: ControlOptions) {
    this.endpoint = opts.endpoint;
    this.cookieFile = opts.cookieFile;
  }

  get connected(): boolean {
    return this.#sock !== null && !this.#closed;
  }

  async connect(timeoutMs = 5000): Promise<void> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s =
        'path' in this.endpoint ? createConnection(this.endpoint.path) : createConnection(this.endpoint);
      const timer = setTimeout(() => {
        s.destroy();
        reject(obxError('TOR_CONTROL_CLOSED', `connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(obxError('TOR_CONTROL_CLOSED', err.message, { cause: err }));
      });
    });
    sock.setEncoding('latin1');
    sock.setNoDelay(true);
    this.#sock = sock;
    sock.on('data', (chunk: string) => this.#onData(chunk));
    sock.on('error', (err) => this.#fail(obxError('TOR_CONTROL_CLOSED', err.message, { cause: err })));
    sock.on('close', () => this.#fail(obxError('TOR_CONTROL_CLOSED', 'connection closed')));
  }

  /** PROTOCOLINFO, then SAFECOOKIE with the pinned cookie; anything else is refused (see the file's top). */
  async authenticate(): Promise<void> {
    const info = await this.send('PROTOCOLINFO 1');
    let methods: string[] = [];
    let cookieFile: string | undefined;
    for (const line of info.lines) {
      if (line.text.startsWith('AUTH ')) {
        const { keywords } = parseKeywords(line.text.slice(5));
        methods = (keywords.METHODS ?? '').split(',').filter((m) => m !== '');
        cookieFile = keywords.COOKIEFILE;
      }
    }
    if (methods.includes('NULL')) {
      throw obxError(
        'TOR_AUTH_NULL_REFUSED',
        `the listener on ${describeEndpoint(this.endpoint)} accepts no secret (METHODS=${methods.join(',')})`,
      );
    }
    if (!methods.includes('SAFECOOKIE')) {
      throw obxError('TOR_AUTH_FAILED', `no SAFECOOKIE (tor offers ${methods.join(',') || 'none'})`);
    }
    if (cookieFile !== this.cookieFile) {
      throw obxError(
        'TOR_COOKIE_PATH_REFUSED',
        `the listener names ${JSON.stringify(cookieFile ?? '')}, not ${JSON.stringify(this.cookieFile)}`,
      );
    }
    const cookie = await this.#readCookie(this.cookieFile);
    const clientNonce = randomBytes(32);
    const challenge = await this.send(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`);
    const text = replyText(challenge);
    const { keywords } = parseKeywords(text.replace(/^AUTHCHALLENGE /, ''));
    const serverHash = Buffer.from(keywords.SERVERHASH ?? '', 'hex');
    const serverNonce = Buffer.from(keywords.SERVERNONCE ?? '', 'hex');
    if (serverHash.length !== 32 || serverNonce.length !== 32) {
      throw obxError('TOR_AUTH_FAILED', 'malformed AUTHCHALLENGE reply');
    }
    const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
    const expected = createHmac('sha256', SERVER_KEY).update(msg).digest();
    if (!timingSafeEqual(expected, serverHash)) {
      throw obxError('TOR_AUTH_FAILED', 'tor did not prove it knows the cookie (server hash mismatch)');
    }
    const clientHash = createHmac('sha256', CLIENT_KEY).update(msg).digest('hex');
    await this.#auth(`AUTHENTICATE ${clientHash}`);
  }

  async #readCookie(path: string): Promise<Buffer> {
    const cookie = await readFile(path).catch((err: Error) => {
      throw obxError('TOR_AUTH_FAILED', `cannot read cookie ${path}: ${err.message}`);
    });
    if (cookie.length !== 32) throw obxError('TOR_AUTH_FAILED', `cookie ${path} is not 32 bytes`);
    return cookie;
  }

  async #auth(cmd: string): Promise<void> {
    try {
      await this.command(cmd);
    } catch (err) {
      throw obxError('TOR_AUTH_FAILED', (err as Error).message, { cause: err });
    }
  }

  /** Sends one command and returns tor's reply, whatever its status. */
  send(cmd: string): Promise<ControlReply> {
    assertCommand(cmd);
    const sock = this.#sock;
    if (!sock || this.#closed)
      return Promise.reject(obxError('TOR_NOT_RUNNING', 'control port not connected'));
    return new Promise((resolve, reject) => {
      // Replies come in order: a command tor never answers would shift every later reply, so a timeout
      // drops the whole connection (with TAKEOWNERSHIP tor then exits and the supervisor restarts it).
      const timer = setTimeout(() => {
        this.#fail(
          obxError(
            'TOR_CONTROL_CLOSED',
            `no reply to ${cmd.split(' ')[0]} within ${this.commandTimeoutMs} ms`,
          ),
        );
        sock.destroy();
      }, this.commandTimeoutMs);
      timer.unref();
      this.#pending.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      sock.write(`${cmd}\r\n`, 'latin1');
    });
  }

  /** Sends one command; a non-2xx reply throws OBX_ERR_TOR_OPERATION_FAILED with tor's code and text. */
  async command(cmd: string): Promise<ControlReply> {
    const reply = await this.send(cmd);
    if (!isOk(reply)) {
      throw obxError('TOR_OPERATION_FAILED', `${reply.code} ${replyText(reply)}`.slice(0, 500));
    }
    return reply;
  }

  async getInfo(...keys: string[]): Promise<Record<string, string>> {
    for (const k of keys) {
      if (!/^[A-Za-z0-9/_.:-]+$/.test(k))
        throw obxError('TOR_VALUE_INVALID', `GETINFO key ${JSON.stringify(k)}`);
    }
    return parseGetInfo(await this.command(`GETINFO ${keys.join(' ')}`));
  }

  async version(): Promise<string> {
    return (await this.getInfo('version')).version ?? '';
  }

  async circuits() {
    return parseCircuitStatus((await this.getInfo('circuit-status'))['circuit-status'] ?? '');
  }

  async networkStatus(): Promise<RouterStatus[]> {
    return parseNetworkStatus((await this.getInfo('ns/all'))['ns/all'] ?? '');
  }

  async signal(name: 'NEWNYM' | 'RELOAD' | 'HUP' | 'SHUTDOWN' | 'HALT' | 'CLEARDNSCACHE'): Promise<void> {
    await this.command(`SIGNAL ${name}`);
  }

  /** SETCONF with values already validated by the caller's grammar; quoting is done here. */
  async setConf(values: Record<string, string | string[]>): Promise<void> {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(values)) {
      if (!/^[A-Za-z0-9_]+$/.test(k)) throw obxError('TOR_VALUE_INVALID', `option name ${JSON.stringify(k)}`);
      for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${quoteString(one)}`);
    }
    await this.command(`SETCONF ${parts.join(' ')}`);
  }

  /** Subscribes to event types (replaces the set, as SETEVENTS does). */
  async setEvents(types: string[]): Promise<void> {
    for (const t of types) this.#events.add(t);
    for (const t of this.#events) {
      if (!/^[A-Z_]+$/.test(t)) throw obxError('TOR_VALUE_INVALID', `event ${JSON.stringify(t)}`);
    }
    await this.command(`SETEVENTS ${[...this.#events].join(' ')}`);
  }

  /** Registers an event listener; returns the unsubscribe function. */
  onEvent(listener: (ev: TorEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  onClose(listener: (err?: Error) => void): () => void {
    return this.#closeListeners.add(listener);
  }

  close(): void {
    const sock = this.#sock;
    if (sock && !this.#closed) {
      sock.end();
      sock.destroy();
    }
    this.#fail(obxError('TOR_CONTROL_CLOSED', 'closed by us'));
  }

  #onData(chunk: string): void {
    let replies: ControlReply[];
    try {
      replies = this.#splitter.push(chunk);
    } catch (err) {
      this.#fail(err as Error);
      this.#sock?.destroy();
      return;
    }
    for (const reply of replies) {
      if (reply.code === 650) {
        let ev: TorEvent;
        try {
          ev = parseEvent(reply);
        } catch {
          continue;
        }
        this.#listeners.emit(ev);
        continue;
      }
      const pending = this.#pending.shift();
      pending?.resolve(reply);
    }
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.splice(0)) p.reject(err);
    this.#closeListeners.emit(err);
  }
}

function describeEndpoint(e: ControlEndpoint): string {
  return 'path' in e ? e.path : `${e.host}:${e.port}`;
}

/** Refusals that no retry can cure: the listener is not our tor, or our cookie is wrong. */
const FINAL_AUTH_ERRORS = new Set([
  'OBX_ERR_TOR_AUTH_FAILED',
  'OBX_ERR_TOR_AUTH_NULL_REFUSED',
  'OBX_ERR_TOR_COOKIE_PATH_REFUSED',
]);

/** Connects and authenticates, retrying until tor's control port is up (tor writes it after start). */
export async function connectControl(opts: ControlOptions, timeoutMs = 15_000): Promise<TorControl> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const c = new TorControl(opts);
    try {
      await c.connect(Math.max(500, deadline - Date.now()));
      await c.authenticate();
      return c;
    } catch (err) {
      c.close();
      last = err;
      if (FINAL_AUTH_ERRORS.has((err as { code?: string }).code ?? '')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw obxError('TOR_START_FAILED', `control port not reachable: ${(last as Error)?.message ?? 'timeout'}`);
}
