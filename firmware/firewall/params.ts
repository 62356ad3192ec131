/**
 * Firewall parameters and their allowlist validation. Every value that reaches nft passes through
 * validateParams first: interface names, IPv4 addresses, prefix, uid, ports and relay endpoints are
 * checked against strict grammars, so nothing an owner or a consensus supplies can inject nft syntax.
 */
import { obxError } from '../errors.js';
import { intToIpv4, ipv4ToInt, isIpv4 } from '../lib/ipv4.js';

// The one IPv4 rule (firmware/lib/ipv4.ts), re-exported for the firewall's and networking's callers.
export { intToIpv4, ipv4ToInt, isIpv4 };

export type FirewallMode = 'lockdown' | 'connecting' | 'routing' | 'killed';
export const FIREWALL_MODES: readonly FirewallMode[] = ['lockdown', 'connecting', 'routing', 'killed'];

/** The modes that give the LAN nothing (no mode yet counts as open: not proven closed). */
export function isClosed(mode: FirewallMode | null): boolean {
  return mode === 'killed' || mode === 'lockdown';
}

export interface RelayEndpoint {
  address: string;
  port: number;
}

export interface FirewallParams {
  /** LAN interface (where the household's devices are), e.g. wlan0 or br-lan. */
  lanIf: string;
  /** WAN interface (towards the modem). */
  wanIf: string;
  /** The box's own address on the LAN (tor's TransPort/DNSPort and the web page listen here). */
  lanAddr: string;
  lanPrefix: number;
  /** tor's uid: the only uid allowed to send to the WAN. Never 0. */
  torUid: number;
  transPort: number;
  dnsPort: number;
  webPort: number;
  /** Relays, fallback directories and bridges tor may connect to (TCP). */
  relays: RelayEndpoint[];
  /**
   * The WAN's DHCP servers (from the current lease): the box's DHCP client may renew with them by
   * unicast, besides broadcasting (UDP 68 -> 67 only). Absent or empty: broadcast only.
   */
  dhcpServers?: string[] | undefined;
  /** Openings for the configured pluggable transports (absent: none). */
  transports?: TransportOpenings | undefined;
}

/**
 * What tor's uid may send on the WAN besides TCP to the relay set, while a pluggable transport that needs
 * it is configured (firmware/tor/transports.ts). Absent: nothing.
 */
export interface TransportOpenings {
  /** The WAN's own resolvers (from the lease): tor's uid may ask them on port 53 (UDP and TCP). */
  resolvers: string[];
  /** TCP ports tor's uid may open to public addresses (fronts and webtunnel hosts: 443). */
  tcpPorts: number[];
  /** UDP from tor's uid to public addresses, never to ports 53 or 123 (snowflake). */
  udp: boolean;
}

/**
 * Addresses tor's uid never reaches through a transport opening: this network, private ranges (RFC 1918),
 * CGNAT (100.64/10), loopback, link-local, the documentation ranges (bridge-line placeholders), multicast
 * and class E. The LAN is added when outside these.
 */
export const NOT_PUBLIC: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];

/** Whether addr lies in one of the CIDR ranges. */
export function inRanges(addr: string, ranges: readonly string[]): boolean {
  const a = ipv4ToInt(addr);
  return ranges.some((r) => {
    const [net = '', len = '32'] = r.split('/');
    const size = 2 ** (32 - Number(len));
    return Math.floor(a / size) === Math.floor(ipv4ToInt(net) / size);
  });
}

/** At most this many transport TCP ports and resolvers. */
export const MAX_TRANSPORT_PORTS = 8;
export const MAX_RESOLVERS = 4;

/** At most this many DHCP servers (one lease per WAN interface; room for a change of network). */
export const MAX_DHCP_SERVERS = 4;

/** Limit on the relay set (the public consensus has ~7-8k relays; leave room for fallbacks/bridges). */
export const MAX_RELAYS = 20000;

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function isFirewallMode(v: unknown): v is FirewallMode {
  return typeof v === 'string' && (FIREWALL_MODES as readonly string[]).includes(v);
}

/** Network address of addr/prefix, e.g. 10.0.0.1/24 -> 10.0.0.0. */
export function networkOf(addr: string, prefix: number): string {
  const size = 2 ** (32 - prefix);
  return intToIpv4(Math.floor(ipv4ToInt(addr) / size) * size);
}

/** Unicast, routable-as-a-host address: not 0/8, loopback, multicast, class E or broadcast. */
export function isHostAddress(a: string): boolean {
  const first = Number(a.split('.')[0]);
  return first !== 0 && first !== 127 && first < 224;
}

function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/**
 * Checks every field against its allowlist; returns a frozen, normalised copy (relays deduplicated and
 * sorted). Throws OBX_ERR_FIREWALL_INVALID_PARAMS naming every bad field.
 */
