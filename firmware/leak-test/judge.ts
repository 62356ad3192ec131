/**
 * The leak self-test's verdicts: what each probe's raw outcome means. Pure (no I/O); the probes that
 * produce the outcomes are in probes.ts, the sequence in leak-test.ts.
 *
 * How a leak shows itself. onionboxd is not tor's user, so the box's output chain must drop anything it
 * sends to the WAN. Two signs prove that the firewall stopped a packet *inside the box*:
 *   - UDP: a datagram the output hook drops makes send() fail at once with EPERM;
 *   - TCP: connect() does not fail (the kernel retransmits the SYN quietly), but a connection the output
 *     hook dropped is never confirmed in the connection-tracking table; one that left the box is. So the
 *     probe connects from a known source port and then asks conntrack.
 * Every other outcome means the packet got past the output hook (an answer, a refusal from the peer, an
 * error after the hook, a confirmed conntrack entry), so it counts as a leak. "No route" (ENETUNREACH,
 * decided before the output hook) or an unreadable conntrack table means the probe could not tell.
 */

export type LeakCheckId = 'firewall' | 'forwarding' | 'ipv6' | 'clearnet-tcp' | 'clearnet-udp' | 'tor-exit';

export type LeakOutcome = 'pass' | 'fail' | 'not-run';

export interface LeakCheck {
  id: LeakCheckId;
  /** What was checked, for a household. */
  title: string;
  outcome: LeakOutcome;
  /** What was seen: one or two sentences. */
  detail: string;
}

export interface LeakReport {
  /** ms since epoch when the test finished. */
  at: number;
  durationMs: number;
  /** True when no check failed (checks that could not run are listed, but are not a leak). */
  ok: boolean;
  checks: LeakCheck[];
}

/** A raw probe result, as probes.ts reports it. */
export type ProbeResult =
  | { kind: 'error'; code: string }
  | { kind: 'connected' }
  | { kind: 'answered' }
  /** No answer in time. `tracked`: a conntrack entry for the probe exists (it left the box); null = unknown. */
  | { kind: 'silent'; tracked: boolean | null };

export const TITLES: Readonly<Record<LeakCheckId, string>> = Object.freeze({
  firewall: 'The firewall in the kernel is the one the box wrote',
  forwarding: 'The box forwards nothing between its networks',
  ipv6: 'IPv6 is off',
  'clearnet-tcp': 'A direct TCP connection to the internet side is stopped inside the box',
  'clearnet-udp': 'A direct DNS query to the internet side is stopped inside the box',
  'tor-exit': 'Traffic through the box leaves by a Tor exit',
});

function check(id: LeakCheckId, outcome: LeakOutcome, detail: string): LeakCheck {
  return { id, title: TITLES[id], outcome, detail };
}

/** Verdict on one direct probe towards `target` (the modem or the WAN's DHCP server). */
export function judgeProbe(
  id: 'clearnet-tcp' | 'clearnet-udp',
  target: string | null,
  result: ProbeResult | null,
): LeakCheck {
  if (target === null || result === null) {
    return check(
      id,
      'not-run',
      'No modem or DHCP server is known on the internet side yet, so there was nothing to probe.',
    );
  }
  const what = id === 'clearnet-tcp' ? `A TCP connection to ${target} port 53` : `A DNS query to ${target}`;
  switch (result.kind) {
    case 'error':
      if (result.code === 'EPERM') {
        return check(id, 'pass', `${what} was refused by the box's own firewall before it left (EPERM).`);
      }
      if (result.code === 'ENETUNREACH') {
        return check(
          id,
          'not-run',
          `The box has no route to ${target} (ENETUNREACH), so the probe could not run.`,
        );
      }
      return check(
        id,
        'fail',
        `${what} got past the box's firewall: it failed only later (${result.code}), so a packet may have left.`,
      );
    case 'connected':
      return check(id, 'fail', `${what} was answered: a packet from outside tor left the box.`);
    case 'answered':
      return check(id, 'fail', `${what} was answered: a packet from outside tor left the box.`);
    case 'silent':
      if (result.tracked === false) {
        return check(id, 'pass', `${what} was dropped by the box's own firewall before it left.`);
      }
      if (result.tracked === null) {
        return check(
          id,
          'not-run',
          `${what} got no answer, and the box could not read its connection table to tell why.`,
        );
      }
      return check(id, 'fail', `${what} got past the box's firewall: the packet was sent (no answer came).`);
  }
}

