/**
 * The whole box as `npm start` brings it up (scripts/sim/world.ts, the built dist/ that the SD image
 * ships, the production node flags): time from start to the LAN device's first fetch through tor, split
 * into its parts (namespaces, the box's WAN lease, the private Tor network, onionboxd's start, the box
 * tor's bootstrap from an empty data directory to routing, the first fetch), then onionboxd's steady RSS
 * and idle CPU inside the box while routing. Needs root.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipcCall, socketPath } from '../../firmware/control/socket.js';
import { buildWorld, HOSTNAME, type World } from '../sim/world.js';
import { cpuSeconds, rssBytes } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 30);

async function waitRouting(w: World, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const reply = await ipcCall(socketPath(w.boxStateDir), 'status').catch(() => null);
    if (reply?.ok && (reply.result as { state?: string }).state === 'routing') return;
    await sleep(100);
  }
  throw new Error('the simulated box did not reach routing');
}

async function firstFetch(w: World, deadline: number): Promise<string> {
  while (Date.now() < deadline) {
    const body = await w
      .exec(w.netns.lan, 'curl', ['-s', '-m', '10', `http://${HOSTNAME}/ip`], 15_000)
      .catch(() => '');
    if (body.trim()) return body.trim();
    await sleep(100);
  }
  throw new Error('the LAN device could not fetch through tor');
}

export const firmwareSuite: BenchSuite = {
  name: 'firmware',
  needs: ['root', 'tor', 'nft'],
  async run(): Promise<BenchResult[]> {
    const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-'));
    const t0 = Date.now();
    const world = await buildWorld({ prefix: 'obxbench', dir });
    try {
      const up = Date.now();
      await waitRouting(world, Date.now() + 180_000);
      const routing = Date.now();
      await firstFetch(world, Date.now() + 60_000);
      const fetched = Date.now();
      const total = fetched - t0;
      const pid = world.daemon()?.pid ?? 0;
      for (let i = 0; i < 50; i++) {
        await world.exec(world.netns.lan, 'curl', ['-s', '-o', '/dev/null', 'http://10.42.0.1/claim']);
      }
      await sleep(5_000);
      const rss = rssBytes(pid);
      const c0 = cpuSeconds(pid);
      await sleep(IDLE_SECONDS * 1000);
      const idleCpu = ((cpuSeconds(pid) - c0) / IDLE_SECONDS) * 100;
      const rssMb = Math.max(rss, rssBytes(pid)) / 2 ** 20;
      const parts: Record<string, number> = {};
      for (const [k, v] of Object.entries(world.timings)) parts[k] = v;
      parts['box tor bootstrap to routing'] = routing - up;
      parts['first LAN fetch through tor'] = fetched - routing;
      return [
        {
          name: 'npm start -> the LAN device fetches through tor',
          value: Number((total / 1000).toFixed(1)),
          unit: 's',
          goal: '< 45 s',
          pass: total < 45_000,
          detail: Object.fromEntries(
            Object.entries(parts).map(([k, v]) => [k, `${(v / 1000).toFixed(1)} s`]),
          ),
        },
        {
          name: 'onionboxd spawn -> ready (page listening, box closed)',
          value: world.timings.onionboxd ?? Number.NaN,
          unit: 'ms',
          goal: '< 1500 ms',
          pass: (world.timings.onionboxd ?? Number.POSITIVE_INFINITY) < 1500,
        },
        {
          name: 'steady RSS of onionboxd in the box (routing, tor excluded)',
          value: Number(rssMb.toFixed(1)),
          unit: 'MB',
          goal: '< 64 MB',
          pass: rssMb < 64,
        },
        {
          name: `idle CPU of onionboxd over ${IDLE_SECONDS} s (routing)`,
          value: Number(idleCpu.toFixed(2)),
          unit: '%',
          goal: '< 1 %',
          pass: idleCpu < 1,
        },
      ];
    } finally {
      await world.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
