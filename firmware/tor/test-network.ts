/**
 * A test network for tor: the simulator and the emulated image test point the box's tor at a private
 * Tor network instead of the public one. The only thing that differs from a box on the real network is
 * data: a JSON file (`onionboxd --test-network FILE`) with the torrc lines that name the network's
 * authorities (keywords from EXTRA_KEYWORDS only) and the "is this Tor?" URL on that network.
 *
 *   { "torrc": ["TestingTorNetwork 1", "DirAuthority ...", ...], "checkUrl": "http://web.sim.test/api/ip",
 *     "builtinBridges": ["obfs4 198.18.0.20:4430 FINGERPRINT cert=... iat-mode=0"] }
 *
 * `moat` (optional, `{service, url, front}`) stands in for Tor Browser's Moat endpoint (the test network's
 * meek reflector and mock Moat), as the authorities stand in for tor's.
 *
 * `builtinBridges` (optional) stands in for the release's built-in bridge lines
 * (firmware/tor/builtin-bridges.ts), as the authorities stand in for tor's: the connection assist's
 * last resort on that network. Each line must pass the bridge grammar.
 *
 * Validated where it enters: unknown keys, unknown torrc keywords, or a URL that is not plain http(s)
 * are refused with OBX_ERR_TOR_VALUE_INVALID, and the daemon does not start.
 */
import { readFile } from 'node:fs/promises';
import { obxError } from '../errors.js';
import { checkUrl } from './check.js';
import { parseBridgeLine } from './grammar.js';
import { checkMoatEndpoint, type MoatEndpoint } from './moat.js';
import { checkExtraLine } from './torrc.js';

export interface TestNetwork {
  torrc: readonly string[];
  checkUrl?: string | undefined;
  /** The network's own built-in bridge lines (the connection assist's last resort there). */
  builtinBridges?: readonly string[] | undefined;
  /** The network's own Moat (its meek reflector and front, its Moat service). */
  moat?: MoatEndpoint | undefined;
}

export function parseTestNetwork(text: string): TestNetwork {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw obxError('TOR_VALUE_INVALID', 'test network file is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw obxError('TOR_VALUE_INVALID', 'test network file must be a JSON object');
  }
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'torrc' && k !== 'checkUrl' && k !== 'builtinBridges' && k !== 'moat')
      throw obxError('TOR_VALUE_INVALID', `test network: unknown key ${k.slice(0, 40)}`);
  }
  if (!Array.isArray(o.torrc) || o.torrc.length === 0 || o.torrc.length > 100) {
    throw obxError('TOR_VALUE_INVALID', 'test network: torrc must be a list of 1-100 lines');
  }
  const torrc = Object.freeze(o.torrc.map((l) => checkExtraLine(l)));
  if (o.checkUrl !== undefined && typeof o.checkUrl !== 'string') {
    throw obxError('TOR_VALUE_INVALID', 'test network: checkUrl must be a string');
  }
  let builtinBridges: readonly string[] | undefined;
  if (o.builtinBridges !== undefined) {
    if (!Array.isArray(o.builtinBridges) || o.builtinBridges.length > 32) {
      throw obxError('TOR_VALUE_INVALID', 'test network: builtinBridges must be a list of at most 32 lines');
    }
    builtinBridges = Object.freeze(
      o.builtinBridges.map((l, i) => {
        if (typeof l !== 'string') throw obxError('TOR_VALUE_INVALID', `test network: builtinBridges[${i}]`);
        try {
          parseBridgeLine(l);
        } catch (err) {
          throw obxError(
            'TOR_VALUE_INVALID',
            `test network: builtinBridges[${i}]: ${(err as Error).message}`,
          );
        }
        return l;
      }),
    );
  }
  const moat = o.moat === undefined ? undefined : checkMoatEndpoint(o.moat);
  return Object.freeze({
    torrc,
    ...(moat !== undefined ? { moat } : {}),
    ...(builtinBridges !== undefined ? { builtinBridges } : {}),
    ...(o.checkUrl !== undefined ? { checkUrl: checkUrl(o.checkUrl as string) } : {}),
  });
}

export async function loadTestNetwork(file: string): Promise<TestNetwork> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw obxError('TOR_VALUE_INVALID', `test network file ${file}: ${(err as Error).message}`);
  }
  return parseTestNetwork(text);
}
