/**
 * The one owner of the firewall's relay set: every address and ORPort tor's uid may reach on the WAN.
 *
 * The set is the union of
 *   - where a fresh tor starts: the directory authorities and fallback directories (the torrc's own
 *     DirAuthority/FallbackDir lines when it names authorities, else tor's built-in lists read from the
 *     tor binary the box runs),
 *   - the configured bridges (when bridges are on),
 *   - what tor's consensus lists: the cached consensus in tor's data directory before tor runs, then
 *     `GETINFO ns/all` whenever tor has a new one.
 * It is filled before tor starts (a fresh box could never bootstrap from an empty set) and refreshed
 * before every reload that changes bridges. `compose` is the pure part; RelaySet holds the current
 * value and reads the files.
 *
 * RelaySet is the set's only owner: the firewall's parameters read current() (every full apply carries
 * it), and every change after the seed goes through settingsChanged()/consensusChanged(), which hand the
 * new set to `publish` (the daemon: the firewall's refreshRelays, once a ruleset is loaded).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TorConfig } from '../config/schema.js';
import { isHostAddress, type RelayEndpoint, validateRelays } from '../firewall/params.js';
import { parseRelayEndpoints } from '../firewall/relays.js';
import { builtinDirsFromBinary, dirsFromTorrcLines, torrcNamesDirs } from './dirs.js';
import { parseBridgeLine } from './grammar.js';
import {
  dialsBridgeAddress,
  MOAT_NEEDS,
  mergeNeeds,
  NO_TRANSPORT_NEEDS,
  type TransportNeeds,
  transportNeeds,
} from './transports.js';

/**
 * The bridges' endpoints (IPv4 only: IPv6 never leaves the box). Lines were validated when stored. Only
 * vanilla and obfs4 bridges: the address in a webtunnel, meek_lite or snowflake line is a placeholder that
 * is never contacted, so it never enters the set (transports.ts says what those transports need instead).
 */
export function bridgeEndpoints(settings: TorConfig): RelayEndpoint[] {
  if (!settings.useBridges) return [];
  const out: RelayEndpoint[] = [];
  for (const l of settings.bridges) {
    const b = parseBridgeLine(l);
    if (!dialsBridgeAddress(b.transport)) continue;
    if (!b.address.includes(':') && isHostAddress(b.address)) out.push({ address: b.address, port: b.port });
  }
  return out;
}

/** The set from its parts: deduplicated, sorted, validated. Pure. */
export function composeRelaySet(parts: {
  dirs: readonly RelayEndpoint[];
  bridges: readonly RelayEndpoint[];
  consensus: readonly RelayEndpoint[];
}): RelayEndpoint[] {
  const routable = (l: readonly RelayEndpoint[]) =>
    l.filter((r) => !r.address.includes(':') && isHostAddress(r.address));
  return validateRelays([...routable(parts.dirs), ...routable(parts.bridges), ...routable(parts.consensus)]);
}

export interface RelaySetOptions {
  /** The tor binary whose built-in authority and fallback lists apply (default /usr/bin/tor). */
  torBinary?: string | undefined;
  /** The torrc's extra lines (a test network's DirAuthority lines), when any. */
  torrcLines: readonly string[];
  /** tor's data directory (its cached consensus seeds the set before tor runs). */
  dataDir: string;
  /** Where each changed set goes (after the seed: the seed is carried by the first apply). */
  publish(relays: RelayEndpoint[], why: string): Promise<void>;
}

/** Whether two transport needs open the same firewall rules. */
function sameNeeds(a: TransportNeeds, b: TransportNeeds): boolean {
  return a.dns === b.dns && a.udp === b.udp && a.tcpPorts.join(',') === b.tcpPorts.join(',');
}

