/**
 * The WAN through NetworkManager: scan, join and status of the upstream Wi-Fi, status of an Ethernet
 * WAN. A thin adapter over nmcli; the parsing and the rendering are pure (parse.ts, render.ts).
 *
 * Where node-wifi is used and where it is not (node-wifi 2.0.16, the library the product names):
 *  - node-wifi is used only for `disconnect` (`nmcli device disconnect IFACE`): an argument array, no
 *    output to parse, judged by the exit code alone — sound. It is loaded lazily, only then, and the
 *    LANG/LC_ALL/LC_MESSAGES that its require-time `Object.assign(process.env, ...)` writes into the
 *    whole process are restored right after the require.
 *  - scan, connect, status and profile clean-up call nmcli directly, because node-wifi is unsound there:
 *    it splits terse output on every ':' (SSIDs and BSSIDs with ':' or '\' shift the fields), never
 *    forces a rescan, passes the passphrase in argv (visible in the process list) and the literal
 *    "undefined" for open networks, and judges failure by `stdout.includes('Error: ')` only.
 *
 * Our nmcli calls: argument arrays (no shell), `-t -e yes` (split on unescaped ':' then unescape),
 * `--rescan yes` for scans, `LC_ALL=C.UTF-8 LANGUAGE=` in the child's environment only, and both the
 * exit code and the output checked (nmcli prints "Secrets were required" on stdout, sometimes with exit
 * 0). The passphrase never reaches argv or a log: the profile is added without it, and the activation
 * that follows hands it to NetworkManager through nmcli's `passwd-file` (a 0600 file in a private
 * directory, removed at once), read by nmcli as its secret agent; NetworkManager keeps it in the keyfile
 * it writes as root (the secret's flags are 0). onionboxd's user may do this only because NetworkManager
 * runs with `auth-polkit=false` behind a D-Bus policy that admits root and that user alone (the image
 * has no polkitd).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ObxError, obxError } from '../errors.js';
import { exec } from '../lib/exec.js';
import { parseInterface } from './grammar.js';
import {
  groupScan,
  parseConnections,
  parseDeviceStatus,
  parseTerseFields,
  parseWifiList,
  SCAN_FIELDS,
  type ScanResult,
} from './parse.js';
import {
  validateUpstreamWifi,
  type WifiKeyMgmt,
  wifiProfileArgs,
  wifiProfileId,
  wifiSecretsFile,
} from './render.js';

export interface NmcliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The child's environment: the parent's, with a locale whose messages and words we can parse. */
export function nmcliEnv(parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...parent, LC_ALL: 'C.UTF-8', LANGUAGE: '' };
}

/** First line that looks like an error, trimmed to something safe to show. */
function errorLine(r: NmcliResult): string {
  const text = `${r.stdout}\n${r.stderr}`;
  const line =
    text.split('\n').find((l) => /^Error: /.test(l)) ?? text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) || `nmcli exited with status ${r.code}`;
}

/**
 * Judges one nmcli run by its exit code AND its output (pure; see man nmcli, EXIT STATUS):
 * 8 NetworkManager not running, 10 no such connection/device/AP, "Secrets were required" on stdout
 * (exit 4, or 0 on some versions) a refused passphrase, any other non-zero exit or `Error:` line a failure.
 */
export function classifyNmcli(r: NmcliResult): ObxError | null {
  const text = `${r.stdout}\n${r.stderr}`;
  if (r.code === 8 || /NetworkManager is not running/.test(text)) return obxError('NET_NM_NOT_RUNNING');
  if (/Secrets were required/.test(text)) return obxError('NET_WIFI_AUTH_FAILED', errorLine(r));
  if (r.code === 10 || /No network with SSID|network could not be found/.test(text)) {
    return obxError('NET_WIFI_NOT_FOUND', errorLine(r));
  }
  if (r.code !== 0 || /^Error: /m.test(r.stdout)) return obxError('NET_NMCLI_FAILED', errorLine(r));
  return null;
}

export interface NmcliOptions {
  /** nmcli binary (default: `nmcli` on PATH). */
  readonly bin?: string;
  readonly timeoutMs?: number;
}

