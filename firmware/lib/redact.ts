/**
 * The one redaction of text that leaves the box (the diagnostics download): pure, no I/O.
 *
 * Replaced by `[redacted]`:
 *   - each given secret, exactly (the password hash, the session key);
 *   - from each configured bridge line: its address (host:port and the host alone), its fingerprint and
 *     every long argument value (cert=, url=, ...), wherever they appear;
 *   - whatever has the shape of a bridge's parts even when no configured line names it (tor's warnings
 *     name the bridge it tried): `cert=` and `url=` values, 40-hex-digit relay fingerprints (with or
 *     without tor's `$`), and IPv4 or bracketed IPv6 addresses with a port.
 * Addresses without a port (the box's own LAN address) stay: the owner needs them to read the file.
 */
export const REDACTED = '[redacted]';

export interface RedactOptions {
  /** Exact strings to remove (null/empty entries are skipped). */
  secrets?: readonly (string | null | undefined)[];
  /** The configured bridge lines (tor's `Bridge` lines without the keyword). */
  bridges?: readonly string[];
}

/** Argument values shorter than this are not secrets (iat-mode=0). */
const MIN_ARG_SECRET = 8;

const PATTERNS: readonly RegExp[] = [
  /\b(cert|url)=\S+/gi,
  /\$?\b[0-9A-Fa-f]{40}\b/g,
  /\b(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}\b/g,
  /\[[0-9A-Fa-f:.]+\]:\d{1,5}\b/g,
];

/** The parts of one bridge line that identify it: address, host, fingerprint, long argument values. */
export function bridgeSecrets(line: string): string[] {
  const out: string[] = [];
  for (const word of line.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0) {
      const value = word.slice(eq + 1);
      if (value.length >= MIN_ARG_SECRET) out.push(value);
      continue;
    }
    const addr = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/.exec(word);
    if (addr?.[1]) {
      out.push(word, addr[1].replace(/^\[|\]$/g, ''));
    } else if (/^[0-9A-Fa-f]{40}$/.test(word)) {
      out.push(word);
    }
  }
  return out;
}

export function redact(text: string, opts: RedactOptions = {}): string {
  const exact = [...(opts.secrets ?? []), ...(opts.bridges ?? []).flatMap(bridgeSecrets)]
    .filter((s): s is string => typeof s === 'string' && s.length > 0)
    // longest first: a host:port goes whole before its host alone
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of exact) out = out.split(secret).join(REDACTED);
  for (const pattern of PATTERNS) {
    out = out.replace(pattern, (match, key?: string) =>
      typeof key === 'string' && match.startsWith(`${key}=`) ? `${key}=${REDACTED}` : REDACTED,
    );
  }
  return out;
}
