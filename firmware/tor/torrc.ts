/**
 * The torrc renderer: a pure function from the typed tor settings plus runtime parameters to torrc text.
 * Owner values pass the grammars in grammar.ts and are printed from their parsed form; runtime values
 * (paths, addresses, ports, extra lines for the test network) are checked against allowlists. Anything
 * else throws an ObxError and nothing is rendered.
 */
import type { TorConfig } from '../config/schema.js';
import { obxError } from '../errors.js';
import { isIpv4 } from '../lib/ipv4.js';
import { formatBridgeLine, parseBridgeLine, parseCountry, TRANSPORTS, type Transport } from './grammar.js';

export type PortSpec = { host: string; port: number } | { unix: string };

export interface TorRuntime {
  dataDir: string;
  /** ControlPort: 127.0.0.1:9051 in production, a unix socket or a free port in tests. */
  control: PortSpec;
  /**
   * CookieAuthFile: the control cookie's one path, pinned in the torrc and in the control client (which
   * refuses a listener naming another). Default `<dataDir>/control_auth_cookie`.
   */
  cookieFile?: string | undefined;
  /** SocksPort, 127.0.0.1:9050 in production. */
  socks: PortSpec;
  /** LAN address for TransPort/DNSPort (router mode). Absent: no TransPort/DNSPort. */
  lanAddress?: string | undefined;
  transPort?: number | undefined;
  dnsPort?: number | undefined;
  /** SafeSocks 1 (default): refuse SOCKS requests that carry an IP address (DNS leaks from apps). */
  safeSocks?: boolean | undefined;
  /** `User debian-tor` in production, where tor starts as root and drops privileges. */
  user?: string | undefined;
  /** tor exits when this process does (__OwningControllerProcess). */
  owningPid?: number | undefined;
  /** Log file; default: notices to stdout (journald). */
  logFile?: string | undefined;
  /** Trusted extra lines (the private network's client lines); keywords from EXTRA_KEYWORDS only. */
  extraLines?: readonly string[] | undefined;
  /** The pluggable-transport binary, lyrebird (default /usr/bin/lyrebird, Debian's path). */
  lyrebird?: string | undefined;
}

/** Keywords that extra (non-owner) lines may carry: the test network's options, nothing about ports. */
export const EXTRA_KEYWORDS: ReadonlySet<string> = new Set([
  'TestingTorNetwork',
  'DirAuthority',
  'ClientRejectInternalAddresses',
  'ClientDNSRejectInternalAddresses',
  'TestingMinExitFlagThreshold',
  'ExtendAllowPrivateAddresses',
  'EnforceDistinctSubnets',
  'PathsNeededToBuildCircuits',
  'AssumeReachable',
  'UseMicrodescriptors',
]);

const SAFE_PATH = /^\/[A-Za-z0-9_./-]{1,200}$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

function invalid(detail: string): Error {
  return obxError('TOR_VALUE_INVALID', detail);
}

function path(value: unknown, what: string): string {
  if (typeof value !== 'string' || !SAFE_PATH.test(value) || value.split('/').includes('..')) {
    throw invalid(`${what} must be an absolute path of [A-Za-z0-9_./-]`);
  }
  return value;
}

function portNumber(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalid(`${what} must be a port 1-65535`);
  }
  return value;
}

function ipv4(value: unknown, what: string): string {
  if (typeof value !== 'string' || !isIpv4(value)) throw invalid(`${what} must be an IPv4 address`);
  return value;
}

function portSpec(spec: PortSpec, what: string): string {
  if ('unix' in spec) return `unix:${path(spec.unix, what)}`;
  return `${ipv4(spec.host, what)}:${portNumber(spec.port, what)}`;
}

/** The control cookie's path: the runtime's CookieAuthFile, or tor's default in its data directory. */
export function cookiePath(rt: Pick<TorRuntime, 'dataDir' | 'cookieFile'>): string {
  return rt.cookieFile ?? `${rt.dataDir}/control_auth_cookie`;
}

/** Validates an extra line: printable, known keyword, no port options. */
export function checkExtraLine(line: unknown): string {
  if (typeof line !== 'string' || !/^[\x20-\x7e]{1,500}$/.test(line)) {
    throw invalid('extra torrc line must be one line of printable ASCII');
  }
  const keyword = line.split(' ')[0] ?? '';
  if (!EXTRA_KEYWORDS.has(keyword))
    throw invalid(`extra torrc keyword "${keyword.slice(0, 40)}" not allowed`);
  return line;
}