/** Runs nmcli once (argument array, no shell, no stdin). Never throws for a non-zero exit. */
export async function runNmcli(args: readonly string[], opts: NmcliOptions = {}): Promise<NmcliResult> {
  const r = await exec(opts.bin ?? 'nmcli', args, {
    env: nmcliEnv(),
    timeoutMs: opts.timeoutMs ?? 120_000,
    maxBuffer: 4 * 1024 * 1024,
  });
  // exec's code is -1 for a run that did not exit by itself; nmcli's callers tell "not installed" (127)
  // from "killed" (null)
  const code = r.ok ? 0 : r.code >= 0 ? r.code : /\bENOENT\b/.test(r.error ?? '') ? 127 : null;
  return { code, stdout: r.stdout, stderr: r.stderr || (!r.ok && !r.stdout ? (r.error ?? '') : '') };
}

/** Runs nmcli and throws the classified error, or returns stdout: the one call-and-judge path. */
export async function nmcli(args: readonly string[], opts: NmcliOptions): Promise<string> {
  const r = await runNmcli(args, opts);
  if (r.code === 127) throw obxError('NET_NMCLI_FAILED', 'nmcli is not installed');
  const e = classifyNmcli(r);
  if (e) throw e;
  return r.stdout;
}

/** Terse, escaped output of the named fields (`nmcli -t -e yes -f FIELDS ...`), judged by nmcli(). */
function nmcliTerse(fields: string, args: readonly string[], opts: NmcliOptions): Promise<string> {
  return nmcli(['-t', '-e', 'yes', '-f', fields, ...args], opts);
}

