/**
 * The network the box runs on: the one owner of "which network is the box on" (current()), and of the
 * children that serve it: the WAN lease watcher (its DHCP server is the firewall's DHCP exception), the
 * LAN address, the LAN's DHCP server (dnsmasq) and the access point (hostapd). The firewall's parameters,
 * the WAN lease's overlap check, the leak self-test and the OLED all read current(); the page's network
 * commands (NetworkLike, firmware/net/box-network.ts) and a network change's system steps (`change`,
 * firmware/net/change.ts, run by the box: firmware/box/network-change.ts) act on this same object.
 *
 * The network is the config's until a change replaces it (the `firewall` step), and is stored by the
 * change's `commit` step. Made by the daemon's `network` phase (firmware/phases/network.ts) once the
 * config is loaded; the `wan-lease` and `lan` phases start its children.
 */
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { JoinWifiInput, WanView, WifiNetworkView } from '../box/api.js';
import type { NetworkChangeSystem } from '../box/network-change.js';
import type { AccessPointConfig } from '../config/schema.js';
import type { ConfigStore } from '../config/store.js';
import { describeError } from '../errors.js';
import { type AccessPoint, createAccessPoint } from './access-point.js';
import { type NetworkLike, networkAdapters } from './box-network.js';
import { configuredNetwork, type NetworkShape } from './change.js';
import { createLanDhcp, type LanDhcp } from './lan-dhcp.js';
import { removeLanAddress, setLanAddress } from './lan-link.js';
import type { Lease } from './parse.js';
import { DHCP_RUNTIME_DIR } from './render.js';
import { leaseCidr, type WanLease, WanLeaseWatcher } from './wan-lease.js';
import { findUpstreamWifi, NetworkManagerWan } from './wifi.js';

export interface BoxNetworkOptions {
  config: ConfigStore;
  stateDir: string;
  /**
   * systemd's runtime root (%t: /run on the box, the default), where dnsmasq's and hostapd's units keep
   * their runtime directories (onionbox-dhcp: leases and PID file, in memory; onionbox-ap: PID file).
   */
  runDir?: string | undefined;
  log: Logger;
  /** tor and the page, which a network change moves to the new network. */
  peers: ChangePeers;
  /** An interface's IPv4 addresses as A.B.C.D/N (default: the kernel's, node:os networkInterfaces). */
  interfaceAddresses?: ((iface: string) => string[]) | undefined;
}

function kernelAddresses(iface: string): string[] {
  return (networkInterfaces()[iface] ?? []).flatMap((a) => (a.family === 'IPv4' && a.cidr ? [a.cidr] : []));
}

/**
 * What the network change needs from the rest of the box: tor. (The page, its own process, moves to the
 * new LAN address once the change is committed: it follows the box's settings.)
 */
export interface ChangePeers {
  /** tor over the new network (where it listens on the LAN, when that changed). */
  reconnectTor(lanAddress: string | undefined): Promise<void>;
}

/** hostapd's runtime directory (onionbox-hostapd.service's RuntimeDirectory): its PID file. */
const AP_RUNTIME_DIR = 'onionbox-ap';

export class BoxNetwork implements NetworkLike {
  readonly #opts: BoxNetworkOptions;
  /** Set by a network change's `firewall` step; until then the config's. */
  #net: NetworkShape | null = null;
  #wanWatcher: WanLeaseWatcher | null = null;
  #onLease: (lease: WanLease) => Promise<void> = async () => undefined;
  #lease: WanLease | null = null;
  readonly #lanDhcp: LanDhcp;
  /** The Wi-Fi client and the LAN's leases, as the page's network commands use them. */
  #adapters: NetworkLike;
  #accessPoint: AccessPoint | null = null;
  /** Where tor should listen after the next reconnect (a LAN address change). */
  #torLanAddress: string | undefined;
  /** The system steps of a WAN/LAN change (firmware/net/change.ts); the box runs the state machine's. */
  readonly change: NetworkChangeSystem;

