/**
 * Versioned migrations of the configuration document. Each migration turns version N into N+1 and is a
 * pure function of the document. The store backs up the file before writing a migrated document.
 */
import { obxError } from '../errors.js';
import { randomBssid } from '../net/grammar.js';
import { CONFIG_VERSION } from './schema.js';

export type Migration = (doc: Record<string, unknown>) => Record<string, unknown>;

/**
 * migrations[n] turns version n into n + 1.
 *  1 -> 2: networking (issue 12): `network.accessPoint` and `network.upstreamWifi`, both null (no access
 *          point until the owner gives it a passphrase; the WAN stays on Ethernet).
 *  2 -> 3: Wi-Fi guests isolated (issue 23): a configured access point gains `isolateClients: true` and
 *          a random locally administered `bssid` (the one migration that draws randomness: the BSSID is
 *          generated once per box; `accessPointDefaults` takes the source for tests).
 *  3 -> 4: no built-in snowflake (issue 21): `tor.builtinSnowflake` is gone. It could never connect (the
 *          firewall lets tor out over TCP to known relays only; snowflake needs DNS, a CDN front and UDP),
 *          so the box offers it no more until snowflake works end to end. Bridge lines the owner
 *          entered stay as they were; a box that had only the built-in snowflake has no bridge line
 *          left, so `useBridges` turns off (tor then connects to public guards: the box never connected
 *          before, and the settings page shows bridges off).
 */
export const MIGRATIONS: Readonly<Record<number, Migration>> = Object.freeze({
  1: (doc: Record<string, unknown>) => {
    const network = doc.network;
    if (network === null || typeof network !== 'object' || Array.isArray(network)) return doc;
    return { ...doc, network: { ...network, accessPoint: null, upstreamWifi: null } };
  },
  2: (doc: Record<string, unknown>) => accessPointDefaults(doc, randomBssid),
  3: dropBuiltinSnowflake,
});

/** 3 -> 4: `tor.builtinSnowflake` removed; bridges stay on only where the owner's own lines remain. */
export function dropBuiltinSnowflake(doc: Record<string, unknown>): Record<string, unknown> {
  const tor = doc.tor;
  if (tor === null || typeof tor !== 'object' || Array.isArray(tor)) return doc;
  const { builtinSnowflake, ...rest } = tor as Record<string, unknown>;
  const ownLines = Array.isArray(rest.bridges) && rest.bridges.length > 0;
  const useBridges = builtinSnowflake === true && !ownLines ? false : rest.useBridges;
  return { ...doc, tor: { ...rest, useBridges } };
}

/** 2 -> 3: an existing access point isolates its clients and gets its own BSSID from `bssid()`. */
export function accessPointDefaults(
  doc: Record<string, unknown>,
  bssid: () => string,
): Record<string, unknown> {
  const network = doc.network;
  if (network === null || typeof network !== 'object' || Array.isArray(network)) return doc;
  const ap = (network as Record<string, unknown>).accessPoint;
  if (ap === null || typeof ap !== 'object' || Array.isArray(ap)) return doc;
  return {
    ...doc,
    network: { ...network, accessPoint: { ...ap, isolateClients: true, bssid: bssid() } },
  };
}

export function migrate(
  doc: unknown,
  migrations: Readonly<Record<number, Migration>> = MIGRATIONS,
  target: number = CONFIG_VERSION,
): { doc: unknown; from: number; migrated: boolean } {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    return { doc, from: -1, migrated: false };
  const version = (doc as Record<string, unknown>).version;
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw obxError('CONFIG_UNKNOWN_VERSION', `version is ${JSON.stringify(version) ?? 'missing'}`);
  }
  if (version > target) {
    throw obxError('CONFIG_UNKNOWN_VERSION', `version ${version} is newer than this firmware (${target})`);
  }
  let current = structuredClone(doc) as Record<string, unknown>;
  for (let v = version; v < target; v++) {
    const step = migrations[v];
    if (!step) throw obxError('CONFIG_UNKNOWN_VERSION', `no migration from version ${v}`);
    current = { ...step(current), version: v + 1 };
  }
  return { doc: current, from: version, migrated: version !== target };
}
