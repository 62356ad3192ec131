/**
 * The firewall as data, rendered to one nft script by pure functions (docs/architecture.md, "Firewall modes").
 *
 * One table, `inet onionbox`, replaced atomically with the "declare table; delete table; define table"
 * idiom in one file. Every base chain that filters has policy drop, drops `ct state invalid` first and
 * IPv6 second, and ends by jumping to `drop_counted`, which counts the drop by class (udp, icmp, other;
 * ipv6 and invalid are counted where they are dropped). Modes:
 *
 * - lockdown:   LAN may reach only DHCP and the web page; nothing leaves on the WAN.
 * - connecting: as lockdown, plus tor's uid may open TCP to the relay set on the WAN.
 * - routing:    as connecting, plus LAN DNS (UDP/TCP 53) -> DNSPort and other LAN TCP -> TransPort.
 * - killed:     as connecting (tor keeps its circuits so the owner can switch back at once); the LAN is
 *               cut as in lockdown, and LAN packets to TransPort/DNSPort are dropped whatever their
 *               conntrack state (the applier also deletes the LAN's conntrack entries).
 *
 * Lessons built in (docs/architecture.md, "Facts the code depends on"): no `ct state established accept` ahead of the LAN
 * rules (LAN rules match on address/port, so `killed` cuts running flows); the box's own LAN address is
 * exempt from the TCP redirect (the page, and nothing else on the box, is reachable); tor is limited to
 * the relay set; IPv6 output is dropped (ND/MLD on the WAN). Nothing is ever forwarded: `forward` only
 * counts and drops.
 */
import type { FirewallMode, FirewallParams } from './params.js';
import { networkOf, notPublicRanges, validateParams } from './params.js';

export type { FirewallMode, FirewallParams, RelayEndpoint } from './params.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'onionbox';
/** The static boot lockdown table (firmware/system/onionbox-lockdown.nft); removed by the first apply. */
export const BOOT_TABLE_NAME = 'onionbox_boot';
export const RELAY_SET = 'relays';

/** Drop classes shown on the status page, and the nft named counter holding each. */
export const DROP_CLASSES = ['ipv6', 'invalid', 'udp', 'icmp', 'other'] as const;
export type DropClass = (typeof DROP_CLASSES)[number];
export function counterName(c: DropClass): string {
  return `drop_${c}`;
}

export interface BaseChainSpec {
  type: 'filter' | 'nat';
  hook: 'prerouting' | 'input' | 'forward' | 'output';
  /** nft priority keyword and its number (the number is what `nft -j` reports). */
  priority: { name: string; value: number };
  policy: 'drop' | 'accept';
}

export interface ChainModel {
  name: string;
  base?: BaseChainSpec;
  rules: string[];
}

export interface RulesetModel {
  mode: FirewallMode;
  counters: string[];
  relays: { address: string; port: number }[];
  chains: ChainModel[];
}

/** The NAT chain's hook (only `routing` has the chain). */
const PRE_NAT_BASE: BaseChainSpec = {
  type: 'nat',
  hook: 'prerouting',
  priority: { name: 'dstnat', value: -100 },
  policy: 'accept',
};

const q = (s: string) => `"${s}"`;
const drop = (c: DropClass) => `counter name ${q(counterName(c))} drop`;