export function validateParams(input: unknown): Readonly<FirewallParams> {
  const bad: Record<string, string> = {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw obxError('FIREWALL_INVALID_PARAMS', 'parameters must be an object');
  }
  const p = input as Record<string, unknown>;
  const known = new Set([
    'lanIf',
    'wanIf',
    'lanAddr',
    'lanPrefix',
    'torUid',
    'transPort',
    'dnsPort',
    'webPort',
    'relays',
    'dhcpServers',
    'transports',
  ]);
  for (const k of Object.keys(p)) if (!known.has(k)) bad[k] = 'unknown parameter';
  for (const k of ['lanIf', 'wanIf'] as const) {
    if (typeof p[k] !== 'string' || !IFNAME.test(p[k] as string)) {
      bad[k] = 'interface name must be 1-15 characters of A-Z a-z 0-9 _ . - (not starting with . _ -)';
    }
  }
  if (!bad.lanIf && !bad.wanIf && p.lanIf === p.wanIf) bad.wanIf = 'LAN and WAN must be different interfaces';
  if (p.lanIf === 'lo' || p.wanIf === 'lo') bad[p.lanIf === 'lo' ? 'lanIf' : 'wanIf'] = 'must not be lo';
  if (!isIpv4(p.lanAddr) || !isHostAddress(p.lanAddr)) bad.lanAddr = 'must be a unicast IPv4 address';
  const prefix = p.lanPrefix;
  if (typeof prefix !== 'number' || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    bad.lanPrefix = 'must be an integer 8-30';
  } else if (isIpv4(p.lanAddr)) {
    const host = ipv4ToInt(p.lanAddr) % 2 ** (32 - prefix);
    if (host === 0 || host === 2 ** (32 - prefix) - 1) {
      bad.lanAddr = 'must not be the network or broadcast address of its prefix';
    }
  }
  const uid = p.torUid;
  if (typeof uid !== 'number' || !Number.isInteger(uid) || uid < 1 || uid > 4294967294) {
    bad.torUid = 'must be an integer 1-4294967294 (never root)';
  }
  for (const k of ['transPort', 'dnsPort', 'webPort'] as const) {
    if (!isPort(p[k])) bad[k] = 'must be a port 1-65535';
  }
  if (!bad.transPort && !bad.dnsPort && !bad.webPort) {
    if (new Set([p.transPort, p.dnsPort, p.webPort]).size !== 3) {
      bad.webPort = 'transPort, dnsPort and webPort must differ';
    }
    if (p.transPort === 53 || p.webPort === 53) bad.transPort = 'port 53 is reserved for the DNS redirect';
  }
  let relays: RelayEndpoint[] = [];
  // The relay list is usually the same thousands of entries on every mode change: reuse the last
  // validated result when the content (JSON, unambiguous) is identical, so the kill switch does not
  // re-validate and re-sort a consensus each time. Only the validated copy is ever returned.
  const json = Array.isArray(p.relays) && p.relays.length > 64 ? safeJson(p.relays) : null;
  if (json !== null && json === lastRelays.json) {
    relays = lastRelays.result;
  } else if (!Array.isArray(p.relays)) {
    bad.relays = 'must be a list of {address, port}';
  } else if (p.relays.length > MAX_RELAYS) {
    bad.relays = `at most ${MAX_RELAYS} relays`;
  } else {
    p.relays.forEach((r: unknown, i: number) => {
      const e = typeof r === 'object' && r !== null ? (r as Record<string, unknown>) : {};
      if (
        Object.keys(e).some((k) => k !== 'address' && k !== 'port') ||
        !isIpv4(e.address) ||
        !isHostAddress(e.address) ||
        !isPort(e.port)
      ) {
        bad[`relays/${i}`] = 'must be {address: unicast IPv4, port: 1-65535}';
      } else {
        relays.push({ address: e.address, port: e.port });
      }
    });
  }
  const dhcpServers: string[] = [];
  if (p.dhcpServers !== undefined) {
    if (!Array.isArray(p.dhcpServers) || p.dhcpServers.length > MAX_DHCP_SERVERS) {
      bad.dhcpServers = `must be a list of at most ${MAX_DHCP_SERVERS} unicast IPv4 addresses`;
    } else {
      for (const a of p.dhcpServers as unknown[]) {
        if (!isIpv4(a) || !isHostAddress(a)) bad.dhcpServers = 'must be unicast IPv4 addresses';
        else if (!dhcpServers.includes(a)) dhcpServers.push(a);
      }
    }
  }
  const transports = validateTransports(p.transports, p.lanAddr, p.lanPrefix, bad);
  const names = Object.keys(bad);
  if (names.length > 0) {
    throw obxError('FIREWALL_INVALID_PARAMS', names.map((n) => `${n}: ${bad[n]}`).join('; '), {
      details: bad,
    });
  }
  if (json !== null && json !== lastRelays.json) {
    lastRelays = {
      json,
      result: Object.freeze(normaliseRelays(relays).map((r) => Object.freeze(r))) as RelayEndpoint[],
    };
  }
  return Object.freeze({
    lanIf: p.lanIf as string,
    wanIf: p.wanIf as string,
    lanAddr: p.lanAddr as string,
    lanPrefix: prefix as number,
    torUid: uid as number,
    transPort: p.transPort as number,
    dnsPort: p.dnsPort as number,
    webPort: p.webPort as number,
    relays: json !== null ? lastRelays.result : normaliseRelays(relays), // frozen, shared
    dhcpServers: Object.freeze(dhcpServers.sort()) as string[],
    ...(transports ? { transports } : {}),
  });
}

