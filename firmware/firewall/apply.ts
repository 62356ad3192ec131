/**
 * The firewall applier: the one adapter between the pure renderer and the kernel.
 *
 * apply(mode, params): validate and render (bad input throws before anything runs), write the script
 * to a private file, load it as ONE nft batch (the file replaces table inet onionbox with the
 * declare/delete/define idiom and removes the boot lockdown table in the same transaction), then read
 * the table back (`nft -j list table inet onionbox`) and check that the kernel holds exactly what was
 * rendered: a new table handle, every chain with its hook, priority and policy, the number of rules in
 * every chain, the counters and the relay set. nft applies a batch all or nothing, so a refused apply
 * leaves the previous ruleset in force; the error says so (OBX_ERR_FIREWALL_APPLY_FAILED).
 *
 * A mode change on a table already in place is a smaller batch (plan.ts decides): only the chains that
 * differ from the last verified model, the relay set and counters kept; proof is the new generation
 * marker plus every chain's hook and policy (`nft -j list chains`), the rule-level audit follows.
 *
 * Leaving `routing` also deletes the LAN's conntrack entries redirected to tor (`conntrack -D -s
 * LAN/PREFIX --dst-nat BOX`), after the new table is verified: the rules already cut those flows
 * whatever their state, this makes sure no NAT binding outlives the mode.
 *
 * Watched: every `auditIntervalMs` (30 s by default), after every mode switch and after a failed
 * counters read, the kernel's table is audited against the last applied model. A missing or changed
 * table (Debian's nftables.service starts with `flush ruleset`; an admin's `nft` command) is reported to
 * the onTamper listeners (BoxController fails closed at once) and the next apply replaces it whole.
 *
 * Fast path: one long-lived `nft -j -i` (NftSession). If it dies or stalls it is replaced by one spawn
 * per call (NftOnce) for that operation, and reopened for the next one.
 *
 * This file is the adapter only: which batches to try is planApply (plan.ts), reading and comparing
 * nft's JSON is kernel-table.ts, the scripts come from render.ts; all three are pure. Over 400 lines
 * because one object owns the nft session, the serial queue and the last verified state, which every
 * method here reads or changes; splitting it would hand that state around.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DropCounters } from '../box-api.js';
import { describeError, isObxError, obxError } from '../errors.js';
import type { Log } from '../log.js';
import {
  addCounters,
  compareShape,
  countersFromLines,
  firstLines,
  LIST_CHAINS,
  LIST_COUNTERS,
  LIST_RELAY_SET,
  LIST_TABLE,
  parseChainsJson,
  parseTableJson,
  relayKey,
  relaySetFromLines,
  relayStrings,
} from './kernel-table.js';
import { execOnce, NftOnce, type NftRunner, NftSession } from './nft.js';
import {
  type FirewallMode,
  type FirewallParams,
  networkOf,
  type RelayEndpoint,
  validateRelays,
} from './params.js';
import { type ApplyStep, planApply } from './plan.js';
import {
  buildRuleset,
  printModeSwitch,
  printRuleset,
  type RulesetModel,
  renderBootTableRemoval,
  renderRelayRefresh,
  TABLE_NAME,
} from './render.js';

// The pure parts, re-exported for callers that know the applier only.
export {
  compareShape,
  countersFromLines,
  parseChainsJson,
  parseTableJson,
  relaySetFromLines,
  type TableShape,
} from './kernel-table.js';
export type { FirewallMode, FirewallParams, RelayEndpoint } from './params.js';

export interface FirewallOptions {
  /** Run nft and conntrack inside this network namespace (simulator, tests). */
  netns?: string | undefined;
  log?: Log | undefined;
  /** Where rendered scripts are written (a private temp dir by default; /run/onionbox on the box). */
  workDir?: string | undefined;
  /** Use the long-lived `nft -i` session (default true). */
  fastPath?: boolean | undefined;
  nftPath?: string | undefined;
  conntrackPath?: string | undefined;
  /** How long the session may take for one exchange before it is replaced (default 2000 ms). */
  sessionTimeoutMs?: number | undefined;
  /** Period of the audit of the kernel's table (default 30 s; 0: no periodic audit). */
  auditIntervalMs?: number | undefined;
  /** Lines after which the nft session is replaced by a fresh one (default SESSION_MAX_LINES). */
  sessionMaxLines?: number | undefined;
}