/** node-wifi, required lazily with the environment it clobbers restored (see the header). */
interface NodeWifi {
  init(o: { iface: string | null }): void;
  disconnect(): Promise<void>;
}
let nodeWifi: NodeWifi | null = null;
export function loadNodeWifi(): NodeWifi {
  if (nodeWifi) return nodeWifi;
  const keys = ['LANG', 'LC_ALL', 'LC_MESSAGES'] as const;
  const saved = keys.map((k) => [k, process.env[k]] as const);
  try {
    nodeWifi = createRequire(import.meta.url)('node-wifi') as NodeWifi;
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return nodeWifi;
}

export interface JoinRequest {
  readonly ssid: string;
  /** Absent, null or '' for an open network. */
  readonly passphrase?: string | null;
  readonly hidden?: boolean;
  /** From the scan's SECURITY column (see keyMgmtFor); default wpa-psk with a passphrase, else none. */
  readonly keyMgmt?: WifiKeyMgmt;
  /** The box's WAN moves to this network (the page's join): its profile carries the default route. */
  readonly asWan?: boolean;
}

export interface WanStatus {
  readonly interface: string;
  readonly type: string;
  /** NetworkManager's device state: connected, connecting, disconnected, unavailable, ... */
  readonly state: string;
  readonly connection: string;
  /** A.B.C.D/N, or null while it has none. */
  readonly address: string | null;
  readonly gateway: string | null;
  /** Only for Wi-Fi: the network in use. */
  readonly ssid: string | null;
  readonly signal: number | null;
}

/** Key management for a network from its scan SECURITY column ("WPA2", "WPA2 WPA3", "WPA3", ""). */
export function keyMgmtFor(security: string): WifiKeyMgmt {
  const s = security.split(/\s+/).filter(Boolean);
  if (s.length === 0) return 'none';
  if (s.includes('WPA2') || s.includes('WPA1')) return 'wpa-psk';
  if (s.includes('WPA3')) return 'sae';
  return 'wpa-psk';
}

/**
 * The Wi-Fi interface for the WAN when the configuration names none (pure): the first Wi-Fi device
 * NetworkManager manages that is not the LAN's (the access point's radio is unmanaged: its name is in
 * NetworkManager's unmanaged list). A name that is no valid interface name is passed over.
 */
export function pickUpstreamWifi(
  devices: readonly { device: string; type: string; state: string }[],
  lanInterface: string,
): string | null {
  return pickUpstream(devices, lanInterface, 'wifi');
}

/**
 * The cable port for the WAN: the first Ethernet device NetworkManager manages that is not the LAN's (the
 * image's WAN profile is for it; a LAN on Ethernet is unmanaged). Pure.
 */
export function pickUpstreamCable(
  devices: readonly { device: string; type: string; state: string }[],
  lanInterface: string,
): string | null {
  return pickUpstream(devices, lanInterface, 'ethernet');
}

function pickUpstream(
  devices: readonly { device: string; type: string; state: string }[],
  lanInterface: string,
  type: 'wifi' | 'ethernet',
): string | null {
  for (const d of devices) {
    if (d.type !== type || d.state === 'unmanaged' || d.device === lanInterface) continue;
    try {
      return parseInterface(d.device);
    } catch {}
  }
  return null;
}

/** pickUpstreamWifi over `nmcli device status`; null when there is none or nmcli cannot tell. */
export async function findUpstreamWifi(
  lanInterface: string,
  opts: NmcliOptions = {},
): Promise<string | null> {
  return findUpstream(lanInterface, pickUpstreamWifi, opts);
}

/** pickUpstreamCable over `nmcli device status`; null when there is none or nmcli cannot tell. */
export async function findUpstreamCable(
  lanInterface: string,
  opts: NmcliOptions = {},
): Promise<string | null> {
  return findUpstream(lanInterface, pickUpstreamCable, opts);
}

async function findUpstream(
  lanInterface: string,
  pick: typeof pickUpstreamWifi,
  opts: NmcliOptions,
): Promise<string | null> {
  try {
    const text = await nmcliTerse('DEVICE,TYPE,STATE,CONNECTION', ['device', 'status'], opts);
    return pick(parseDeviceStatus(text), lanInterface);
  } catch {
    return null;
  }
}

export interface NetworkManagerWanOptions extends NmcliOptions {
  /** The upstream Wi-Fi interface (the one NetworkManager manages), e.g. wlan1. */
  readonly interface: string;
  /** Where the passphrase's passwd-file is made for one activation (default: the OS's temporary
   * directory, private to onionboxd's unit: PrivateTmp). */
  readonly secretsDir?: string;
  /** Seconds nmcli waits for an activation. */
  readonly waitSeconds?: number;
}

/** The WAN side as NetworkManager sees it. Constructing it does nothing; each method runs nmcli. */
export class NetworkManagerWan {
  readonly interface: string;
  readonly #opts: NetworkManagerWanOptions;

  constructor(opts: NetworkManagerWanOptions) {
    this.interface = parseInterface(opts.interface);
    this.#opts = opts;
  }

  /** Forces a rescan (`--rescan yes`), one entry per network, strongest first. */
  async scan(): Promise<ScanResult[]> {
    return groupScan(await this.#wifiList('yes'));
  }

  /** `device wifi list` on this interface; `rescan` yes forces a new scan, no reads NetworkManager's list. */
  async #wifiList(rescan: 'yes' | 'no') {
    const args = ['device', 'wifi', 'list', 'ifname', this.interface, '--rescan', rescan];
    return parseWifiList(await nmcliTerse(SCAN_FIELDS, args, this.#opts));
  }

  /**
   * Joins a network: validates everything first, deletes stale profiles for it (ours, and one named
   * after the SSID, whose missing key-mgmt breaks later joins), adds the profile without its secret,
   * then activates it with the secret in a passwd-file. On failure the new profile is removed again, so a
   * wrong passphrase is not kept.
   */
  async connect(req: JoinRequest): Promise<WanStatus> {
    const wifi = validateUpstreamWifi({
      interface: this.interface,
      ssid: req.ssid,
      passphrase: req.passphrase ?? null,
      hidden: req.hidden ?? false,
      keyMgmt: req.keyMgmt,
    });
    const id = wifiProfileId(wifi.ssid);
    await this.#deleteProfiles((c) => c.name === id || c.name === req.ssid);
    const secrets = wifiSecretsFile(wifi);
    const dir = secrets === null ? null : await mkdtemp(join(this.#opts.secretsDir ?? tmpdir(), 'obx-nm-'));
    try {
      const passwdFile = dir === null ? null : join(dir, 'passwd');
      if (passwdFile !== null && secrets !== null) {
        await writeFile(passwdFile, secrets, { mode: 0o600, flag: 'wx' });
      }
      await nmcli(wifiProfileArgs(wifi, { asWan: req.asWan === true }), this.#opts);
      try {
        await this.#up(id, passwdFile);
      } catch (err) {
        await this.#deleteProfiles((c) => c.name === id).catch(() => undefined);
        throw err;
      }
    } finally {
      if (dir !== null) await rm(dir, { recursive: true, force: true });
    }
    return this.status();
  }

  /** Forgets the network (NetworkManager deletes the profile's keyfile with it). */
  async forget(ssid: string): Promise<void> {
    const id = this.#profileId(ssid);
    await this.#deleteProfiles((c) => c.name === id);
  }

  /**
   * Takes the network's connection down and keeps its profile (and the secret NetworkManager stores):
   * the default route goes back to the cable while the WAN moves there, and activate() can undo it.
   */
  async deactivate(ssid: string): Promise<void> {
    await nmcli(['connection', 'down', 'id', this.#profileId(ssid)], this.#opts);
  }

  /** Brings the network's stored profile up again (NetworkManager has its secret). */
  async activate(ssid: string): Promise<void> {
    await this.#up(this.#profileId(ssid), null);
  }

  /** `nmcli connection up` for the box's profile on this interface, with the secret's passwd-file if any. */
  async #up(id: string, passwdFile: string | null): Promise<void> {
    await nmcli(
      [
        '--wait',
        String(this.#opts.waitSeconds ?? 45),
        'connection',
        'up',
        'id',
        id,
        'ifname',
        this.interface,
        ...(passwdFile === null ? [] : ['passwd-file', passwdFile]),
      ],
      this.#opts,
    );
  }

  #profileId(ssid: string): string {
    return wifiProfileId(validateUpstreamWifi({ interface: this.interface, ssid }).ssid);
  }

  /** Disconnects the interface (through node-wifi: see the header). */
  async disconnect(): Promise<void> {
    const wifi = loadNodeWifi();
    wifi.init({ iface: this.interface });
    try {
      await wifi.disconnect();
    } catch (err) {
      throw obxError('NET_NMCLI_FAILED', `disconnect ${this.interface} failed`, { cause: err });
    }
  }

  async status(): Promise<WanStatus> {
    const devices = parseDeviceStatus(
      await nmcliTerse('DEVICE,TYPE,STATE,CONNECTION', ['device', 'status'], this.#opts),
    );
    const dev = devices.find((d) => d.device === this.interface);
    if (!dev) throw obxError('NET_WIFI_NOT_FOUND', `no device ${this.interface}`);
    const show = parseTerseFields(
      await nmcliTerse(
        'GENERAL.STATE,IP4.ADDRESS,IP4.GATEWAY',
        ['device', 'show', this.interface],
        this.#opts,
      ),
    );
    const address = show.get('IP4.ADDRESS[1]') || null;
    let ssid: string | null = null;
    let signal: number | null = null;
    if (dev.type === 'wifi' && dev.state === 'connected') {
      const list = await this.#wifiList('no');
      const used = list.find((n) => n.inUse);
      ssid = used?.ssid ?? null;
      signal = used?.signal ?? null;
    }
    return Object.freeze({
      interface: dev.device,
      type: dev.type,
      state: dev.state,
      connection: dev.connection,
      address,
      gateway: show.get('IP4.GATEWAY') || null,
      ssid,
      signal,
    });
  }

  async #deleteProfiles(match: (c: { name: string; uuid: string }) => boolean): Promise<void> {
    const rows = parseConnections(
      await nmcliTerse('NAME,UUID,TYPE,DEVICE', ['connection', 'show'], this.#opts),
    );
    for (const c of rows.filter(match)) await nmcli(['connection', 'delete', 'uuid', c.uuid], this.#opts);
  }
}