  /** Objects only (nothing runs): the `wan-lease` and `lan` phases start the children. */
  constructor(opts: BoxNetworkOptions) {
    this.#opts = opts;
    const net = opts.config.get().network;
    this.#lanDhcp = createLanDhcp({
      settings: {
        interface: net.lanInterface,
        lanAddr: `${net.lanAddress}/${net.lanPrefix}`,
        leaseFile: this.#dhcpFile('dnsmasq.leases'),
        pidFile: this.#dhcpFile('dnsmasq.pid'),
      },
      confPath: join(opts.stateDir, 'dnsmasq.conf'),
      log: opts.log.child({ component: 'lan-dhcp' }),
    });
    this.#adapters = networkAdapters({
      wan: net.upstreamWifi ? new NetworkManagerWan({ interface: net.upstreamWifi.interface }) : null,
      lan: this.#lanDhcp,
      lanInterface: () => this.change.current().lanInterface,
      // Not detected yet (it needs the phy of both interfaces, `iw dev`): the page's warning shows only
      // for an adapter that reports it (the tests' FakeNetwork), never on a real box so far.
      sharedRadio: false,
    });
    this.change = this.#changeSystem(opts.peers);
  }

  /** The network the box runs on now. */
  current(): NetworkShape {
    return this.#net ?? configuredNetwork(this.#opts.config.get().network);
  }

  /** The WAN lease's resolvers (tor's uid may ask them for its transports), when known. */
  resolvers(): string[] {
    return [...(this.#lease?.resolvers ?? [])];
  }

  /** The WAN has a leased address (the connection assist's "no lease: no network"). */
  wanLeased(): boolean {
    return (this.#lease?.address ?? null) !== null;
  }

  /** The WAN lease's DHCP server (the firewall lets the DHCP client renew with it), when known. */
  dhcpServers(): string[] {
    return this.#lease?.serverId ? [this.#lease.serverId] : [];
  }

  // --- NetworkLike: the page's network commands ---

  get wifiInterface(): string | null {
    return this.#adapters.wifiInterface;
  }

  get sharedRadio(): boolean {
    return this.#adapters.sharedRadio;
  }

  /**
   * The WAN the box runs on: NetworkManager's view of the Wi-Fi client when that is the WAN, else the
   * wired WAN, its address (the lease's, else the interface's) and the DHCP server that leased it. Never
   * only an error: the box routes over this WAN.
   */
  async wanStatus(): Promise<WanView> {
    const wanIf = this.current().wanInterface;
    if (this.#adapters.wifiInterface === wanIf) {
      return { ...(await this.#adapters.wanStatus()), dhcpServer: this.#lease?.serverId ?? null };
    }
    const lease = this.#lease;
    const address =
      (lease ? leaseCidr(lease) : null) ??
      (this.#opts.interfaceAddresses ?? kernelAddresses)(wanIf)[0] ??
      null;
    return {
      interface: wanIf,
      type: 'ethernet',
      state: address === null ? 'disconnected' : 'connected',
      address,
      gateway: null,
      dhcpServer: lease?.serverId ?? null,
      ssid: null,
      signal: null,
    };
  }

  async scan(): Promise<WifiNetworkView[]> {
    await this.#findWifi();
    return this.#adapters.scan();
  }

  /**
   * The Wi-Fi client for the WAN when the configuration names none yet (a box on Ethernet whose owner
   * plugs in a Wi-Fi adapter to join a network from the page): found through NetworkManager at the `lan`
   * phase and again before a scan while there is none. The join then records it in the configuration.
   */
  async #findWifi(): Promise<void> {
    if (this.#adapters.wifiInterface !== null) return;
    const found = await findUpstreamWifi(this.#opts.config.get().network.lanInterface);
    if (found === null || this.#adapters.wifiInterface !== null) return;
    this.#adapters = networkAdapters({
      wan: new NetworkManagerWan({ interface: found }),
      lan: this.#lanDhcp,
      lanInterface: () => this.change.current().lanInterface,
      sharedRadio: false,
    });
  }

  join(input: JoinWifiInput & { keyMgmt?: 'none' | 'wpa-psk' | 'sae' }): Promise<WanView> {
    return this.#adapters.join(input);
  }

  forget(ssid: string): Promise<void> {
    return this.#adapters.forget(ssid);
  }

  deactivate(ssid: string): Promise<void> {
    return this.#adapters.deactivate(ssid);
  }

  activate(ssid: string): Promise<void> {
    return this.#adapters.activate(ssid);
  }

  findCable(): Promise<string | null> {
    return this.#adapters.findCable();
  }

  leases(): Promise<Lease[]> {
    return this.#adapters.leases();
  }

  async applyAccessPoint(ap: AccessPointConfig): Promise<void> {
    const settings = { ...ap, interface: this.current().lanInterface };
    if (this.#accessPoint) await this.#accessPoint.update(settings);
    else {
      this.#accessPoint = this.#createAccessPoint(settings);
      await this.#accessPoint.start();
    }
  }

  // --- the children, started by the daemon's phases ---

  /** Follows the WAN's lease; every new one goes to `onLease` (the box). Phase `wan-lease`. */
  async startWanLease(onLease: (lease: WanLease) => Promise<void>): Promise<void> {
    this.#onLease = async (lease) => {
      this.#lease = lease;
      await onLease(lease);
    };
    await this.#watchWan(this.current().wanInterface);
  }

  async stopWanLease(): Promise<void> {
    await this.#wanWatcher?.stop();
    this.#wanWatcher = null;
  }

  /** The box's LAN address, the LAN's DHCP server, the access point when one is set up. Phase `lan`. */
  async startLan(): Promise<void> {
    const net = this.#opts.config.get().network;
    await this.#findWifi();
    await setLanAddress(net.lanInterface, net.lanAddress, net.lanPrefix);
    await this.#lanDhcp.start();
    // The access point, when the owner has set one up (a box on Ethernet only has none).
    if (net.accessPoint) {
      this.#accessPoint = this.#createAccessPoint({ ...net.accessPoint, interface: net.lanInterface });
      await this.#accessPoint.start().catch((err: unknown) => {
        this.#opts.log.error({ err: describeError(err) }, 'the access point did not start');
      });
    }
  }

  async stopLan(): Promise<void> {
    await this.#accessPoint?.stop();
    this.#accessPoint = null;
    await this.#lanDhcp.stop();
  }

  #changeSystem(peers: ChangePeers): NetworkChangeSystem {
    const { config } = this.#opts;
    const log = this.#opts.log.child({ component: 'net-change' });
    return {
      current: () => this.current(),
      firewall: async (step) => {
        // the firewall's parameters are rendered from this from now on; the box re-applies its (closed) mode
        this.#net = { ...step.network };
      },
      'wan-watch': (step) => this.#watchWan(step.wanInterface),
      'lan-address': async (step) => {
        const p = step.previous;
        await setLanAddress(step.lanInterface, step.address, step.prefix);
        if (p.lanInterface !== step.lanInterface || p.address !== step.address || p.prefix !== step.prefix) {
          await removeLanAddress(p.lanInterface, p.address, p.prefix);
        }
      },
      dhcp: async (step) => {
        await this.#lanDhcp.update({
          interface: step.lanInterface,
          lanAddr: `${step.lanAddress}/${step.lanPrefix}`,
          leaseFile: this.#dhcpFile('dnsmasq.leases'),
          pidFile: this.#dhcpFile('dnsmasq.pid'),
        });
      },
      'access-point': async (step) => {
        const ap = config.get().network.accessPoint;
        if (ap && this.#accessPoint) await this.#accessPoint.update({ ...ap, interface: step.lanInterface });
      },
      'tor-listen': async (step) => {
        this.#torLanAddress = step.lanAddress;
      },
      reconnect: () => peers.reconnectTor(this.#torLanAddress),
      commit: async (wanted) => {
        await config.update((c) => ({
          ...c,
          network: {
            ...c.network,
            wanInterface: wanted.wanInterface,
            lanInterface: wanted.lanInterface,
            lanAddress: wanted.lanAddress,
            lanPrefix: wanted.lanPrefix,
          },
        }));
        log.info({ ...wanted }, 'network change stored');
      },
    };
  }

  /** Follows the lease of `wanIf` (replacing the watcher of the previous WAN interface, if any). */
  async #watchWan(wanIf: string): Promise<void> {
    await this.#wanWatcher?.stop();
    this.#lease = null;
    const watcher = new WanLeaseWatcher({
      wanIf,
      log: this.#opts.log.child({ component: 'wan' }),
      onChange: (lease) => this.#onLease(lease),
    });
    this.#wanWatcher = watcher;
    await watcher.start();
  }

  #createAccessPoint(settings: Parameters<typeof createAccessPoint>[0]['settings']): AccessPoint {
    return createAccessPoint({
      settings,
      confPath: join(this.#opts.stateDir, 'hostapd.conf'),
      pidFile: join(this.#opts.runDir ?? '/run', AP_RUNTIME_DIR, 'hostapd.pid'),
      log: this.#opts.log.child({ component: 'access-point' }),
    });
  }

  /** dnsmasq's runtime directory: the LAN's leases (MACs, hostnames) live in memory, not on the SD card. */
  #dhcpFile(name: string): string {
    return join(this.#opts.runDir ?? '/run', DHCP_RUNTIME_DIR, name);
  }
}
