/**
 * Relay endpoints for the firewall's relay set, parsed from tor's own network status: the reply to
 * `GETINFO ns/all` (or a cached consensus file, full or microdescriptor flavour). Pure. Each router
 * line (parsed by the one r-line parser, tor/protocol.ts `parseRouterLine`) gives the relay's IPv4
 * address and ORPort, the only endpoint a client connects to (directory requests are tunnelled over the
 * ORPort). Malformed lines and non-host addresses are skipped, never passed on. Bridges and fallback
 * directories come from the configuration and are added by tor/relay-set.ts.
 */
import { parseRouterLine } from '../tor/protocol.js';
import { isHostAddress, type RelayEndpoint, validateRelays } from './params.js';

export function parseRelayEndpoints(text: string): RelayEndpoint[] {
  const out: RelayEndpoint[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.startsWith('r ')) continue;
    let r: { address: string; orPort: number };
    try {
      r = parseRouterLine(raw);
    } catch {
      continue;
    }
    if (!isHostAddress(r.address) || r.orPort < 1) continue;
    out.push({ address: r.address, port: r.orPort });
  }
  return validateRelays(out);
}
