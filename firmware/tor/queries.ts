/**
 * What the box asks a running tor: its circuits with each hop's address and country, and the relays of
 * its consensus (the firewall's relay set; tor/relay-set.ts adds authorities, fallbacks and bridges).
 */
import type { CircuitInfo } from '../box/api.js';
import type { RelayEndpoint } from '../firewall/params.js';
import type { TorControl } from './control.js';
import { parseRouterLine } from './protocol.js';

interface HopInfo {
  address?: string | undefined;
  country?: string | undefined;
}

const MAX_HOPS_CACHED = 500;

export class TorQueries {
  readonly #hops = new Map<string, HopInfo>();

  async circuits(control: TorControl): Promise<CircuitInfo[]> {
    const out: CircuitInfo[] = [];
    for (const c of await control.circuits()) {
      const hops = [];
      for (const h of c.hops) {
        const info = await this.#hopInfo(control, h.fingerprint);
        hops.push({
          fingerprint: h.fingerprint,
          nickname: h.nickname,
          address: info.address,
          country: info.country,
        });
      }
      out.push({ id: c.id, status: c.status, purpose: c.purpose, hops });
    }
    return out;
  }

  /** The consensus's relays (GETINFO ns/all): address and ORPort, IPv4 only (IPv6 never leaves the box). */
  async relayEndpoints(control: TorControl): Promise<RelayEndpoint[]> {
    const seen = new Set<string>();
    const out: RelayEndpoint[] = [];
    for (const r of await control.networkStatus()) {
      const key = `${r.address}:${r.orPort}`;
      if (seen.has(key) || r.address.includes(':')) continue;
      seen.add(key);
      out.push({ address: r.address, port: r.orPort });
    }
    return out;
  }

  async #hopInfo(control: TorControl, fp: string): Promise<HopInfo> {
    const cached = this.#hops.get(fp);
    if (cached) return cached;
    const info: HopInfo = {};
    try {
      const ns = (await control.getInfo(`ns/id/${fp}`))[`ns/id/${fp}`] ?? '';
      const r = ns.split('\n').find((l) => l.startsWith('r '));
      if (r) info.address = parseRouterLine(r).address;
      if (info.address) {
        const cc = (await control.getInfo(`ip-to-country/${info.address}`))[`ip-to-country/${info.address}`];
        if (cc && /^[a-z]{2}$/.test(cc) && cc !== '??') info.country = cc;
      }
    } catch {
      // unknown relay (e.g. a bridge): no address or country
    }
    if (this.#hops.size > MAX_HOPS_CACHED) this.#hops.clear();
    this.#hops.set(fp, info);
    return info;
  }
}
