/**
 * Strict grammars for owner-supplied tor values: bridge lines and exit countries. Nothing reaches torrc
 * unless it parses here; parsing returns a structured value and the renderer prints that, never the raw
 * text. Importing this module registers the checks with the config validator (firmware/config/validate.ts),
 * so a config document with a bad bridge line is refused at load and at every write.
 *
 * Bridge line:  [Bridge ] [TRANSPORT ] ADDRESS:PORT FINGERPRINT [KEY=VALUE ...]
 *   TRANSPORT   obfs4 | snowflake | meek_lite   (absent: a vanilla bridge, which takes no arguments)
 *   ADDRESS     dotted-quad IPv4 or [IPv6]
 *   FINGERPRINT 40 hex digits
 *   KEY=VALUE   keys from a per-transport allowlist, values from a URL-safe character set
 */
import { isIPv6 } from 'node:net';
import type { TorConfig } from '../config/schema.js';
import { obxError } from '../errors.js';
import { isIpv4 } from '../lib/ipv4.js';
import { COUNTRY_CODES } from './countries.js';

export type Transport = 'obfs4' | 'snowflake' | 'meek_lite' | 'vanilla';

export interface BridgeLine {
  transport: Transport;
  /** IPv4 as is, IPv6 without brackets. */
  address: string;
  port: number;
  fingerprint: string;
  args: [string, string][];
}

export const MAX_BRIDGE_LINE = 1024;

const ARG_KEYS: Record<Transport, ReadonlySet<string>> = {
  obfs4: new Set(['cert', 'iat-mode']),
  snowflake: new Set([
    'fingerprint',
    'url',
    'front',
    'fronts',
    'ice',
    'utls-imitate',
    'sqsqueue',
    'sqscreds',
    'ampcache',
  ]),
  meek_lite: new Set(['url', 'front', 'utls']),
  vanilla: new Set(),
};

/**
 * Characters allowed in argument values: URL-safe, no quotes, backslash, spaces or control characters,
 * and no '#': tor cuts a torrc line there, so the rest of the line would be silently lost.
 */
const ARG_VALUE = /^[A-Za-z0-9._~:/?@!$&()*+,;=%[\]-]{1,600}$/;
const ARG_KEY = /^[a-z][a-z0-9_-]{0,31}$/;
const FINGERPRINT = /^[0-9A-Fa-f]{40}$/;

function bad(detail: string): Error {
  return obxError('TOR_BRIDGE_INVALID', detail);
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
  if (first === 'obfs4' || first === 'snowflake' || first === 'meek_lite') {
    transport = first;
    words.shift();
  } else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(first)) {
    throw bad(`unsupported transport "${first.slice(0, 20)}" (obfs4, snowflake or meek_lite)`);
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
  for (const w of words) {
    const eq = w.indexOf('=');
    const key = eq > 0 ? w.slice(0, eq) : '';
    const value = eq > 0 ? w.slice(eq + 1) : '';
    if (!ARG_KEY.test(key)) throw bad(`unexpected word "${w.slice(0, 40)}" (arguments are KEY=VALUE)`);
    if (!ARG_KEYS[transport].has(key)) throw bad(`argument "${key}" is not known for ${transport}`);
    if (seen.has(key)) throw bad(`argument "${key}" given twice`);
    if (!ARG_VALUE.test(value)) throw bad(`argument "${key}" has a value with characters not allowed`);
    seen.add(key);
    args.push([key, value]);
  }
  if (transport === 'obfs4' && !seen.has('cert')) throw bad('obfs4 bridge without cert=');
  return { transport, address, port, fingerprint: fingerprint.toUpperCase(), args };
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
