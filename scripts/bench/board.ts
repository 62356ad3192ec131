/**
 * Kill switch latency: a simulated switch edge -> BoxController -> state machine -> the real Firewall
 * (nft, in a network namespace) -> the `killed` ruleset loaded AND verified in the kernel (Firewall.apply
 * resolves only after reading the table back). 500 switch-on edges (and 500 switch-off edges back to
 * routing) while 20 LAN downloads run through the box's redirect (test/helpers/killswitch-net.ts).
 * Every 50 edges the kernel's table is listed to confirm it holds no redirect. Goal: p99 < 20 ms.
 * "Verified" is the moment Firewall.apply finished reading the table back (ApplyResult.verifiedMs);
 * apply() returns a little later, after deleting the LAN's conntrack entries (reported separately).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { type ApplyResult, Firewall } from '../../firmware/firewall/apply.js';
import { startFirewallBox } from '../../test/helpers/firewall-box.js';
import { buildKillswitchNet } from '../../test/helpers/killswitch-net.js';
import { percentile } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

const TOGGLES = Number(process.env.BENCH_KILL_TOGGLES ?? 500);
const FLOWS = 20;

export const boardSuite: BenchSuite = {
  name: 'board',
  needs: ['root', 'nft'],
  async run(): Promise<BenchResult[]> {
    const cleanups: (() => unknown)[] = [];
    const teardown = { teardown: (fn: () => unknown) => cleanups.push(fn) };
    try {
      const net = await buildKillswitchNet(teardown);
      // Scripts in memory, as on the box (onionboxd writes them to /run/onionbox, a tmpfs).
      const workDir = mkdtempSync(join('/dev/shm', 'onionbox-bench-fw-'));
      cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
      const fw = new Firewall({ netns: net.box, workDir });
      await fw.start();
      cleanups.push(() => fw.stop());
      /** Where each kill's verifiedMs went (ApplyResult.phases), in order of the kills. */
      const phases: ApplyResult['phases'][] = [];
      const sb = await startFirewallBox(teardown, {
        firewall: {
          apply: async (mode, params) => {
            const r = await fw.apply(mode, params);
            if (mode === 'killed') phases.push(r.phases);
            return r;
          },
          counters: () => fw.counters(),
          onTamper: (l) => fw.onTamper(l),
        },
        params: net.params,
        log: {
          info: () => undefined,
          warn: () => undefined,
          error: (o, m) => process.stderr.write(`${m} ${JSON.stringify(o)}\n`),
        },
      });
      await net.up();
      await net.startServer();
      const flows = await net.startFlows(FLOWS, 0.1);
      await flows.grows(4 * 1024 * 1024, 15_000);

      const kill: number[] = [];
      const killReturned: number[] = [];
      /** Edge -> Firewall.apply called: what the board, state machine and controller add. */
      const overhead: number[] = [];
      const release: number[] = [];
      let checked = 0;
      const last = () => {
        const a = sb.applies.at(-1);
        if (!a) throw new Error('no apply yet');
        return a;
      };
      for (let i = 0; i < TOGGLES; i++) {
        const t0 = performance.now();
        const on = await sb.toggle(true);
        if (on !== 'killed') throw new Error(`edge ${i}: firewall holds ${on}, not killed`);
        const a = last();
        kill.push(a.verifiedAt - t0);
        killReturned.push(a.returnedAt - t0);
        overhead.push(a.calledAt - t0);
        if (i % 50 === 0) {
          const table = await net.table();
          if (/dnat ip to/.test(table)) throw new Error(`edge ${i}: the kernel still holds a redirect`);
          checked++;
        }
        const t1 = performance.now();
        const off = await sb.toggle(false);
        if (off !== 'routing') throw new Error(`edge ${i}: firewall holds ${off}, not routing`);
        release.push(last().verifiedAt - t1);
        // let the flows get going again, so that every kill cuts running downloads
        await flows.grows(64 * 1024, 3000).catch(() => undefined);
      }
      const fastPath = sb.applies.filter((x) => x.fast).length;
      const totalApplies = sb.applies.length;
      const bytes = flows.bytes();
      const connects = flows.connects();
      kill.sort((a, b) => a - b);
      release.sort((a, b) => a - b);
      killReturned.sort((a, b) => a - b);
      overhead.sort((a, b) => a - b);
      const p = (xs: number[], q: number) => Math.round(percentile(xs, q) * 100) / 100;
      const phase = (k: keyof ApplyResult['phases']) => {
        const xs = phases.map((x) => x[k]).sort((a, b) => a - b);
        return `${p(xs, 50)}/${p(xs, 99)}`;
      };
      return [
        {
          name: `kill switch edge -> killed verified in kernel (p99 of ${TOGGLES}, ${FLOWS} LAN flows)`,
          value: p(kill, 99),
          unit: 'ms',
          goal: '< 20 ms',
          pass: percentile(kill, 99) < 20,
          detail: {
            p50: p(kill, 50),
            p90: p(kill, 90),
            max: p(kill, 100),
            nftSessionApplies: `${fastPath}/${totalApplies}`,
            tableChecks: checked,
            controllerP50: p(overhead, 50),
            controllerP99: p(overhead, 99),
            // p50/p99 in ms of the apply's phases (ApplyResult.phases)
            queued: phase('queued'),
            render: phase('render'),
            exchange: phase('exchange'),
            check: phase('check'),
            load1: Number(loadavg()[0]?.toFixed(2)),
          },
        },
        {
          name: `kill switch edge -> apply returned, incl. LAN conntrack flush (p99 of ${TOGGLES})`,
          value: p(killReturned, 99),
          unit: 'ms',
          goal: 'info',
          pass: true,
          detail: { p50: p(killReturned, 50), max: p(killReturned, 100) },
        },
        {
          name: `kill switch release -> routing verified in kernel (p99 of ${TOGGLES})`,
          value: p(release, 99),
          unit: 'ms',
          goal: 'info',
          pass: true,
          detail: { p50: p(release, 50), max: p(release, 100), flowBytes: bytes, flowConnects: connects },
        },
      ];
    } finally {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch {
          // best effort
        }
      }
    }
  },
};
