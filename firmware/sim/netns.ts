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

/** Namespaces of simulators that died without cleaning up (SIGKILL): ours by name, their PID gone. */
async function removeStale(): Promise<void> {
  const list = await new Promise<string>((resolve) => {
    execFile('ip', ['netns', 'list'], { timeout: 10_000 }, (_err, stdout) => resolve(stdout ?? ''));
  });
  for (const line of list.split('\n')) {
    const m = /^obx-sim-(\d+)\b/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await ip(['netns', 'del', `obx-sim-${pid}`]).catch(() => undefined);
  }
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
    await removeStale();
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