/** Builds the ruleset for a mode as data. Parameters are validated (allowlists) first. */
export function buildRuleset(mode: FirewallMode, params: FirewallParams): RulesetModel {
  const p = validateParams(params);
  if (!['lockdown', 'connecting', 'routing', 'killed'].includes(mode)) {
    // validated by type, but the CLI and IPC hand us strings
    throw new TypeError(`unknown firewall mode ${String(mode)}`);
  }
  const lan = q(p.lanIf);
  const wan = q(p.wanIf);
  const torOnWan = mode !== 'lockdown';
  const routing = mode === 'routing';
  const early = [
    `ct state invalid ${drop('invalid')}`, // first: the INVALID transparent-proxy leak
    `meta nfproto ipv6 ${drop('ipv6')}`, // IPv6 never passes, on any interface
  ];
  const torPorts = `{ ${p.transPort}, ${p.dnsPort} }`;
  const dhcpTargets = `{ ${['255.255.255.255', ...(p.dhcpServers ?? [])].join(', ')} }`;
  // the DHCP server's answers to the box's client (renewals arrive by unicast to the WAN address)
  const dhcpReplies = 'udp sport 67 udp dport 68 accept';
  // What may come in from the WAN (prerouting and input alike): DHCP answers, and tor's relays' replies
  const wanReplies = [
    dhcpReplies,
    ...(torOnWan
      ? [
          `ct state established ip saddr . tcp sport @${RELAY_SET} accept`,
          'ct state related ip protocol icmp accept',
        ]
      : []),
  ];
  // Pluggable transports (firmware/tor/transports.ts): tor's uid only, only while one is configured, only
  // to public addresses; DNS only to the WAN's own resolvers. Replies come back as the reply direction
  // of a flow tor's uid opened.
  const tx = torOnWan ? p.transports : undefined;
  const notPublic = `{ ${notPublicRanges(p.lanAddr, p.lanPrefix).join(', ')} }`;
  const txOut: string[] = [];
  const txIn: string[] = [];
  if (tx && tx.resolvers.length > 0 && (tx.tcpPorts.length > 0 || tx.udp)) {
    const r = `{ ${tx.resolvers.join(', ')} }`;
    txOut.push(`meta skuid ${p.torUid} ip daddr ${r} meta l4proto { tcp, udp } th dport 53 accept`);
    txIn.push(
      `ct state established ct direction reply ip saddr ${r} meta l4proto { tcp, udp } th sport 53 accept`,
    );
  }
  if (tx && tx.tcpPorts.length > 0) {
    const ports = `{ ${tx.tcpPorts.join(', ')} }`;
    txOut.push(`meta skuid ${p.torUid} ip daddr != ${notPublic} tcp dport ${ports} accept`);
    txIn.push(`ct state established ct direction reply ip saddr != ${notPublic} tcp sport ${ports} accept`);
  }
  if (tx?.udp) {
    // never from the LAN's address: snowflake's ICE agent binds a socket to every local address, and one
    // bound to the LAN's would send out of the WAN with that source (seen in sim-censored-snowflake)
    const lanNet = `${networkOf(p.lanAddr, p.lanPrefix)}/${p.lanPrefix}`;
    txOut.push(
      `meta skuid ${p.torUid} ip daddr != ${notPublic} ip saddr != ${lanNet} udp dport != { 53, 123 } accept`,
    );
    txIn.push(`ct state established ct direction reply ip saddr != ${notPublic} meta l4proto udp accept`);
  }
  wanReplies.push(...txIn);
  // Outside routing, LAN packets to TransPort/DNSPort are dropped whatever their conntrack state.
  // What the LAN may always send to the box itself: the web page and DHCP (prerouting and input alike).
  const lanToBox = [
    `ip daddr ${p.lanAddr} tcp dport ${p.webPort} accept`,
    `ip daddr { 255.255.255.255, ${p.lanAddr} } udp sport 68 udp dport 67 accept`,
  ];
  // What differs between modes on the LAN side sits in three chains of its own (lan_pre_tor, lan_in_tor,
  // lan_out_tor), jumped to from lan_pre, lan_in and lan_out in every mode: a kill's batch flushes them
  // and adds one rule, and leaves every other chain alone (BENCHMARKS.md, board). The cut is the first
  // thing lan_in does, as it was the first LAN rule of `input`.
  const cutTorPorts = [`meta l4proto { tcp, udp } th dport ${torPorts} ${drop('other')}`];

  const chains: ChainModel[] = [
    {
      // Before NAT: decides what may enter at all. Established LAN flows are not accepted by state, so a
      // mode change cuts them at once.
      name: 'pre_guard',
      base: { type: 'filter', hook: 'prerouting', priority: { name: 'mangle', value: -150 }, policy: 'drop' },
      rules: [
        ...early,
        'iif "lo" accept',
        `iifname ${lan} jump lan_pre`,
        `iifname ${wan} jump wan_pre`,
        'jump drop_counted',
      ],
    },
    {
      name: 'lan_pre',
      rules: [...lanToBox, 'jump lan_pre_tor'],
    },
    {
      name: 'lan_pre_tor',
      rules: routing
        ? [
            'meta l4proto { tcp, udp } th dport 53 accept', // to DNSPort (redirected in pre_nat)
            `ip daddr != ${p.lanAddr} meta l4proto tcp accept`, // to TransPort (redirected in pre_nat)
          ]
        : [],
    },
    {
      name: 'wan_pre',
      rules: wanReplies,
    },
  ];
  if (routing) {
    chains.push({
      name: 'pre_nat',
      base: PRE_NAT_BASE,
      rules: [
        `iifname ${lan} meta l4proto { tcp, udp } th dport 53 dnat ip to ${p.lanAddr}:${p.dnsPort}`,
        `iifname ${lan} ip daddr ${p.lanAddr} return`, // the box itself (web page) is never redirected
        `iifname ${lan} meta l4proto tcp dnat ip to ${p.lanAddr}:${p.transPort}`,
      ],
    });
  }
  chains.push(
    {
      name: 'input',
      base: { type: 'filter', hook: 'input', priority: { name: 'filter', value: 0 }, policy: 'drop' },
      rules: [
        ...early,
        'iif "lo" accept',
        `iifname ${lan} jump lan_in`,
        `iifname ${wan} jump wan_in`,
        'jump drop_counted',
      ],
    },
    {
      name: 'lan_in',
      rules: ['jump lan_in_tor', ...lanToBox],
    },
    {
      name: 'lan_in_tor',
      rules: routing
        ? [
            `ip daddr ${p.lanAddr} tcp dport ${p.transPort} ct status dnat accept`,
            `ip daddr ${p.lanAddr} meta l4proto { tcp, udp } th dport ${p.dnsPort} ct status dnat accept`,
          ]
        : cutTorPorts,
    },
    {
      name: 'wan_in',
      rules: wanReplies,
    },
    {
      name: 'forward',
      base: { type: 'filter', hook: 'forward', priority: { name: 'filter', value: 0 }, policy: 'drop' },
      rules: [...early, 'jump drop_counted'],
    },
    {
      name: 'output',
      base: { type: 'filter', hook: 'output', priority: { name: 'filter', value: 0 }, policy: 'drop' },
      rules: [
        ...early,
        'oif "lo" accept',
        `oifname ${lan} jump lan_out`,
        `oifname ${wan} jump wan_out`,
        'jump drop_counted',
      ],
    },
    {
      name: 'lan_out',
      rules: [
        `ip saddr ${p.lanAddr} tcp sport ${p.webPort} ct state established accept`,
        'udp sport 67 udp dport 68 accept',
        'jump lan_out_tor',
      ],
    },
    {
      name: 'lan_out_tor',
      rules: routing
        ? [
            `ip saddr ${p.lanAddr} tcp sport ${p.transPort} ct status dnat accept`,
            `ip saddr ${p.lanAddr} meta l4proto { tcp, udp } th sport ${p.dnsPort} ct status dnat accept`,
          ]
        : [],
    },
    {
      name: 'wan_out',
      // Only tor's uid, only TCP, only to the relay set. No DNS, NTP or anything else from the box.
      // The one exception, in every mode: the box's own DHCP client (root) renewing its WAN lease. The
      // first lease goes out on a packet socket nftables never sees; renewals and rebinds come here.
      rules: [
        `meta skuid 0 udp sport 68 udp dport 67 ip daddr ${dhcpTargets} accept`,
        ...(torOnWan ? [`meta skuid ${p.torUid} ip daddr . tcp dport @${RELAY_SET} accept`] : []),
        ...txOut,
      ],
    },
    {
      name: 'drop_counted',
      rules: [`meta l4proto udp ${drop('udp')}`, `meta l4proto icmp ${drop('icmp')}`, drop('other')],
    },
  );
  return {
    mode,
    counters: DROP_CLASSES.map(counterName),
    relays: p.relays as { address: string; port: number }[], // validated, frozen
    chains,
  };
}

