/**
 * Strict grammars for every networking value that reaches hostapd, dnsmasq, NetworkManager or nmcli.
 * Each parser takes `unknown` (a form field, a CLI flag, a config value) and returns a normalised value
 * or throws OBX_ERR_NET_VALUE_INVALID naming the problem. Renderers only ever print parsed values.
 *
 *   SSID         1-32 bytes of UTF-8. The access point's own name also refuses control characters
 *                (C0, DEL, C1); a network to join may be any bytes a scan showed except NUL.
 *   passphrase   8-63 printable ASCII characters (0x20-0x7e), or exactly 64 hex digits (a raw PSK).
 *   country      ISO 3166-1 alpha-2 from the known list, upper case as hostapd and `iw reg set` want.
 *   channel      1-13 (2.4 GHz) or the non-DFS 5 GHz channels 36, 40, 44, 48.
 *   LAN range    a private (10/8 or 192.168/16) host address with prefix 16-30 that overlaps neither
 *                tor's VirtualAddrNetworkIPv4 (172.16.0.0/12) nor the WAN's subnet.
 */
import { randomBytes } from 'node:crypto';
import { obxError } from '../errors.js';
import { ipv4ToInt, isHostAddress, isIpv4, networkOf } from '../firewall/params.js';
import { COUNTRY_CODES } from '../tor/countries.js';

export const MAX_SSID_BYTES = 32;
export const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** tor's VirtualAddrNetworkIPv4 in our torrc: the LAN may never overlap it (automapped answers). */
export const TOR_VIRTUAL_NETWORK = Object.freeze({ address: '172.16.0.0', prefix: 12 });

export type WifiSecurity = 'wpa2' | 'wpa2-wpa3';
export const WIFI_SECURITY_MODES: readonly WifiSecurity[] = ['wpa2', 'wpa2-wpa3'];

export type Passphrase =
  | { readonly kind: 'passphrase'; readonly value: string }
  | { readonly kind: 'psk'; readonly value: string };

export interface Ipv4Net {
  readonly address: string;
  readonly prefix: number;
}

export const CHANNELS_24: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
export const CHANNELS_5: readonly number[] = [36, 40, 44, 48];

function bad(detail: string, field?: string): Error {
  return obxError('NET_VALUE_INVALID', detail, field ? { details: { [field]: detail } } : undefined);
}