export class RelaySet {
  #dirs: RelayEndpoint[] = [];
  #bridges: RelayEndpoint[] = [];
  #consensus: RelayEndpoint[] = [];
  #current: RelayEndpoint[] = [];
  #needs: TransportNeeds = NO_TRANSPORT_NEEDS;
  /** The connection assist asks Moat now (onionbox-moat.service runs): its openings are added. */
  #moat = false;
  #rulesChanged: (() => Promise<void>) | null = null;

  readonly #opts: RelaySetOptions;
  constructor(opts: RelaySetOptions) {
    this.#opts = opts;
  }

  /** What the configured transports (and a running Moat job) need beyond the set (firewall's openings). */
  transportNeeds(): TransportNeeds {
    return this.#moat ? mergeNeeds(this.#needs, MOAT_NEEDS) : this.#needs;
  }

  /**
   * Opens (true) or closes (false) the Moat window: tor's uid's openings for onionbox-moat.service, which
   * runs as that uid. The whole ruleset again when that changes the rules (resolves once it is loaded).
   */
  async moatWindow(open: boolean): Promise<void> {
    const before = this.transportNeeds();
    this.#moat = open;
    if (!sameNeeds(before, this.transportNeeds()) && this.#rulesChanged) await this.#rulesChanged();
  }

  /**
   * Who loads the whole ruleset again when the transports' needs change (the box's reapply: its
   * parameters read transportNeeds() and current()). Until set, only the set is published.
   */
  onRulesChanged(reapply: () => Promise<void>): void {
    this.#rulesChanged = reapply;
  }

  /** The set as it stands. */
  current(): RelayEndpoint[] {
    return this.#current;
  }

  /** How the set is made up (for logs and `onionbox status`). */
  sizes(): { dirs: number; bridges: number; consensus: number; total: number } {
    return {
      dirs: this.#dirs.length,
      bridges: this.#bridges.length,
      consensus: this.#consensus.length,
      total: this.#current.length,
    };
  }

  /** Fills the set before tor starts: authorities and fallbacks, bridges, the cached consensus. */
  async seed(settings: TorConfig): Promise<RelayEndpoint[]> {
    const lines = this.#opts.torrcLines;
    if (torrcNamesDirs(lines)) {
      this.#dirs = dirsFromTorrcLines(lines);
    } else {
      const binary = await readFile(this.#opts.torBinary ?? '/usr/bin/tor');
      this.#dirs = [...builtinDirsFromBinary(binary), ...dirsFromTorrcLines(lines)];
    }
    this.#consensus = await this.#cachedConsensus();
    this.#bridges = bridgeEndpoints(settings);
    this.#needs = transportNeeds(settings);
    return this.#compose();
  }

  /** New settings (before tor reloads with them): their bridges replace the previous ones. */
  settingsChanged(settings: TorConfig): Promise<void> {
    this.#bridges = bridgeEndpoints(settings);
    const before = this.transportNeeds();
    this.#needs = transportNeeds(settings);
    const changed = !sameNeeds(before, this.transportNeeds());
    const relays = this.#compose();
    // new transport openings are rules, not set elements: the whole ruleset (which carries the set)
    if (changed && this.#rulesChanged) return this.#rulesChanged();
    return this.#opts.publish(relays, 'bridges changed');
  }

  /** tor reported its consensus (GETINFO ns/all plus bridges, as the supervisor gives). */
  consensusChanged(consensus: readonly RelayEndpoint[], why: string): Promise<void> {
    this.#consensus = [...consensus];
    return this.#opts.publish(this.#compose(), why);
  }

  #compose(): RelayEndpoint[] {
    this.#current = composeRelaySet({
      dirs: this.#dirs,
      bridges: this.#bridges,
      consensus: this.#consensus,
    });
    return this.#current;
  }

  async #cachedConsensus(): Promise<RelayEndpoint[]> {
    for (const name of ['cached-microdesc-consensus', 'cached-consensus']) {
      try {
        return parseRelayEndpoints(await readFile(join(this.#opts.dataDir, name), 'utf8'));
      } catch {
        // not there yet (a fresh box), or unreadable: the next one, or none
      }
    }
    return [];
  }
}
