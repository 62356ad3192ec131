/**
 * Strict grammars for owner-supplied tor values: bridge lines and exit countries. Nothing reaches torrc
 * unless it parses here; parsing returns a structured value and the renderer prints that, never the raw
 * text. Importing this module registers the checks with the config validator (firmware/config/validate.ts),
 * so a config document with a bad bridge line is refused at load and at every write.
 *
 * Bridge line:  [Bridge ] [TRANSPORT ] ADDRESS:PORT FINGERPRINT [KEY=VALUE ...]
 *   TRANSPORT   obfs4 | webtunnel | meek_lite | snowflake   (absent: a vanilla bridge, no arguments);
 *               all four are run by lyrebird (torrc.ts)
 *   ADDRESS     dotted-quad IPv4 or [IPv6]; for webtunnel, meek_lite and snowflake a placeholder that
 *               is never contacted (the transport reaches its URL, front or proxies instead)
 *   FINGERPRINT 40 hex digits
 *   KEY=VALUE   keys from a per-transport allowlist, each value checked by its own grammar (URLs https
 *               only, host names, STUN servers, base64); a refusal names the transport and the key
 */
import { isIPv6 } from 'node:net';
import type { TorConfig } from '../config/schema.js';
import { obxError } from '../errors.js';
import { isIpv4 } from '../lib/ipv4.js';
import { COUNTRY_CODES } from './countries.js';

export const TRANSPORTS = ['obfs4', 'webtunnel', 'meek_lite', 'snowflake'] as const;
export type PluggableTransport = (typeof TRANSPORTS)[number];
export type Transport = PluggableTransport | 'vanilla';

export interface BridgeLine {
  transport: Transport;
  /** IPv4 as is, IPv6 without brackets. */
  address: string;
  port: number;
  fingerprint: string;
  args: [string, string][];
}

export const MAX_BRIDGE_LINE = 1024;

/**
 * Characters allowed in any argument value: URL-safe, no quotes, backslash, spaces or control characters,
 * and no '#': tor cuts a torrc line there, so the rest of the line would be silently lost. Each key's own
 * grammar below narrows this further.
 */
const ARG_VALUE = /^[A-Za-z0-9._~:/?@!$&()*+,;=%[\]-]{1,600}$/;
const ARG_KEY = /^[a-z][a-z0-9_-]{0,31}$/;
const FINGERPRINT = /^[0-9A-Fa-f]{40}$/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A value's grammar: null when it passes, else what is wrong (the caller names the key). */
type ValueCheck = (value: string) => string | null;

/** A host name (DNS letters, digits, hyphens, dots) or a dotted-quad IPv4 address. */
export function isHostName(value: string): boolean {
  return HOST_NAME.test(value) || isIpv4(value);
}

const host: ValueCheck = (v) => (isHostName(v) ? null : 'must be a host name');
const hostList: ValueCheck = (v) =>
  v.split(',').every(isHostName) ? null : 'must be host names separated by commas';

/** https URLs only: no user or password, a host name, an optional port. */
export function httpsUrlProblem(v: string): string | null {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'must be an https:// URL';
  }
  if (u.protocol !== 'https:') return 'must be an https:// URL';
  if (u.username !== '' || u.password !== '') return 'must not carry a user name or password';
  if (!isHostName(u.hostname)) return 'must name a host';
  return null;
}
const httpsUrl: ValueCheck = httpsUrlProblem;

/** ICE servers: `stun:HOST[:PORT]` or `turn:HOST[:PORT]` (and their TLS forms), comma separated. */
const ICE = /^(stuns?|turns?):([^:,]+)(?::([0-9]{1,5}))?$/;
const iceList: ValueCheck = (v) => {
  for (const s of v.split(',')) {
    const m = ICE.exec(s);
    if (!m || !isHostName(m[2] ?? '') || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)))
      return 'must be STUN servers like stun:stun.example.net:3478, separated by commas';
  }
  return null;
};
const pattern =
  (re: RegExp, what: string): ValueCheck =>
  (v) =>
    re.test(v) ? null : what;
const fingerprintArg: ValueCheck = pattern(FINGERPRINT, 'must be 40 hex digits');
const utlsName = pattern(/^[A-Za-z0-9_]{1,40}$/, 'must be a uTLS fingerprint name like hellorandomizedalpn');

/** Per transport: each allowed key and its value grammar; `required` keys must be there. */
const ARGS: Record<Transport, { keys: Readonly<Record<string, ValueCheck>>; required: readonly string[] }> = {
  obfs4: {
    keys: {
      cert: pattern(/^[A-Za-z0-9+/_-]{4,400}={0,2}$/, 'must be base64'),
      'iat-mode': pattern(/^[012]$/, 'must be 0, 1 or 2'),
    },
    required: ['cert'],
  },
  webtunnel: {
    keys: { url: httpsUrl, ver: pattern(/^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$/, 'must be a version like 0.0.1') },
    required: ['url'],
  },
  meek_lite: {
    keys: { url: httpsUrl, front: host, fronts: hostList, utls: utlsName },
    required: ['url'],
  },
  snowflake: {
    keys: {
      fingerprint: fingerprintArg,
      url: httpsUrl,
      front: host,
      fronts: hostList,
      ice: iceList,
      'utls-imitate': utlsName,
      ampcache: httpsUrl,
      sqsqueue: httpsUrl,
      sqscreds: pattern(/^[A-Za-z0-9+/_-]{1,600}={0,2}$/, 'must be base64'),
    },
    required: [],
  },
  vanilla: { keys: {}, required: [] },
};

