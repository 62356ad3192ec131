/**
 * Pure renderers for the box's networking files: hostapd.conf (the access point), dnsmasq.conf (DHCP on
 * the LAN, nothing else), NetworkManager's conf.d drop-in and the WAN's keyfiles. Each takes owner
 * input as `unknown`, validates every field against firmware/net/grammar.ts (all problems at once, by
 * field) and prints only parsed values, so no newline, NUL or stray keyword can reach a file.
 * Golden files: test/fixtures/net/.
 */
import { createHash } from 'node:crypto';
import { isObxError, obxError } from '../errors.js';
import { intToIpv4, ipv4ToInt, networkOf } from '../firewall/params.js';
import {
  type Ipv4Net,
  type Passphrase,
  parseBssid,
  parseChannel,
  parseInterface,
  parseLanRange,
  parsePassphrase,
  parseSecurity,
  parseSsid,
  parseWifiCountry,
  type WifiSecurity,
} from './grammar.js';

const HEADER = '# Rendered by onionbox from its validated configuration. Changes here are overwritten.\n';

/** Runs each field parser, collects every problem by field, throws one NET_VALUE_INVALID. */
function collect<T extends object>(parsers: { [K in keyof T]: () => T[K] }): T {
  const out: Partial<T> = {};
  const problems: Record<string, string> = {};
  for (const key of Object.keys(parsers) as (keyof T)[]) {
    try {
      out[key] = parsers[key]();
    } catch (e) {
      if (!isObxError(e, 'NET_VALUE_INVALID')) throw e;
      problems[key as string] = e.details[Object.keys(e.details)[0] ?? ''] ?? e.message;
    }
  }
  const keys = Object.keys(problems);
  if (keys.length > 0) {
    throw obxError('NET_VALUE_INVALID', keys.map((k) => `${k}: ${problems[k]}`).join('; '), {
      details: problems,
    });
  }
  return Object.freeze(out as T);
}

function objectOf(input: unknown): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw obxError('NET_VALUE_INVALID', 'settings must be an object');
  }
  return input as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------- hostapd

export interface AccessPoint {
  readonly interface: string;
  readonly ssid: Buffer;
  readonly passphrase: Passphrase;
  readonly country: string;
  readonly channel: number;
  readonly security: WifiSecurity;
  /** Stations cannot reach each other through the access point (hostapd ap_isolate). */
  readonly isolateClients: boolean;
  /** The box's own locally administered BSSID; null: the interface's (vendor) MAC. */
  readonly bssid: string | null;
}

/**
 * { interface, ssid, passphrase, country, channel, security?, isolateClients?, bssid? } -> a parsed
 * AccessPoint. Defaults: WPA2/WPA3 transition (WPA2 for a 64-hex key, which SAE cannot use), clients
 * isolated.
 */
export function validateAccessPoint(input: unknown): AccessPoint {
  const o = objectOf(input);
  const ap = collect<AccessPoint>({
    interface: () => parseInterface(o.interface),
    ssid: () => parseSsid(o.ssid, { forAccessPoint: true }),
    passphrase: () => parsePassphrase(o.passphrase),
    country: () => parseWifiCountry(o.country),
    channel: () => parseChannel(o.channel),
    security: () =>
      parseSecurity(
        o.security ??
          (typeof o.passphrase === 'string' && /^[0-9A-Fa-f]{64}$/.test(o.passphrase) ? 'wpa2' : 'wpa2-wpa3'),
      ),
    isolateClients: () => {
      const v = o.isolateClients ?? true;
      if (typeof v !== 'boolean') {
        throw obxError('NET_VALUE_INVALID', 'isolateClients must be true or false', {
          details: { isolateClients: 'must be true or false' },
        });
      }
      return v;
    },
    bssid: () => (o.bssid === undefined || o.bssid === null ? null : parseBssid(o.bssid)),
  });
  if (ap.security === 'wpa2-wpa3' && ap.passphrase.kind === 'psk') {
    throw obxError('NET_VALUE_INVALID', 'passphrase: WPA3 (SAE) needs a passphrase, not a 64-hex key', {
      details: { passphrase: 'WPA3 (SAE) needs a passphrase, not a 64-hex key' },
    });
  }
  return ap;
}