export function relayElements(relays: readonly { address: string; port: number }[]): string {
  return relays.map((r) => `${r.address} . ${r.port}`).join(', ');
}

/** Every chain any mode defines (a mode switch flushes them all, then drops the ones the mode lacks). */
export const ALL_CHAINS = [
  'pre_guard',
  'lan_pre',
  'lan_pre_tor',
  'wan_pre',
  'pre_nat',
  'input',
  'lan_in',
  'lan_in_tor',
  'wan_in',
  'forward',
  'output',
  'lan_out',
  'lan_out_tor',
  'wan_out',
  'drop_counted',
] as const;

/**
 * Generation marks let the applier prove that the kernel holds the batch it just sent: an empty regular
 * chain named gen_<mark>, created by the batch (and the previous one deleted in it). `nft list chains`
 * shows it in well under a millisecond even when the relay set holds thousands of elements, where
 * listing the table costs tens of milliseconds.
 */
const GENERATION = /^[A-Za-z0-9_]{1,40}$/;
export const GENERATION_PREFIX = 'gen_';

function checkGeneration(generation: string | undefined): void {
  if (generation !== undefined && !GENERATION.test(generation)) throw new TypeError('bad generation mark');
}

function chainLines(model: RulesetModel, generation: string | undefined): string[] {
  checkGeneration(generation);
  const out: string[] = [];
  for (const c of model.chains) {
    out.push('', `  chain ${c.name} {`);
    if (c.base) {
      const b = c.base;
      out.push(`    type ${b.type} hook ${b.hook} priority ${b.priority.name}; policy ${b.policy};`);
    }
    for (const r of c.rules) out.push(`    ${r}`);
    out.push('  }');
  }
  if (generation !== undefined) out.push('', `  chain ${GENERATION_PREFIX}${generation} {`, '  }');
  return out;
}