/** Sysctl values the box sets (firmware/system/60-onionbox.conf); null = the key does not exist. */
export interface SysctlValues {
  ipForward: string | null;
  allForwarding: string | null;
  /** net.ipv6.conf.all.disable_ipv6 (null when the kernel has no IPv6 at all). */
  ipv6Disabled: string | null;
  ipv6Present: boolean;
}

export function judgeForwarding(v: SysctlValues): LeakCheck {
  const on = [
    v.ipForward !== '0' ? `net.ipv4.ip_forward = ${v.ipForward ?? 'unreadable'}` : null,
    v.allForwarding !== '0' ? `net.ipv4.conf.all.forwarding = ${v.allForwarding ?? 'unreadable'}` : null,
  ].filter((x): x is string => x !== null);
  if (on.length === 0)
    return check('forwarding', 'pass', 'IPv4 forwarding is off (and the firewall forwards nothing).');
  return check('forwarding', 'fail', `Forwarding is not off: ${on.join(', ')}.`);
}

export function judgeIpv6(v: SysctlValues): LeakCheck {
  if (!v.ipv6Present) return check('ipv6', 'pass', 'This kernel has no IPv6.');
  if (v.ipv6Disabled === '1') return check('ipv6', 'pass', 'IPv6 is disabled on every interface.');
  return check(
    'ipv6',
    'fail',
    `net.ipv6.conf.all.disable_ipv6 is ${v.ipv6Disabled ?? 'unreadable'}, not 1 (the firewall still drops IPv6).`,
  );
}

/** The firewall audit: null = the kernel holds exactly the table the box applied; else the difference. */
export function judgeFirewall(mode: string | null, difference: string | null): LeakCheck {
  if (mode === null) return check('firewall', 'fail', 'The box has not applied its firewall.');
  if (difference !== null) return check('firewall', 'fail', `The kernel's table differs: ${difference}`);
  return check('firewall', 'pass', `The kernel holds the box's table, mode "${mode}", rule for rule.`);
}

export type TorExitResult =
  | { kind: 'not-ready'; why: string }
  | { kind: 'checked'; isTor: boolean; ip: string }
  | { kind: 'error'; message: string };

/** The "is this Tor?" check through tor; `wanAddresses` are the box's own WAN addresses. */
export function judgeTorExit(result: TorExitResult, wanAddresses: readonly string[]): LeakCheck {
  switch (result.kind) {
    case 'not-ready':
      return check('tor-exit', 'not-run', result.why);
    case 'error':
      return check('tor-exit', 'not-run', `The check through tor did not complete: ${result.message}`);
    case 'checked':
      if (wanAddresses.includes(result.ip)) {
        return check('tor-exit', 'fail', `The check service saw the box's own address ${result.ip}.`);
      }
      if (!result.isTor) {
        return check('tor-exit', 'fail', `The check service saw ${result.ip} and says it is not a Tor exit.`);
      }
      return check('tor-exit', 'pass', `The check service saw ${result.ip}, a Tor exit.`);
  }
}

export function summarize(checks: LeakCheck[], at: number, durationMs: number): LeakReport {
  return { at, durationMs, ok: checks.every((c) => c.outcome !== 'fail'), checks };
}

const HEX8 = /^[0-9A-Fa-f]{8}$/;

/**
 * Default gateways of `iface` from /proc/net/route (columns: Iface Destination Gateway Flags ...; the
 * addresses are little-endian hex). Only default routes (destination 0) with RTF_GATEWAY.
 */
export function parseDefaultGateways(procNetRoute: string, iface: string): string[] {
  const out: string[] = [];
  for (const line of procNetRoute.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[0] !== iface) continue;
    const [, dest, gw, flags] = cols as [string, string, string, string];
    if (!HEX8.test(dest) || !HEX8.test(gw) || !/^[0-9A-Fa-f]{1,4}$/.test(flags)) continue;
    if (Number.parseInt(dest, 16) !== 0 || (Number.parseInt(flags, 16) & 0x2) === 0) continue;
    const n = Number.parseInt(gw, 16);
    if (n === 0) continue;
    const addr = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
    if (!out.includes(addr)) out.push(addr);
  }
  return out;
}
