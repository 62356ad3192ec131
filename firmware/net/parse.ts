/**
 * Pure parsers for what the networking tools print: nmcli's terse output (`-t -e yes`) and dnsmasq's
 * lease file. Parsing is separate from I/O (Stem's rule): each function takes the text a real tool
 * printed; the fixtures in test/fixtures/net/ are such text.
 *
 * nmcli terse: one record per line, fields separated by ':'; with `-e yes` a ':' or '\' inside a value
 * is written as '\:' or '\\'. So split on unescaped ':' only, then unescape (node-wifi splits on every
 * ':' and so shifts every field after an SSID or BSSID).
 */
import { isIpv4 } from '../firewall/params.js';

/** Splits one terse line into its fields, honouring `\:` and `\\`. */
export function splitTerse(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length) {
      cur += line[i + 1];
      i++;
    } else if (c === ':') {
      fields.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  fields.push(cur);
  return fields;
}

/** Escapes a value the way `nmcli -t -e yes` does (used by the fake nmcli and tests). */
export function escapeTerse(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

function empty(v: string | undefined): boolean {
  return v === undefined || v === '' || v === '--';
}

export interface ScanResult {
  /** The SSID's exact bytes as hex (empty for a hidden network). */
  readonly ssidHex: string;
  /** The SSID as text for display (U+FFFD where its bytes are not UTF-8). */
  readonly ssid: string;
  readonly bssid: string;
  readonly channel: number;
  readonly frequencyMhz: number;
  /** 0-100 */
  readonly signal: number;
  /** e.g. "WPA2", "WPA2 WPA3", "" for open. */
  readonly security: string;
  readonly inUse: boolean;
}

/** The fields the box asks `nmcli device wifi list` for, in this order. */
export const SCAN_FIELDS = 'IN-USE,SSID-HEX,BSSID,CHAN,FREQ,SIGNAL,SECURITY';

/**
 * `nmcli -t -e yes -f IN-USE,SSID-HEX,BSSID,CHAN,FREQ,SIGNAL,SECURITY device wifi list`. Lines that do
 * not have the expected shape are skipped (a newer nmcli printing more is not an error); the SSID comes
 * from SSID-HEX, so any bytes are exact.
 */
export function parseWifiList(text: string): ScanResult[] {
  const out: ScanResult[] = [];
  for (const line of lines(text)) {
    const f = splitTerse(line);
    if (f.length !== 7) continue;
    const [inUse, hex, bssid, chan, freq, signal, security] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const ssidHex = empty(hex) ? '' : hex.toLowerCase();
    if (!/^([0-9a-f]{2}){0,32}$/.test(ssidHex)) continue;
    if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(bssid)) continue;
    const channel = Number(chan);
    const frequencyMhz = Number.parseInt(freq, 10);
    const sig = Number(signal);
    if (!Number.isInteger(channel) || !Number.isInteger(frequencyMhz) || !Number.isInteger(sig)) continue;
    out.push(
      Object.freeze({
        ssidHex,
        ssid: Buffer.from(ssidHex, 'hex').toString('utf8'),
        bssid: bssid.toUpperCase(),
        channel,
        frequencyMhz,
        signal: Math.max(0, Math.min(100, sig)),
        security: empty(security) ? '' : security.trim(),
        inUse: inUse.trim() === '*',
      }),
    );
  }
  return out;
}

/** One network per SSID (the strongest BSSID), strongest first; hidden networks last. */
export function groupScan(results: readonly ScanResult[]): ScanResult[] {
  const best = new Map<string, ScanResult>();
  for (const r of results) {
    const key = r.ssidHex === '' ? `hidden:${r.bssid}` : r.ssidHex;
    const prev = best.get(key);
    if (!prev || r.inUse || (!prev.inUse && r.signal > prev.signal)) best.set(key, r);
  }
  return [...best.values()].sort(
    (a, b) => Number(a.ssidHex === '') - Number(b.ssidHex === '') || b.signal - a.signal,
  );
}

export interface DeviceStatus {
  readonly device: string;
  readonly type: string;
  readonly state: string;
  readonly connection: string;
}

/** `nmcli -t -e yes -f DEVICE,TYPE,STATE,CONNECTION device status` */
export function parseDeviceStatus(text: string): DeviceStatus[] {
  const out: DeviceStatus[] = [];
  for (const line of lines(text)) {
    const f = splitTerse(line);
    if (f.length !== 4) continue;
    const [device, type, state, connection] = f as [string, string, string, string];
    out.push(Object.freeze({ device, type, state, connection: empty(connection) ? '' : connection }));
  }
  return out;
}

/** Multi-line terse output (`nmcli -t -e yes -f ... device show IF`): "KEY:VALUE" lines to a map. */
export function parseTerseFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines(text)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const [key, ...rest] = splitTerse(line);
    out.set(key ?? '', rest.join(':'));
  }
  return out;
}

export interface ConnectionRow {
  readonly name: string;
  readonly uuid: string;
  readonly type: string;
  readonly device: string;
}

/** `nmcli -t -e yes -f NAME,UUID,TYPE,DEVICE connection show` */
export function parseConnections(text: string): ConnectionRow[] {
  const out: ConnectionRow[] = [];
  for (const line of lines(text)) {
    const f = splitTerse(line);
    if (f.length !== 4) continue;
    const [name, uuid, type, device] = f as [string, string, string, string];
    if (!/^[0-9a-f-]{36}$/i.test(uuid)) continue;
    out.push(Object.freeze({ name, uuid, type, device: empty(device) ? '' : device }));
  }
  return out;
}

export interface Lease {
  /** Expiry, seconds since the epoch (0: infinite). */
  readonly expires: number;
  readonly mac: string;
  readonly address: string;
  /** The name the device sent, or '' (dnsmasq writes '*'). */
  readonly hostname: string;
}

/**
 * dnsmasq's lease file: "EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID" per line ('*' for none); the "duid"
 * line and DHCPv6 leases are skipped. Hostnames are kept only when they are plain DNS labels.
 */
export function parseLeases(text: string): Lease[] {
  const out: Lease[] = [];
  for (const line of lines(text)) {
    const f = line.trim().split(/ +/);
    if (f.length < 4) continue;
    const [exp, mac, address, name] = f as [string, string, string, string];
    if (!/^[0-9]{1,12}$/.test(exp)) continue;
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac) || !isIpv4(address)) continue;
    const hostname = name !== '*' && /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/.test(name) ? name : '';
    out.push(Object.freeze({ expires: Number(exp), mac: mac.toLowerCase(), address, hostname }));
  }
  return out;
}
