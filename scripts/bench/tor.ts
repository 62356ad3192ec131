/**
 * Tor metrics on the private network (scripts/privnet): privnet start-up, a fresh box tor from start to
 * ready (exit circuit built), tor SIGKILLed -> supervisor restart -> ready again, and the control-port
 * round trip (GETINFO version) p50/p99.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../firmware/config/schema.js';
import { EventBus } from '../../firmware/events.js';
import { TorSupervisor } from '../../firmware/tor/supervisor.js';
import { freePorts, startPrivnet } from '../privnet/index.js';
import { percentile } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

const RESTARTS = Number(process.env.BENCH_TOR_RESTARTS ?? 5);
const ROUND_TRIPS = Number(process.env.BENCH_TOR_ROUND_TRIPS ?? 2000);

export const torSuite: BenchSuite = {
  name: 'tor',
  needs: ['tor'],
  async run(): Promise<BenchResult[]> {
    const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-tor-'));
    const net = await startPrivnet({ dir: join(dir, 'net') });
    const sup = new TorSupervisor({
      bus: new EventBus(),
      settings: defaultConfig().tor,
      torrcPath: join(dir, 'box', 'torrc'),
      runtime: await (async () => {
        const [socks, control] = await freePorts(2);
        return {
          dataDir: join(dir, 'box', 'data'),
          socks: { host: '127.0.0.1', port: socks ?? 0 },
          control: { host: '127.0.0.1', port: control ?? 0 },
          owningPid: process.pid,
          extraLines: net.clientTorrcLines,
        };
      })(),
    });
    try {
      const results: BenchResult[] = [];
      results.push({
        name: 'private network start -> a client circuit to the exit',
        value: Math.round(net.startupMs),
        unit: 'ms',
        goal: 'documented (docs/architecture.md: 11-23 s)',
        pass: true,
      });
      const t0 = performance.now();
      await sup.start();
      if (!(await sup.waitReady(60_000))) throw new Error('tor not ready');
      const cold = performance.now() - t0;
      results.push({
        name: 'fresh box tor: start -> ready (exit circuit built)',
        value: Math.round(cold),
        unit: 'ms',
        goal: '< 10000 ms',
        pass: cold < 10_000,
      });

      const restarts: number[] = [];
      for (let i = 0; i < RESTARTS; i++) {
        const pid = sup.pid;
        if (!pid) throw new Error('no tor pid');
        const crashed = new Promise<void>((resolve) => {
          const check = () => (sup.status().ready ? setTimeout(check, 1) : resolve());
          check();
        });
        const t1 = performance.now();
        process.kill(pid, 'SIGKILL');
        await crashed;
        if (!(await sup.waitReady(60_000))) throw new Error('tor did not come back');
        restarts.push(performance.now() - t1);
        await new Promise((r) => setTimeout(r, 500));
      }
      restarts.sort((a, b) => a - b);
      const worst = restarts[restarts.length - 1] ?? Number.NaN;
      results.push({
        name: 'tor SIGKILLed -> supervisor restart -> exit circuit ready again',
        value: Math.round(percentile(restarts, 50)),
        unit: 'ms (p50)',
        goal: '< 10000 ms',
        pass: worst < 10_000,
        detail: { max: Math.round(worst), min: Math.round(restarts[0] ?? Number.NaN), runs: restarts.length },
      });

      const control = sup.control;
      if (!control) throw new Error('no control connection');
      for (let i = 0; i < 100; i++) await control.version(); // warm-up
      const rtts: number[] = [];
      for (let i = 0; i < ROUND_TRIPS; i++) {
        const t2 = performance.now();
        await control.version();
        rtts.push(performance.now() - t2);
      }
      rtts.sort((a, b) => a - b);
      const p99 = percentile(rtts, 99);
      results.push({
        name: 'control port round trip (GETINFO version)',
        value: Number(percentile(rtts, 50).toFixed(3)),
        unit: 'ms (p50)',
        goal: 'p99 < 5 ms',
        pass: p99 < 5,
        detail: { p99: Number(p99.toFixed(3)), samples: rtts.length },
      });
      return results;
    } finally {
      await sup.stop();
      await net.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
