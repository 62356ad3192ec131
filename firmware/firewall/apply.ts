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
 * Leaving `routing` also deletes the LAN's conntrack entries (`conntrack -D -s LAN/PREFIX`): the rules
 * already cut those flows whatever their state, this makes sure no NAT binding outlives the mode.
 *
 * Watched: every `auditIntervalMs` (30 s by default), after every mode switch and after a failed
 * counters read, the kernel's table is audited against the last applied model. A missing or changed
 * table (Debian's nftables.service starts with `flush ruleset`; an admin's `nft` command) is reported to
 * the onTamper listeners (BoxController fails closed at once) and the next apply replaces it whole.
 *
 * Fast path: one long-lived `nft -j -i` (NftSession). If it dies or stalls it is replaced by one spawn
 * per call (NftOnce) for that operation, and reopened for the next one.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DropCounters } from '../box-api.js';
import { describeError, isObxError, obxError } from '../errors.js';
import { execOnce, NftOnce, type NftRunner, NftSession } from './nft.js';
import {
  type FirewallMode,
  type FirewallParams,
  networkOf,
  type RelayEndpoint,
  validateRelays,
} from './params.js';
import {
  buildRuleset,
  counterName,
  DROP_CLASSES,
  GENERATION_PREFIX,
  printModeSwitch,
  printRuleset,
  RELAY_SET,
  type RulesetModel,
  renderBootTableRemoval,
  renderRelayRefresh,
  TABLE_FAMILY,
  TABLE_NAME,
} from './render.js';

export type { FirewallMode, FirewallParams, RelayEndpoint } from './params.js';

export interface FirewallLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface FirewallOptions {
  /** Run nft and conntrack inside this network namespace (simulator, tests). */
  netns?: string | undefined;
  log?: FirewallLog | undefined;
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
}

/** The default audit period: a flushed or edited ruleset is noticed within this time. */
export const AUDIT_INTERVAL_MS = 30_000;

export interface ApplyResult {
  mode: FirewallMode;
  /** From the apply() call to the kernel's table verified. */
  verifiedMs: number;
  /** True when the long-lived nft session did the work, false when the spawn fallback did. */
  fastPath: boolean;
}

interface NftJsonObject {
  [kind: string]: Record<string, unknown>;
}

/** What the kernel holds, reduced to what verification compares. */
export interface TableShape {
  handle: number;
  /** The generation marker chain's mark (see printRuleset); several, comma-separated, is an error. */
  generation: string | null;
  hasRelaySet: boolean;
  chains: Record<string, { type?: string; hook?: string; prio?: number; policy?: string; rules: number }>;
  counters: Record<string, { packets: number; bytes: number }>;
  relays: string[] | null;
}

export function parseTableJson(lines: string[]): TableShape | null {
  let objects: NftJsonObject[] | null = null;
  for (const line of lines) {
    const j = JSON.parse(line) as { nftables?: NftJsonObject[] };
    if (Array.isArray(j.nftables) && j.nftables.some((o) => 'table' in o && o.table?.name === TABLE_NAME)) {
      objects = j.nftables;
    }
  }
  if (!objects) return null;
  const shape: TableShape = {
    handle: -1,
    generation: null,
    hasRelaySet: false,
    chains: {},
    counters: {},
    relays: null,
  };
  for (const o of objects) {
    if (o.table && o.table.name === TABLE_NAME) shape.handle = Number(o.table.handle);
    if (o.chain && String(o.chain.name).startsWith(GENERATION_PREFIX)) {
      const g = String(o.chain.name).slice(GENERATION_PREFIX.length);
      shape.generation = shape.generation === null ? g : `${shape.generation},${g}`;
    } else if (o.chain) {
      const c = o.chain;
      shape.chains[String(c.name)] = {
        ...(c.type !== undefined ? { type: String(c.type) } : {}),
        ...(c.hook !== undefined ? { hook: String(c.hook) } : {}),
        ...(c.prio !== undefined ? { prio: Number(c.prio) } : {}),
        ...(c.policy !== undefined ? { policy: String(c.policy) } : {}),
        rules: 0,
      };
    }
    if (o.counter) {
      shape.counters[String(o.counter.name)] = {
        packets: Number(o.counter.packets ?? 0),
        bytes: Number(o.counter.bytes ?? 0),
      };
    }
    if (o.set && o.set.name === RELAY_SET) {
      shape.hasRelaySet = true;
      const elem = (o.set.elem as { concat?: [string, number] }[] | undefined) ?? [];
      shape.relays = elem.map((e) => (e.concat ? `${e.concat[0]}:${e.concat[1]}` : JSON.stringify(e))).sort();
    }
  }
  for (const o of objects) {
    if (o.rule) {
      const c = shape.chains[String(o.rule.chain)];
      if (c) c.rules += 1;
    }
  }
  return shape;
}

