/**
 * onionboxd's firewall phase (the nft session; the boot lockdown table is still in the kernel) and the
 * parameters every apply renders from, read from their owners: the network the box runs on and the WAN
 * lease's DHCP server (BoxNetwork, net/network.ts), tor's uid (the platform), the page's port (the
 * config) and the relay set (tor/relay-set.ts, its only owner).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConfigStore } from '../config/store.js';
import { Firewall, type FirewallParams } from '../firewall/apply.js';
import type { Phase } from '../lib/service.js';
import type { BoxNetwork } from '../net/network.js';
import type { Platform } from '../platform/platform.js';
import type { RelaySet } from '../tor/relay-set.js';
import { transportOpenings } from '../tor/transports.js';
import { TOR_PORTS } from './tor.js';

/** Phase `firewall`: opens the nft session. */
export function firewallPhase(deps: { stateDir: string; log: Logger }): Phase<Firewall> {
  let firewall: Firewall | null = null;
  return {
    name: 'firewall',
    start: async () => {
      // The scripts go to memory where there is some: systemd's RuntimeDirectory (/run/onionbox, tmpfs)
      // on the box, not the SD card (a file per change; ext4 measured p99 12 ms, tmpfs 0.3 ms).
      const workDir = join(process.env.RUNTIME_DIRECTORY ?? deps.stateDir, 'firewall');
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      firewall = new Firewall({ log: deps.log.child({ component: 'firewall' }), workDir });
      await firewall.start();
      return firewall;
    },
    stop: async () => {
      // The ruleset stays in the kernel when onionboxd stops: the box stays closed (fail-closed).
      await firewall?.stop();
      firewall = null;
    },
  };
}

/** The firewall's parameters as they stand now, each read from its owner. */
export function firewallParams(deps: {
  network: BoxNetwork;
  platform: Platform;
  config: ConfigStore;
  relays: RelaySet;
}): () => FirewallParams {
  return () => {
    const net = deps.network.current();
    return {
      lanIf: net.lanInterface,
      wanIf: net.wanInterface,
      lanAddr: net.lanAddress,
      lanPrefix: net.lanPrefix,
      torUid: deps.platform.tor.uid,
      transPort: TOR_PORTS.trans,
      dnsPort: TOR_PORTS.dns,
      webPort: deps.config.get().web.port,
      relays: deps.relays.current(),
      dhcpServers: deps.network.dhcpServers(),
      transports: transportOpenings(deps.relays.transportNeeds(), deps.network.resolvers()),
    };
  };
}
