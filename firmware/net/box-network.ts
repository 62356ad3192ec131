/**
 * The networking half of the BoxApi (firmware/box/api.ts BoxNetworkApi), as functions of the config
 * store and a NetworkLike (the adapters). BoxController delegates here, so firmware/box/controller.ts only gains
 * one line per command. Every input is validated before anything runs, the config is written only
 * after the system took the change, and a passphrase never goes back to the page or into a log.
 */
import type {
  AccessPointInput,
  JoinWifiInput,
  LanDeviceView,
  NetworkView,
  WanView,
  WifiNetworkView,
} from '../box/api.js';
import type { NetworkChangeSystem } from '../box/network-change.js';
import type { AccessPointConfig } from '../config/schema.js';
import type { ConfigStore } from '../config/store.js';
import { describeError, obxError } from '../errors.js';
import { netsOverlap, parseCidr, randomBssid } from './grammar.js';
import type { LanDhcp } from './lan-dhcp.js';
import type { Lease } from './parse.js';
import { validateAccessPoint } from './render.js';
import { findUpstreamCable, keyMgmtFor, type NetworkManagerWan, type WanStatus } from './wifi.js';

/** What the page's network commands need of the box's network (BoxNetwork, firmware/net/network.ts). */
export interface NetworkLike {
  /** The interface NetworkManager joins Wi-Fi networks with, or null when the WAN is Ethernet only. */
  readonly wifiInterface: string | null;
  /** The access point and the Wi-Fi client are on one radio. */
  readonly sharedRadio: boolean;
  wanStatus(): Promise<WanView>;
  scan(): Promise<WifiNetworkView[]>;
  join(input: JoinWifiInput & { keyMgmt?: 'none' | 'wpa-psk' | 'sae' }): Promise<WanView>;
  /** Deletes the box's profile for that network (NetworkManager disconnects it and drops its keyfile). */
  forget(ssid: string): Promise<void>;
  /** Takes that network's connection down, keeping its profile (activate() brings it back). */
  deactivate(ssid: string): Promise<void>;
  activate(ssid: string): Promise<void>;
  /** The cable port NetworkManager manages for the WAN (not the LAN's), or null when there is none. */
  findCable(): Promise<string | null>;
  leases(): Promise<Lease[]>;
  /** Renders and applies the access point (hostapd); absent in a stand-in without one. */
  applyAccessPoint?(ap: AccessPointConfig): Promise<void>;
  /**
   * The system side of a WAN/LAN change (firmware/net/change.ts) and its current(), the network the box
   * runs on; absent: the box cannot change its network (NET_UNAVAILABLE) and runs on the config's.
   */
  readonly change?: NetworkChangeSystem | undefined;
}

function need(network: NetworkLike | undefined): NetworkLike {
  if (!network) throw obxError('NET_UNAVAILABLE');
  return network;
}

export async function networkStatus(
  config: ConfigStore,
  network: NetworkLike | undefined,
): Promise<NetworkView> {
  const n = config.get().network;
  let wan: WanView | null = null;
  let wanProblem: string | null = null;
  let devices: LanDeviceView[] = [];
  if (!network) {
    wanProblem = 'This box was started without network control.';
  } else {
    try {
      wan = await network.wanStatus();
    } catch (err) {
      wanProblem = describeError(err);
    }
    devices = (await network.leases().catch(() => [])).map((l) => ({
      address: l.address,
      mac: l.mac,
      hostname: l.hostname,
      expiresAt: l.expires * 1000,
    }));
  }
  const ap = n.accessPoint;
  return {
    lanConflict: lanConflict(`${n.lanAddress}/${n.lanPrefix}`, wan?.address ?? null),
    wan,
    wanProblem,
    accessPoint: ap
      ? {
          ssid: ap.ssid,
          country: ap.country,
          channel: ap.channel,
          security: ap.security,
          isolateClients: ap.isolateClients,
        }
      : null,
    lan: { interface: n.lanInterface, address: n.lanAddress, prefix: n.lanPrefix, devices },
    sharedRadio: network?.sharedRadio ?? false,
  };
}

/**
 * The WAN's leased subnet against the LAN range (pure; checked on every status, i.e. every lease the
 * page sees): overlapping ranges would make the box unable to tell the modem from a device.
 */
export function lanConflict(lanCidr: string, wanCidr: string | null): string | null {
  if (!wanCidr) return null;
  let wan: ReturnType<typeof parseCidr>;
  try {
    wan = parseCidr(wanCidr, 'wan');
  } catch {
    return null;
  }
  const lan = parseCidr(lanCidr);
  if (!netsOverlap(lan, wan)) return null;
  return `The modem gave the box ${wanCidr}, which overlaps the box's own network ${lanCidr}. Change the box's network range (or the modem's) so they differ.`;
}

