/**
 * Foundation metrics: onionboxd (built, simulator mode) start -> first HTTP answer, then, once the
 * simulated box is routing (private Tor network up, tor ready), its steady RSS and idle CPU over 30 s.
 * Runs dist/ (what the SD image ships), not the TypeScript sources. Needs root (the simulator does).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipcCall, socketPath } from '../../firmware/ipc.js';
import { cpuSeconds, percentile, rssBytes } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

const root = new URL('../../', import.meta.url).pathname;
const PORT = 18_080;
/** The same flags the box's systemd unit and `npm start` use: a 1 MB young generation saves ~5 MB RSS. */
const NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=64'];
/** glibc returns large blocks (scrypt's 16 MB work buffer at each login) to the kernel at once. */
const NODE_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' };
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
const RUNS = 3;

async function firstAnswer(url: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { redirect: 'manual' });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error(`no answer from ${url}`);
}

async function waitRouting(stateDir: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const reply = await ipcCall(socketPath(stateDir), 'status').catch(() => null);
    if (reply?.ok && (reply.result as { state?: string }).state === 'routing') return;
    await sleep(250);
  }
  throw new Error('the simulated box did not reach routing');
}

async function oneRun(measureIdle: boolean): Promise<{ startMs: number; rss?: number; idleCpu?: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-'));
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      join(root, 'dist/firmware/main.js'),
      '--simulate',
      '--state-dir',
      dir,
      '--listen',
      `127.0.0.1:${PORT}`,
    ],
    { stdio: 'ignore', env: { ...process.env, ...NODE_ENV, CI: 'true', ONIONBOX_LOG_LEVEL: 'warn' } },
  );
  try {
    await firstAnswer(`http://127.0.0.1:${PORT}/`, Date.now() + 15_000);
    const startMs = performance.now() - t0;
    if (!measureIdle || proc.pid === undefined) return { startMs };
    await waitRouting(dir, Date.now() + 120_000);
    for (let i = 0; i < 50; i++) await (await fetch(`http://127.0.0.1:${PORT}/claim`)).arrayBuffer();
    await sleep(5_000); // let start-up garbage settle
    const rss = rssBytes(proc.pid);
    const c0 = cpuSeconds(proc.pid);
    await sleep(IDLE_SECONDS * 1000);
    const idleCpu = ((cpuSeconds(proc.pid) - c0) / IDLE_SECONDS) * 100;
    return { startMs, rss: Math.max(rss, rssBytes(proc.pid)), idleCpu };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

export const firmwareSuite: BenchSuite = {
  name: 'firmware',
  needs: ['root', 'tor', 'nft'],
  async run(): Promise<BenchResult[]> {
    const starts: number[] = [];
    for (let i = 0; i < RUNS - 1; i++) starts.push((await oneRun(false)).startMs);
    const steady = await oneRun(true);
    starts.push(steady.startMs);
    starts.sort((a, b) => a - b);
    const p50 = percentile(starts, 50);
    const rssMb = (steady.rss ?? 0) / 1024 / 1024;
    const cpu = steady.idleCpu ?? Number.NaN;
    return [
      {
        name: `firmware start -> first HTTP answer (p50 of ${RUNS})`,
        value: Math.round(p50),
        unit: 'ms',
        goal: '< 1500 ms',
        pass: p50 < 1500,
        detail: { min: Math.round(starts[0] ?? 0), max: Math.round(starts.at(-1) ?? 0) },
      },
      {
        name: 'steady RSS of onionboxd (simulator, routing, tor excluded)',
        value: Number(rssMb.toFixed(1)),
        unit: 'MB',
        goal: '< 64 MB',
        pass: rssMb < 64,
      },
      {
        name: `idle CPU of onionboxd over ${IDLE_SECONDS} s (routing)`,
        value: Number(cpu.toFixed(2)),
        unit: '%',
        goal: '< 1 %',
        pass: cpu < 1,
      },
    ];
  },
};
