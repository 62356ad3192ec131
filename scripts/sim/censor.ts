/**
 * The simulated world's censoring ISP (issue 21): in the internet namespace, an nftables table that drops
 * TCP arriving from outside the namespace (the box's WAN, whatever the modem's port) to every relay's ORPort
 * and DirPort of the private Tor network, the directory authorities' among them, as an ISP that blocks the
 * relays listed in the public consensus does. Bridges are not listed anywhere, so their ports stay open:
 * the obfs4 bridge's port, and its ORPort too (a censor does not know it).
 *
 * The relays talk to each other over the namespace's loopback, which the table never touches, so the
 * private network keeps running while the box is cut off. The table has a counter of what it dropped
 * (`dropped`): a box whose tor tries the relays is seen trying.
 *
 * Pure ruleset text here (unit-tested); world.ts loads and removes it with `nft -f` in the namespace.
 */
import type { Privnet } from '../privnet/index.js';

/** The table's name in the internet namespace. */
export const CENSOR_TABLE = 'obxsim_censor';

export interface Endpoint {
  address: string;
  port: number;
}

const IPV4 =
  /^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/;

/** What the censor blocks: every relay's ORPort and DirPort (authorities, middles, exit). Pure. */
export function censoredEndpoints(privnet: Pick<Privnet, 'relays'>): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  for (const r of privnet.relays) {
    for (const port of [r.orPort, r.dirPort]) {
      const key = `${r.address}:${port}`;
      if (port > 0 && !seen.has(key)) {
        seen.add(key);
        out.push({ address: r.address, port });
      }
    }
  }
  return out;
}

/**
 * The censor's ruleset (`nft -f`): replaces any earlier censor table, drops TCP from every interface but
 * loopback to the blocked endpoints, counting what it drops. Refuses an empty or malformed list. Pure.
 */
export function censorRuleset(blocked: readonly Endpoint[]): string {
  if (blocked.length === 0) throw new Error('censor: nothing to block');
  for (const e of blocked) {
    if (!IPV4.test(e.address)) throw new Error(`censor: bad address ${e.address}`);
    if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
      throw new Error(`censor: bad port ${e.port}`);
  }
  const elements = blocked.map((e) => `${e.address} . ${e.port}`).join(', ');
  return [
    `table inet ${CENSOR_TABLE}`,
    `delete table inet ${CENSOR_TABLE}`,
    `table inet ${CENSOR_TABLE} {`,
    '  counter censored { }',
    '',
    '  set blocked {',
    '    type ipv4_addr . inet_service',
    `    elements = { ${elements} }`,
    '  }',
    '',
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    '    iifname != "lo" ip daddr . tcp dport @blocked counter name "censored" drop',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Removes the censor's table (`nft -f`); loading it on a namespace without the table is harmless. */
export function uncensorRuleset(): string {
  return `table inet ${CENSOR_TABLE}\ndelete table inet ${CENSOR_TABLE}\n`;
}

/** Packets the censor dropped, from `nft list counter inet TABLE censored`'s text. Pure. */
export function droppedPackets(listing: string): number {
  const m = /packets ([0-9]+) bytes [0-9]+/.exec(listing);
  if (!m?.[1]) throw new Error('censor: no counter in the listing');
  return Number(m[1]);
}
