/**
 * Networking metrics (issue 12), in network namespaces this suite creates and removes: the time a LAN
 * device waits for its DHCP lease from the box. Real dnsmasq (the LanDhcp service) in a box namespace,
 * ISC dhclient in a device namespace behind a veth, timed from spawning dhclient to its BOUND script.
 *  - new device: a MAC dnsmasq has never seen, on a freshly started dnsmasq. dnsmasq pings an address
 *    before offering it (a device with a static address must not be given a twin) and leaves the
 *    first DISCOVER unanswered meanwhile, so the lease comes with the client's 3 s retransmit. (After
 *    a few such checks within 30 s dnsmasq assumes high load and stops pinging, which is why a fresh
 *    dnsmasq per run.) 5 runs.
 *  - known device: a MAC with a lease in dnsmasq's file (a phone coming back): no ping. 20 runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanDhcp } from '../../firmware/net/lan-dhcp.js';
import { dhcpLease } from '../../test/helpers/dhcp-client.js';
import { addAddr, linkUp, makeNetns, makeVeth, nsRun } from '../../test/helpers/netns.js';
import { Cleanup } from './helpers.js';
import { percentile } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

function verbose(s: string): void {
  if (process.env.BENCH_VERBOSE) process.stderr.write(`${s}\n`);
}

async function measure(): Promise<{ fresh: number[]; known: number[] }> {
  const c = new Cleanup();
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-net-'));
  c.teardown(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const box = await makeNetns(c, 'bnbox');
    const dev = await makeNetns(c, 'bndev');
    await makeVeth(box, 'lan0', dev, 'dev0');
    await addAddr(box, 'lan0', '10.42.0.1/24');
    await linkUp(box, 'lan0');
    await linkUp(dev, 'dev0');
    const lease = async (i: number) => {
      await nsRun(dev, 'ip', ['-4', 'addr', 'flush', 'dev', 'dev0']);
      const l = await dhcpLease(dev, 'dev0', mkdtempSync(join(dir, 'c-')), `bench${i}`);
      await l.stop();
      verbose(`lease ${i}: ${l.ms.toFixed(1)} ms ${l.vars.new_ip_address}`);
      return l.ms;
    };
    const start = async (leaseFile: string) => {
      const lan = new LanDhcp({
        settings: { interface: 'lan0', lanAddr: '10.42.0.1/24', leaseFile, leaseSeconds: 600 },
        confPath: join(dir, 'dnsmasq.conf'),
        netns: box,
      });
      await lan.start();
      return lan;
    };
    const fresh: number[] = [];
    for (let i = 0; i < 6; i++) {
      const lan = await start(join(mkdtempSync(join(dir, 'l-')), 'leases'));
      try {
        const ms = await lease(i);
        if (i > 0) fresh.push(ms); // the first run warms the page cache for dhclient and dnsmasq
      } finally {
        await lan.stop();
      }
    }
    const lan = await start(join(dir, 'known.leases'));
    c.teardown(() => lan.stop());
    await lease(-1); // the device's first visit
    const known: number[] = [];
    for (let i = 0; i < 20; i++) known.push(await lease(100 + i));
    return { fresh, known };
  } finally {
    await c.run();
  }
}

function result(name: string, ms: number[], goal: number): BenchResult {
  const s = [...ms].sort((a, b) => a - b);
  const r = (x: number) => Number(x.toFixed(1));
  const p50 = percentile(s, 50);
  const p99 = percentile(s, 99);
  return {
    name,
    value: r(p50),
    unit: 'ms p50',
    goal: `p99 < ${goal} ms`,
    pass: p99 < goal,
    detail: {
      p50: r(p50),
      p99: r(p99),
      min: r(s[0] ?? Number.NaN),
      max: r(s.at(-1) ?? Number.NaN),
      runs: s.length,
    },
  };
}

export const netSuite: BenchSuite = {
  name: 'net',
  needs: ['root'],
  async run(): Promise<BenchResult[]> {
    const { fresh, known } = await measure();
    return [
      result('DHCP lease, new device (dnsmasq ping check)', fresh, 4000),
      result('DHCP lease, known device', known, 500),
    ];
  },
};
