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
 *
 * WAN change to routing again: the whole simulated box (scripts/sim/world.ts with a second WAN port,
 * onionboxd from dist/), routing on eth0; then BENCH_WAN_CHANGES (default 6) changes alternating
 * eth1/eth0: the modem's cable is moved (world.moveWan, not timed: it waits for the new port's DHCP
 * lease), then `net.change` over the control socket (what `onionbox net set --wan` sends) is timed until
 * it returns, which is after the box loaded `routing` again (tor rebuilt a circuit over the new port).
 * Each change is checked: the box routes, the kernel's ruleset names the new port, and the LAN device
 * fetches through tor. onionboxd's RSS is read after the last change.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipcCall, socketPath } from '../../firmware/control/socket.js';
import { LanDhcp } from '../../firmware/net/lan-dhcp.js';
import { dhcpLease } from '../../test/helpers/dhcp-client.js';
import { addAddr, linkUp, makeNetns, makeVeth, nsRun } from '../../test/helpers/netns.js';
import { HelperUnit } from '../sim/helper-units.js';
import { BOX_WAN_IF, BOX_WAN2_IF, buildWorld, EXIT_ADDR, HOSTNAME, type World } from '../sim/world.js';
import { Cleanup } from './helpers.js';
import { percentile, rssBytes } from './proc.js';
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
    // real dnsmasq in the box namespace, run as its unit says (scripts/sim/helper-units.ts); LanDhcp on
    // the host writes its config. A fresh directory: a fresh lease file.
    chmodSync(dir, 0o711);
    const start = async () => {
      const d = mkdtempSync(join(dir, 'l-'));
      chmodSync(d, 0o711);
      const unit = new HelperUnit({
        name: 'dnsmasq',
        netns: box,
        pathMap: { '/var/lib/onionbox': d, '/run': join(d, 'run') },
      });
      unit.start();
      const run = join(d, 'run/onionbox-dhcp');
      const lan = new LanDhcp({
        settings: {
          interface: 'lan0',
          lanAddr: '10.42.0.1/24',
          leaseFile: join(run, 'dnsmasq.leases'),
          pidFile: join(run, 'dnsmasq.pid'),
          leaseSeconds: 600,
        },
        confPath: join(d, 'dnsmasq.conf'),
      });
      await lan.start();
      return unit;
    };
    const fresh: number[] = [];
    for (let i = 0; i < 6; i++) {
      const lan = await start();
      try {
        const ms = await lease(i);
        if (i > 0) fresh.push(ms); // the first run warms the page cache for dhclient and dnsmasq
      } finally {
        await lan.stop();
      }
    }
    const lan = await start();
    c.teardown(() => lan.stop());
    await lease(-1); // the device's first visit
    const known: number[] = [];
    for (let i = 0; i < 20; i++) known.push(await lease(100 + i));
    return { fresh, known };
  } finally {
    await c.run();
  }
}

const WAN_CHANGES = Number(process.env.BENCH_WAN_CHANGES ?? 6);

async function call(w: World, cmd: string, args: Record<string, unknown> = {}, ms = 10_000) {
  const r = await ipcCall(socketPath(w.boxStateDir), cmd, args, ms);
  if (!r.ok) throw new Error(`${cmd}: ${r.code} ${r.error}`);
  return r.result as Record<string, unknown>;
}

async function fetchThroughTor(w: World, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const body = await w
      .exec(w.netns.lan, 'curl', ['-s', '-m', '10', `http://${HOSTNAME}/ip`], 15_000)
      .catch(() => '');
    if (body.trim() === EXIT_ADDR) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the LAN device could not fetch through tor');
}

async function measureWanChanges(): Promise<{ ms: number[]; rss: number; load: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-wan-'));
  const world = await buildWorld({ prefix: 'obxbwan', dir, secondWan: true });
  try {
    const end = Date.now() + 180_000;
    while ((await call(world, 'status')).state !== 'routing') {
      if (Date.now() > end) throw new Error('the box never reached routing');
      await new Promise((r) => setTimeout(r, 300));
    }
    await fetchThroughTor(world, Date.now() + 60_000);
    const ms: number[] = [];
    const load: number[] = [];
    for (let i = 0; i < WAN_CHANGES; i++) {
      const to = i % 2 === 0 ? BOX_WAN2_IF : BOX_WAN_IF;
      await world.moveWan(to);
      const t0 = performance.now();
      await call(world, 'net.change', { wanInterface: to }, 180_000);
      ms.push(performance.now() - t0);
      load.push(loadavg()[0] ?? 0);
      const st = await call(world, 'status');
      if (st.state !== 'routing') throw new Error(`change ${i}: the box is ${String(st.state)}`);
      const table = await world.exec(world.netns.box, 'nft', ['list', 'table', 'inet', 'onionbox']);
      if (!table.includes(`oifname "${to}"`)) throw new Error(`change ${i}: the ruleset does not name ${to}`);
      await fetchThroughTor(world, Date.now() + 60_000);
      verbose(`WAN change ${i} -> ${to}: ${(ms.at(-1) ?? 0).toFixed(0)} ms`);
    }
    const rss = rssBytes(world.daemon()?.pid ?? 0);
    return { ms, rss, load };
  } finally {
    await world.stop();
    rmSync(dir, { recursive: true, force: true });
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
    const wan = await measureWanChanges();
    const sorted = [...wan.ms].sort((a, b) => a - b);
    const p95 = percentile(sorted, 95);
    const rssMb = Number((wan.rss / 2 ** 20).toFixed(1));
    return [
      result('DHCP lease, new device (dnsmasq ping check)', fresh, 4000),
      result('DHCP lease, known device', known, 500),
      {
        name: 'WAN change (new interface) to routing again',
        value: Number(percentile(sorted, 50).toFixed(0)),
        unit: 'ms p50',
        goal: 'p95 < 10000 ms',
        pass: p95 < 10_000,
        detail: {
          p95: Number(p95.toFixed(0)),
          min: Number((sorted[0] ?? Number.NaN).toFixed(0)),
          max: Number((sorted.at(-1) ?? Number.NaN).toFixed(0)),
          runs: sorted.length,
          load1: wan.load.map((l) => l.toFixed(1)).join(' '),
        },
      },
      {
        name: 'onionboxd RSS after the WAN changes',
        value: rssMb,
        unit: 'MB',
        // the same goal as the firmware suite's steady RSS
        goal: '< 64 MB',
        pass: rssMb < 64,
      },
    ];
  },
};
