/**
 * Owner sessions: random ids kept in memory (a reboot logs everyone out), carried in a cookie signed
 * with the box's session key (web.sessionKey in the config store). Bounded: idle and absolute lifetimes,
 * and a cap on how many exist at once (the oldest goes first).
 */
import { randomBytes } from 'node:crypto';

export interface SessionOptions {
  idleMs?: number;
  maxAgeMs?: number;
  maxSessions?: number;
  now?: () => number;
}

interface Session {
  created: number;
  lastSeen: number;
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #idle: number;
  readonly #maxAge: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: SessionOptions = {}) {
    this.#idle = opts.idleMs ?? 12 * 3600_000;
    this.#maxAge = opts.maxAgeMs ?? 7 * 24 * 3600_000;
    this.#max = opts.maxSessions ?? 32;
    this.#now = opts.now ?? Date.now;
  }

  create(): string {
    const id = randomBytes(32).toString('base64url');
    const now = this.#now();
    this.#sessions.set(id, { created: now, lastSeen: now });
    while (this.#sessions.size > this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    return id;
  }

  /** True when `id` is a live session (and marks it used). */
  touch(id: string | undefined | null): boolean {
    if (!id) return false;
    const s = this.#sessions.get(id);
    if (!s) return false;
    const now = this.#now();
    if (now - s.lastSeen > this.#idle || now - s.created > this.#maxAge) {
      this.#sessions.delete(id);
      return false;
    }
    s.lastSeen = now;
    return true;
  }

  has(id: string): boolean {
    return this.#sessions.has(id);
  }

  delete(id: string | undefined | null): void {
    if (id) this.#sessions.delete(id);
  }

  /** Ends every session (password change, reset). */
  clear(): void {
    this.#sessions.clear();
  }

  get size(): number {
    return this.#sessions.size;
  }
}
