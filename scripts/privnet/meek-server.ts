/**
 * The server side of meek's HTTP protocol (test code; what the simulated world's meek reflector runs for
 * each upstream behind its TLS front: the mock Moat, and a bridge's ORPort). The protocol, as lyrebird's
 * meek_lite client speaks it (learned from its documentation and source, no code taken):
 *
 *   - every request is a POST carrying `X-Session-Id` (the client's random id for one tunnelled
 *     connection); its body is the client's next upstream bytes (at most 64 KiB, often none: a poll);
 *   - the server keeps, per session, one TCP connection to the upstream, opened at the session's first
 *     request; it writes the body there, then answers 200 with the bytes the upstream sent meanwhile
 *     (waiting a short turnaround for the first of them, empty when none came), at most 64 KiB (the
 *     client reads no more than that from one answer; the rest waits for its next request);
 *   - the client polls again at once after an answer that carried bytes, else after a growing interval
 *     (100 ms to 5 s); anything but 200 ends its connection.
 *
 * Bounded: at most `maxSessions` sessions; per session at most `maxPending` bytes wait for the client (the
 * upstream socket is paused above that, resumed once the client has taken them); a request body above the
 * payload limit is refused (413). A session idle for `idleMs` is closed (its upstream connection destroyed)
 * by `sweep()`, which `start()` runs every few seconds. A session whose upstream closed answers what was
 * still pending, then 404 for as long as it would have lived: an id is never given a second upstream
 * connection, which would splice a new TCP stream into an old one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** meek's largest request body and the most one answer carries (lyrebird's maxPayloadLength). */
export const MEEK_MAX_PAYLOAD = 0x10000;

export interface MeekServerOptions {
  /**
   * The upstream for a request's Host (the reflector's name the client put in its URL): a function that
   * opens one TCP connection to it, or undefined when this front serves no such reflector (answered 404).
   */
  upstreamFor: (host: string) => (() => Socket) | undefined;
  /** Sessions at once (default 64); a new session beyond it is answered 503. */
  maxSessions?: number;
  /** Bytes waiting for the client per session before the upstream is paused (default 256 KiB). */
  maxPending?: number;
  /** Most bytes in one request body and one answer (default MEEK_MAX_PAYLOAD). */
  maxPayload?: number;
  /** How long an answer waits for the upstream's first bytes (default 50 ms). */
  turnaroundMs?: number;
  /** A session without a request for this long is closed by sweep() (default 120 s, meek-server's). */
  idleMs?: number;
  /** The clock (tests give their own). */
  now?: () => number;
  /** One line per event worth seeing (sessions opened, closed, expired, refused). */
  log?: (line: string) => void;
}

interface Session {
  key: string;
  upstream: Socket;
  pending: Buffer[];
  pendingBytes: number;
  /** The upstream closed (or failed): nothing more will come. */
  ended: boolean;
  lastSeen: number;
  /** Answers waiting for upstream bytes. */
  waiters: Set<() => void>;
}

const SESSION_ID = /^[A-Za-z0-9+/=_-]{1,100}$/;
const HOST = /^[a-z0-9.-]{1,253}$/;

export class MeekServer {
  readonly #o: Required<Omit<MeekServerOptions, 'log'>> & { log: (line: string) => void };
  readonly #sessions = new Map<string, Session>();
  #sweeper: NodeJS.Timeout | null = null;

