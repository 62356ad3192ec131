/**
 * Host-header allowlist against DNS rebinding: the page answers only to the box's LAN address, its
 * configured name, and (in the simulator) loopback names. Pure functions.
 */

/** The host name of a Host header, lower case, without port or trailing dot; null when malformed. */
export function hostOfHeader(header: string | undefined): string | null {
  if (header === undefined || header.length === 0 || header.length > 260) return null;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(header)) return null;
  let host: string;
  if (header.startsWith('[')) {
    const end = header.indexOf(']');
    if (end < 0) return null;
    host = header.slice(0, end + 1);
    const rest = header.slice(end + 1);
    if (rest !== '' && !/^:[0-9]{1,5}$/.test(rest)) return null;
  } else {
    const parts = header.split(':');
    if (parts.length > 2) return null;
    if (parts.length === 2 && !/^[0-9]{1,5}$/.test(parts[1] ?? '')) return null;
    host = parts[0] ?? '';
  }
  host = host.toLowerCase().replace(/\.$/, '');
  return host === '' ? null : host;
}

export function allowedHosts(opts: {
  lanAddress: string;
  hostname: string;
  simulate: boolean;
  extra?: readonly string[] | undefined;
}): Set<string> {
  const set = new Set([opts.lanAddress.toLowerCase(), opts.hostname.toLowerCase()]);
  if (opts.simulate) for (const h of ['127.0.0.1', 'localhost', '[::1]']) set.add(h);
  for (const h of opts.extra ?? []) set.add(h.toLowerCase());
  return set;
}

export function hostAllowed(header: string | undefined, allowed: ReadonlySet<string>): boolean {
  const host = hostOfHeader(header);
  return host !== null && allowed.has(host);
}
