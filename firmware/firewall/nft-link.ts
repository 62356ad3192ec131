/**
 * How the Firewall (apply.ts) reaches nft: the script files it includes, and the nft processes that
 * read them.
 *
 * - ScriptFiles: every script is written to a new file in the work directory (tmpfs on the box:
 *   /run/onionbox), and the one before is removed. A new name, never an existing file truncated and
 *   rewritten: on ext4 (the SD card, and /tmp here) a truncate-and-rewrite makes close() start
 *   writeback, measured at p50 2.1 ms and p99 12 ms on the kill switch's path; a new file costs p50
 *   0.5 ms (BENCHMARKS.md, board).
 * - NftLink: one long-lived `nft -j -t -i` (NftSession) for every exchange. If it dies or stalls, that
 *   exchange is repeated with one spawn per command (NftOnce), and the session is reopened for the
 *   next one. A session that has taken SESSION_MAX_LINES lines is replaced by a fresh one, spawned and
 *   health-checked in the background and swapped in between two exchanges, so no apply waits for a
 *   spawn.
 *
 * Both are used from inside the Firewall's serial queue only: one exchange at a time.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { obxError } from '../errors.js';
import type { Log } from '../log.js';
import { NftOnce, NftSession } from './nft.js';

/** The names ScriptFiles gives its files. */
const SCRIPT_FILE = /^(ruleset|switch|relays)-[0-9a-f]{8}-\d+\.nft$/;

/**
 * A session that has taken this many lines is replaced: nft -i's history makes every line cost a little
 * more than the one before (NftSession.lines). With the audit every 30 s and the page reading counters,
 * a box reaches this in about a day.
 */
export const SESSION_MAX_LINES = 10_000;

export class ScriptFiles {
  readonly #workDir: string | undefined;
  readonly #nonce: string;
  #dir: string | null = null;
  #ownsDir = false;
  /** The script file written last (removed when the next one is written, and at close). */
  #last: string | null = null;
  #seq = 0;

  /** `workDir`: where scripts go (a private temp dir by default); `nonce`: 8 hex digits in every name. */
  constructor(workDir: string | undefined, nonce: string) {
    this.#workDir = workDir;
    this.#nonce = nonce;
  }

  get open(): boolean {
    return this.#dir !== null;
  }