/** True when the bytes are UTF-8 text beyond ASCII (hostapd's utf8_ssid flag tells clients so). */
function isNonAsciiUtf8(b: Buffer): boolean {
  return b.some((x) => x > 0x7f) && Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/**
 * hostapd.conf for the box's access point. The SSID goes out as `ssid2=` in hex, so every byte is exact
 * and nothing in it is syntax. `wpa2-wpa3` (the default) is WPA2-PSK and SAE in transition mode: MFP
 * optional for WPA2 stations (`ieee80211w=1`, which the Pi's onboard chip tolerates) and required for
 * SAE ones (`sae_require_mfp=1`), as hostapd.conf describes transition mode; `wpa2` is WPA2-PSK/CCMP.
 * `ap_isolate=1` (the default) stops hostapd bridging frames between stations: a guest with the
 * passphrase cannot reach or ARP-spoof another device on the box's Wi-Fi. `bssid=` is the box's own
 * random locally administered address (nl80211 sets it on the interface), never the vendor MAC.
 * The country is set (with 802.11d) because hostapd without one fails on 5 GHz and stays rfkill-bound.
 */
export function renderHostapd(input: unknown): string {
  const ap = validateAccessPoint(input);
  const fiveGhz = ap.channel >= 36;
  const lines = [
    `interface=${ap.interface}`,
    'driver=nl80211',
    ...(ap.bssid !== null ? [`bssid=${ap.bssid}`] : []),
    `ssid2=${ap.ssid.toString('hex')}`,
    ...(isNonAsciiUtf8(ap.ssid) ? ['utf8_ssid=1'] : []),
    `country_code=${ap.country}`,
    'ieee80211d=1',
    `hw_mode=${fiveGhz ? 'a' : 'g'}`,
    `channel=${ap.channel}`,
    'ieee80211n=1',
    ...(fiveGhz ? ['ieee80211ac=1'] : []),
    'wmm_enabled=1',
    'auth_algs=1',
    'ignore_broadcast_ssid=0',
    ...(ap.isolateClients ? ['ap_isolate=1'] : []),
    'wpa=2',
    `wpa_key_mgmt=${ap.security === 'wpa2-wpa3' ? 'WPA-PSK SAE' : 'WPA-PSK'}`,
    'rsn_pairwise=CCMP',
    ...(ap.security === 'wpa2-wpa3' ? ['ieee80211w=1', 'sae_require_mfp=1'] : []),
    ap.passphrase.kind === 'psk' ? `wpa_psk=${ap.passphrase.value}` : `wpa_passphrase=${ap.passphrase.value}`,
  ];
  return `${HEADER}${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------- dnsmasq

export interface LanDhcp {
  readonly interface: string;
  readonly lan: Ipv4Net;
  readonly leaseFile: string;
  /** Where dnsmasq writes its PID once its DHCP socket is bound (onionboxd's sign that it runs). */
  readonly pidFile: string;
  /** Lease time in seconds (dnsmasq's minimum is 120). */
  readonly leaseSeconds: number;
  readonly rangeStart: string;
  readonly rangeEnd: string;
}

export const DEFAULT_LEASE_SECONDS = 12 * 3600;
/**
 * dnsmasq's own runtime directory (onionbox-dnsmasq.service's RuntimeDirectory: tmpfs, 0750
 * onionbox-dhcp, kept across its restarts): the LAN's MACs and hostnames never reach the SD card, and
 * onionboxd reads them through its supplementary group.
 */
export const DHCP_RUNTIME_DIR = 'onionbox-dhcp';
export const DEFAULT_LEASE_FILE = `/run/${DHCP_RUNTIME_DIR}/dnsmasq.leases`;
export const DEFAULT_DHCP_PID_FILE = `/run/${DHCP_RUNTIME_DIR}/dnsmasq.pid`;
const SAFE_PATH = /^\/(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/)*[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_POOL = 253;

export function parsePath(input: unknown, field: string): string {
  if (typeof input !== 'string' || !SAFE_PATH.test(input) || input.split('/').includes('..')) {
    throw obxError('NET_VALUE_INVALID', `${field} must be an absolute path of letters, digits, _ . - and /`, {
      details: { [field]: 'must be an absolute path of letters, digits, _ . - and /' },
    });
  }
  return input;
}

/** The DHCP pool: the larger run of host addresses beside the box's own, at most 253 addresses. */
export function dhcpPool(lan: Ipv4Net): { start: string; end: string } {
  const size = 2 ** (32 - lan.prefix);
  const net = ipv4ToInt(networkOf(lan.address, lan.prefix));
  const first = net + 1;
  const last = net + size - 2;
  const box = ipv4ToInt(lan.address);
  let [start, end] = box - first >= last - box ? [first, box - 1] : [box + 1, last];
  if (end - start + 1 > MAX_POOL) end = start + MAX_POOL - 1;
  return { start: intToIpv4(start), end: intToIpv4(end) };
}

/** { interface, lanAddr: "A.B.C.D/N", leaseFile?, pidFile?, leaseSeconds?, wan?: {address, prefix} } */
export function validateLanDhcp(input: unknown): LanDhcp {
  const o = objectOf(input);
  const wan = o.wan as Ipv4Net | null | undefined;
  const v = collect<{
    interface: string;
    lan: Ipv4Net;
    leaseFile: string;
    pidFile: string;
    leaseSeconds: number;
  }>({
    interface: () => parseInterface(o.interface),
    lan: () => parseLanRange(o.lanAddr, wan),
    leaseFile: () => parsePath(o.leaseFile ?? DEFAULT_LEASE_FILE, 'leaseFile'),
    pidFile: () => parsePath(o.pidFile ?? DEFAULT_DHCP_PID_FILE, 'pidFile'),
    leaseSeconds: () => {
      const s = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 120 || s > 7 * 86400) {
        throw obxError('NET_VALUE_INVALID', 'lease time must be 120 s to 7 days', {
          details: { leaseSeconds: 'must be an integer of seconds, 120 to 604800' },
        });
      }
      return s;
    },
  });
  const pool = dhcpPool(v.lan);
  return Object.freeze({ ...v, rangeStart: pool.start, rangeEnd: pool.end });
}

function prefixToMask(prefix: number): string {
  return intToIpv4(2 ** 32 - 2 ** (32 - prefix));
}

/**
 * dnsmasq.conf for DHCP on the LAN and nothing else: `port=0` turns its DNS off (names go to tor's
 * DNSPort on the box's LAN address, through the firewall's redirect), it binds only the LAN interface,
 * hands out the pool with the box as router and DNS server (the DNS server listed twice, as Pi-hole
 * does, so clients that add their own servers when given a single one keep ours), and keeps its leases
 * where the page reads them (in /run/onionbox-dhcp on the box: memory, not the SD card), and writes its
 * PID file there once its DHCP socket is bound (how onionboxd sees it run). `quiet-dhcp` keeps
 * each DHCPDISCOVER/OFFER/REQUEST/ACK (a device's MAC and hostname) out of the journal; the start-up
 * lines ("DHCP, IP range ...", "DHCP, sockets bound ...") and errors are still logged.
 */
export function renderDnsmasq(input: unknown): string {
  const d = validateLanDhcp(input);
  const box = d.lan.address;
  const lines = [
    'port=0',
    `interface=${d.interface}`,
    'bind-interfaces',
    `dhcp-range=${d.rangeStart},${d.rangeEnd},${prefixToMask(d.lan.prefix)},${d.leaseSeconds}`,
    `dhcp-option=option:router,${box}`,
    `dhcp-option=option:dns-server,${box},${box}`,
    `dhcp-leasefile=${d.leaseFile}`,
    `pid-file=${d.pidFile}`,
    'quiet-dhcp',
  ];
  return `${HEADER}${lines.join('\n')}\n`;
}

// --------------------------------------------------------------------------------------- NetworkManager

/**
 * /etc/NetworkManager/conf.d/onionbox.conf: no connectivity check, no DNS or hostname management, no
 * automatic profiles for new Ethernet devices, random MAC while scanning, and the LAN interfaces left
 * alone (hostapd and the box own them).
 */
export function renderNetworkManagerConf(input: unknown): string {
  const o = objectOf(input);
  const list = o.unmanaged;
  if (!Array.isArray(list) || list.length > 8) {
    throw obxError('NET_VALUE_INVALID', 'unmanaged must be a list of up to 8 interfaces', {
      details: { unmanaged: 'must be a list of up to 8 interfaces' },
    });
  }
  const unmanaged = [...new Set(list.map((i) => parseInterface(i, 'unmanaged')))];
  const lines = [
    '[main]',
    // the image has no polkitd: NetworkManager allows what reaches it, and D-Bus lets only root and
    // onionboxd's user reach it (firmware/system/dbus-1/onionbox-networkmanager.conf)
    'auth-polkit=false',
    'dns=none',
    'rc-manager=unmanaged',
    'hostname-mode=none',
    'no-auto-default=*',
    '',
    '[connectivity]',
    'enabled=false',
    '',
    '[device]',
    'wifi.scan-rand-mac-address=yes',
    '',
    '[keyfile]',
    `unmanaged-devices=${unmanaged.length ? unmanaged.map((i) => `interface-name:${i}`).join(';') : 'none'}`,
  ];
  return `${HEADER}${lines.join('\n')}\n`;
}

/** A name-based UUID (version 5 layout over SHA-256): the same profile always gets the same UUID. */
export function profileUuid(id: string): string {
  const h = createHash('sha256').update(`onionbox-nm:${id}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** Profile id of the box's upstream Wi-Fi profile for an SSID (stable, no SSID bytes in it). */
export function wifiProfileId(ssid: Buffer): string {
  return `onionbox-wifi-${createHash('sha256').update(ssid).digest('hex').slice(0, 12)}`;
}

export function ethernetProfileId(iface: string): string {
  return `onionbox-wan-${iface}`;
}

const WAN_IP_SECTIONS = [
  '[ipv4]',
  'method=auto',
  'dhcp-send-hostname=false',
  'dhcp-client-id=mac',
  'ignore-auto-dns=true',
  '',
  '[ipv6]',
  'method=disabled',
  'addr-gen-mode=stable-privacy',
];

/**
 * WAN_IP_SECTIONS as nmcli `connection add` arguments (the upstream Wi-Fi's profile): `[ipv4]` +
 * `method=auto` is `ipv4.method auto`, a keyfile boolean nmcli's yes or no.
 */
const WAN_IP_ARGS: readonly string[] = (() => {
  const args: string[] = [];
  let section = '';
  for (const line of WAN_IP_SECTIONS) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) section = header[1];
    else if (line !== '') {
      const [key, value] = line.split('=', 2) as [string, string];
      args.push(`${section}.${key}`, value === 'true' ? 'yes' : value === 'false' ? 'no' : value);
    }
  }
  return args;
})();