/** The names writeScript gives its files. */
const SCRIPT_FILE = /^(ruleset|switch|relays)-[0-9a-f]{8}-\d+\.nft$/;

/** The default audit period: a flushed or edited ruleset is noticed within this time. */
export const AUDIT_INTERVAL_MS = 30_000;

/**
 * A session that has taken this many lines is replaced: nft -i's history makes every line cost a little
 * more than the one before (NftSession.lines). The new session is spawned and health-checked in the
 * background and swapped in between two exchanges, so no apply ever waits for a spawn. With the audit
 * every 30 s and the page reading counters, a box reaches this in about a day.
 */
export const SESSION_MAX_LINES = 10_000;

export interface ApplyResult {
  mode: FirewallMode;
  /** From the apply() call to the kernel's table verified. */
  verifiedMs: number;
  /** True when the long-lived nft session did the work, false when the spawn fallback did. */
  fastPath: boolean;
  /** True when the whole table was replaced, false for a mode switch batch (see plan.ts). */
  full: boolean;
  /** Where verifiedMs went (ms): waiting for earlier firewall work, rendering and writing the script,
   *  the nft exchange (batch + read-back), parsing and comparing the read-back. For the benchmarks. */
  phases: { queued: number; render: number; exchange: number; check: number };
}

export class Firewall {
  readonly #opts: FirewallOptions;
  #session: NftSession | null = null;
  /** A fresh session opened in the background, swapped in by the next exchange (see SESSION_MAX_LINES). */
  #spare: NftSession | null = null;
  #preparingSpare = false;
  #once: NftOnce | null = null;
  #dir: string | null = null;
  #ownsDir = false;
  /** The script file written last (removed when the next one is written, and at stop). */
  #lastScript: string | null = null;
  #mode: FirewallMode | null = null;
  #model: RulesetModel | null = null;
  #params: FirewallParams | null = null;
  /** The relay list the kernel's set holds (as verified), as a key; null when unknown. */
  #relaysKey: string | null = null;
  /** The generation marker of the last verified batch (a switch deletes it: proof it is our table). */
  #lastGen: string | null = null;
  #auditTimer: NodeJS.Timeout | null = null;
  #watchTimer: NodeJS.Timeout | null = null;
  readonly #tamperListeners = new Set<(reason: string) => void>();
  /** Counts of tables replaced so far (a new table starts its counters at zero). */
  #base: DropCounters = {};
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;
  readonly #nonce = randomBytes(4).toString('hex');

  constructor(opts: FirewallOptions = {}) {
    this.#opts = { ...opts };
  }

