/**
 * The one stand-in for the firewall in tests: firmware/firewall's Firewall at the box's FirewallLike
 * interface. Like the real one, apply() is asynchronous and loads a whole ruleset or nothing: a mode nft
 * refuses (`failing`) throws and leaves the kernel's ruleset as it was.
 *
 *   const fw = new FakeFirewall({ renderedFor: () => `wan=${net.wan}` });
 *   fw.failing.add('routing');           // nft refuses the routing ruleset
 *   fw.kernel, fw.modes, fw.applies      // what the kernel holds, every mode loaded (with its network)
 */
import type { DropCounters, FirewallModeName } from '../../firmware/box/api.js';
import type { FirewallLike } from '../../firmware/box/controller.js';

export const FAKE_COUNTERS: DropCounters = {
  ipv6: { packets: 12, bytes: 960 },
  udp: { packets: 40, bytes: 3200 },
  icmp: { packets: 3, bytes: 252 },
  invalid: { packets: 1, bytes: 40 },
  other: { packets: 0, bytes: 0 },
};

export interface FakeFirewallOptions {
  /**
   * What the ruleset of an apply is rendered for (say, the WAN/LAN names of the daemon's params): each
   * entry of `applies` is the mode, a space, then this.
   */
  renderedFor?: () => string;
}

export class FakeFirewall implements FirewallLike {
  /** The ruleset the "kernel" holds; a failed apply leaves it as it was (nft -f is one transaction). */
  kernel: FirewallModeName | 'boot-lockdown' = 'boot-lockdown';
  /** Every mode loaded, in order. */
  readonly modes: FirewallModeName[] = [];
  /** Every mode loaded, with what its ruleset was rendered for when `renderedFor` is given. */
  readonly applies: string[] = [];
  /** Modes whose ruleset nft refuses. */
  readonly failing = new Set<FirewallModeName>();
  readonly #renderedFor: (() => string) | undefined;

  constructor(opts: FakeFirewallOptions = {}) {
    this.#renderedFor = opts.renderedFor;
  }

  async apply(mode: FirewallModeName): Promise<{ mode: FirewallModeName }> {
    await new Promise((r) => setImmediate(r));
    if (this.failing.has(mode)) throw new Error(`nft: could not load ${mode}`);
    this.kernel = mode;
    this.modes.push(mode);
    this.applies.push(this.#renderedFor ? `${mode} ${this.#renderedFor()}` : mode);
    return { mode };
  }

  async counters(): Promise<DropCounters> {
    return structuredClone(FAKE_COUNTERS);
  }
}