/** Keyfile for the WAN on Ethernet: DHCP without a hostname, no IPv6, a stable random cloned MAC. */
export function renderEthernetKeyfile(input: unknown): string {
  const o = objectOf(input);
  const iface = parseInterface(o.interface);
  const id = ethernetProfileId(iface);
  return `${HEADER}${[
    '[connection]',
    `id=${id}`,
    `uuid=${profileUuid(id)}`,
    'type=ethernet',
    `interface-name=${iface}`,
    'autoconnect=true',
    `stable-id=${id}`,
    '',
    '[ethernet]',
    'cloned-mac-address=stable',
    '',
    ...WAN_IP_SECTIONS,
  ].join('\n')}\n`;
}

export type WifiKeyMgmt = 'none' | 'wpa-psk' | 'sae';

export interface UpstreamWifi {
  readonly interface: string;
  readonly ssid: Buffer;
  readonly keyMgmt: WifiKeyMgmt;
  readonly passphrase: Passphrase | null;
  readonly hidden: boolean;
}

/** { interface, ssid, passphrase?: string|null, keyMgmt?, hidden? } -> a parsed UpstreamWifi. */
export function validateUpstreamWifi(input: unknown): UpstreamWifi {
  const o = objectOf(input);
  const open = o.passphrase === undefined || o.passphrase === null || o.passphrase === '';
  const v = collect<UpstreamWifi>({
    interface: () => parseInterface(o.interface),
    ssid: () => parseSsid(o.ssid),
    passphrase: () => (open ? null : parsePassphrase(o.passphrase)),
    keyMgmt: () => {
      const k = o.keyMgmt ?? (open ? 'none' : 'wpa-psk');
      if (k !== 'none' && k !== 'wpa-psk' && k !== 'sae') {
        throw obxError('NET_VALUE_INVALID', 'keyMgmt must be none, wpa-psk or sae', {
          details: { keyMgmt: 'must be none, wpa-psk or sae' },
        });
      }
      return k;
    },
    hidden: () => {
      if (o.hidden !== undefined && typeof o.hidden !== 'boolean') {
        throw obxError('NET_VALUE_INVALID', 'hidden must be true or false', {
          details: { hidden: 'must be true or false' },
        });
      }
      return o.hidden === true;
    },
  });
  const problem =
    v.keyMgmt === 'none' && v.passphrase
      ? 'an open network takes no passphrase'
      : v.keyMgmt !== 'none' && !v.passphrase
        ? 'this network needs a passphrase'
        : v.keyMgmt === 'sae' && v.passphrase?.kind === 'psk'
          ? 'WPA3 (SAE) needs a passphrase, not a 64-hex key'
          : null;
  if (problem)
    throw obxError('NET_VALUE_INVALID', `passphrase: ${problem}`, { details: { passphrase: problem } });
  return v;
}

