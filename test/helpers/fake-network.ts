/**
 * The network adapters' stand-in for web tests (the real ones need NetworkManager and Wi-Fi radios; the
 * adapters themselves are tested against the fake nmcli and real dnsmasq). It validates like the real
 * adapter (validateUpstreamWifi) and fails like it: unknown network NET_WIFI_NOT_FOUND, wrong
 * passphrase NET_WIFI_AUTH_FAILED. Every join and applied access point is recorded.
 */
import type { JoinWifiInput, WanView, WifiNetworkView } from '../../firmware/box/api.js';
import type { AccessPointConfig } from '../../firmware/config/schema.js';
import { obxError } from '../../firmware/errors.js';
import type { NetworkLike } from '../../firmware/net/box-network.js';
import type { Lease } from '../../firmware/net/parse.js';
import { validateUpstreamWifi } from '../../firmware/net/render.js';

export const FAKE_NETWORKS: (WifiNetworkView & { passphrase: string | null })[] = [
  {
    ssid: 'Home',
    ssidHex: '486f6d65',
    signal: 82,
    security: 'WPA2',
    channel: 6,
    inUse: false,
    passphrase: 'correct horse battery',
  },
  {
    ssid: 'Café: Lobby',
    ssidHex: Buffer.from('Café: Lobby').toString('hex'),
    signal: 54,
    security: 'WPA2 WPA3',
    channel: 44,
    inUse: false,
    passphrase: 'espresso-please',
  },
  {
    ssid: 'Free Wi-Fi',
    ssidHex: Buffer.from('Free Wi-Fi').toString('hex'),
    signal: 31,
    security: '',
    channel: 11,
    inUse: false,
    passphrase: null,
  },
  { ssid: '', ssidHex: '', signal: 20, security: 'WPA2', channel: 1, inUse: false, passphrase: null },
];

const ETHERNET_WAN: WanView = {
  interface: 'eth0',
  type: 'ethernet',
  state: 'connected',
  address: '192.168.1.23/24',
  gateway: '192.168.1.1',
  ssid: null,
  signal: null,
};

export class FakeNetwork implements NetworkLike {
  readonly wifiInterface = 'wlan1';
  readonly sharedRadio: boolean;
  readonly joined: JoinWifiInput[] = [];
  readonly applied: AccessPointConfig[] = [];
  readonly forgotten: string[] = [];
  /** forget, deactivate and activate, in order, each with its SSID. */
  readonly wifiCalls: string[] = [];
  /** What findCable() answers (the cable port NetworkManager manages). */
  cable: string | null = 'eth0';
  #joinedWifi: WanView | null = null;
  hiddenNetworks: Record<string, string> = { 'Back Room': 'hidden-passphrase' };
  leasesNow: Lease[] = [
    { expires: 1_900_000_000, mac: '02:00:00:00:00:01', address: '10.42.0.23', hostname: 'kitchen-tablet' },
    { expires: 1_900_000_100, mac: '02:00:00:00:00:02', address: '10.42.0.24', hostname: '' },
  ];
  #wan: WanView = { ...ETHERNET_WAN };

  constructor(opts: { sharedRadio?: boolean } = {}) {
    this.sharedRadio = opts.sharedRadio ?? false;
  }

  async wanStatus(): Promise<WanView> {
    return { ...this.#wan };
  }

  async scan(): Promise<WifiNetworkView[]> {
    return FAKE_NETWORKS.map(({ passphrase: _p, ...n }) => ({
      ...n,
      inUse: n.ssid !== '' && n.ssid === this.#wan.ssid,
    }));
  }

  async join(input: JoinWifiInput): Promise<WanView> {
    validateUpstreamWifi({ interface: this.wifiInterface, ...input });
    const known = input.hidden
      ? input.ssid in this.hiddenNetworks
        ? { passphrase: this.hiddenNetworks[input.ssid] ?? null, signal: 40 }
        : undefined
      : FAKE_NETWORKS.find((n) => n.ssid === input.ssid && n.ssid !== '');
    if (!known) throw obxError('NET_WIFI_NOT_FOUND', `Error: No network with SSID '${input.ssid}' found.`);
    if ((known.passphrase ?? '') !== (input.passphrase ?? '')) {
      throw obxError(
        'NET_WIFI_AUTH_FAILED',
        'Error: Connection activation failed: (7) Secrets were required, but not provided.',
      );
    }
    this.joined.push({ ...input, passphrase: input.passphrase ? '[set]' : null });
    this.#wan = {
      interface: 'wlan1',
      type: 'wifi',
      state: 'connected',
      address: '192.168.7.40/24',
      gateway: '192.168.7.1',
      ssid: input.ssid,
      signal: known.signal,
    };
    this.#joinedWifi = { ...this.#wan };
    return { ...this.#wan };
  }

  /** Forgetting the network the WAN is on takes the WAN back to the cable (as NetworkManager would). */
  async forget(ssid: string): Promise<void> {
    this.forgotten.push(ssid);
    this.wifiCalls.push(`forget ${ssid}`);
    if (this.#wan.ssid === ssid) this.#wan = { ...ETHERNET_WAN };
    if (this.#joinedWifi?.ssid === ssid) this.#joinedWifi = null;
  }

  /** As nmcli: only an active connection can be taken down; its profile stays. */
  async deactivate(ssid: string): Promise<void> {
    this.wifiCalls.push(`deactivate ${ssid}`);
    if (this.#wan.ssid !== ssid) {
      throw obxError('NET_NMCLI_FAILED', `Error: '${ssid}' is not an active connection.`);
    }
    this.#wan = { ...ETHERNET_WAN };
  }

  async activate(ssid: string): Promise<void> {
    this.wifiCalls.push(`activate ${ssid}`);
    if (this.#joinedWifi?.ssid !== ssid)
      throw obxError('NET_NMCLI_FAILED', `Error: unknown connection '${ssid}'.`);
    this.#wan = { ...this.#joinedWifi };
  }

  async findCable(): Promise<string | null> {
    return this.cable;
  }

  async leases(): Promise<Lease[]> {
    return [...this.leasesNow];
  }

  async applyAccessPoint(ap: AccessPointConfig): Promise<void> {
    this.applied.push({ ...ap });
  }
}
