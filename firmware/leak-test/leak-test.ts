/**
 * The leak self-test the owner runs from the page (or `onionbox leak-test`): from inside the box, it
 * checks that the kernel holds the box's firewall, that nothing is forwarded, that IPv6 is off, that a
 * direct TCP connection and a direct DNS query to the modem are stopped inside the box, and that
 * traffic through tor leaves by a Tor exit. One run at a time; the last report is kept for the page.
 *
 * What it cannot see: it runs on the box, not on a LAN device, so it proves the box's side of the rules
 * (the same ones a device's packets meet) rather than a particular device's traffic.
 */
import {
  judgeFirewall,
  judgeForwarding,
  judgeIpv6,
  judgeProbe,
  judgeTorExit,
  type LeakCheck,
  type LeakReport,
  type ProbeResult,
  parseDefaultGateways,
  type SysctlValues,
  summarize,
  type TorExitResult,
} from './judge.js';
import { readRouteTable, readSysctls, tcpProbe, udpProbe } from './probes.js';

export type { LeakCheck, LeakCheckId, LeakOutcome, LeakReport } from './judge.js';

export interface LeakTestDeps {
  /** The firewall mode the box last applied (null before the first apply). */
  firewallMode(): string | null;
  /** Audits the kernel's table against the applied one; rejects with the difference. */
  audit(): Promise<void>;
  /** True when tor is bootstrapped and the box routes (the kill switch is off). */
  routing(): boolean;
  /** "Is this Tor?" through tor's SOCKS port. */
  torCheck(): Promise<{ isTor: boolean; ip: string }>;
  /** The WAN interface's name. */
  wanInterface(): string;
  /** The WAN's DHCP servers the box knows (NetworkManager's lease). */
  dhcpServers(): readonly string[];
  /** The box's own WAN addresses. */
  wanAddresses(): readonly string[];
  /** Probes and readers (tests replace them to produce outcomes a healthy box never shows). */
  probes?: Partial<LeakProbes>;
  now?: () => number;
}

export interface LeakProbes {
  tcp(target: string): Promise<ProbeResult>;
  udp(target: string): Promise<ProbeResult>;
  sysctls(): Promise<SysctlValues>;
  routeTable(): Promise<string>;
}

const DEFAULT_PROBES: LeakProbes = {
  tcp: (t) => tcpProbe(t),
  udp: (t) => udpProbe(t),
  sysctls: () => readSysctls(),
  routeTable: () => readRouteTable(),
};

export class LeakTester {
  readonly #deps: LeakTestDeps;
  readonly #probes: LeakProbes;
  readonly #now: () => number;
  #running: Promise<LeakReport> | null = null;
  #last: LeakReport | null = null;

  constructor(deps: LeakTestDeps) {
    this.#deps = deps;
    this.#probes = { ...DEFAULT_PROBES, ...deps.probes };
    this.#now = deps.now ?? Date.now;
  }

  /** The last finished report, or null. */
  last(): LeakReport | null {
    return this.#last;
  }

  /** Runs the test (a run already under way is joined, not repeated). */
  run(): Promise<LeakReport> {
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** The modem and DHCP servers on the WAN: the only hosts the probes send to. */
  async targets(): Promise<string[]> {
    const gateways = parseDefaultGateways(await this.#probes.routeTable(), this.#deps.wanInterface());
    return [...new Set([...gateways, ...this.#deps.dhcpServers()])];
  }

  async #run(): Promise<LeakReport> {
    const d = this.#deps;
    const t0 = this.#now();
    const checks: LeakCheck[] = [];

    let difference: string | null = null;
    const mode = d.firewallMode();
    if (mode !== null) {
      try {
        await d.audit();
      } catch (err) {
        difference = err instanceof Error ? err.message : String(err);
      }
    }
    checks.push(judgeFirewall(mode, difference));

    const sysctls = await this.#probes.sysctls();
    checks.push(judgeForwarding(sysctls), judgeIpv6(sysctls));

    const target = (await this.targets())[0] ?? null;
    const [tcp, udp] = target
      ? await Promise.all([this.#probes.tcp(target), this.#probes.udp(target)])
      : [null, null];
    checks.push(judgeProbe('clearnet-tcp', target, tcp), judgeProbe('clearnet-udp', target, udp));

    let exit: TorExitResult;
    if (!d.routing()) {
      exit = {
        kind: 'not-ready',
        why: 'The box is not routing (tor is still connecting, or the kill switch is on), so nothing could go through tor.',
      };
    } else {
      try {
        exit = { kind: 'checked', ...(await d.torCheck()) };
      } catch (err) {
        exit = { kind: 'error', message: err instanceof Error ? err.message : String(err) };
      }
    }
    checks.push(judgeTorExit(exit, d.wanAddresses()));

    const at = this.#now();
    const report = summarize(checks, at, at - t0);
    this.#last = report;
    return report;
  }
}
