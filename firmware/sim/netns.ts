/**
 * The simulated box's own network namespace: the firewall's real ruleset is loaded there (never into the
 * host's), on LAN and WAN interfaces (veth pairs kept inside the namespace) that carry the configured names and LAN address. Created at
 * start, deleted at stop. Needs root (ip netns). Commands run as argument arrays, never through a shell.
 */
import { execFile } from 'node:child_process';
import type { NetworkConfig } from '../config/schema.js';

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

export class SimNetns {
  readonly name: string;
  #created = false;

  constructor(
    private readonly network: NetworkConfig,
    name = `obx-sim-${process.pid}`,
  ) {
    this.name = name;
  }

  async start(): Promise<void> {
    await ip(['netns', 'add', this.name]);
    this.#created = true;
    try {
      await this.#configure();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  async #configure(): Promise<void> {
    const inNs = (args: string[]) => ip(['-n', this.name, ...args]);
    await inNs(['link', 'set', 'lo', 'up']);
    // veth pairs whose peers stay inside the namespace (not every kernel has the dummy driver)
    for (const [i, ifname] of [this.network.lanInterface, this.network.wanInterface].entries()) {
      await inNs(['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `obxpeer${i}`]);
      await inNs(['link', 'set', `obxpeer${i}`, 'up']);
    }
    await inNs([
      'addr',
      'add',
      `${this.network.lanAddress}/${this.network.lanPrefix}`,
      'dev',
      this.network.lanInterface,
    ]);
    for (const ifname of [this.network.lanInterface, this.network.wanInterface]) {
      await inNs(['link', 'set', ifname, 'up']);
    }
  }

  async stop(): Promise<void> {
    if (!this.#created) return;
    this.#created = false;
    await ip(['netns', 'del', this.name]);
  }
}
