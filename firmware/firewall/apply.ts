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
 * Watched (tamper-watch.ts): every `auditIntervalMs` (30 s by default), after every mode switch and
 * after a failed counters read, the kernel's table is audited against the last applied model. A
 * missing or changed table is reported to the onTamper listeners and the next apply replaces it whole.
 *
 * This file holds the state (the last verified model and generation, the serial queue) and the steps
 * that change it: which batches to try is planApply (plan.ts), reading and comparing nft's JSON is
 * kernel-table.ts, the scripts come from render.ts (all three pure); how nft is reached (script files,
 * the long-lived `nft -i` session and its fallback) is nft-link.ts.
 */
import { randomBytes } from 'node:crypto';
import type { DropCounters } from '../box/api.js';
import { obxError } from '../errors.js';
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
import { flushLanConntrack } from './nft.js';
import { NftLink, type NftLinkOptions, ScriptFiles } from './nft-link.js';
import { type FirewallMode, type FirewallParams, type RelayEndpoint, validateRelays } from './params.js';
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
import { TamperWatch } from './tamper-watch.js';

export type { FirewallMode, FirewallParams, RelayEndpoint } from './params.js';

/** The nft link's options (netns: nft and conntrack run inside it), and the applier's own. */
export interface FirewallOptions extends NftLinkOptions {
  /** Where rendered scripts are written (a private temp dir by default; /run/onionbox on the box). */
  workDir?: string | undefined;
  conntrackPath?: string | undefined;
  /** Period of the audit of the kernel's table (default 30 s; 0: no periodic audit). */
  auditIntervalMs?: number | undefined;
}

/** The default audit period: a flushed or edited ruleset is noticed within this time. */
export const AUDIT_INTERVAL_MS = 30_000;

export { SESSION_MAX_LINES } from './nft-link.js';

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
  readonly #nft: NftLink;
  readonly #scripts: ScriptFiles;
  #mode: FirewallMode | null = null;
  #model: RulesetModel | null = null;
  /** The relay list the kernel's set holds (as verified), as a key; null when unknown. */
  #relaysKey: string | null = null;
  /** The generation marker of the last verified batch (a switch deletes it: proof it is our table). */
  #lastGen: string | null = null;
  readonly #watch: TamperWatch;
  /** Counts of tables replaced so far (a new table starts its counters at zero). */
  #base: DropCounters = {};
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;
  readonly #nonce = randomBytes(4).toString('hex');

  constructor(opts: FirewallOptions = {}) {
    this.#opts = { ...opts };
    this.#nft = new NftLink(this.#opts);
    this.#scripts = new ScriptFiles(this.#opts.workDir, this.#nonce);
    this.#watch = new TamperWatch({
      audit: () => this.audit(),
      ready: () => this.#model !== null && this.#scripts.open,
      log: this.#opts.log,
    });
  }

  async start(): Promise<void> {
    if (this.#scripts.open) return;
    this.#scripts.start();
    await this.#nft.start();
    this.#watch.start(this.#opts.auditIntervalMs ?? AUDIT_INTERVAL_MS);
  }

  /** Called with a reason whenever an audit finds the kernel's table missing or changed. */
  onTamper(listener: (reason: string) => void): () => void {
    return this.#watch.onTamper(listener);
  }

  /** Audits the kernel's table now (tamper-watch.ts); false when it is missing or differs. */
  watch(trigger = 'audit'): Promise<boolean> {
    return this.#watch.check(trigger);
  }

  /** Stops the nft session. The kernel keeps the last ruleset: stopping never opens anything. */
  async stop(): Promise<void> {
    this.#watch.stop();
    await this.#queue.catch(() => undefined);
    this.#nft.stop();
    this.#scripts.close();
  }

  /** The long-lived nft process's pid, or null when calls are spawned one by one. */
  sessionPid(): number | null {
    return this.#nft.pid;
  }

  current(): FirewallMode | null {
    return this.#mode;
  }

  /**
   * Renders, applies in one transaction, verifies. Serialised: concurrent calls run one after another.
   * The kernel's relay set ends up equal to params.relays. The daemon's params come from the one relay
   * set (firmware/tor/relay-set.ts), which also feeds refreshRelays, so a mode change finds the set it
   * already holds and stays a small batch that leaves the set alone.
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
      if (!model) throw obxError('FIREWALL_NOT_STARTED', 'no ruleset applied yet');
      const file = this.#scripts.write('relays', renderRelayRefresh(list));
      const r = await this.#nft.exchange([`include "${file}"`]);
      this.#relaysKey = null;
      await this.#verifyRelays(list, r.err);
      this.#relaysKey = relayKey(list);
      this.#model = { ...model, relays: list };
      this.#opts.log?.info({ relays: list.length }, 'firewall relay set refreshed');
    });
  }

  /** Drop counters by class (ipv6, invalid, udp, icmp, other), totals since this applier started. */
  counters(): Promise<DropCounters> {
    const read = this.#serial(async () => {
      const r = await this.#nft.exchange([LIST_COUNTERS]);
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
    if (plan.flushLanConntrack) {
      await flushLanConntrack(
        this.#opts.netns,
        this.#opts.conntrackPath ?? 'conntrack',
        params,
        this.#opts.log,
      );
    }
    if (full) {
      // The rules are in force (verified); now prove the relay set holds exactly the list.
      this.#relaysKey = null;
      await this.#verifyRelays(model.relays, result.err);
      this.#relaysKey = relayKey(model.relays);
    } else {
      this.#watch.soon();
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
    const file = this.#scripts.write(full ? 'ruleset' : 'switch', script);
    // Replacing the table resets its counters: read them in the same exchange, just before the swap,
    // and carry them over so the status page shows totals, not "since the last mode change".
    const commands = full
      ? [LIST_COUNTERS, `include "${file}"`, LIST_TABLE]
      : [`include "${file}"`, LIST_CHAINS];
    const tSend = performance.now();
    const r = await this.#nft.exchange(commands);
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
      const r = await this.#nft.exchange([LIST_TABLE]);
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

  /** Reads the relay set back in full (not terse) and compares it with the list. */
  async #verifyRelays(list: readonly RelayEndpoint[], err: string): Promise<void> {
    const r = await this.#nft.spawned([LIST_RELAY_SET]);
    const have = relaySetFromLines(r.out);
    const want = relayStrings(list);
    if (!have || have.join(',') !== want.join(',')) {
      throw obxError(
        'FIREWALL_APPLY_FAILED',
        `relay set: ${firstLines(err + r.err) || `holds ${have?.length ?? 'no'} elements, expected ${want.length}`}`,
      );
    }
  }
}

/**
 * The shape firmware/box/controller.ts asks for (apply(mode), counters()): binds the firewall to the parameters the
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