/** Differences between the rendered model and the kernel's table; empty when they agree. */
export function compareShape(
  model: RulesetModel,
  shape: TableShape,
  opts: { relays?: boolean; rules?: boolean } = {},
): string[] {
  const checkRules = opts.rules ?? true;
  const checkRelays = opts.relays ?? true;
  const diffs: string[] = [];
  const want = new Map(model.chains.map((c) => [c.name, c]));
  for (const name of Object.keys(shape.chains)) if (!want.has(name)) diffs.push(`unexpected chain ${name}`);
  for (const c of model.chains) {
    const k = shape.chains[c.name];
    if (!k) {
      diffs.push(`missing chain ${c.name}`);
      continue;
    }
    if (checkRules && k.rules !== c.rules.length)
      diffs.push(`chain ${c.name}: ${k.rules} rules, rendered ${c.rules.length}`);
    if (c.base) {
      const b = c.base;
      if (k.type !== b.type || k.hook !== b.hook || k.prio !== b.priority.value || k.policy !== b.policy) {
        diffs.push(
          `chain ${c.name}: ${k.type} ${k.hook} ${k.prio} ${k.policy}, rendered ${JSON.stringify(b)}`,
        );
      }
    } else if (k.hook !== undefined) {
      diffs.push(`chain ${c.name} is hooked (${k.hook}) but should be a regular chain`);
    }
  }
  if (!checkRules) return diffs; // a chains-only listing has no counters, sets or rules
  for (const c of model.counters) if (!shape.counters[c]) diffs.push(`missing counter ${c}`);
  const relays = model.relays.map((r) => `${r.address}:${r.port}`).sort();
  if (!shape.hasRelaySet) diffs.push('missing relay set');
  else if (checkRelays && shape.relays && shape.relays.join(',') !== relays.join(',')) {
    diffs.push(`relay set holds ${shape.relays.length} elements, rendered ${relays.length}`);
  }
  return diffs;
}

const LIST_TABLE = `list table ${TABLE_FAMILY} ${TABLE_NAME}`;
const LIST_COUNTERS = `list counters table ${TABLE_FAMILY} ${TABLE_NAME}`;
/** Chains only: no rules, no set elements; sub-millisecond whatever the relay set's size. */
const LIST_CHAINS = `list chains ${TABLE_FAMILY}`;

/** Our table's chains from `nft -j list chains` lines (hooks, policies, the generation marker). */
export function parseChainsJson(lines: string[]): TableShape | null {
  const objects: NftJsonObject[] = [];
  for (const line of lines) {
    const j = JSON.parse(line) as { nftables?: NftJsonObject[] };
    for (const o of j.nftables ?? []) if (o.chain && o.chain.table === TABLE_NAME) objects.push(o);
  }
  if (objects.length === 0) return null;
  return parseTableJson([
    JSON.stringify({ nftables: [{ table: { name: TABLE_NAME, handle: -1 } }, ...objects] }),
  ]);
}

