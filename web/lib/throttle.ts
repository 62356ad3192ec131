/**
 * Failed-attempt throttle per client address with a growing wait: the first few failures are free, then
 * each failure doubles the wait before the next attempt is even checked (1 s, 2 s, 4 s ... capped).
 * Pure logic with an injected clock; memory is bounded (oldest entries are dropped first).
 */
export interface ThrottleOptions {
  freeFailures?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Forget an address this long after its last failure. */
  forgetAfterMs?: number;
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  lastFailure: number;
}

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

export class FailureThrottle {
  readonly #entries = new Map<string, Entry>();
  readonly #free: number;
  readonly #base: number;
  readonly #max: number;
  readonly #forget: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(opts: ThrottleOptions = {}) {
    this.#free = opts.freeFailures ?? 3;
    this.#base = opts.baseDelayMs ?? 1000;
    this.#max = opts.maxDelayMs ?? 15 * 60_000;
    this.#forget = opts.forgetAfterMs ?? 60 * 60_000;
    this.#maxEntries = opts.maxEntries ?? 4096;
    this.#now = opts.now ?? Date.now;
  }

  /** The wait after `failures` failures (0 while still free). */
  delayFor(failures: number): number {
    if (failures < this.#free) return 0;
    return Math.min(this.#max, this.#base * 2 ** Math.min(30, failures - this.#free));
  }

  check(key: string): ThrottleVerdict {
    const e = this.#get(key);
    if (!e) return { allowed: true };
    const wait = e.lastFailure + this.delayFor(e.failures) - this.#now();
    return wait > 0 ? { allowed: false, retryAfterMs: wait } : { allowed: true };
  }

  fail(key: string): void {
    const e = this.#get(key) ?? { failures: 0, lastFailure: 0 };
    e.failures += 1;
    e.lastFailure = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, e);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  succeed(key: string): void {
    this.#entries.delete(key);
  }

  failures(key: string): number {
    return this.#get(key)?.failures ?? 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  #get(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (e && this.#now() - e.lastFailure > this.#forget) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }
}
