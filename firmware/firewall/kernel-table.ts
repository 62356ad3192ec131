/**
 * What the kernel holds, read from nft's JSON output, and how it compares with the rendered model.
 * Pure: every function takes the lines `nft -j` printed (one JSON document per line; a session answers
 * several commands in one exchange) and returns plain values. firmware/firewall/apply.ts runs nft and
 * decides what a difference means; test/unit/firewall-kernel-table.test.ts feeds these functions output
 * captured from nftables 1.0.6.
 *
 * A listing is identified by what it holds, not by its position among the lines: `list table` is the
 * document with our table object, `list chains` the chain objects of our table, `list counters` a
 * document without chains, `list set` the document with our relay set.
 */
import type { DropCounters } from '../box/api.js';
import type { RelayEndpoint } from './params.js';
import {
  counterName,
  DROP_CLASSES,
  GENERATION_PREFIX,
  RELAY_SET,
  type RulesetModel,
  TABLE_FAMILY,
  TABLE_NAME,
} from './render.js';

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
      shape.relays = setElements(o.set);
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
  const relays = relayStrings(model.relays);
  if (!shape.hasRelaySet) diffs.push('missing relay set');
  else if (checkRelays && shape.relays && shape.relays.join(',') !== relays.join(',')) {
    diffs.push(`relay set holds ${shape.relays.length} elements, rendered ${relays.length}`);
  }
  return diffs;
}

export const LIST_TABLE = `list table ${TABLE_FAMILY} ${TABLE_NAME}`;
export const LIST_COUNTERS = `list counters table ${TABLE_FAMILY} ${TABLE_NAME}`;
/** Chains only: no rules, no set elements; sub-millisecond whatever the relay set's size. */
export const LIST_CHAINS = `list chains ${TABLE_FAMILY}`;
/** The relay set in full (elements included): read with a non-terse nft. */
export const LIST_RELAY_SET = `list set ${TABLE_FAMILY} ${TABLE_NAME} ${RELAY_SET}`;

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

/** The relay list as the key the applier remembers (order kept: the same list renders the same set). */
export function relayKey(relays: readonly RelayEndpoint[]): string {
  return relays.map((r) => `${r.address}:${r.port}`).join(',');
}

/** Elements of the relay set from `nft -j list set` lines, sorted as "addr:port"; null if no set. */
export function relaySetFromLines(lines: string[]): string[] | null {
  for (const line of lines) {
    const j = JSON.parse(line) as { nftables?: NftJsonObject[] };
    for (const o of j.nftables ?? []) {
      if (o.set && o.set.name === RELAY_SET && o.set.table === TABLE_NAME) {
        return setElements(o.set);
      }
    }
  }
  return null;
}

/** The first few non-empty lines of nft's stderr, joined: what an error message quotes. */
export function firstLines(text: string, n = 3): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, n)
    .join(' | ');
}

/** A relay list as the sorted "addr:port" strings the kernel's set is compared with. */
export function relayStrings(relays: readonly RelayEndpoint[]): string[] {
  return relays.map((r) => `${r.address}:${r.port}`).sort();
}

/** A set's elements as sorted "addr:port" (an element of another shape is kept as its JSON). */
function setElements(set: Record<string, unknown>): string[] {
  const elem = (set.elem as { concat?: [string, number] }[] | undefined) ?? [];
  return elem.map((e) => (e.concat ? `${e.concat[0]}:${e.concat[1]}` : JSON.stringify(e))).sort();
}

type Counts = Record<string, { packets: number; bytes: number }>;

/**
 * Drop counters by class: `base` (totals of the tables replaced so far) plus what the kernel's table
 * counted (`found`, by counter name). Pure; a class the kernel does not list counts from its base.
 */
export function addCounters(base: DropCounters, found: Counts): DropCounters {
  const out: DropCounters = {};
  for (const c of DROP_CLASSES) {
    const now = found[counterName(c)] ?? { packets: 0, bytes: 0 };
    const was = base[c] ?? { packets: 0, bytes: 0 };
    out[c] = { packets: was.packets + now.packets, bytes: was.bytes + now.bytes };
  }
  return out;
}
