/**
 * Networking: the entry points onionboxd composes. Pure parts (grammar.ts, render.ts, parse.ts) and
 * thin adapters (wifi.ts: NetworkManager/nmcli, lan-dhcp.ts: dnsmasq), joined for the BoxApi by
 * box-network.ts. Wiring, in the daemon:
 *
 *   const cfg = config.get().network;
 *   const lanDhcp = createLanDhcp({
 *     settings: { interface: cfg.lanInterface, lanAddr: `${cfg.lanAddress}/${cfg.lanPrefix}`,
 *                 leaseFile: join(runtimeDir, 'dnsmasq.leases'), wan: WAN_SUBNET_OR_NULL },
 *     confPath: join(stateDir, 'dnsmasq.conf'), log });
 *   await lanDhcp.start();                      // after the lockdown ruleset is loaded; stop() on exit
 *   const wan = cfg.upstreamWifi ? new NetworkManagerWan({ interface: cfg.upstreamWifi.interface }) : null;
 *   const network = createBoxNetwork({ wan, lan: lanDhcp, sharedRadio: SAME_PHY });
 *   const ap = cfg.accessPoint ? createAccessPoint({ settings: { ...cfg.accessPoint, interface: cfg.lanInterface },
 *                                                   confPath: join(stateDir, 'hostapd.conf'), log }) : null;
 *   await ap?.start();                          // createBoxNetwork({ ..., applyAccessPoint: (a) => ap.update(...) })
 *   new BoxController({ ...deps, network });
 *
 * NetworkManager's own configuration (renderNetworkManagerConf, renderEthernetKeyfile) is written by
 * the image build or at first boot; the daemon never restarts NetworkManager itself.
 */
export { AccessPoint, type AccessPointOptions, createAccessPoint } from './access-point.js';
export { createBoxNetwork, type NetworkLike } from './box-network.js';
export { createLanDhcp, LanDhcp, type LanDhcpOptions } from './lan-dhcp.js';
export {
  renderDnsmasq,
  renderEthernetKeyfile,
  renderHostapd,
  renderNetworkManagerConf,
  renderWifiKeyfile,
} from './render.js';
export { NetworkManagerWan, type NetworkManagerWanOptions } from './wifi.js';