  /** Creates (or adopts) the directory and removes scripts a run that ended without close() left. */
  start(): void {
    if (this.#dir) return;
    if (this.#workDir) {
      this.#dir = resolve(this.#workDir); // nft resolves a relative `include` against its own search path
    } else {
      this.#dir = mkdtempSync(join(tmpdir(), 'onionbox-fw-'));
      this.#ownsDir = true;
    }
    if (/["\n\r]/.test(this.#dir)) throw obxError('FIREWALL_INVALID_PARAMS', 'work directory name');
    for (const f of readdirSync(this.#dir)) {
      if (SCRIPT_FILE.test(f)) rmSync(join(this.#dir, f), { force: true });
    }
  }

  /** Writes a script to a new file and removes the one before (every exchange that read it is over). */
  write(kind: 'ruleset' | 'switch' | 'relays', text: string): string {
    if (!this.#dir) throw obxError('FIREWALL_NOT_STARTED');
    this.#seq += 1;
    const file = join(this.#dir, `${kind}-${this.#nonce}-${this.#seq}.nft`);
    writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
    if (this.#last) rmSync(this.#last, { force: true });
    this.#last = file;
    return file;
  }

  close(): void {
    if (this.#last) rmSync(this.#last, { force: true });
    this.#last = null;
    if (this.#dir && this.#ownsDir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = null;
    this.#ownsDir = false;
  }
}

export interface NftLinkOptions {
  netns?: string | undefined;
  nftPath?: string | undefined;
  /** Use the long-lived session (default true). */
  fastPath?: boolean | undefined;
  /** How long the session may take for one exchange before it is replaced (default 2000 ms). */
  sessionTimeoutMs?: number | undefined;
  /** Lines after which the session is replaced by a fresh one (default SESSION_MAX_LINES). */
  sessionMaxLines?: number | undefined;
  log?: Log | undefined;
}

export class NftLink {
  readonly #opts: NftLinkOptions;
  #session: NftSession | null = null;
  /** A fresh session opened in the background, swapped in by the next exchange. */
  #spare: NftSession | null = null;
  #preparingSpare = false;
  #once: NftOnce | null = null;

  constructor(opts: NftLinkOptions) {
    this.#opts = opts;
  }

  /** Opens the session and proves it answers; without one, every exchange spawns nft. */
  async start(): Promise<void> {
    this.#once = new NftOnce(this.#opts.netns, this.#opts.nftPath ?? 'nft');
    if (this.#opts.fastPath === false) return;
    this.#session = this.#newSession();
    try {
      await this.#session.open();
    } catch (e) {
      this.#opts.log?.warn({ err: String(e) }, 'nft session failed its health check; using nft per call');
    }
  }

  stop(): void {
    this.#session?.close();
    this.#session = null;
    this.#spare?.close();
    this.#spare = null;
    this.#once = null;
  }

  /** The session's pid, or null when calls are spawned one by one. */
  get pid(): number | null {
    return this.#session?.alive ? this.#session.pid : null;
  }

  /**
   * One exchange: the commands, then what nft printed. On the session; if the session fails mid-way,
   * repeated once with a spawn per command (`fast` says which did the work).
   */
  async exchange(commands: string[]): Promise<{ out: string[]; err: string; fast: boolean }> {
    const once = this.#once;
    if (!once) throw obxError('FIREWALL_NOT_STARTED');
    const session = await this.#current();
    if (!session) {
      try {
        return { ...(await once.exec(commands)), fast: false };
      } catch (e) {
        throw obxError('FIREWALL_APPLY_FAILED', String(e), { cause: e });
      }
    }
    try {
      return { ...(await session.exec(commands)), fast: true };
    } catch (e) {
      this.#opts.log?.warn({ err: String(e) }, 'nft session failed; falling back to nft per call');
      return { ...(await once.exec(commands)), fast: false };
    }
  }

  /** One run with nft spawned, not terse: what a listing of the relay set's elements needs. */
  async spawned(commands: string[]): Promise<{ out: string[]; err: string }> {
    if (!this.#once) throw obxError('FIREWALL_NOT_STARTED');
    return this.#once.exec(commands);
  }

  #newSession(): NftSession {
    // Terse (-t): listings omit set elements, so verifying a mode change does not read back a relay
    // set of thousands of elements. The relay set is verified separately when it is written.
    const nft = this.#opts.nftPath ?? 'nft';
    return new NftSession(this.#opts.netns, nft, this.#opts.sessionTimeoutMs ?? 2000, ['-j', '-t']);
  }

  /** The session for the next exchange (swapping in a spare, reopening a dead one), or null. */
  async #current(): Promise<NftSession | null> {
    if (this.#spare) {
      if (this.#spare.alive) {
        this.#session?.close();
        this.#session = this.#spare;
      } else this.#spare.close();
      this.#spare = null;
    } else if (
      this.#session?.alive &&
      this.#session.lines >= (this.#opts.sessionMaxLines ?? SESSION_MAX_LINES)
    ) {
      this.#prepareSpare();
    }
    if (this.#session && !this.#session.alive) {
      try {
        await this.#session.open();
        this.#opts.log?.info({}, 'nft session reopened');
      } catch (e) {
        this.#opts.log?.warn({ err: String(e) }, 'nft session could not be reopened');
      }
    }
    return this.#session?.alive ? this.#session : null;
  }

  /** Opens a fresh session in the background; the next exchange swaps it in. */
  #prepareSpare(): void {
    if (this.#preparingSpare || this.#spare) return;
    this.#preparingSpare = true;
    const s = this.#newSession();
    s.open().then(
      () => {
        this.#preparingSpare = false;
        if (this.#session && this.#once) this.#spare = s;
        else s.close(); // stopped meanwhile
      },
      (e: unknown) => {
        this.#preparingSpare = false;
        s.close();
        this.#opts.log?.warn(
          { err: String(e) },
          'fresh nft session failed its health check; keeping the old one',
        );
      },
    );
  }
}