/**
 * Prints a model as one nft script that atomically replaces table inet onionbox ("declare table; delete
 * table; define table"). `generation` adds the marker chain gen_<generation> (the applier's proof).
 */
export function printRuleset(model: RulesetModel, generation?: string): string {
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const out: string[] = [
    `# onionbox firewall, mode ${model.mode}. Rendered by firmware/firewall/render.ts; do not edit.`,
    `table ${t}`,
    `delete table ${t}`,
    `table ${t} {`,
  ];
  for (const c of model.counters) out.push(`  counter ${c} { }`);
  out.push('', `  set ${RELAY_SET} {`, '    type ipv4_addr . inet_service');
  if (model.relays.length > 0) out.push(`    elements = { ${relayElements(model.relays)} }`);
  out.push('  }');
  out.push(...chainLines(model, generation), '}', '');
  return out.join('\n');
}

/**
 * A mode change for a table that is already in place, as one batch: flush the chains that change,
 * delete the chains this mode does not have, and add this mode's rules. Same rules as printRuleset,
 * without rewriting a relay set of thousands of elements (a public-consensus-sized set costs ~200 ms
 * per apply that way; the kill switch cannot wait for that).
 *
 * `kept`: the model the kernel holds as last verified (the applier knows it: `previous` is its marker).
 * A chain equal in both (hook, policy and every rule) is left out of the batch, and only the chains
 * `kept` lacks are declared: the others exist (the kernel's chain list matched `kept`), and deleting the
 * previous marker fails the whole batch when the table is not that one. nft's work grows with what it
 * parses (measured: 1.9 ms of nft CPU for a whole switch, 0.6 ms for the marker alone); routing ->
 * killed changes 4 of 15 chains (BENCHMARKS.md, board). The audit after the switch still compares every
 * chain. Without `kept`, the table, counters, relay set and every chain are (re)declared first (no-ops
 * when they exist: the set keeps its elements and the counters their counts) and every chain rewritten.
 */