/** The transport openings, checked; undefined when absent. Problems go into `bad`. */
function validateTransports(
  v: unknown,
  lanAddr: unknown,
  lanPrefix: unknown,
  bad: Record<string, string>,
): TransportOpenings | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    bad.transports = 'must be {resolvers, tcpPorts, udp}';
    return undefined;
  }
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => !['resolvers', 'tcpPorts', 'udp'].includes(k))) {
    bad.transports = 'unknown field (resolvers, tcpPorts, udp)';
  }
  const lan =
    isIpv4(lanAddr) && typeof lanPrefix === 'number' && lanPrefix >= 8 && lanPrefix <= 30
      ? [`${networkOf(lanAddr, lanPrefix)}/${lanPrefix}`]
      : [];
  const resolvers: string[] = [];
  if (!Array.isArray(o.resolvers) || o.resolvers.length > MAX_RESOLVERS) {
    bad['transports/resolvers'] = `must be a list of at most ${MAX_RESOLVERS} IPv4 addresses`;
  } else {
    for (const a of o.resolvers as unknown[]) {
      if (!isIpv4(a) || !isHostAddress(a) || inRanges(a, lan)) {
        bad['transports/resolvers'] = 'must be unicast IPv4 addresses outside the LAN';
      } else if (!resolvers.includes(a)) resolvers.push(a);
    }
  }
  const tcpPorts: number[] = [];
  if (!Array.isArray(o.tcpPorts) || o.tcpPorts.length > MAX_TRANSPORT_PORTS) {
    bad['transports/tcpPorts'] = `must be a list of at most ${MAX_TRANSPORT_PORTS} ports`;
  } else {
    for (const port of o.tcpPorts as unknown[]) {
      if (!isPort(port) || port === 53) bad['transports/tcpPorts'] = 'must be ports 1-65535 other than 53';
      else if (!tcpPorts.includes(port)) tcpPorts.push(port);
    }
  }
  if (typeof o.udp !== 'boolean') bad['transports/udp'] = 'must be true or false';
  return Object.freeze({
    resolvers: Object.freeze(resolvers.sort()) as string[],
    tcpPorts: Object.freeze(tcpPorts.sort((a, b) => a - b)) as number[],
    udp: o.udp === true,
  });
}

/** NOT_PUBLIC plus the LAN's own range when no listed range holds it (nft refuses overlapping elements). */
export function notPublicRanges(lanAddr: string, lanPrefix: number): string[] {
  const lanNet = networkOf(lanAddr, lanPrefix);
  return inRanges(lanNet, NOT_PUBLIC) ? [...NOT_PUBLIC] : [...NOT_PUBLIC, `${lanNet}/${lanPrefix}`];
}

let lastRelays: { json: string | null; result: RelayEndpoint[] } = { json: null, result: [] };

function safeJson(v: unknown): string | null {
  try {
    return JSON.stringify(v);
  } catch {
    return null;
  }
}

/** Validates a relay list alone (for set refreshes). */
export function validateRelays(input: unknown): RelayEndpoint[] {
  const base = {
    lanIf: 'lan0',
    wanIf: 'wan0',
    lanAddr: '10.0.0.1',
    lanPrefix: 24,
    torUid: 1,
    transPort: 9040,
    dnsPort: 5353,
    webPort: 80,
  };
  return validateParams({ ...base, relays: input }).relays;
}

function normaliseRelays(relays: RelayEndpoint[]): RelayEndpoint[] {
  // one numeric key per relay (address * 65536 + port): dedupe and sort without re-parsing addresses
  const byKey = new Map<number, RelayEndpoint>();
  for (const r of relays)
    byKey.set(ipv4ToInt(r.address) * 65536 + r.port, { address: r.address, port: r.port });
  return [...byKey.keys()].sort((a, b) => a - b).map((k) => byKey.get(k) as RelayEndpoint);
}

/** Parses a relays file: one `ip:port` per line; blank lines and `#` comments allowed. */
export function parseRelayList(text: string): RelayEndpoint[] {
  const out: RelayEndpoint[] = [];
  const bad: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([0-9.]{7,15}):([0-9]{1,5})$/.exec(line);
    if (!m || !isIpv4(m[1]) || !isPort(Number(m[2]))) {
      bad[`line ${i + 1}`] = `expected IPV4:PORT, got ${JSON.stringify(line.slice(0, 40))}`;
      return;
    }
    out.push({ address: m[1], port: Number(m[2]) });
  });
  const names = Object.keys(bad);
  if (names.length > 0) {
    throw obxError('FIREWALL_INVALID_PARAMS', names.map((n) => `${n}: ${bad[n]}`).join('; '), {
      details: bad,
    });
  }
  return validateRelays(out);
}