/** Named counters of our table from `nft -j list counters` lines (lines listing chains are skipped). */
export function countersFromLines(lines: string[]): Record<string, { packets: number; bytes: number }> {
  const found: Record<string, { packets: number; bytes: number }> = {};
  for (const line of lines) {
    const j = JSON.parse(line) as { nftables?: NftJsonObject[] };
    if (!j.nftables || j.nftables.some((o) => 'chain' in o)) continue;
    for (const o of j.nftables) {
      if (o.counter && o.counter.table === TABLE_NAME) {
        found[String(o.counter.name)] = {
          packets: Number(o.counter.packets ?? 0),
          bytes: Number(o.counter.bytes ?? 0),
        };
      }
    }
  }
  return found;
}

export class Firewall {
  private readonly opts: FirewallOptions;
  private session: NftSession | null = null;
  private once: NftOnce | null = null;
  private dir: string | null = null;
  private ownsDir = false;
  private mode: FirewallMode | null = null;
  private model: RulesetModel | null = null;
  private params: FirewallParams | null = null;
  /** The relay list the kernel's set holds (as verified), as a key; null when unknown. */
  private relaysKey: string | null = null;
  /** The generation marker of the last verified batch (a switch deletes it: proof it is our table). */
  private lastGen: string | null = null;
  private auditTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private readonly tamperListeners = new Set<(reason: string) => void>();
  /** Counts of tables replaced so far (a new table starts its counters at zero). */
  private base: DropCounters = {};
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private readonly nonce = randomBytes(4).toString('hex');

  constructor(opts: FirewallOptions = {}) {
    this.opts = { ...opts };
  }

