/**
 * The network the box runs on, and the children that serve it: the WAN lease watcher (its DHCP server is
 * the firewall's DHCP exception), the LAN address, the LAN's DHCP server (dnsmasq) and the access point
 * (hostapd). One object owns them, so the daemon's phases (`wan-lease`, `lan`) and a network change's
 * system steps (firmware/net/change.ts, run by the box: firmware/box-network-change.ts) change the same
 * things in one place.
 *
 * The network is the config's until a change replaces it (the `firewall` step), and is stored by the
 * change's `commit` step.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { NetworkChangeSystem } from '../box-network-change.js';
import type { ConfigStore } from '../config/store.js';
import { describeError } from '../errors.js';
import { type AccessPoint, createAccessPoint } from '../net/access-point.js';
import { createBoxNetwork, type NetworkLike } from '../net/box-network.js';
import type { NetworkShape } from '../net/change.js';
import { createLanDhcp, type LanDhcp } from '../net/lan-dhcp.js';
import { removeLanAddress, setLanAddress } from '../net/lan-link.js';
import { type WanLease, WanLeaseWatcher } from '../net/wan-lease.js';
import { NetworkManagerWan } from '../net/wifi.js';
import type { Service } from '../service.js';

export interface BoxNetworkOptions {
  config: ConfigStore;
  stateDir: string;
  /**
   * Files that must not outlive a boot nor reach the SD card (dnsmasq's leases): systemd's
   * RuntimeDirectory, /run/onionbox, on the box; stateDir when not given.
   */
  runtimeDir?: string | undefined;
  log: Logger;
}

/** What the network change needs from the rest of the box: tor and the page. */
export interface ChangePeers {
  /** tor over the new network (where it listens on the LAN, when that changed). */
  reconnectTor(lanAddress: string | undefined): Promise<void>;
  /** The page on the new LAN address (nothing when the page was told where to listen). */
  relistenWeb(lanAddress: string): Promise<void>;
}

export class BoxNetwork {
  readonly #opts: BoxNetworkOptions;
  /** Set by a network change's `firewall` step; until then the config's. */
  #net: NetworkShape | null = null;
  #wanWatcher: WanLeaseWatcher | null = null;
  #onLease: (lease: WanLease) => Promise<void> = async () => undefined;
  #dhcpServers: string[] = [];
  #lanDhcp: LanDhcp | null = null;
  #accessPoint: AccessPoint | null = null;
  /** Where tor should listen after the next reconnect (a LAN address change). */
  #torLanAddress: string | undefined;

  constructor(opts: BoxNetworkOptions) {
    this.#opts = opts;
  }

  /** The network the box runs on now. */
  current(): NetworkShape {
    if (this.#net) return this.#net;
    const n = this.#opts.config.get().network;
    return {
      wanInterface: n.wanInterface,
      lanInterface: n.lanInterface,
      lanAddress: n.lanAddress,
      lanPrefix: n.lanPrefix,
      accessPoint: n.accessPoint !== null,
    };
  }

  /** The WAN lease's DHCP server (the firewall lets the DHCP client renew with it), when known. */
  dhcpServers(): string[] {
    return this.#dhcpServers;
  }

  /** The adapters the box's network commands use (the LAN's DHCP server is created here, started by `lan`). */
  adapters(): NetworkLike {
    const net = this.#opts.config.get().network;
    this.#lanDhcp = createLanDhcp({
      settings: {
        interface: net.lanInterface,
        lanAddr: `${net.lanAddress}/${net.lanPrefix}`,
        leaseFile: this.#leaseFile(),
      },
      confPath: join(this.#opts.stateDir, 'dnsmasq.conf'),
      log: this.#opts.log.child({ component: 'lan-dhcp' }),
    });
    return createBoxNetwork({
      wan: net.upstreamWifi ? new NetworkManagerWan({ interface: net.upstreamWifi.interface }) : null,
      lan: this.#lanDhcp,
      sharedRadio: false,
      applyAccessPoint: async (ap) => {
        const settings = { ...ap, interface: this.current().lanInterface };
        if (this.#accessPoint) await this.#accessPoint.update(settings);
        else {
          this.#accessPoint = this.#createAccessPoint(settings);
          await this.#accessPoint.start();
        }
      },
    });
  }

  /** Phase `wan-lease`: follows the WAN's lease; every new one goes to `onLease` (the box). */
  wanLeasePhase(onLease: (lease: WanLease) => Promise<void>): Service {
    return {
      name: 'wan-lease',
      start: () => {
        this.#onLease = async (lease) => {
          this.#dhcpServers = lease.serverId ? [lease.serverId] : [];
          await onLease(lease);
        };
        return this.#watchWan(this.current().wanInterface);
      },
      stop: async () => {
        await this.#wanWatcher?.stop();
        this.#wanWatcher = null;
      },
    };
  }

  /** Phase `lan`: the box's LAN address, the LAN's DHCP server, the access point when one is set up. */
  lanPhase(): Service {
    let dhcp: LanDhcp | null = null;
    return {
      name: 'lan',
      start: async () => {
        const net = this.#opts.config.get().network;
        await setLanAddress(net.lanInterface, net.lanAddress, net.lanPrefix);
        dhcp = this.#lanDhcp;
        await dhcp?.start();
        // The access point, when the owner has set one up (a box on Ethernet only has none).
        if (net.accessPoint) {
          this.#accessPoint = this.#createAccessPoint({ ...net.accessPoint, interface: net.lanInterface });
          await this.#accessPoint.start().catch((err: unknown) => {
            this.#opts.log.error({ err: describeError(err) }, 'the access point did not start');
          });
        }
      },
      stop: async () => {
        await this.#accessPoint?.stop();
        this.#accessPoint = null;
        await dhcp?.stop();
        dhcp = null;
      },
    };
  }

  /** The system steps of a WAN/LAN change (firmware/net/change.ts); the box runs the state machine's. */
  changeSystem(peers: ChangePeers): NetworkChangeSystem {
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
        await this.#lanDhcp?.update({
          interface: step.lanInterface,
          lanAddr: `${step.lanAddress}/${step.lanPrefix}`,
          leaseFile: this.#leaseFile(),
        });
      },
      'access-point': async (step) => {
        const ap = config.get().network.accessPoint;
        if (ap && this.#accessPoint) await this.#accessPoint.update({ ...ap, interface: step.lanInterface });
      },
      'tor-listen': async (step) => {
        this.#torLanAddress = step.lanAddress;
      },
      'web-listen': (step) => peers.relistenWeb(step.lanAddress),
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
    this.#dhcpServers = [];
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
      log: this.#opts.log.child({ component: 'access-point' }),
    });
  }

  /** The LAN's leases (MACs, hostnames) live in memory, not on the SD card. */
  #leaseFile(): string {
    return join(this.#opts.runtimeDir ?? this.#opts.stateDir, 'dnsmasq.leases');
  }
}