export async function wifiScan(network: NetworkLike | undefined): Promise<WifiNetworkView[]> {
  return need(network).scan();
}

/** Joins, and on success records the network (not its passphrase: that stays in NetworkManager's keyfile). */
export async function joinWifi(
  config: ConfigStore,
  network: NetworkLike | undefined,
  input: JoinWifiInput,
): Promise<void> {
  const net = need(network);
  if (!net.wifiInterface) throw obxError('NET_UNAVAILABLE', 'this box has no Wi-Fi interface for the WAN');
  const seen = input.hidden
    ? undefined
    : (await net.scan().catch(() => [])).find((w) => w.ssid === input.ssid);
  const keyMgmt = seen ? keyMgmtFor(seen.security) : undefined;
  await net.join({ ...input, ...(keyMgmt ? { keyMgmt } : {}) });
  const iface = net.wifiInterface;
  await config.update((c) => ({
    ...c,
    network: { ...c.network, upstreamWifi: { interface: iface, ssid: input.ssid, hidden: input.hidden } },
  }));
}

/** Validates (all fields at once), stores, then applies. An empty passphrase keeps the current one. */
export async function setAccessPoint(
  config: ConfigStore,
  network: NetworkLike | undefined,
  input: AccessPointInput,
): Promise<void> {
  const current = config.get().network;
  const passphrase = input.passphrase === '' ? current.accessPoint?.passphrase : input.passphrase;
  if (passphrase === undefined) {
    throw obxError('NET_VALUE_INVALID', 'passphrase: the access point needs a passphrase', {
      details: { passphrase: 'The access point needs a passphrase (8 to 63 characters).' },
    });
  }
  const ap = validateAccessPoint({ ...input, passphrase, interface: current.lanInterface });
  const stored: AccessPointConfig = {
    ssid: input.ssid,
    passphrase,
    country: ap.country,
    channel: ap.channel,
    security: ap.security,
    isolateClients: ap.isolateClients,
    // generated once per box, kept across changes of the other settings
    bssid: current.accessPoint?.bssid ?? randomBssid(),
  };
  await config.update((c) => ({ ...c, network: { ...c.network, accessPoint: stored } }));
  await network?.applyAccessPoint?.(stored);
}

/** The Wi-Fi client and the LAN's leases as NetworkLike (BoxNetwork delegates its page commands here). */
export function networkAdapters(opts: {
  wan: NetworkManagerWan | null;
  /** The LAN's interface now (never taken for the WAN's cable). */
  lanInterface: () => string;
  lan: LanDhcp | null;
  sharedRadio: boolean;
}): NetworkLike {
  const wan = opts.wan;
  // The page's views carry exactly their fields: the page socket's reply schemas allow nothing else
  // (NetworkManager's scan also has bssid and frequency, its status the profile's name).
  const wanView = (s: WanStatus): WanView => ({
    interface: s.interface,
    type: s.type,
    state: s.state,
    address: s.address,
    gateway: s.gateway,
    ssid: s.ssid,
    signal: s.signal,
  });
  return {
    wifiInterface: wan?.interface ?? null,
    sharedRadio: opts.sharedRadio,
    wanStatus: async () => {
      if (!wan) throw obxError('NET_UNAVAILABLE', 'no WAN adapter');
      return wanView(await wan.status());
    },
    scan: async () => {
      if (!wan) throw obxError('NET_UNAVAILABLE');
      return (await wan.scan()).map(
        (r): WifiNetworkView => ({
          ssid: r.ssid,
          ssidHex: r.ssidHex,
          signal: r.signal,
          security: r.security,
          channel: r.channel,
          inUse: r.inUse,
        }),
      );
    },
    forget: async (ssid) => {
      if (!wan) throw obxError('NET_UNAVAILABLE');
      await wan.forget(ssid);
    },
    deactivate: async (ssid) => {
      if (!wan) throw obxError('NET_UNAVAILABLE');
      await wan.deactivate(ssid);
    },
    activate: async (ssid) => {
      if (!wan) throw obxError('NET_UNAVAILABLE');
      await wan.activate(ssid);
    },
    findCable: () => findUpstreamCable(opts.lanInterface()),
    join: async (input) => {
      if (!wan) throw obxError('NET_UNAVAILABLE');
      return wanView(
        await wan.connect({
          ssid: input.ssid,
          passphrase: input.passphrase,
          hidden: input.hidden,
          keyMgmt: input.keyMgmt,
          // the page's join: the WAN moves to this network next (BoxController.joinWifi)
          asWan: true,
        }),
      );
    },
    leases: () => (opts.lan ? opts.lan.leases() : Promise.resolve([])),
  };
}