  async start(): Promise<void> {
    if (this.dir) return;
    const nft = this.opts.nftPath ?? 'nft';
    if (this.opts.workDir) {
      this.dir = resolve(this.opts.workDir); // nft resolves a relative `include` against its own search path
    } else {
      this.dir = mkdtempSync(join(tmpdir(), 'onionbox-fw-'));
      this.ownsDir = true;
    }
    if (/["\n\r]/.test(this.dir)) throw obxError('FIREWALL_INVALID_PARAMS', 'work directory name');
    this.once = new NftOnce(this.opts.netns, nft);
    if (this.opts.fastPath !== false) {
      // Terse (-t): listings omit set elements, so verifying a mode change does not read back a relay
      // set of thousands of elements. The relay set is verified separately when it is written.
      this.session = new NftSession(this.opts.netns, nft, this.opts.sessionTimeoutMs ?? 2000, ['-j', '-t']);
      try {
        await this.session.open();
      } catch (e) {
        this.opts.log?.warn({ err: String(e) }, 'nft session failed its health check; using nft per call');
      }
    }
    const every = this.opts.auditIntervalMs ?? AUDIT_INTERVAL_MS;
    if (every > 0) {
      this.watchTimer = setInterval(() => void this.watch('periodic audit'), every);
      this.watchTimer.unref();
    }
  }

  /** Called with a reason whenever an audit finds the kernel's table missing or changed. */
  onTamper(listener: (reason: string) => void): () => void {
    this.tamperListeners.add(listener);
    return () => this.tamperListeners.delete(listener);
  }

  /**
   * Audits the kernel's table now (nothing to do before the first apply). False when the table is
   * missing or differs: logged and reported to the onTamper listeners. An audit that could not run
   * (nft itself failing) is only logged: the next apply reports that.
   */
  async watch(trigger = 'audit'): Promise<boolean> {
    if (!this.model || !this.dir) return true;
    try {
      await this.audit();
      return true;
    } catch (e) {
      if (!isObxError(e, 'FIREWALL_VERIFY_FAILED')) {
        this.opts.log?.warn({ trigger, err: describeError(e) }, 'firewall audit could not run');
        return true;
      }
      const reason = e.message.replace(/^[^:]*: /, '');
      this.opts.log?.error({ trigger, reason }, 'firewall ruleset changed outside onionboxd');
      for (const l of [...this.tamperListeners]) {
        try {
          l(reason);
        } catch (err) {
          this.opts.log?.error({ err: describeError(err) }, 'firewall tamper listener failed');
        }
      }
      return false;
    }
  }

  /** Stops the nft session. The kernel keeps the last ruleset: stopping never opens anything. */
  async stop(): Promise<void> {
    if (this.auditTimer) clearTimeout(this.auditTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.auditTimer = this.watchTimer = null;
    await this.queue.catch(() => undefined);
    this.session?.close();
    this.session = null;
    this.once = null;
    if (this.dir && this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  /** The long-lived nft process's pid, or null when calls are spawned one by one. */
  sessionPid(): number | null {
    return this.session?.alive ? this.session.pid : null;
  }

  current(): FirewallMode | null {
    return this.mode;
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
    return this.serial(() => this.applyModel(model, params, t0));
  }

  /** Replaces the relay set's elements in one transaction; rules untouched. */
  refreshRelays(relays: RelayEndpoint[]): Promise<void> {
    let list: RelayEndpoint[];
    try {
      list = validateRelays(relays);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serial(async () => {
      const model = this.model;
      if (!model || !this.params) throw obxError('FIREWALL_NOT_STARTED', 'no ruleset applied yet');
      const file = this.writeScript('relays', renderRelayRefresh(list));
      const { runner, fast } = await this.runner();
      const r = await this.run(runner, fast, [`include "${file}"`]);
      this.relaysKey = null;
      await this.verifyRelays(list, r.err);
      this.relaysKey = relayKey(list);
      this.model = { ...model, relays: list };
      this.params = { ...this.params, relays: list };
      this.opts.log?.info({ relays: list.length }, 'firewall relay set refreshed');
    });
  }

  /** Drop counters by class (ipv6, invalid, udp, icmp, other), totals since this applier started. */
  counters(): Promise<DropCounters> {
    const read = this.serial(async () => {
      const { runner, fast } = await this.runner();
      const r = await this.run(runner, fast, [LIST_COUNTERS]);
      const out: DropCounters = {};
      const found = countersFromLines(r.out);
      if (Object.keys(found).length === 0) {
        throw obxError('FIREWALL_NOT_STARTED', `no table ${TABLE_NAME}: ${firstLines(r.err)}`);
      }
      for (const c of DROP_CLASSES) {
        const now = found[counterName(c)] ?? { packets: 0, bytes: 0 };
        const base = this.base[c] ?? { packets: 0, bytes: 0 };
        out[c] = { packets: base.packets + now.packets, bytes: base.bytes + now.bytes };
      }
      return out;
    });
    // A counters read that fails may mean the table is gone: audit at once rather than in 30 s.
    read.catch(() => void this.watch('a failed counters read'));
    return read;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(
      () => fn(),
      () => fn(),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  private writeScript(kind: string, text: string): string {
    if (!this.dir) throw obxError('FIREWALL_NOT_STARTED');
    this.seq += 1;
    const file = join(this.dir, `${kind}-${this.seq % 2}.nft`);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  }

  private async runner(): Promise<{ runner: NftRunner; fast: boolean }> {
    if (!this.once) throw obxError('FIREWALL_NOT_STARTED');
    if (this.session && !this.session.alive) {
      try {
        await this.session.open();
        this.opts.log?.info({}, 'nft session reopened');
      } catch (e) {
        this.opts.log?.warn({ err: String(e) }, 'nft session could not be reopened');
      }
    }
    if (this.session?.alive) return { runner: this.session, fast: true };
    return { runner: this.once, fast: false };
  }

  /** Runs on the session; if the session fails mid-way, repeats once with a spawn per command. */
  private async run(
    runner: NftRunner,
    fast: boolean,
    commands: string[],
  ): Promise<{ out: string[]; err: string; fast: boolean }> {
    try {
      return { ...(await runner.exec(commands)), fast };
    } catch (e) {
      if (!fast || !this.once) throw obxError('FIREWALL_APPLY_FAILED', String(e), { cause: e });
      this.opts.log?.warn({ err: String(e) }, 'nft session failed; falling back to nft per call');
      return { ...(await this.once.exec(commands)), fast: false };
    }
  }

  private async applyModel(model: RulesetModel, params: FirewallParams, t0: number): Promise<ApplyResult> {
    if (this.mode !== null && this.lastGen !== null && this.relaysKey === relayKey(model.relays)) {
      try {
        return await this.commit(model, params, t0, false);
      } catch (e) {
        // The table is not what we think (changed by someone else?): replace it whole.
        this.opts.log?.warn({ err: String(e) }, 'mode switch failed; replacing the whole table');
      }
    }
    return this.commit(model, params, t0, true);
  }

  /**
   * One batch: the whole table (full) or a mode switch that keeps the relay set and counters. Proof of
   * apply: the kernel holds this batch's generation marker (batches are all or nothing), and the chains,
   * hooks and policies equal the rendered model. A full apply also compares every chain's rule count,
   * the counters and the relay set's elements; after a switch the same rule-level audit runs in the
   * background (listing the table costs tens of ms with a consensus-sized relay set).
   */
  private async commit(
    model: RulesetModel,
    params: FirewallParams,
    t0: number,
    full: boolean,
  ): Promise<ApplyResult> {
    this.seq += 1;
    const gen = `${this.nonce}_${this.seq}`;
    const script = full
      ? printRuleset(model, gen) + renderBootTableRemoval()
      : printModeSwitch(model, gen, this.lastGen ?? undefined);
    const file = this.writeScript(full ? 'ruleset' : 'switch', script);
    const { runner, fast } = await this.runner();
    // Replacing the table resets its counters: read them in the same exchange, just before the swap,
    // and carry them over so the status page shows totals, not "since the last mode change".
    const commands = full
      ? [LIST_COUNTERS, `include "${file}"`, LIST_TABLE]
      : [`include "${file}"`, LIST_CHAINS];
    const r = await this.run(runner, fast, commands);
    const shape = full ? parseTableJson(r.out) : parseChainsJson(r.out);
    const previous = this.mode ?? 'none';
    if (!shape || shape.generation !== gen) {
      const why = firstLines(r.err) || (shape ? 'the table was not replaced' : 'no table in the kernel');
      this.opts.log?.error({ mode: model.mode, previous, err: why }, 'firewall apply refused');
      throw obxError(
        'FIREWALL_APPLY_FAILED',
        `${model.mode}: ${why} (still in force: ${previous === 'none' ? 'whatever was loaded before' : previous})`,
      );
    }
    const diffs = compareShape(model, shape, { relays: false, rules: full });
    if (diffs.length > 0) {
      this.lastGen = null;
      this.opts.log?.error({ mode: model.mode, diffs }, 'firewall table differs from the rendered one');
      throw obxError('FIREWALL_VERIFY_FAILED', `${model.mode}: ${diffs.join('; ')}`);
    }
    const verifiedMs = performance.now() - t0;
    this.lastGen = gen;
    if (full) {
      const carried = countersFromLines(r.out);
      for (const c of DROP_CLASSES) {
        const was = carried[counterName(c)];
        const base = this.base[c] ?? { packets: 0, bytes: 0 };
        if (was) this.base[c] = { packets: base.packets + was.packets, bytes: base.bytes + was.bytes };
      }
    }
    const wasRouting = this.mode === 'routing' || this.mode === null;
    this.mode = model.mode;
    this.model = model;
    this.params = { ...params, relays: model.relays };
    if (model.mode !== 'routing' && wasRouting) await this.flushLanConntrack(params);
    if (full) {
      // The rules are in force (verified above); now prove the relay set holds exactly the list.
      this.relaysKey = null;
      await this.verifyRelays(model.relays, r.err);
      this.relaysKey = relayKey(model.relays);
    } else {
      this.scheduleAudit();
    }
    this.opts.log?.info(
      { mode: model.mode, verifiedMs: Math.round(verifiedMs * 10) / 10, fastPath: r.fast, full },
      'firewall mode applied',
    );
    return { mode: model.mode, verifiedMs, fastPath: r.fast };
  }

  /**
   * Rule-level check of what the kernel holds against the last applied model: every chain with its
   * hook, policy and rule count, the counters, the relay set, the generation marker. On a difference
   * the next apply replaces the whole table. Runs by itself after mode switches (coalesced, when the
   * firewall has been quiet for a moment); callers (a periodic check, tests) may run it too.
   */
  audit(): Promise<void> {
    return this.serial(async () => {
      const model = this.model;
      const gen = this.lastGen;
      if (!model) throw obxError('FIREWALL_NOT_STARTED', 'no ruleset applied yet');
      const { runner, fast } = await this.runner();
      const r = await this.run(runner, fast, [LIST_TABLE]);
      const shape = parseTableJson(r.out);
      const diffs = shape
        ? compareShape(model, shape, { relays: false })
        : ['table inet onionbox is missing'];
      // After a failed verify the generation is unknown until the next (full) apply: shape only then.
      if (shape && gen !== null && shape.generation !== gen) {
        diffs.push(`generation ${shape.generation}, expected ${gen}`);
      }
      if (diffs.length > 0) {
        this.lastGen = null;
        this.opts.log?.error({ mode: model.mode, diffs }, 'firewall audit: the kernel table differs');
        throw obxError('FIREWALL_VERIFY_FAILED', `${model.mode}: ${diffs.join('; ')}`);
      }
    });
  }

  private scheduleAudit(): void {
    if (this.auditTimer) clearTimeout(this.auditTimer);
    this.auditTimer = setTimeout(() => {
      this.auditTimer = null;
      void this.watch('after a mode switch'); // a difference is reported; the next apply replaces all
    }, 250);
    this.auditTimer.unref();
  }

  /** Reads the relay set back in full (not terse) and compares it with the list. */
  private async verifyRelays(list: readonly RelayEndpoint[], err: string): Promise<void> {
    if (!this.once) throw obxError('FIREWALL_NOT_STARTED');
    const r = await this.once.exec([`list set ${TABLE_FAMILY} ${TABLE_NAME} ${RELAY_SET}`]);
    const have = relaySetFromLines(r.out);
    const want = list.map((x) => `${x.address}:${x.port}`).sort();
    if (!have || have.join(',') !== want.join(',')) {
      throw obxError(
        'FIREWALL_APPLY_FAILED',
        `relay set: ${firstLines(err + r.err) || `holds ${have?.length ?? 'no'} elements, expected ${want.length}`}`,
      );
    }
  }

  private async flushLanConntrack(p: FirewallParams): Promise<void> {
    const net = networkOf(p.lanAddr, p.lanPrefix);
    const r = await execOnce(
      this.opts.netns,
      this.opts.conntrackPath ?? 'conntrack',
      // Only the flows redirected to tor (DNAT to the box's TransPort/DNSPort): the owner's page
      // connections to the box keep their state, so the page (and its live updates) survive a kill.
      ['-D', '-f', 'ipv4', '-s', `${net}/${p.lanPrefix}`, '--dst-nat', p.lanAddr],
      10_000,
    );
    // conntrack exits 1 when nothing matched ("0 flow entries have been deleted").
    if (r.code !== 0 && !/flow entries have been deleted/.test(r.stderr)) {
      this.opts.log?.warn({ err: firstLines(r.stderr) }, 'conntrack flush failed (rules still cut the LAN)');
    }
  }
}

function relayKey(relays: readonly RelayEndpoint[]): string {
  return relays.map((r) => `${r.address}:${r.port}`).join(',');
}

/** Elements of the relay set from `nft -j list set` lines, sorted as "addr:port"; null if no set. */
export function relaySetFromLines(lines: string[]): string[] | null {
  for (const line of lines) {
    const j = JSON.parse(line) as { nftables?: NftJsonObject[] };
    for (const o of j.nftables ?? []) {
      if (o.set && o.set.name === RELAY_SET && o.set.table === TABLE_NAME) {
        const elem = (o.set.elem as { concat?: [string, number] }[] | undefined) ?? [];
        return elem.map((e) => (e.concat ? `${e.concat[0]}:${e.concat[1]}` : JSON.stringify(e))).sort();
      }
    }
  }
  return null;
}

function firstLines(text: string, n = 3): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, n)
    .join(' | ');
}

/**
 * The shape firmware/box.ts asks for (apply(mode), counters()): binds the firewall to the parameters the
 * daemon knows (interfaces, addresses, tor's uid, ports and the current relay set).
 */
export function modeOnly(
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