/**
 * The ClientTransportPlugin lines for the transports in use, all run by lyrebird: obfs4, webtunnel and
 * meek_lite share one process; snowflake gets a line (and a process) of its own, as Tor Browser does.
 */
export function transportPluginLines(used: ReadonlySet<Transport>, lyrebird?: string): string[] {
  const bin = path(lyrebird ?? '/usr/bin/lyrebird', 'lyrebird');
  const shared = TRANSPORTS.filter((t) => t !== 'snowflake' && used.has(t));
  const lines: string[] = [];
  if (shared.length > 0) lines.push(`ClientTransportPlugin ${shared.join(',')} exec ${bin}`);
  if (used.has('snowflake')) lines.push(`ClientTransportPlugin snowflake exec ${bin}`);
  return lines;
}

/** Renders the whole torrc. Throws (and renders nothing) on any invalid value. */
export function renderTorrc(tor: TorConfig, rt: TorRuntime): string {
  const lines: string[] = [
    '# Rendered by onionbox from its configuration. Do not edit: changes are overwritten.',
  ];
  lines.push(`DataDirectory ${path(rt.dataDir, 'dataDir')}`);
  if (rt.user !== undefined) {
    if (!USER.test(rt.user)) throw invalid('user must be a system user name');
    lines.push(`User ${rt.user}`);
    // onionboxd is not root on the box (it holds CAP_SETUID/CAP_SETGID for this switch): with this
    // option tor drops every capability but CAP_NET_BIND_SERVICE after switching to the user; without
    // it tor keeps them and then refuses to run ("Was able to restore group credentials").
    lines.push('KeepBindCapabilities 1');
  }
  lines.push('RunAsDaemon 0');
  lines.push(
    rt.logFile !== undefined ? `Log notice file ${path(rt.logFile, 'logFile')}` : 'Log notice stdout',
  );
  lines.push('SafeLogging 1', 'AvoidDiskWrites 1');
  if (rt.owningPid !== undefined) {
    if (!Number.isInteger(rt.owningPid) || rt.owningPid < 1) throw invalid('owningPid must be a PID');
    lines.push(`__OwningControllerProcess ${rt.owningPid}`);
  }

  // Client ports (docs/architecture.md).
  lines.push(`SocksPort ${portSpec(rt.socks, 'socks')}`);
  lines.push(`SafeSocks ${rt.safeSocks === false ? 0 : 1}`);
  if (rt.lanAddress !== undefined) {
    const lan = ipv4(rt.lanAddress, 'lanAddress');
    if (rt.transPort !== undefined)
      lines.push(`TransPort ${lan}:${portNumber(rt.transPort, 'transPort')} IsolateClientAddr`);
    if (rt.dnsPort !== undefined) lines.push(`DNSPort ${lan}:${portNumber(rt.dnsPort, 'dnsPort')}`);
  }
  lines.push('AutomapHostsOnResolve 1', 'VirtualAddrNetworkIPv4 172.16.0.0/12', 'ClientUseIPv6 0');
  lines.push(
    `ControlPort ${portSpec(rt.control, 'control')}`,
    'CookieAuthentication 1',
    `CookieAuthFile ${path(cookiePath(rt), 'cookieFile')}`,
  );

  // Bridges.
  const parsed = tor.bridges.map((b) => parseBridgeLine(b));
  const bridges = parsed.map(formatBridgeLine);
  if (tor.useBridges) {
    if (bridges.length === 0)
      throw obxError('TOR_BRIDGE_INVALID', 'useBridges is on but there is no bridge line');
    lines.push('UseBridges 1');
    lines.push(...transportPluginLines(new Set(parsed.map((b) => b.transport)), rt.lyrebird));
    for (const b of bridges) lines.push(`Bridge ${b}`);
  }

  // Exit countries.
  const exits = tor.exitNodes.map(parseCountry);
  const excluded = tor.excludeExitNodes.map(parseCountry);
  if (exits.length > 0) lines.push(`ExitNodes ${exits.map((c) => `{${c}}`).join(',')}`);
  if (excluded.length > 0) lines.push(`ExcludeExitNodes ${excluded.map((c) => `{${c}}`).join(',')}`);
  if (tor.strictNodes && (exits.length > 0 || excluded.length > 0)) lines.push('StrictNodes 1');

  for (const l of rt.extraLines ?? []) lines.push(checkExtraLine(l));
  return `${lines.join('\n')}\n`;
}
