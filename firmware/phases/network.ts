/**
 * onionboxd's network phases, on the one network owner (BoxNetwork, firmware/net/network.ts):
 *   network    makes it from the loaded config (nothing runs yet), with tor, which a network change
 *              moves; what later phases are handed
 *   wan-lease  follows the WAN's lease; every new one goes to the box (overlap check, DHCP exception)
 *   lan        the LAN address, the LAN's DHCP server, the access point when one is set up
 */
import type { Logger } from 'pino';
import type { BoxController } from '../box/controller.js';
import type { ConfigStore } from '../config/store.js';
import { rewriteInPlace } from '../lib/atomic-write.js';
import type { Phase } from '../lib/service.js';
import { BoxNetwork } from '../net/network.js';
import { leaseCidr, renderResolvConf } from '../net/wan-lease.js';
import type { TorSupervisor } from '../tor/supervisor.js';

/** Phase `network`: the network the box runs on, from the loaded config; a change moves tor. */
export function networkPhase(deps: {
  config: ConfigStore;
  stateDir: string;
  /** systemd's runtime root (/run on the box), where dnsmasq's and hostapd's units keep their files. */
  runDir?: string | undefined;
  tor: TorSupervisor;
  log: Logger;
}): Phase<BoxNetwork> {
  const { config, stateDir, runDir, tor, log } = deps;
  return {
    name: 'network',
    start: async () =>
      new BoxNetwork({
        config,
        stateDir,
        runDir,
        log,
        peers: {
          reconnectTor: async (lanAddress) => {
            const ready = await tor.networkChanged({ lanAddress });
            if (ready !== true) throw new Error(`tor is not ready over the new network: ${ready}`);
          },
        },
      }),
    stop: async () => undefined,
  };
}

/** tor's resolv.conf is always this long (rewriteInPlace pads it): 4 resolvers take about 120 bytes. */
export const TOR_RESOLV_SIZE = 512;

/**
 * Phase `wan-lease`: the WAN's DHCP server for the firewall's DHCP exception, its resolvers for tor's
 * transports (the firewall's openings, and `resolvConf`: the file tor's unit binds over /etc/resolv.conf,
 * 0644 so tor's uid reads it); each lease to the box. The file is written at start (no resolver yet: tor's
 * unit starts only after onionboxd is ready, and its bind needs the file) and then rewritten in place at
 * each lease: the unit's bind mount holds this one inode, so a rename would never reach tor.
 */
export function wanLeasePhase(deps: {
  network: BoxNetwork;
  box: BoxController;
  resolvConf?: string | undefined;
}): Phase<void> {
  const { network, box, resolvConf } = deps;
  return {
    name: 'wan-lease',
    start: async () => {
      if (resolvConf !== undefined) await rewriteInPlace(resolvConf, renderResolvConf([]), TOR_RESOLV_SIZE);
      await network.startWanLease(async (lease) => {
        box.wanLease(leaseCidr(lease));
        if (resolvConf !== undefined)
          await rewriteInPlace(resolvConf, renderResolvConf(lease.resolvers ?? []), TOR_RESOLV_SIZE);
        await box.reapply();
      });
    },
    stop: () => network.stopWanLease(),
  };
}

/** Phase `lan`: the box's LAN address (tor and the page listen on it), DHCP, the access point. */
export function lanPhase(deps: { network: BoxNetwork }): Phase<void> {
  return {
    name: 'lan',
    start: () => deps.network.startLan(),
    stop: () => deps.network.stopLan(),
  };
}
