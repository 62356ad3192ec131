/**
 * Relay endpoints for the firewall's relay set, parsed from tor's own network status: the reply to
 * `GETINFO ns/all` (or a cached consensus file, full or microdescriptor flavour). Pure. Each router
 * line gives the relay's IPv4 address and ORPort, the only endpoint a client connects to (directory
 * requests are tunnelled over the ORPort). Bridges and fallback directories come from the configuration
 * and are added by the caller.
 *
 *   full:  r nickname identity digest YYYY-MM-DD HH:MM:SS IP ORPort DirPort
 *   micro: r nickname identity YYYY-MM-DD HH:MM:SS IP ORPort DirPort
 */
import { isHostAddress, isIpv4, type RelayEndpoint, validateRelays } from './params.js';

export function parseRelayEndpoints(text: string): RelayEndpoint[] {
  const out: RelayEndpoint[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.startsWith('r ')) continue;
    const f = line.split(' ');
    // the address follows the time field (HH:MM:SS); locate it instead of counting fields
    const i = f.findIndex((x, k) => k > 2 && /^\d{2}:\d{2}:\d{2}$/.test(x));
    const address = f[i + 1];
    const port = Number(f[i + 2]);
    if (
      i < 0 ||
      !isIpv4(address) ||
      !isHostAddress(address) ||
      !Number.isInteger(port) ||
      port < 1 ||
      port > 65535
    )
      continue;
    out.push({ address, port });
  }
  return validateRelays(out);
}
