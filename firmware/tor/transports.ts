/**
 * What each configured pluggable transport needs from the WAN, as data for the firewall (issue 21). Pure.
 *
 *   obfs4       TCP to the bridge's own address and port: the relay set, nothing more.
 *   webtunnel   DNS for the url= host, TCP to it (443 unless the URL names a port); the bridge line's
 *               address is a placeholder, never contacted.
 *   meek_lite   DNS for the front, TCP 443 (or the url='s port) to it; placeholder address.
 *   snowflake   DNS for the fronts and STUN hosts, TCP 443 to the fronts (broker, AMP cache or SQS), UDP
 *               to STUN servers and volunteer proxies at any public address; placeholder address.
 *
 * Only while bridges are on and a line of that transport is configured; vanilla and obfs4 bridges add
 * their address to the relay set instead (relay-set.ts: `bridgeEndpoints`).
 */
import type { TorConfig } from '../config/schema.js';
import { MAX_RESOLVERS, type TransportOpenings } from '../firewall/params.js';
import { type BridgeLine, parseBridgeLine, type Transport } from './grammar.js';

export interface TransportNeeds {
  /** tor's uid may ask the WAN's own resolver (from the lease), and nothing else may. */
  dns: boolean;
  /** TCP ports tor's uid may open to public addresses (fronts, webtunnel hosts, brokers). */
  tcpPorts: number[];
  /** UDP from tor's uid to public addresses (snowflake), never to ports 53 or 123. */
  udp: boolean;
}

export const NO_TRANSPORT_NEEDS: Readonly<TransportNeeds> = Object.freeze({
  dns: false,
  tcpPorts: [],
  udp: false,
});

/**
 * What the connection assist's Moat client needs while it runs (onionbox-moat.service, tor's uid): DNS
 * to the WAN's resolver for the front's name, TCP 443 to the front (meek_lite dials the front on the
 * url='s port, 443). Only while a job runs (RelaySet.moatWindow).
 */
export const MOAT_NEEDS: Readonly<TransportNeeds> = Object.freeze({ dns: true, tcpPorts: [443], udp: false });

/** Both needs at once (the configured transports' and the Moat window's). Pure. */
export function mergeNeeds(a: TransportNeeds, b: TransportNeeds): TransportNeeds {
  const ports = [...new Set([...a.tcpPorts, ...b.tcpPorts])].sort((x, y) => x - y);
  return { dns: a.dns || b.dns, tcpPorts: ports, udp: a.udp || b.udp };
}

/** Transports that reach their bridge at the line's own address (it goes into the relay set). */
export function dialsBridgeAddress(t: Transport): boolean {
  return t === 'vanilla' || t === 'obfs4';
}

const URL_KEYS = ['url', 'ampcache', 'sqsqueue'];

function urlPorts(b: BridgeLine): number[] {
  const ports: number[] = [];
  for (const [k, v] of b.args) {
    if (!URL_KEYS.includes(k)) continue;
    // the grammar accepted only https URLs with a host: the port is the URL's, else 443
    const port = new URL(v).port;
    ports.push(port === '' ? 443 : Number(port));
  }
  return ports;
}

/** What the configured bridges need beyond the relay set. */
export function transportNeeds(tor: TorConfig): TransportNeeds {
  if (!tor.useBridges) return NO_TRANSPORT_NEEDS;
  const ports = new Set<number>();
  let udp = false;
  for (const line of tor.bridges) {
    const b = parseBridgeLine(line);
    if (dialsBridgeAddress(b.transport)) continue;
    ports.add(443); // fronts and webtunnel hosts are reached over TLS on 443
    for (const p of urlPorts(b)) ports.add(p);
    if (b.transport === 'snowflake') udp = true;
  }
  if (ports.size === 0) return NO_TRANSPORT_NEEDS;
  return { dns: true, tcpPorts: [...ports].sort((a, b) => a - b), udp };
}

/**
 * The firewall's openings for these needs, given the WAN's resolvers from the lease (none known: the
 * transports' DNS stays closed, and they cannot connect until a lease names one). Undefined: no opening.
 */
export function transportOpenings(
  needs: TransportNeeds,
  resolvers: readonly string[],
): TransportOpenings | undefined {
  if (!needs.dns && needs.tcpPorts.length === 0 && !needs.udp) return undefined;
  return {
    resolvers: needs.dns ? [...new Set(resolvers)].slice(0, MAX_RESOLVERS) : [],
    tcpPorts: [...needs.tcpPorts],
    udp: needs.udp,
  };
}