function bad(detail: string): Error {
  return obxError('TOR_BRIDGE_INVALID', detail);
}

function isTransport(word: string): word is PluggableTransport {
  return (TRANSPORTS as readonly string[]).includes(word);
}

/** Parses one owner-pasted bridge line; throws OBX_ERR_TOR_BRIDGE_INVALID with the reason. */
export function parseBridgeLine(input: unknown): BridgeLine {
  if (typeof input !== 'string') throw bad('not a string');
  if (input.length > MAX_BRIDGE_LINE) throw bad(`longer than ${MAX_BRIDGE_LINE} characters`);
  if (!/^[\x20-\x7e]*$/.test(input))
    throw bad('contains a newline, tab or other control or non-ASCII character');
  const words = input.trim().split(/ +/).filter(Boolean);
  if (words[0] === 'Bridge') words.shift();
  if (words.length === 0) throw bad('empty');
  let transport: Transport = 'vanilla';
  const first = words[0] ?? '';
  if (isTransport(first)) {
    transport = first;
    words.shift();
  } else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(first)) {
    throw bad(`unsupported transport "${first.slice(0, 20)}" (${TRANSPORTS.join(', ')})`);
  }
  const hostPort = words.shift() ?? '';
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(hostPort);
  if (!m) throw bad(`"${hostPort.slice(0, 60)}" is not ADDRESS:PORT (IPv4 or [IPv6])`);
  const address = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined ? !isIPv6(address) : !isIpv4(address))
    throw bad(`bad address "${address.slice(0, 45)}"`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw bad(`port ${m[3]} out of range`);
  const fingerprint = words.shift() ?? '';
  if (!FINGERPRINT.test(fingerprint)) throw bad('missing or malformed fingerprint (40 hex digits)');
  const args: [string, string][] = [];
  const seen = new Set<string>();
  const rules = ARGS[transport];
  for (const w of words) {
    const eq = w.indexOf('=');
    const key = eq > 0 ? w.slice(0, eq) : '';
    const value = eq > 0 ? w.slice(eq + 1) : '';
    if (!ARG_KEY.test(key)) throw bad(`unexpected word "${w.slice(0, 40)}" (arguments are KEY=VALUE)`);
    const check = Object.hasOwn(rules.keys, key) ? rules.keys[key] : undefined;
    if (check === undefined) throw bad(`argument "${key}" is not known for ${transport}`);
    if (seen.has(key)) throw bad(`argument "${key}" given twice`);
    if (!ARG_VALUE.test(value)) throw bad(`argument "${key}" has a value with characters not allowed`);
    const problem = check(value);
    if (problem !== null) throw bad(`${transport} argument "${key}" ${problem}`);
    seen.add(key);
    args.push([key, value]);
  }
  for (const key of rules.required) {
    if (!seen.has(key)) throw bad(`${transport} bridge without ${key}=`);
  }
  return { transport, address, port, fingerprint: fingerprint.toUpperCase(), args };
}

/** The value of one argument of a parsed line (undefined when absent). */
export function bridgeArg(b: BridgeLine, key: string): string | undefined {
  return b.args.find(([k]) => k === key)?.[1];
}

/** The canonical text of a parsed bridge line (what goes after `Bridge ` in torrc). */
export function formatBridgeLine(b: BridgeLine): string {
  const addr = b.address.includes(':') ? `[${b.address}]` : b.address;
  const parts: string[] = b.transport === 'vanilla' ? [] : [b.transport];
  parts.push(`${addr}:${b.port}`, b.fingerprint, ...b.args.map(([k, v]) => `${k}=${v}`));
  return parts.join(' ');
}

/** A two-letter country code from the ISO list; throws OBX_ERR_TOR_COUNTRY_INVALID. */
export function parseCountry(input: unknown): string {
  if (typeof input !== 'string' || !/^[a-z]{2}$/.test(input) || !COUNTRY_CODES.has(input)) {
    const shown = typeof input === 'string' ? JSON.stringify(input.slice(0, 10)) : typeof input;
    throw obxError('TOR_COUNTRY_INVALID', `${shown} is not a known two-letter country code`);
  }
  return input;
}

/** Field path -> message for every problem in the tor settings (empty when all is well). */
export function torSettingsProblems(tor: TorConfig, base = '/tor'): Record<string, string> {
  const problems: Record<string, string> = {};
  tor.bridges.forEach((line, i) => {
    try {
      parseBridgeLine(line);
    } catch (err) {
      problems[`${base}/bridges/${i}`] = (err as Error).message;
    }
  });
  for (const key of ['exitNodes', 'excludeExitNodes'] as const) {
    tor[key].forEach((cc, i) => {
      try {
        parseCountry(cc);
      } catch (err) {
        problems[`${base}/${key}/${i}`] = (err as Error).message;
      }
    });
  }
  const overlap = tor.exitNodes.filter((cc) => tor.excludeExitNodes.includes(cc));
  if (overlap.length > 0) problems[`${base}/excludeExitNodes`] = `also in exitNodes: ${overlap.join(', ')}`;
  if (tor.useBridges && tor.bridges.length === 0) {
    problems[`${base}/bridges`] = 'useBridges is on but there is no bridge line';
  }
  return problems;
}