/**
 * nmcli's `connection add` arguments for the upstream Wi-Fi profile: everything but its secret, which
 * never reaches an argument list (see wifiSecretsFile). NetworkManager writes the keyfile itself, as
 * root; onionboxd cannot (NetworkManager ignores a keyfile root does not own, and loading one from disk
 * is root's alone). The SSID goes in as its UTF-8 bytes (nmcli takes the argument's bytes as they are;
 * parseSsid made them from text); the cloned MAC is stable and random per network (its stable-id is per
 * SSID); the secret's flags are 0, so NetworkManager keeps the passphrase the first activation is given.
 */
export function wifiProfileArgs(w: UpstreamWifi, opts: { asWan?: boolean } = {}): string[] {
  const id = wifiProfileId(w.ssid);
  const security =
    w.keyMgmt === 'none' || !w.passphrase
      ? []
      : [
          '802-11-wireless-security.key-mgmt',
          w.keyMgmt,
          '802-11-wireless-security.psk-flags',
          '0',
          ...(w.keyMgmt === 'sae' ? ['802-11-wireless-security.pmf', 'required'] : []),
        ];
  return [
    'connection',
    'add',
    'type',
    'wifi',
    'con-name',
    id,
    'ifname',
    w.interface,
    'connection.autoconnect',
    'yes',
    'connection.stable-id',
    id,
    '802-11-wireless.mode',
    'infrastructure',
    '802-11-wireless.ssid',
    w.ssid.toString('utf8'),
    '802-11-wireless.hidden',
    w.hidden ? 'yes' : 'no',
    '802-11-wireless.cloned-mac-address',
    'stable',
    ...security,
    ...WAN_IP_ARGS,
    // `asWan` (the page's join: the WAN moves to this network next): while it is connected it carries the
    // default route, also with the Ethernet profile up (metric 100): tor's connections must leave by the
    // firewall's WAN. Without it (the `wifi` CLI) NetworkManager's Wi-Fi default, 600, keeps the route.
    ...(opts.asWan === true ? ['ipv4.route-metric', String(WIFI_WAN_ROUTE_METRIC)] : []),
  ];
}

/** The upstream Wi-Fi's route metric: below the Ethernet WAN profile's (NetworkManager's 100 for Ethernet). */
export const WIFI_WAN_ROUTE_METRIC = 50;

/**
 * The secret of the upstream Wi-Fi as nmcli's `passwd-file` reads it (null for an open network): one
 * `setting.property:value` line. nmcli strips unescaped spaces at either end of the value and reads
 * backslash escapes, so a backslash is written as two and a space as `\040`; every other printable
 * ASCII character (all a passphrase may hold) stands for itself.
 */
export function wifiSecretsFile(w: UpstreamWifi): string | null {
  if (w.keyMgmt === 'none' || !w.passphrase) return null;
  const value = w.passphrase.value.replace(/\\/g, '\\\\').replace(/ /g, '\\040');
  return `802-11-wireless-security.psk:${value}\n`;
}
