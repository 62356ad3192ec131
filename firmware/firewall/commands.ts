/**
 * The work behind `onionbox firewall render|apply|counters` (firmware/cli/firewall.ts holds the command
 * objects and loads this module only when a firewall command runs). Every argument is checked strictly
 * (unknown flags, missing values, bad addresses are errors) before anything is rendered or applied: bad
 * arguments change nothing.
 */
import { readFileSync } from 'node:fs';
import { type CliOptions, parseCliArgs, parsePort } from '../cli/args.js';
import type { CliContext } from '../cli/types.js';
import { obxError } from '../errors.js';
import { Firewall } from './apply.js';
import {
  type FirewallMode,
  type FirewallParams,
  isFirewallMode,
  parseRelayList,
  validateParams,
} from './params.js';
import { renderRuleset } from './render.js';

const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function parse(argv: string[], options: CliOptions) {
  return parseCliArgs(argv, options).values;
}

function netnsOf(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !NETNS.test(v))
    throw obxError('CLI_USAGE', '--netns must be a namespace name');
  return v;
}

/** Parses the ruleset arguments shared by render and apply. */
export function parseRulesetArgs(
  argv: string[],
  extra: Record<string, { type: 'string' }> = {},
): { mode: FirewallMode; params: FirewallParams; values: Record<string, unknown> } {
  const v = parse(argv, {
    mode: { type: 'string' },
    'lan-if': { type: 'string' },
    'wan-if': { type: 'string' },
    'lan-addr': { type: 'string' },
    'tor-uid': { type: 'string' },
    relays: { type: 'string' },
    'trans-port': { type: 'string' },
    'dns-port': { type: 'string' },
    'web-port': { type: 'string' },
    ...extra,
  }) as Record<string, string | undefined>;
  for (const req of ['mode', 'lan-if', 'wan-if', 'lan-addr', 'tor-uid']) {
    if (v[req] === undefined) throw obxError('CLI_USAGE', `--${req} is required`);
  }
  if (!isFirewallMode(v.mode)) {
    throw obxError('CLI_USAGE', `--mode must be lockdown, connecting, routing or killed, got "${v.mode}"`);
  }
  const addr = /^([0-9.]{7,15})\/([0-9]{1,2})$/.exec(v['lan-addr'] ?? '');
  if (!addr) throw obxError('CLI_USAGE', `--lan-addr must be A.B.C.D/N, got "${v['lan-addr']}"`);
  if (!/^[0-9]{1,10}$/.test(v['tor-uid'] ?? '')) {
    throw obxError('CLI_USAGE', `--tor-uid must be a number, got "${v['tor-uid']}"`);
  }
  let relays: FirewallParams['relays'] = [];
  if (v.relays !== undefined) {
    let text: string;
    try {
      text = readFileSync(v.relays, 'utf8');
    } catch (err) {
      throw obxError('CLI_USAGE', `--relays: cannot read ${v.relays}: ${(err as Error).message}`);
    }
    relays = parseRelayList(text);
  }
  const params = validateParams({
    lanIf: v['lan-if'],
    wanIf: v['wan-if'],
    lanAddr: addr[1],
    lanPrefix: Number(addr[2]),
    torUid: Number(v['tor-uid']),
    transPort: v['trans-port'] === undefined ? 9040 : parsePort(v['trans-port'], '--trans-port'),
    dnsPort: v['dns-port'] === undefined ? 5353 : parsePort(v['dns-port'], '--dns-port'),
    webPort: v['web-port'] === undefined ? 80 : parsePort(v['web-port'], '--web-port'),
    relays,
  });
  return { mode: v.mode, params, values: v };
}

export async function runRender(argv: string[], ctx: CliContext): Promise<number> {
  const { mode, params } = parseRulesetArgs(argv);
  ctx.out(renderRuleset(mode, params));
  return 0;
}

export async function runApply(argv: string[], ctx: CliContext): Promise<number> {
  const { mode, params, values } = parseRulesetArgs(argv, { netns: { type: 'string' } });
  const fw = new Firewall({ netns: netnsOf(values.netns), fastPath: false });
  await fw.start();
  try {
    const r = await fw.apply(mode, params);
    ctx.out(`firewall: ${r.mode} applied and verified in ${r.verifiedMs.toFixed(1)} ms\n`);
  } finally {
    await fw.stop();
  }
  return 0;
}

export async function runCounters(argv: string[], ctx: CliContext): Promise<number> {
  const v = parse(argv, { json: { type: 'boolean' }, netns: { type: 'string' } });
  const fw = new Firewall({ netns: netnsOf(v.netns), fastPath: false });
  await fw.start();
  try {
    const c = await fw.counters();
    if (v.json === true) {
      ctx.out(`${JSON.stringify(c, null, 2)}\n`);
    } else {
      ctx.out(`${'drop'.padEnd(8)} ${'packets'.padStart(12)} ${'bytes'.padStart(14)}\n`);
      for (const [name, x] of Object.entries(c)) {
        ctx.out(`${name.padEnd(8)} ${String(x.packets).padStart(12)} ${String(x.bytes).padStart(14)}\n`);
      }
    }
  } finally {
    await fw.stop();
  }
  return 0;
}
