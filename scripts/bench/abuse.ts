/**
 * Abuse of the web page (issue 13), loopback only: how many idle connections and live streams the page
 * holds before it refuses new ones, onionboxd's RSS at that point, and whether the kill switch and the
 * firewall keep working meanwhile. The server child is the real web app in front of the real
 * BoxController (SimBoard, a tor double that reports ready) and the real Firewall (nft) in a network
 * namespace of its own, compiled to JavaScript and run with onionboxd's production flags, as on the box.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { unchangedClock } from '../../test/helpers/clock.js';
import { login } from './helpers.js';
import { rssBytes } from './proc.js';
import type { BenchResult, BenchSuite } from './types.js';
import { TUNED_FLAGS } from './web.js';

const PASSWORD = 'bench passphrase for the abuse suite';
/** Far above the page's limits: the run stops at the first refusal. */
const MAX_TRIES = 2000;
const RSS_GOAL_MB = 96;

async function serve(dir: string, port: number, netns: string): Promise<void> {
  const { pino } = await import('pino');
  const { SimBoard } = await import('../../board/sim/board.js');
  const { BoxController } = await import('../../firmware/box/controller.js');
  const { ConfigStore } = await import('../../firmware/config/store.js');
  const { EventBus } = await import('../../firmware/events.js');
  const { Firewall } = await import('../../firmware/firewall/apply.js');
  const { buildWebApp } = await import('../../web/app.js');
  const config = new ConfigStore(dir);
  await config.load();
  const bus = new EventBus();
  const board = new SimBoard();
  const fw = new Firewall({ netns, workDir: join(dir, 'fw') });
  mkdirSync(join(dir, 'fw'), { recursive: true, mode: 0o700 });
  await fw.start();
  const params = {
    lanIf: 'lan0',
    wanIf: 'wan0',
    lanAddr: '10.203.0.1',
    lanPrefix: 24,
    torUid: 65534,
    transPort: 9040,
    dnsPort: 5353,
    webPort: 80,
    relays: [],
  };
  const ready = { phase: 'ready', progress: 100, summary: 'Done', ready: true } as const;
  const box = new BoxController({
    config,
    bus,
    board,
    tor: {
      status: () => ready,
      newIdentity: async () => undefined,
      circuits: async () => [],
      applySettings: async () => ({ ok: true, rolledBack: false, message: '' }),
      lastWarnings: () => [],
    },
    firewall: {
      apply: (mode) => fw.apply(mode, params),
      counters: () => fw.counters(),
      onTamper: (l) => fw.onTamper(l),
    },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    simulate: true,
    clock: unchangedClock,
    sim: board.controls(),
  });
  await box.start();
  const { ticket } = box.startClaim();
  board.pressButton();
  await box.claim({ password: PASSWORD, ticket });
  const app = buildWebApp({ log: pino({ level: 'warn' }), box, simulate: true });
  await app.listen({ host: '127.0.0.1', port });
  process.stdout.write(`ready ${box.appliedMode}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const m = /^switch (on|off)$/.exec(line.trim());
    if (!m) continue;
    const t0 = performance.now();
    board.setSwitch(m[1] === 'on');
    await box.settled();
    process.stdout.write(`mode ${box.appliedMode} ${(performance.now() - t0).toFixed(2)}\n`);
  }
  await app.close();
  await box.stop();
  await fw.stop();
  process.exit(0);
}

/** Opens a socket and, when `request` is given, sends it; resolves with the socket once it is settled. */
function hold(port: number, request?: string): Promise<{ socket: Socket; refused: boolean; head: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let head = '';
    let done = false;
    const finish = (refused: boolean) => {
      if (done) return;
      done = true;
      resolve({ socket, refused, head });
    };
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      if (request) socket.write(request);
      else setTimeout(() => finish(false), 30); // the server closes a refused socket at once
    });
    socket.on('data', (d) => {
      head += d.toString();
      if (head.includes('\r\n\r\n')) finish(!/^HTTP\/1\.1 200/.test(head));
    });
  });
}

export const abuseSuite: BenchSuite = {
  name: 'abuse',
  needs: ['root', 'nft'],
  async run(): Promise<BenchResult[]> {
    const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-abuse-'));
    const netns = `obx-abuse-${process.pid}`;
    const port = 18_680 + (process.pid % 500);
    const root = new URL('../../', import.meta.url).pathname;
    execFileSync('ip', ['netns', 'add', netns]);
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(
      join(root, 'dist/.tsconfig.bench-abuse.json'),
      JSON.stringify({
        extends: '../tsconfig.build.json',
        compilerOptions: { outDir: '.', rootDir: '..', noEmit: false },
        include: [],
        files: ['../scripts/bench/abuse.ts'],
      }),
    );
    const sockets: Socket[] = [];
    const child = (() => {
      execFileSync(
        process.execPath,
        [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'dist/.tsconfig.bench-abuse.json')],
        { stdio: 'inherit' },
      );
      return spawn(
        process.execPath,
        [
          ...TUNED_FLAGS,
          join(root, 'dist/scripts/bench/abuse.js'),
          '--serve-abuse',
          dir,
          String(port),
          netns,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' } },
      );
    })();
    const lines = createInterface({ input: child.stdout });
    const next = (prefix: string) =>
      new Promise<string>((resolve, reject) => {
        const onLine = (l: string) => {
          if (!l.startsWith(prefix)) return;
          lines.off('line', onLine);
          resolve(l);
        };
        lines.on('line', onLine);
        child.once('exit', (code) => reject(new Error(`abuse server exited with ${code}`)));
      });
    const toggle = async (on: boolean) => {
      child.stdin?.write(`switch ${on ? 'on' : 'off'}\n`);
      const [, mode, ms] = (await next('mode ')).split(' ');
      return { mode: mode ?? '?', ms: Number(ms) };
    };
    try {
      const first = await next('ready');
      if (first !== 'ready routing') throw new Error(`server not routing: ${first}`);
      const pid = child.pid ?? 0;
      const base = `http://127.0.0.1:${port}`;
      const cookie = await login(base, PASSWORD);
      await sleep(500);
      const idleRss = rssBytes(pid);

      // 1. idle connections (no request at all) until the page refuses one
      let idle = 0;
      for (; idle < MAX_TRIES; idle++) {
        const h = await hold(port);
        if (h.refused) break;
        sockets.push(h.socket);
      }
      const probe = await hold(port, `GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      const refusedCleanly = probe.refused && probe.head === '';
      await sleep(300);
      const idleCapRss = rssBytes(pid);
      const killOn = await toggle(true);
      const killOff = await toggle(false);
      for (const s of sockets.splice(0)) s.destroy();
      await sleep(300);

      // 2. live streams (logged in) until the page answers 503, then fill the rest with idle sockets
      let streams = 0;
      let streamRefusal = '';
      for (; streams < MAX_TRIES; streams++) {
        const h = await hold(port, `GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\n\r\n`);
        if (h.refused) {
          streamRefusal = h.head.split('\r\n')[0] ?? '';
          h.socket.destroy();
          break;
        }
        sockets.push(h.socket);
      }
      let extra = 0;
      for (; extra < MAX_TRIES; extra++) {
        const h = await hold(port);
        if (h.refused) break;
        sockets.push(h.socket);
      }
      await sleep(300);
      const fullRss = rssBytes(pid);
      const kill2 = await toggle(true);
      const release2 = await toggle(false);
      for (const s of sockets.splice(0)) s.destroy();
      await sleep(300);
      const after = await fetch(`${base}/`, { headers: { cookie } });
      const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
      const switchWorks =
        killOn.mode === 'killed' &&
        killOff.mode === 'routing' &&
        kill2.mode === 'killed' &&
        release2.mode === 'routing';
      return [
        {
          name: 'idle connections the page holds before it refuses the next one',
          value: idle,
          unit: 'connections',
          goal: 'refuses cleanly (closed, no answer)',
          pass: refusedCleanly && idle < MAX_TRIES,
          detail: {
            nextConnection: refusedCleanly ? 'closed unanswered' : `answered: ${probe.head.split('\r\n')[0]}`,
          },
        },
        {
          name: 'live status streams (SSE) held before 503',
          value: streams,
          unit: 'streams',
          goal: 'refuses cleanly (503)',
          pass: /^HTTP\/1\.1 503/.test(streamRefusal),
          detail: { refusal: streamRefusal, idleConnectionsBesideThem: extra },
        },
        {
          name: 'onionboxd RSS with every connection and stream slot taken',
          value: mb(Math.max(idleCapRss, fullRss)),
          unit: 'MB',
          goal: `< ${RSS_GOAL_MB} MB`,
          pass: Math.max(idleCapRss, fullRss) < RSS_GOAL_MB * 2 ** 20,
          detail: { idleMB: mb(idleRss), idleCapMB: mb(idleCapRss), streamsAndIdleMB: mb(fullRss) },
        },
        {
          name: 'kill switch while the page is saturated: switch -> firewall verified',
          value: Math.round(Math.max(killOn.ms, kill2.ms) * 10) / 10,
          unit: 'ms',
          goal: 'killed and routing again, as without load',
          pass: switchWorks && after.status === 200,
          detail: {
            onIdleCap: killOn.ms,
            offIdleCap: killOff.ms,
            onFull: kill2.ms,
            offFull: release2.ms,
            pageAfter: after.status,
          },
        },
      ];
    } finally {
      for (const s of sockets) s.destroy();
      child.stdin?.end();
      await new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        const timer = setTimeout(() => {
          if (child.pid) process.kill(child.pid, 'SIGKILL');
        }, 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          r();
        });
      });
      execFileSync('ip', ['netns', 'del', netns]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (process.argv[2] === '--serve-abuse') {
  await serve(process.argv[3] ?? '', Number(process.argv[4]), process.argv[5] ?? '');
}
