/**
 * Where a tor client with an empty data directory connects first: its directory authorities and
 * fallback directories. A box whose firewall lets tor reach only a relay set must put these in the set
 * before tor starts, or a fresh box never bootstraps (the consensus that would fill the set cannot be
 * fetched). Pure parsers:
 *
 *   - torrc lines, when the torrc names its own (`DirAuthority`, `FallbackDir`; the simulator and tests):
 *       DirAuthority auth0 orport=5000 v3ident=HEX 198.18.0.10:7000 FINGERPRINT
 *       FallbackDir 198.18.0.13:7003 orport=5003 id=FINGERPRINT
 *   - tor's own built-in lists, read from the tor binary the box runs (its auth_dirs.inc and
 *     fallback_dirs.inc are compiled in as C string literals), so the set always matches the tor
 *     version installed rather than a copy that ages:
 *       moria1 orport=9201 v3ident=HEX 128.31.0.39:9231 1A25 C635 ...
 *       64.65.62.122 orport=443 id=HEX ipv6=[...]:443
 *
 * A client reaches authorities and fallbacks on their ORPort (directory requests are tunnelled over
 * it), so the ORPort is the endpoint that enters the set.
 */
import { isHostAddress, isIpv4, type RelayEndpoint, validateRelays } from '../firewall/params.js';

const AUTHORITY =
  /^(?:DirAuthority )?([A-Za-z0-9]{1,19}) orport=([0-9]{1,5})(?: [a-z0-9-]+(?:=\S+)?)* ([0-9.]{7,15}):([0-9]{1,5}) ((?:[0-9A-F]{4} ?){10})$/;
const FALLBACK =
  /^(?:FallbackDir )?([0-9.]{7,15})(?::[0-9]{1,5})? orport=([0-9]{1,5}) id=[0-9A-F]{40}(?: \S+)*$/;

function endpoint(address: string | undefined, port: string | undefined): RelayEndpoint | null {
  const p = Number(port);
  if (!isIpv4(address) || !isHostAddress(address) || !Number.isInteger(p) || p < 1 || p > 65535) return null;
  return { address, port: p };
}

/** One authority or fallback line (torrc form or tor's built-in form); null when it is neither. */
export function parseDirLine(line: string): RelayEndpoint | null {
  const text = line.trim().replace(/\s+/g, ' ');
  const a = AUTHORITY.exec(text);
  if (a) return endpoint(a[3], a[2]);
  const f = FALLBACK.exec(text);
  if (f) return endpoint(f[1], f[2]);
  return null;
}

/** The ORPort endpoints of the DirAuthority and FallbackDir lines of a torrc (other lines ignored). */
export function dirsFromTorrcLines(lines: readonly string[]): RelayEndpoint[] {
  const out: RelayEndpoint[] = [];
  for (const l of lines) {
    if (!/^(DirAuthority|FallbackDir) /.test(l)) continue;
    const e = parseDirLine(l);
    if (e) out.push(e);
  }
  return validateRelays(out);
}

/** True when the torrc replaces tor's built-in authorities (then the built-in fallbacks are unused too). */
export function torrcNamesDirs(lines: readonly string[]): boolean {
  return lines.some((l) => /^(DirAuthority|AlternateDirAuthority) /.test(l));
}

/**
 * The built-in authorities and fallbacks from the bytes of a tor binary: every NUL-terminated string
 * literal that has the shape of an authority or fallback line. Returns [] for a binary without them.
 */
export function builtinDirsFromBinary(binary: Buffer): RelayEndpoint[] {
  const out: RelayEndpoint[] = [];
  let start = 0;
  for (;;) {
    const hit = binary.indexOf(' orport=', start, 'latin1');
    if (hit < 0) break;
    // the literal runs from the previous NUL (or non-printable byte) to the next one
    let s = hit;
    while (s > 0 && s > hit - 64) {
      const c = binary[s - 1] ?? 0;
      if (c < 0x20 || c > 0x7e) break;
      s--;
    }
    let e = hit;
    while (e < binary.length && e < hit + 400) {
      const c = binary[e] ?? 0;
      if (c < 0x20 || c > 0x7e) break;
      e++;
    }
    const ep = parseDirLine(binary.toString('latin1', s, e));
    if (ep) out.push(ep);
    start = e;
  }
  return validateRelays(out);
}