export function printModeSwitch(
  model: RulesetModel,
  generation?: string,
  previous?: string,
  kept?: RulesetModel,
): string {
  checkGeneration(previous);
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const have = new Set(model.chains.map((c) => c.name));
  const held = new Map((kept?.chains ?? []).map((c) => [c.name, JSON.stringify(c)]));
  const same = new Set(model.chains.filter((c) => held.get(c.name) === JSON.stringify(c)).map((c) => c.name));
  // With a known model, a chain neither mode has is not in the kernel: nothing to do for it.
  const touched = ALL_CHAINS.filter((n) => !same.has(n) && (!kept || have.has(n) || held.has(n)));
  const declared = kept ? touched.filter((n) => !held.has(n)) : touched;
  const out: string[] = [
    `# onionbox firewall, switch to mode ${model.mode}. Rendered by firmware/firewall/render.ts.`,
  ];
  if (!kept || declared.length > 0) {
    out.push(`table ${t} {`);
    if (!kept) {
      for (const c of model.counters) out.push(`  counter ${c} { }`);
      out.push(`  set ${RELAY_SET} { type ipv4_addr . inet_service; }`);
    }
    const bases = new Map(model.chains.filter((c) => c.base).map((c) => [c.name, c.base]));
    // pre_nat's declaration when this mode has none: it must exist to be flushed and deleted
    bases.set('pre_nat', bases.get('pre_nat') ?? PRE_NAT_BASE);
    for (const name of declared) {
      const b = bases.get(name);
      out.push(
        b
          ? `  chain ${name} { type ${b.type} hook ${b.hook} priority ${b.priority.name}; policy ${b.policy}; }`
          : `  chain ${name} { }`,
      );
    }
    out.push('}');
  }
  for (const name of touched) out.push(`flush chain ${t} ${name}`);
  for (const name of touched) if (!have.has(name)) out.push(`delete chain ${t} ${name}`);
  // the previous batch's marker: if it is not there, the table is not the one we think, and the batch fails
  if (previous !== undefined) out.push(`delete chain ${t} ${GENERATION_PREFIX}${previous}`);
  const changed = { ...model, chains: model.chains.filter((c) => !same.has(c.name)) };
  out.push(`table ${t} {`, ...chainLines(changed, generation), '}', '');
  return out.join('\n');
}

/** (mode, params) -> nft script. Pure; throws OBX_ERR_FIREWALL_INVALID_PARAMS on bad parameters. */
export function renderRuleset(mode: FirewallMode, params: FirewallParams): string {
  return printRuleset(buildRuleset(mode, params));
}

/** An nft script that replaces the relay set's elements in one transaction, without touching rules. */
export function renderRelayRefresh(relays: readonly { address: string; port: number }[]): string {
  const lines = [`flush set ${TABLE_FAMILY} ${TABLE_NAME} ${RELAY_SET}`];
  if (relays.length > 0) {
    lines.push(`add element ${TABLE_FAMILY} ${TABLE_NAME} ${RELAY_SET} { ${relayElements(relays)} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** Removes the boot lockdown table if present (appended to the firmware's first apply, same batch). */
export function renderBootTableRemoval(): string {
  return `table ${TABLE_FAMILY} ${BOOT_TABLE_NAME}\ndelete table ${TABLE_FAMILY} ${BOOT_TABLE_NAME}\n`;
}