  constructor(options: MeekServerOptions) {
    this.#o = {
      maxSessions: 64,
      maxPending: 4 * MEEK_MAX_PAYLOAD,
      maxPayload: MEEK_MAX_PAYLOAD,
      turnaroundMs: 50,
      idleMs: 120_000,
      now: Date.now,
      log: () => undefined,
      ...options,
    };
  }

  /** Sessions held now (open or closed, until they expire). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Bytes waiting for the client in one session (tests). */
  pendingBytes(host: string, id: string): number {
    return this.#sessions.get(`${host} ${id}`)?.pendingBytes ?? 0;
  }

  /** Runs sweep() every few seconds until stop(). */
  start(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => this.sweep(), Math.min(10_000, this.#o.idleMs / 4));
    this.#sweeper.unref();
  }

  /** Stops the sweeps and closes every session. */
  stop(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
    for (const s of this.#sessions.values()) this.#close(s);
    this.#sessions.clear();
  }

  /** Closes and forgets the sessions idle for `idleMs`; returns how many. */
  sweep(): number {
    const now = this.#o.now();
    let n = 0;
    for (const [key, s] of this.#sessions) {
      if (now - s.lastSeen < this.#o.idleMs) continue;
      this.#close(s);
      this.#sessions.delete(key);
      n += 1;
    }
    if (n > 0) this.#o.log(`meek: ${n} idle session(s) expired`);
    return n;
  }

  /** Serves one request of meek's protocol. Never throws; a broken request gets a status, not bytes. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = req.headers['x-session-id'];
    const host = (req.headers.host ?? '').replace(/:[0-9]+$/, '').toLowerCase();
    if (req.method !== 'POST' || typeof id !== 'string' || !SESSION_ID.test(id) || !HOST.test(host)) {
      reply(res, 400);
      return;
    }
    const body = await readBody(req, this.#o.maxPayload);
    if (body === null) {
      res.shouldKeepAlive = false; // the rest of the body is never read
      reply(res, 413);
      return;
    }
    const s = this.#session(host, id);
    if (typeof s === 'number') {
      reply(res, s);
      return;
    }
    s.lastSeen = this.#o.now();
    if (body.length > 0 && !s.ended) {
      // the client sends its next body only after this answer: waiting for the kernel to take this one
      // is all the flow control the upstream direction needs
      if (!s.upstream.write(body)) await drained(s);
    }
    const down = await this.#collect(s);
    if (down.length === 0 && s.ended) {
      // upstream gone and nothing left to hand over: the client ends its connection; the id stays
      // refused until the session expires
      reply(res, 404);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': down.length });
    res.end(down);
  }

  /** The session for (host, id), opened on first use; a status when there is none to give. */
  #session(host: string, id: string): Session | 404 | 503 {
    const key = `${host} ${id}`;
    const found = this.#sessions.get(key);
    if (found) return found;
    const open = this.#o.upstreamFor(host);
    if (!open) return 404;
    if (this.#sessions.size >= this.#o.maxSessions) {
      this.#o.log(`meek: refused a session for ${host}: ${this.#sessions.size} sessions already`);
      return 503;
    }
    const upstream = open();
    const s: Session = {
      key,
      upstream,
      pending: [],
      pendingBytes: 0,
      ended: false,
      lastSeen: this.#o.now(),
      waiters: new Set(),
    };
    upstream.on('data', (c: Buffer) => {
      s.pending.push(c);
      s.pendingBytes += c.length;
      if (s.pendingBytes >= this.#o.maxPending) upstream.pause();
      wake(s);
    });
    const ended = () => {
      if (s.ended) return;
      s.ended = true;
      this.#o.log(`meek: upstream of a session for ${host} closed`);
      wake(s);
    };
    upstream.on('end', ended);
    upstream.on('close', ended);
    upstream.on('error', ended);
    this.#sessions.set(key, s);
    this.#o.log(`meek: session opened for ${host} (${this.#sessions.size} now)`);
    return s;
  }

  /** Waits up to the turnaround for upstream bytes, then takes at most one payload's worth. */
  async #collect(s: Session): Promise<Buffer> {
    if (s.pendingBytes === 0 && !s.ended) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          s.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, this.#o.turnaroundMs);
        s.waiters.add(done);
      });
      // a moment more, so that one answer carries what the upstream sent together
      if (s.pendingBytes > 0) await new Promise((r) => setTimeout(r, 5));
    }
    const all = Buffer.concat(s.pending);
    const out = all.subarray(0, this.#o.maxPayload);
    const rest = all.subarray(out.length);
    s.pending = rest.length > 0 ? [rest] : [];
    s.pendingBytes = rest.length;
    if (s.pendingBytes < this.#o.maxPending && !s.ended) s.upstream.resume();
    return out;
  }

  #close(s: Session): void {
    s.ended = true;
    s.upstream.destroy();
    wake(s);
  }
}

function wake(s: Session): void {
  for (const w of [...s.waiters]) w();
}

function drained(s: Session): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.upstream.off('drain', done);
      s.upstream.off('close', done);
      resolve();
    };
    s.upstream.once('drain', done);
    s.upstream.once('close', done);
  });
}

function reply(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

/** The request body, or null when it is longer than `max` (the rest is not read). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        req.pause();
        resolve(null);
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', () => {
      if (!over) resolve(null);
    });
  });
}