/** A short, safe rendering of a rejected value for messages (never the whole value). */
function shown(input: unknown): string {
  if (typeof input !== 'string') return typeof input;
  if (!/^[\x20-\x7e]{0,16}$/.test(input)) return `(a value of ${input.length} characters)`;
  return JSON.stringify(input);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point of this pattern is to find them
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * An SSID as the bytes that go on the air. `forAccessPoint` (the box's own network name) also refuses
 * control characters and lone surrogates; a network to join only has to be valid UTF-8 text without NUL.
 */
export function parseSsid(input: unknown, opts: { forAccessPoint?: boolean } = {}): Buffer {
  if (typeof input !== 'string') throw bad('the network name must be text', 'ssid');
  if (input.length === 0) throw bad('the network name is empty', 'ssid');
  if (LONE_SURROGATE.test(input)) throw bad('the network name is not valid Unicode', 'ssid');
  if (input.includes('\u0000')) throw bad('the network name contains a NUL character', 'ssid');
  if (opts.forAccessPoint && CONTROL.test(input)) {
    throw bad('the network name contains a newline, tab or other control character', 'ssid');
  }
  const bytes = Buffer.from(input, 'utf8');
  if (bytes.length > MAX_SSID_BYTES) {
    throw bad(`the network name is ${bytes.length} bytes long; at most ${MAX_SSID_BYTES} fit`, 'ssid');
  }
  return bytes;
}

/** WPA passphrase: 8-63 printable ASCII, or a 64-hex-digit raw PSK (kept in lower case). */
export function parsePassphrase(input: unknown): Passphrase {
  if (typeof input !== 'string') throw bad('the passphrase must be text', 'passphrase');
  if (/^[0-9A-Fa-f]{64}$/.test(input)) return Object.freeze({ kind: 'psk', value: input.toLowerCase() });
  if (!/^[\x20-\x7e]*$/.test(input)) {
    throw bad(
      'the passphrase may only contain printable ASCII characters (no newline, tab, accents or emoji)',
      'passphrase',
    );
  }
  if (input.length < 8 || input.length > 63) {
    throw bad(
      `the passphrase must be 8 to 63 characters long (or 64 hex digits), not ${input.length}`,
      'passphrase',
    );
  }
  return Object.freeze({ kind: 'passphrase', value: input });
}

/** Regulatory country, upper case (hostapd's country_code, `iw reg set`). */
export function parseWifiCountry(input: unknown): string {
  if (input === '') throw bad('choose the country the box is in', 'country');
  if (typeof input !== 'string' || !/^[A-Za-z]{2}$/.test(input) || !COUNTRY_CODES.has(input.toLowerCase())) {
    throw bad(`${shown(input)} is not a known two-letter country code`, 'country');
  }
  return input.toUpperCase();
}

/** Channel 1-13 or non-DFS 36/40/44/48; accepts a number or its decimal text. */
export function parseChannel(input: unknown): number {
  const n = typeof input === 'string' && /^[0-9]{1,3}$/.test(input) ? Number(input) : input;
  if (typeof n !== 'number' || !(CHANNELS_24.includes(n) || CHANNELS_5.includes(n))) {
    throw bad(`channel ${shown(String(input))} is not 1-13 or one of 36, 40, 44, 48`, 'channel');
  }
  return n;
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/**
 * The access point's BSSID: a unicast, locally administered MAC (first octet: bit 1 set, bit 0 clear),
 * so it is never the Pi's vendor address that wardriving databases map. Lower-case, colon-separated.
 */
export function parseBssid(input: unknown): string {
  const mac = typeof input === 'string' ? input.toLowerCase() : '';
  if (!MAC.test(mac)) throw bad(`BSSID ${shown(input)} is not six colon-separated hex bytes`, 'bssid');
  const first = Number.parseInt(mac.slice(0, 2), 16);
  if ((first & 0x01) !== 0) throw bad(`BSSID ${shown(input)} is a multicast address`, 'bssid');
  if ((first & 0x02) === 0) throw bad(`BSSID ${shown(input)} is not locally administered`, 'bssid');
  return mac;
}

/** A random BSSID for one box: locally administered, unicast (generated once, kept in the config). */
export function randomBssid(bytes: (n: number) => Uint8Array = (n) => randomBytes(n)): string {
  const b = Uint8Array.from(bytes(6).subarray(0, 6));
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function parseSecurity(input: unknown): WifiSecurity {
  if (input === 'wpa2' || input === 'wpa2-wpa3') return input;
  throw bad(`security ${shown(input)} is not wpa2 or wpa2-wpa3`, 'security');
}

export function parseInterface(input: unknown, field = 'interface'): string {
  if (typeof input !== 'string' || !IFNAME.test(input) || input === 'lo') {
    throw bad(
      `interface ${shown(input)} is not a name of 1-15 characters (letters, digits, _ . -) other than lo`,
      field,
    );
  }
  return input;
}

/** "A.B.C.D/N" -> { address, prefix } (no range checks; see parseLanRange). */
export function parseCidr(input: unknown, field = 'lanAddr'): Ipv4Net {
  const m = typeof input === 'string' ? /^([0-9.]{7,15})\/([0-9]{1,2})$/.exec(input) : null;
  if (!m || !isIpv4(m[1]) || Number(m[2]) > 32) throw bad(`${shown(input)} is not A.B.C.D/N`, field);
  return Object.freeze({ address: m[1] as string, prefix: Number(m[2]) });
}

export function netsOverlap(a: Ipv4Net, b: Ipv4Net): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return networkOf(a.address, p) === networkOf(b.address, p);
}

function isPrivateLan(a: string): boolean {
  return (
    netsOverlap({ address: a, prefix: 32 }, { address: '10.0.0.0', prefix: 8 }) ||
    netsOverlap({ address: a, prefix: 32 }, { address: '192.168.0.0', prefix: 16 })
  );
}

/**
 * The box's LAN address and prefix. Refuses what would break routing through tor: a range overlapping
 * tor's virtual address network (answers to .onion names would point into the LAN) or the WAN's subnet
 * (the box could not tell the modem from a device), and public, network or broadcast addresses.
 */
export function parseLanRange(input: unknown, wan?: Ipv4Net | null): Ipv4Net {
  const net = typeof input === 'string' ? parseCidr(input) : (input as Ipv4Net);
  if (typeof net !== 'object' || net === null || !isIpv4(net.address) || !Number.isInteger(net.prefix)) {
    throw bad('the LAN address must be A.B.C.D/N', 'lanAddr');
  }
  if (net.prefix < 16 || net.prefix > 30) throw bad(`prefix /${net.prefix} is not 16-30`, 'lanAddr');
  if (!isHostAddress(net.address)) throw bad(`${net.address} is not a unicast address`, 'lanAddr');
  const host = ipv4ToInt(net.address) % 2 ** (32 - net.prefix);
  if (host === 0 || host === 2 ** (32 - net.prefix) - 1) {
    throw bad(`${net.address} is the network or broadcast address of /${net.prefix}`, 'lanAddr');
  }
  if (netsOverlap(net, TOR_VIRTUAL_NETWORK)) {
    throw bad(
      `${net.address}/${net.prefix} overlaps tor's virtual address network ${TOR_VIRTUAL_NETWORK.address}/${TOR_VIRTUAL_NETWORK.prefix}`,
      'lanAddr',
    );
  }
  if (!isPrivateLan(net.address) || (net.prefix < 16 && !net.address.startsWith('10.'))) {
    throw bad(`${net.address} is not in a private range (10.0.0.0/8 or 192.168.0.0/16)`, 'lanAddr');
  }
  if (wan && netsOverlap(net, wan)) {
    throw bad(
      `${net.address}/${net.prefix} overlaps the WAN's subnet ${networkOf(wan.address, wan.prefix)}/${wan.prefix}`,
      'lanAddr',
    );
  }
  return Object.freeze({ address: net.address, prefix: net.prefix });
}
