/**
 * The adapter of the built-in lines' refresh (pure parts: ./builtin-refresh.ts): reads the stored file at
 * start (a corrupt one is logged and ignored: the release's lines are used), asks the schedule whenever
 * the box's state changes or its timer wakes, fetches Moat's `/circumvention/builtin` with the injected
 * fetch (in production through tor's SocksPort, never the clearnet: moatBuiltinFetch below), and stores
 * what passed the grammar with write-temp + fsync + rename (a power cut leaves the old file or the new).
 * The clock is injected.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { describeError, isObxError, obxError } from '../errors.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { fetchSmall } from '../update/fetch.js';
import type { Connect } from '../update/socks5.js';
import {
  builtinCounts,
  builtinFromAnswer,
  builtinPageWords,
  builtinSummary,
  parseStoredBuiltin,
  refreshDecision,
  type StoredBuiltin,
  serializeBuiltin,
} from './builtin-refresh.js';
import { MOAT_ANSWER_MAX_BYTES, type MoatEndpoint, moatRequest, moatUrl } from './moat.js';

/** The SOCKS username of the refresh's requests: their own circuits (stream isolation), not the updater's. */
export const BUILTIN_SOCKS_USERNAME = 'onionbox-builtin';

/** The longest sleep between looks at the schedule (a changed clock is seen within it). */
const MAX_SLEEP_MS = 60 * 60_000;

export interface BuiltinRefresherDeps {
  /** The stored file (<state dir>/builtin-bridges.json). */
  file: string;
  /**
   * One GET of Moat's builtin answer through tor: its text. null: there is no Moat to ask (a private test
   * network that names none): the stored or the release's lines are used and nothing is fetched.
   */
  fetch: (() => Promise<string>) | null;
  /** tor routes (ready, the firewall routing). */
  routing: () => boolean;
  now?: () => Date;
  /** Told when the stored lines change (the box's event log). */
  changed?: (line: string) => void;
  /** Told after start and after every refresh, worked or not (the page's words: status()). */
  statusChanged?: () => void;
  log: Logger;
}

export interface BuiltinStatus {
  source: 'refreshed' | 'release';
  refreshedAt: string | null;
  counts: Record<string, number>;
  lastError: string | null;
  nextAt: string | null;
  summary: string;
  /** The settings page's sentence. */
  pageWords: string;
}

export class BuiltinRefresher {
  readonly #d: BuiltinRefresherDeps;
  #stored: StoredBuiltin | null = null;
  #lastAttempt: Date | null = null;
  #failures = 0;
  #doneThisBoot = false;
  #lastError: string | null = null;
  #nextAt: Date | null = null;
  #timer: NodeJS.Timeout | null = null;
  #busy: Promise<void> | null = null;
  #stopped = true;

  constructor(deps: BuiltinRefresherDeps) {
    this.#d = deps;
  }

  #now(): Date {
    return this.#d.now?.() ?? new Date();
  }

  /** The refreshed lines, or null (the release's are used). */
  current(): StoredBuiltin | null {
    return this.#stored;
  }

  status(): BuiltinStatus {
    return {
      source: this.#stored ? 'refreshed' : 'release',
      refreshedAt: this.#stored?.refreshedAt.toISOString() ?? null,
      counts: builtinCounts(this.#stored),
      lastError: this.#lastError,
      nextAt: this.#nextAt?.toISOString() ?? null,
      summary: builtinSummary(this.#stored, this.#lastError),
      pageWords: builtinPageWords(this.#stored, this.#lastError),
    };
  }

  /** Reads the stored file, then looks at the schedule. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#stored = await this.#load();
    this.#d.statusChanged?.();
    if (this.#d.fetch === null)
      this.#d.log.info('built-in bridge lines: no Moat to ask in this network; they are not refreshed');
    this.poke();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#busy?.catch(() => undefined);
  }

  /** Looks at the schedule now (the box's state changed, or the timer woke): refreshes when due. */
  poke(): void {
    if (this.#stopped || this.#busy || this.#d.fetch === null) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const now = this.#now();
    const d = refreshDecision(
      {
        routing: this.#d.routing(),
        lastSuccess: this.#stored?.refreshedAt ?? null,
        lastAttempt: this.#lastAttempt,
        failures: this.#failures,
        doneThisBoot: this.#doneThisBoot,
      },
      now,
    );
    if (d.due) {
      this.#nextAt = null;
      this.#busy = this.refresh().finally(() => {
        this.#busy = null;
        this.poke();
      });
      return;
    }
    this.#nextAt = d.at;
    // not routing: the next state change pokes; else wake at the due time (at most an hour's sleep)
    if (d.at === null) return;
    this.#timer = setTimeout(
      () => this.poke(),
      Math.min(Math.max(0, d.at.getTime() - now.getTime()), MAX_SLEEP_MS),
    );
    this.#timer.unref();
  }

  /** One refresh: fetch, check, store. Never throws: a failure is logged, counted and retried later. */
  async refresh(): Promise<void> {
    const at = this.#now();
    this.#lastAttempt = at;
    try {
      if (this.#d.fetch === null)
        throw obxError('TOR_BUILTIN_REFRESH_FAILED', 'no Moat to ask in this network');
      const text = await this.#d.fetch();
      const { stored, dropped } = builtinFromAnswer(text, at);
      await atomicWriteFile(this.#d.file, serializeBuiltin(stored), 0o600);
      this.#stored = stored;
      this.#failures = 0;
      this.#doneThisBoot = true;
      this.#lastError = null;
      const counts = builtinCounts(stored);
      this.#d.log.info(
        { counts, dropped: dropped.length, ...(dropped.length ? { why: dropped.slice(0, 8) } : {}) },
        'built-in bridge lines refreshed over tor',
      );
      this.#d.changed?.(`built-in bridge lines refreshed over tor: ${builtinSummary(stored)}`);
    } catch (err) {
      this.#failures += 1;
      this.#lastError = describeError(err);
      this.#d.log.error(
        { err: this.#lastError, failures: this.#failures },
        'built-in bridge lines: refresh failed; the lines in use stay',
      );
    }
    this.#d.statusChanged?.();
  }

  async #load(): Promise<StoredBuiltin | null> {
    let text: string;
    try {
      text = await readFile(this.#d.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      this.#d.log.warn(
        { err: describeError(err) },
        "built-in bridge lines: stored file unreadable; the release's are used",
      );
      return null;
    }
    try {
      return parseStoredBuiltin(text);
    } catch (err) {
      this.#d.log.warn(
        { err: describeError(err), file: this.#d.file },
        "built-in bridge lines: stored file ignored; the release's are used",
      );
      return null;
    }
  }
}

/**
 * Production's fetch: one GET of `{service}/circumvention/builtin` over `connect` (tor's SocksPort on
 * loopback with BUILTIN_SOCKS_USERNAME, then TLS with the system's CAs), a byte cap and a deadline.
 */
export function moatBuiltinFetch(endpoint: MoatEndpoint, connect: Connect): () => Promise<string> {
  const url = moatUrl(endpoint.service, moatRequest('builtin').path);
  return async () => {
    try {
      const body = await fetchSmall({
        url,
        connect,
        maxBytes: MOAT_ANSWER_MAX_BYTES,
        timeoutMs: 120_000,
        userAgent: BUILTIN_SOCKS_USERNAME,
      });
      return body.toString('utf8');
    } catch (err) {
      if (isObxError(err, 'TOR_BUILTIN_REFRESH_FAILED')) throw err;
      throw obxError('TOR_BUILTIN_REFRESH_FAILED', `through tor: ${describeError(err)}`, { cause: err });
    }
  };
}
