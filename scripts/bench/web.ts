/**
 * Web page under load: p99 latency of the status page (logged in, 50 concurrent clients, autocannon) and
 * the server's RSS during it. The server runs in its own process (`--serve`) so its RSS is measured
 * alone: the real web app (web/app.ts) in front of the real BoxController (test/helpers/test-box.ts: a
 * SimBoard, tor and the firewall faked at their interfaces), without tor, nft or namespaces.
 * The child runs compiled JavaScript (this file and the TestBox are compiled into dist/ first), like the box.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { login } from './helpers.js';
import { rssBytes } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';

const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_WEB_SECONDS ?? 15);
const PASSWORD = 'bench passphrase for the web suite';
/** onionboxd's production flags (firmware/system/systemd/onionboxd.service); BENCH_WEB_FLAGS to try others. */
export const TUNED_FLAGS = (
  process.env.BENCH_WEB_FLAGS ?? '--max-semi-space-size=1 --max-old-space-size=64'
).split(' ');

interface AutocannonResult {
  latency: { p50: number; p99: number; max: number };
  requests: { average: number; total: number };
  errors: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

async function serve(dir: string, port: number): Promise<void> {
  const { pino } = await import('pino');
  const { TestBox } = await import('../../test/helpers/test-box.js');
  const { buildWebApp } = await import('../../web/app.js');
  const { hashPassword } = await import('../../web/lib/password.js');
  const box = await TestBox.create(dir);
  const hash = await hashPassword(PASSWORD);
  await box.config.update((c) => ({ ...c, web: { ...c.web, passwordHash: hash } }));
  box.setBootstrap(100, 'Done');
  const app = buildWebApp({ log: pino({ level: 'warn' }), box: box.controller, simulate: true });
  await app.listen({ host: '127.0.0.1', port });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

async function runOnce(nodeFlags: string[], label: string): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-web-'));
  const port = 18_180 + (process.pid % 500);
  // The server runs as compiled JavaScript (like the box): build this file and the TestBox into dist/.
  const root = new URL('../../', import.meta.url).pathname;
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(
    join(root, 'dist/.tsconfig.bench-web.json'),
    JSON.stringify({
      extends: '../tsconfig.build.json',
      compilerOptions: { outDir: '.', rootDir: '..', noEmit: false },
      include: [],
      files: ['../scripts/bench/web.ts', '../test/helpers/test-box.ts'],
    }),
  );
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'dist/.tsconfig.bench-web.json')],
    {
      stdio: 'inherit',
    },
  );
  const child = spawn(
    process.execPath,
    [...nodeFlags, join(root, 'dist/scripts/bench/web.js'), '--serve', dir, String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      // Without a fixed mmap threshold glibc keeps each login's 16 MB scrypt buffer in a thread arena
      // (measured: +51 MB RSS after three logins); onionboxd's unit should set the same.
      env: { ...process.env, CI: 'true', MALLOC_MMAP_THRESHOLD_: '131072' },
    },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`web server exited with ${code}`)));
    });
    const pid = child.pid ?? 0;
    const base = `http://127.0.0.1:${port}`;
    const cookie = await login(base, PASSWORD);
    const check = await fetch(`${base}/`, { headers: { cookie } });
    if (!(await check.text()).includes('Protected')) throw new Error('not logged in to the status page');
    await sleep(1000);
    const idleRss = rssBytes(pid);
    let peak = idleRss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(pid));
    }, 100);
    const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
    // The page closes a keep-alive connection after WEB_LIMITS.maxRequestsPerSocket requests and answers
    // 503 to any request sent on it after that: a browser opens a new connection, so the clients here do
    // too (reconnectRate), or the run would measure 503s.
    const { WEB_LIMITS } = await import('../../web/app.js');
    const reconnectRate = WEB_LIMITS.maxRequestsPerSocket;
    // warm-up, then the measured run
    await autocannon({
      url: `${base}/`,
      connections: CONNECTIONS,
      duration: 3,
      headers: { cookie },
      reconnectRate,
    });
    const r = await autocannon({
      url: `${base}/`,
      connections: CONNECTIONS,
      duration: DURATION_S,
      headers: { cookie },
      reconnectRate,
    });
    clearInterval(sampler);
    const rssMb = peak / 2 ** 20;
    return [
      {
        name: `status page p99 latency (${CONNECTIONS} clients, ${DURATION_S} s, logged in; ${label})`,
        value: r.latency.p99,
        unit: 'ms',
        goal: '< 50 ms',
        pass: r.latency.p99 < 50 && r.errors === 0 && r.non2xx === 0,
        detail: {
          p50: r.latency.p50,
          max: r.latency.max,
          reqPerSec: Math.round(r.requests.average),
          errors: r.errors,
          non2xx: r.non2xx,
        },
      },
      {
        name: `web server peak RSS during the load (${label})`,
        value: Number(rssMb.toFixed(1)),
        unit: 'MB',
        goal: '< 80 MB',
        pass: rssMb < 80,
        detail: { idleMb: Number((idleRss / 2 ** 20).toFixed(1)) },
      },
    ];
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => {
      if (child.exitCode !== null) r(null);
      else child.once('exit', r);
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Default V8 heap sizing, then the same with a small young generation and old-space cap. */
async function run(): Promise<BenchResult[]> {
  return [...(await runOnce([], 'node defaults')), ...(await runOnce(TUNED_FLAGS, TUNED_FLAGS.join(' ')))];
}

export const webSuite: BenchSuite = { name: 'web', run };

if (process.argv[2] === '--serve') await serve(process.argv[3] ?? '', Number(process.argv[4]));
