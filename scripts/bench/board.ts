/**
 * Kill switch latency: a simulated switch edge -> BoxController -> state machine -> the real Firewall
 * (nft, in a network namespace) -> the `killed` ruleset loaded AND verified in the kernel (Firewall.apply
 * resolves only after reading the table back). 500 switch-on edges (and 500 switch-off edges back to
 * routing) while 20 LAN downloads run through the box's redirect (test/fixtures/board/killswitch-net.ts).
 * Every 50 edges the kernel's table is listed to confirm it holds no redirect. Goal: p99 < 20 ms.
 * "Verified" is the moment Firewall.apply finished reading the table back (ApplyResult.verifiedMs);
 * apply() returns a little later, after deleting the LAN's conntrack entries (reported separately).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimBoard } from '../../board/sim/board.js';
import { BoxController } from '../../firmware/box.js';
import type { FirewallModeName } from '../../firmware/box-api.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { EventBus } from '../../firmware/events.js';
import { Firewall } from '../../firmware/firewall/apply.js';
import type { TorStatus } from '../../firmware/state/machine.js';
import { buildKillswitchNet } from '../../test/fixtures/board/killswitch-net.js';
import { percentile } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

const TOGGLES = Number(process.env.BENCH_KILL_TOGGLES ?? 500);
const FLOWS = 20;
const READY: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };

export const boardSuite: BenchSuite = {
  name: 'board',
  needs: ['root', 'nft'],
  async run(): Promise<BenchResult[]> {
    const cleanups: (() => unknown)[] = [];
    const teardown = { teardown: (fn: () => unknown) => cleanups.push(fn) };
    try {
      const net = await buildKillswitchNet(teardown);
      const fw = new Firewall({ netns: net.box });
      await fw.start();
      cleanups.push(() => fw.stop());
      const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-board-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const config = new ConfigStore(dir);
      await config.load();
      const bus = new EventBus();
      const board = new SimBoard({ initialSwitch: 'released' });
      let torStatus: TorStatus = READY;
      let doneAt = 0;
      let verifiedAt = 0;
      let calledAt = 0;
      let doneMode: FirewallModeName | null = null;
      let fastPath = 0;
      const box = new BoxController({
        config,
        bus,
        board,
        tor: {
          status: () => torStatus,
          newIdentity: async () => undefined,
          circuits: async () => [],
          applySettings: async () => ({ ok: true, rolledBack: false, message: '' }),
          lastWarnings: () => [],
        },
        firewall: {
          apply: async (mode) => {
            const called = performance.now();
            calledAt = called;
            const r = await fw.apply(mode, net.params);
            doneAt = performance.now();
            verifiedAt = called + r.verifiedMs;
            doneMode = mode;
            if (r.fastPath) fastPath++;
            return r;
          },
          counters: () => fw.counters(),
        },
        log: {
          info: () => undefined,
          warn: () => undefined,
          error: (o, m) => process.stderr.write(`${m} ${JSON.stringify(o)}\n`),
        },
        simulate: true,
      });
      cleanups.push(() => box.stop());
      await box.start();
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
      for (let i = 0; i < TOGGLES; i++) {
        const t0 = performance.now();
        board.setSwitch(true);
        await box.settled();
        if (doneMode !== 'killed') throw new Error(`edge ${i}: firewall holds ${doneMode}, not killed`);
        kill.push(verifiedAt - t0);
        killReturned.push(doneAt - t0);
        overhead.push(calledAt - t0);
        if (i % 50 === 0) {
          const table = await net.table();
          if (/dnat ip to/.test(table)) throw new Error(`edge ${i}: the kernel still holds a redirect`);
          checked++;
        }
        const t1 = performance.now();
        board.setSwitch(false);
        await box.settled();
        if (doneMode !== 'routing') throw new Error(`edge ${i}: firewall holds ${doneMode}, not routing`);
        release.push(verifiedAt - t1);
        // let the flows get going again, so that every kill cuts running downloads
        await flows.grows(64 * 1024, 3000).catch(() => undefined);
      }
      torStatus = READY;
      const bytes = flows.bytes();
      const connects = flows.connects();
      kill.sort((a, b) => a - b);
      release.sort((a, b) => a - b);
      killReturned.sort((a, b) => a - b);
      overhead.sort((a, b) => a - b);
      const p = (xs: number[], q: number) => Math.round(percentile(xs, q) * 100) / 100;
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
            nftSessionApplies: `${fastPath}/${2 * TOGGLES}`,
            tableChecks: checked,
            controllerP50: p(overhead, 50),
            controllerP99: p(overhead, 99),
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
