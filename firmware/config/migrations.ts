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
 */
export const MIGRATIONS: Readonly<Record<number, Migration>> = Object.freeze({
  1: (doc: Record<string, unknown>) => {
    const network = doc.network;
    if (network === null || typeof network !== 'object' || Array.isArray(network)) return doc;
    return { ...doc, network: { ...network, accessPoint: null, upstreamWifi: null } };
  },
  2: (doc: Record<string, unknown>) => accessPointDefaults(doc, randomBssid),
});

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
