/**
 * A meek_lite bridge in the simulated world (issue 21): the world's meek reflector
 * (scripts/privnet/meek-moat.ts, on the meek front with the mock Moat) also serves a second reflector
 * name, meek-bridge.sim.test, whose sessions it connects to the private network's obfs4 bridge's ORPort,
 * as a real meek bridge's CDN hands each session to the bridge. A box whose bridge line is
 * `meekBridgeLine` reaches that bridge through lyrebird's meek_lite client: TLS to the front (by name,
 * through tor's resolver), the reflector's name in the HTTP Host only. The line's address is a placeholder
 * (documentation range), never dialled; its fingerprint is the bridge's, so tor checks whom it reached.
 * Pure: the world passes `meekBridgeArgs` to the reflector (WorldOptions.moat with obfs4Bridge).
 */

/** The reflector name a meek_lite line's `url=` names for the bridge (never resolved: only the front is). */
export const MEEK_BRIDGE_HOST = 'meek-bridge.sim.test';
/** The line's placeholder address (TEST-NET-1, never contacted by meek_lite). */
export const MEEK_BRIDGE_PLACEHOLDER = '192.0.2.20:80';

interface Bridge {
  address: string;
  orPort: number;
  fingerprint: string;
}

/** The bridge line a box uses to reach `bridge` through the world's meek front `front` (a host name). */
export function meekBridgeLine(bridge: Pick<Bridge, 'fingerprint'>, front: string): string {
  return `meek_lite ${MEEK_BRIDGE_PLACEHOLDER} ${bridge.fingerprint} url=https://${MEEK_BRIDGE_HOST}/ front=${front}`;
}

/** The reflector's arguments that send MEEK_BRIDGE_HOST's sessions to the bridge's ORPort. */
export function meekBridgeArgs(bridge: Pick<Bridge, 'address' | 'orPort'>): string[] {
  return ['--bridge', `${bridge.address}:${bridge.orPort}`, '--bridge-host', MEEK_BRIDGE_HOST];
}