  async start(): Promise<void> {
    if (this.#dir) return;
    const nft = this.#opts.nftPath ?? 'nft';
    if (this.#opts.workDir) {
      this.#dir = resolve(this.#opts.workDir); // nft resolves a relative `include` against its own search path
    } else {
      this.#dir = mkdtempSync(join(tmpdir(), 'onionbox-fw-'));
      this.#ownsDir = true;
    }
    if (/["\n\r]/.test(this.#dir)) throw obxError('FIREWALL_INVALID_PARAMS', 'work directory name');
    // a run that ended without stop() leaves its last script behind
    for (const f of readdirSync(this.#dir)) {
      if (SCRIPT_FILE.test(f)) rmSync(join(this.#dir, f), { force: true });
    }
    this.#once = new NftOnce(this.#opts.netns, nft);
    if (this.#opts.fastPath !== false) {
      this.#session = this.#newSession();
      try {
        await this.#session.open();
      } catch (e) {
        this.#opts.log?.warn({ err: String(e) }, 'nft session failed its health check; using nft per call');
      }
    }
    const every = this.#opts.auditIntervalMs ?? AUDIT_INTERVAL_MS;
    if (every > 0) {
      this.#watchTimer = setInterval(() => void this.watch('periodic audit'), every);
      this.#watchTimer.unref();
    }
  }

  #newSession(): NftSession {
    // Terse (-t): listings omit set elements, so verifying a mode change does not read back a relay
    // set of thousands of elements. The relay set is verified separately when it is written.
    const nft = this.#opts.nftPath ?? 'nft';
    return new NftSession(this.#opts.netns, nft, this.#opts.sessionTimeoutMs ?? 2000, ['-j', '-t']);
  }

  /** Opens a fresh session in the background; the next exchange swaps it in. */
  #prepareSpare(): void {
    if (this.#preparingSpare || this.#spare) return;
    this.#preparingSpare = true;
    const s = this.#newSession();
    s.open().then(
      () => {
        this.#preparingSpare = false;
        if (this.#session && this.#dir) this.#spare = s;
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

  /** Called with a reason whenever an audit finds the kernel's table missing or changed. */
  onTamper(listener: (reason: string) => void): () => void {
    this.#tamperListeners.add(listener);
    return () => this.#tamperListeners.delete(listener);
  }

  /**
   * Audits the kernel's table now (nothing to do before the first apply). False when the table is
   * missing or differs: logged and reported to the onTamper listeners. An audit that could not run
   * (nft itself failing) is only logged: the next apply reports that.
   */
  async watch(trigger = 'audit'): Promise<boolean> {
    if (!this.#model || !this.#dir) return true;
    try {
      await this.audit();
      return true;
    } catch (e) {
      if (!isObxError(e, 'FIREWALL_VERIFY_FAILED')) {
        this.#opts.log?.warn({ trigger, err: describeError(e) }, 'firewall audit could not run');
        return true;
      }
      const reason = e.message.replace(/^[^:]*: /, '');
      this.#opts.log?.error({ trigger, reason }, 'firewall ruleset changed outside onionboxd');
      for (const l of [...this.#tamperListeners]) {
        try {
          l(reason);
        } catch (err) {
          this.#opts.log?.error({ err: describeError(err) }, 'firewall tamper listener failed');
        }
      }
      return false;
    }
  }

  /** Stops the nft session. The kernel keeps the last ruleset: stopping never opens anything. */
  async stop(): Promise<void> {
    if (this.#auditTimer) clearTimeout(this.#auditTimer);
    if (this.#watchTimer) clearInterval(this.#watchTimer);
    this.#auditTimer = this.#watchTimer = null;
    await this.#queue.catch(() => undefined);
    this.#session?.close();
    this.#session = null;
    this.#spare?.close();
    this.#spare = null;
    this.#once = null;
    if (this.#lastScript) rmSync(this.#lastScript, { force: true });
    this.#lastScript = null;
    if (this.#dir && this.#ownsDir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = null;
  }

  /** The long-lived nft process's pid, or null when calls are spawned one by one. */
  sessionPid(): number | null {
    return this.#session?.alive ? this.#session.pid : null;
  }

  current(): FirewallMode | null {
    return this.#mode;
  }

  /**
   * Renders, applies in one transaction, verifies. Serialised: concurrent calls run one after another.
   * The kernel's relay set ends up equal to params.relays: keep params.relays current (the list last
   * given to refreshRelays) and a mode change stays a small batch that leaves the set alone.
   */
  apply(mode: FirewallMode, params: FirewallParams): Promise<ApplyResult> {
    const t0 = performance.now();
    let model: RulesetModel;
    try {
      // Validation and rendering happen now, before queueing: bad input changes nothing.
      model = buildRuleset(mode, params);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#serial(() => this.#applyModel(model, params, t0));
  }

  /** Replaces the relay set's elements in one transaction; rules untouched. */
  refreshRelays(relays: RelayEndpoint[]): Promise<void> {
    let list: RelayEndpoint[];
    try {
      list = validateRelays(relays);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#serial(async () => {
      const model = this.#model;
      if (!model || !this.#params) throw obxError('FIREWALL_NOT_STARTED', 'no ruleset applied yet');
      const file = this.#writeScript('relays', renderRelayRefresh(list));
      const { runner, fast } = await this.#runner();
      const r = await this.#run(runner, fast, [`include "${file}"`]);
      this.#relaysKey = null;
      await this.#verifyRelays(list, r.err);
      this.#relaysKey = relayKey(list);
      this.#model = { ...model, relays: list };
      this.#params = { ...this.#params, relays: list };
      this.#opts.log?.info({ relays: list.length }, 'firewall relay set refreshed');
    });
  }

  /** Drop counters by class (ipv6, invalid, udp, icmp, other), totals since this applier started. */
  counters(): Promise<DropCounters> {
    const read = this.#serial(async () => {
      const { runner, fast } = await this.#runner();
      const r = await this.#run(runner, fast, [LIST_COUNTERS]);
      const found = countersFromLines(r.out);
      if (Object.keys(found).length === 0) {
        throw obxError('FIREWALL_NOT_STARTED', `no table ${TABLE_NAME}: ${firstLines(r.err)}`);
      }
      return addCounters(this.#base, found);
    });
    // A counters read that fails may mean the table is gone: audit at once rather than in 30 s.
    read.catch(() => void this.watch('a failed counters read'));
    return read;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(
      () => fn(),
      () => fn(),
    );
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Writes a script to a new file and removes the one before (every exchange that read it is over:
   * calls are serialised). A new name, never an existing file truncated and rewritten: on ext4 (the SD
   * card, and /tmp here) a truncate-and-rewrite makes close() start writeback, measured at p50 2.1 ms and
   * p99 12 ms on the kill switch's path; a new file costs p50 0.5 ms (BENCHMARKS.md, board).
   */
  #writeScript(kind: string, text: string): string {
    if (!this.#dir) throw obxError('FIREWALL_NOT_STARTED');
    this.#seq += 1;
    const file = join(this.#dir, `${kind}-${this.#nonce}-${this.#seq}.nft`);
    writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
    if (this.#lastScript) rmSync(this.#lastScript, { force: true });
    this.#lastScript = file;
    return file;
  }

  /** The runner for the next exchange (called only inside serial(): no exchange is in flight). */
  async #runner(): Promise<{ runner: NftRunner; fast: boolean }> {
    if (!this.#once) throw obxError('FIREWALL_NOT_STARTED');
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
    if (this.#session?.alive) return { runner: this.#session, fast: true };
    return { runner: this.#once, fast: false };
  }

  /** Runs on the session; if the session fails mid-way, repeats once with a spawn per command. */
  async #run(
    runner: NftRunner,
    fast: boolean,
    commands: string[],
  ): Promise<{ out: string[]; err: string; fast: boolean }> {
    try {
      return { ...(await runner.exec(commands)), fast };
    } catch (e) {
      if (!fast || !this.#once) throw obxError('FIREWALL_APPLY_FAILED', String(e), { cause: e });
      this.#opts.log?.warn({ err: String(e) }, 'nft session failed; falling back to nft per call');
      return { ...(await this.#once.exec(commands)), fast: false };
    }
  }

  /** Executes planApply's plan: each step in order until one is verified, then what follows it. */
  async #applyModel(model: RulesetModel, params: FirewallParams, t0: number): Promise<ApplyResult> {
    const plan = planApply(
      { mode: this.#mode, generation: this.#lastGen, relaysKey: this.#relaysKey },
      model,
    );
    let result: { r: ApplyResult; out: string[]; err: string } | null = null;
    for (const [i, step] of plan.steps.entries()) {
      try {
        result = await this.#commit(model, step, t0);
        break;
      } catch (e) {
        if (i === plan.steps.length - 1) throw e;
        // The table is not what we think (changed by someone else?): the next step replaces it whole.
        this.#opts.log?.warn({ err: String(e) }, 'mode switch failed; replacing the whole table');
      }
    }
    if (!result) throw obxError('FIREWALL_APPLY_FAILED', `${model.mode}: nothing to apply`);
    const full = result.r.full;
    if (full) this.#base = addCounters(this.#base, countersFromLines(result.out));
    this.#mode = model.mode;
    this.#model = model;
    this.#params = { ...params, relays: model.relays };
    if (plan.flushLanConntrack) await this.#flushLanConntrack(params);
    if (full) {
      // The rules are in force (verified); now prove the relay set holds exactly the list.
      this.#relaysKey = null;
      await this.#verifyRelays(model.relays, result.err);
      this.#relaysKey = relayKey(model.relays);
    } else {
      this.#scheduleAudit();
    }
    this.#opts.log?.info(
      {
        mode: model.mode,
        verifiedMs: Math.round(result.r.verifiedMs * 10) / 10,
        fastPath: result.r.fastPath,
        full,
      },
      'firewall mode applied',
    );
    return result.r;
  }

  /**
   * One batch: the whole table (full) or a mode switch that keeps the relay set and counters. Proof of
   * apply: the kernel holds this batch's generation marker (batches are all or nothing), and the chains,
   * hooks and policies equal the rendered model. A full apply also compares every chain's rule count,
   * the counters and the relay set's elements; after a switch the same rule-level audit runs in the
   * background (listing the table costs tens of ms with a consensus-sized relay set).
   */
  async #commit(
    model: RulesetModel,
    step: ApplyStep,
    t0: number,
  ): Promise<{ r: ApplyResult; out: string[]; err: string }> {
    const full = step.kind === 'full';
    const tStart = performance.now();
    this.#seq += 1;
    const gen = `${this.#nonce}_${this.#seq}`;
    const script =
      step.kind === 'full'
        ? printRuleset(model, gen) + renderBootTableRemoval()
        : printModeSwitch(model, gen, step.previous, this.#model ?? undefined);
    const file = this.#writeScript(full ? 'ruleset' : 'switch', script);
    const { runner, fast } = await this.#runner();
    // Replacing the table resets its counters: read them in the same exchange, just before the swap,
    // and carry them over so the status page shows totals, not "since the last mode change".
    const commands = full
      ? [LIST_COUNTERS, `include "${file}"`, LIST_TABLE]
      : [`include "${file}"`, LIST_CHAINS];
    const tSend = performance.now();
    const r = await this.#run(runner, fast, commands);
    const tBack = performance.now();
    const shape = full ? parseTableJson(r.out) : parseChainsJson(r.out);
    const previous = this.#mode ?? 'none';
    if (!shape || shape.generation !== gen) {
      const why = firstLines(r.err) || (shape ? 'the table was not replaced' : 'no table in the kernel');
      this.#opts.log?.error({ mode: model.mode, previous, err: why }, 'firewall apply refused');
      throw obxError(
        'FIREWALL_APPLY_FAILED',
        `${model.mode}: ${why} (still in force: ${previous === 'none' ? 'whatever was loaded before' : previous})`,
      );
    }
    const diffs = compareShape(model, shape, { relays: false, rules: full });
    if (diffs.length > 0) {
      this.#lastGen = null;
      this.#opts.log?.error({ mode: model.mode, diffs }, 'firewall table differs from the rendered one');
      throw obxError('FIREWALL_VERIFY_FAILED', `${model.mode}: ${diffs.join('; ')}`);
    }
    const tDone = performance.now();
    const verifiedMs = tDone - t0;
    this.#lastGen = gen;
    const phases = {
      queued: tStart - t0,
      render: tSend - tStart,
      exchange: tBack - tSend,
      check: tDone - tBack,
    };
    return { r: { mode: model.mode, verifiedMs, fastPath: r.fast, full, phases }, out: r.out, err: r.err };
  }

  /**
   * Rule-level check of what the kernel holds against the last applied model: every chain with its
   * hook, policy and rule count, the counters, the relay set, the generation marker. On a difference
   * the next apply replaces the whole table. Runs by itself after mode switches (coalesced, when the
   * firewall has been quiet for a moment); callers (a periodic check, tests) may run it too.
   */
  audit(): Promise<void> {
    return this.#serial(async () => {
      const model = this.#model;
      const gen = this.#lastGen;
      if (!model) throw obxError('FIREWALL_NOT_STARTED', 'no ruleset applied yet');
      const { runner, fast } = await this.#runner();
      const r = await this.#run(runner, fast, [LIST_TABLE]);
      const shape = parseTableJson(r.out);
      const diffs = shape
        ? compareShape(model, shape, { relays: false })
        : ['table inet onionbox is missing'];
      // After a failed verify the generation is unknown until the next (full) apply: shape only then.
      if (shape && gen !== null && shape.generation !== gen) {
        diffs.push(`generation ${shape.generation}, expected ${gen}`);
      }
      if (diffs.length > 0) {
        this.#lastGen = null;
        this.#opts.log?.error({ mode: model.mode, diffs }, 'firewall audit: the kernel table differs');
        throw obxError('FIREWALL_VERIFY_FAILED', `${model.mode}: ${diffs.join('; ')}`);
      }
    });
  }

  #scheduleAudit(): void {
    if (this.#auditTimer) clearTimeout(this.#auditTimer);
    this.#auditTimer = setTimeout(() => {
      this.#auditTimer = null;
      void this.watch('after a mode switch'); // a difference is reported; the next apply replaces all
    }, 250);
    this.#auditTimer.unref();
  }

  /** Reads the relay set back in full (not terse) and compares it with the list. */
  async #verifyRelays(list: readonly RelayEndpoint[], err: string): Promise<void> {
    if (!this.#once) throw obxError('FIREWALL_NOT_STARTED');
    const r = await this.#once.exec([LIST_RELAY_SET]);
    const have = relaySetFromLines(r.out);
    const want = relayStrings(list);
    if (!have || have.join(',') !== want.join(',')) {
      throw obxError(
        'FIREWALL_APPLY_FAILED',
        `relay set: ${firstLines(err + r.err) || `holds ${have?.length ?? 'no'} elements, expected ${want.length}`}`,
      );
    }
  }

  async #flushLanConntrack(p: FirewallParams): Promise<void> {
    const net = networkOf(p.lanAddr, p.lanPrefix);
    const r = await execOnce(
      this.#opts.netns,
      this.#opts.conntrackPath ?? 'conntrack',
      // Only the flows redirected to tor (DNAT to the box's TransPort/DNSPort): the owner's page
      // connections to the box keep their state, so the page (and its live updates) survive a kill.
      ['-D', '-f', 'ipv4', '-s', `${net}/${p.lanPrefix}`, '--dst-nat', p.lanAddr],
      10_000,
    );
    // conntrack exits 1 when nothing matched ("0 flow entries have been deleted").
    if (r.code !== 0 && !/flow entries have been deleted/.test(r.stderr)) {
      this.#opts.log?.warn({ err: firstLines(r.stderr) }, 'conntrack flush failed (rules still cut the LAN)');
    }
  }
}

/**
 * The shape firmware/box.ts asks for (apply(mode), counters()): binds the firewall to the parameters the
 * daemon knows (interfaces, addresses, tor's uid, ports and the current relay set).
 */
export function firewallForBox(
  fw: Firewall,
  params: () => FirewallParams,
): {
  apply(mode: FirewallMode): Promise<ApplyResult>;
  counters(): Promise<DropCounters>;
  onTamper(listener: (reason: string) => void): () => void;
} {
  return {
    apply: (mode) => fw.apply(mode, params()),
    counters: () => fw.counters(),
    onTamper: (listener) => fw.onTamper(listener),
  };
}
