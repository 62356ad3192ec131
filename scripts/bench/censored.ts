/**
 * The box behind a censoring ISP (issue 21): the simulated world as `npm start -- --censored` builds it
 * (scripts/sim/world.ts with `censored`, the built dist/, the box's tor from an empty data directory),
 * one fresh world per variant:
 *
 *   direct      no censor, no bridge: the baseline (tor straight to the relays)
 *   obfs4       censored, the obfs4 bridge's line in the box's settings before it starts
 *   webtunnel   censored, the webtunnel bridge's line in its settings (TLS front, test CA)
 *   meek        censored, a meek_lite line in its settings: the world's meek front (test CA) hands each
 *               meek session to the obfs4 bridge's ORPort (scripts/sim/meek-bridge.ts)
 *   obfs4-later censored, no bridge at start; the owner's line (`tor.bridges`, as `onionbox tor bridges`)
 *               once the censor has dropped the box's tor: from that call to the first fetch
 *   obfs4-found censored, no bridge configured: the connection assist notices the stall, tries its built-in
 *               lines (the world names the obfs4 bridge as the test network's), stores the one that routes
 *               (`npm start -- --censored` before Moat)
 *   moat-found  censored, no bridge configured and no built-in line the world can reach: the assist asks
 *               the world's Moat over meek_lite (onionbox-moat.service), whose answer names the obfs4
 *               bridge (`npm start -- --censored` as it is); the Moat step's own time from onionboxd's log
 *
 * For each: world start to the LAN device's first `curl http://web.sim.test/ip` answered through tor
 * (split: the world's parts, the first fetch), the box's tor from its unit's start (empty data directory)
 * to the box routing (polled every 100 ms while the world is still being built: the page and the LAN
 * device come up meanwhile), then the LAN device's download throughput of 8 MiB from the web server
 * through tor. BENCH_CENSORED_RUNS (default 1) fresh worlds per variant; BENCH_CENSORED_VARIANTS picks
 * variants (comma separated). Needs root.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfig } from '../../firmware/config/schema.js';
import { ipcCall, socketPath } from '../../firmware/control/socket.js';
import type { Privnet } from '../privnet/index.js';
import { meekBridgeLine } from '../sim/meek-bridge.js';
import {
  buildWorld,
  HOSTNAME,
  MOAT_FRONT_HOST,
  WEB_ADDR,
  type World,
  type WorldOptions,
} from '../sim/world.js';
import type { BenchResult, BenchSuite } from './types.js';

const DOWNLOAD_BYTES = 8 * 2 ** 20;

type Variant = 'direct' | 'obfs4' | 'webtunnel' | 'meek' | 'obfs4-later' | 'obfs4-found' | 'moat-found';

async function waitRouting(w: World, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const reply = await ipcCall(socketPath(w.boxStateDir), 'status').catch(() => null);
    if (reply?.ok && (reply.result as { state?: string }).state === 'routing') return;
    await sleep(100);
  }
  throw new Error('the simulated box did not reach routing');
}

async function firstFetch(w: World, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const body = await w
      .exec(w.netns.lan, 'curl', ['-s', '-m', '10', `http://${HOSTNAME}/ip`], 15_000)
      .catch(() => '');
    if (body.trim()) return;
    await sleep(100);
  }
  throw new Error('the LAN device could not fetch through tor');
}

/** The LAN device's download of DOWNLOAD_BYTES through tor, in MiB/s (curl's own average). */
async function throughput(w: World): Promise<number> {
  const out = await w.exec(
    w.netns.lan,
    'curl',
    [
      '-s',
      '-m',
      '120',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download} %{speed_download}',
      `http://${HOSTNAME}/bytes/${DOWNLOAD_BYTES}`,
    ],
    130_000,
  );
  const [size, speed] = out.trim().split(' ').map(Number);
  if (size !== DOWNLOAD_BYTES) throw new Error(`the download got ${size} of ${DOWNLOAD_BYTES} bytes`);
  return (speed ?? 0) / 2 ** 20;
}

function withBridge(pick: (p: Privnet) => string | undefined): WorldOptions['boxConfig'] {
  return (privnet) => {
    const cfg = defaultConfig();
    return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [pick(privnet) ?? ''] } };
  };
}

/** Polls the box's status from before the world is built until it routes; resolves with that moment. */
function routingAt(stateDir: string): { at: Promise<number>; stop: () => void } {
  let stopped = false;
  const at = (async () => {
    while (!stopped) {
      const reply = await ipcCall(socketPath(stateDir), 'status', {}, 2000).catch(() => null);
      if (reply?.ok && (reply.result as { state?: string }).state === 'routing') return Date.now();
      await sleep(100);
    }
    return Number.NaN;
  })();
  return {
    at,
    stop: () => {
      stopped = true;
    },
  };
}

/** When the box's tor unit started: the world's parts up to and including onionboxd's (which starts it). */
function torStartedAt(t0: number, timings: Record<string, number>): number {
  let at = t0;
  for (const [part, ms] of Object.entries(timings)) {
    at += ms;
    if (part === 'onionboxd') return at;
  }
  return Number.NaN;
}

async function run(variant: Variant): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-bench-'));
  const censored = variant !== 'direct';
  const routed = variant === 'obfs4-later' ? null : routingAt(join(dir, 'box'));
  const t0 = Date.now();
  const building = buildWorld({
    prefix: 'obxbenchc',
    dir,
    censored,
    obfs4Bridge: variant !== 'direct' && variant !== 'webtunnel',
    moat: variant === 'moat-found' || variant === 'meek',
    webtunnelBridge: variant === 'webtunnel',
    // the owner's line is measured alone: the box's own find (obfs4-found) must not race it
    ...(variant === 'obfs4-later' ? { builtinBridge: false } : {}),
    ...(variant === 'obfs4' ? { boxConfig: withBridge((p) => p.obfs4Bridge?.line) } : {}),
    ...(variant === 'webtunnel' ? { boxConfig: withBridge((p) => p.webtunnelBridge?.line) } : {}),
    ...(variant === 'meek'
      ? { boxConfig: withBridge((p) => p.obfs4Bridge && meekBridgeLine(p.obfs4Bridge, MOAT_FRONT_HOST)) }
      : {}),
  });
  const world = await building.catch((err: unknown) => {
    routed?.stop();
    throw err;
  });
  try {
    const up = Date.now();
    const parts: Record<string, number> = { ...world.timings };
    let from = t0;
    if (variant === 'obfs4-later') {
      while ((await world.censor.dropped()) === 0) {
        if (Date.now() - up > 120_000) throw new Error('the censor never dropped the box');
        await sleep(100);
      }
      parts['until the censor dropped the box'] = Date.now() - up;
      from = Date.now();
      const reply = await ipcCall(
        socketPath(world.boxStateDir),
        'tor.bridges',
        { bridges: [world.privnet.obfs4Bridge?.line ?? ''] },
        180_000,
      );
      if (!reply.ok) throw new Error(`tor.bridges: ${reply.error}`);
    }
    await waitRouting(world, Date.now() + 420_000);
    const routing = routed ? await routed.at : Date.now();
    await firstFetch(world, Date.now() + 60_000);
    const fetched = Date.now();
    const bootstrap = variant === 'obfs4-later' ? routing - from : routing - torStartedAt(t0, world.timings);
    parts[variant === 'obfs4-later' ? 'tor.bridges call to routing' : "box tor's start to routing"] =
      bootstrap;
    parts['routing to the first LAN fetch'] = fetched - Math.max(routing, up);
    if (variant === 'moat-found') {
      const asked = /"ms":(\d+),"country":\d+.*"msg":"connection assist: Moat asked"/.exec(
        readFileSync(join(dir, 'onionboxd.log'), 'utf8'),
      );
      parts['the Moat step (window, job, meek_lite, answers)'] = Number(asked?.[1] ?? Number.NaN);
    }
    const mibs = await throughput(world);
    const what = {
      direct: 'uncensored, no bridge (baseline)',
      obfs4: 'censored, obfs4 bridge configured',
      webtunnel: 'censored, webtunnel bridge configured',
      meek: 'censored, meek_lite bridge configured',
      'obfs4-later': "censored, the owner's obfs4 line after start",
      'obfs4-found': 'censored, no bridge configured (the box finds the obfs4 bridge by itself)',
      'moat-found': 'censored, no bridge configured (the box asks Moat over meek_lite for its bridge)',
    }[variant];
    // finding a bridge waits for tor to stall first (STALL_MS, 75 s): its own goals
    const found = variant === 'obfs4-found' || variant === 'moat-found';
    const total = fetched - from;
    return [
      {
        name:
          variant === 'obfs4-later'
            ? `${what}: tor.bridges -> routing`
            : `${what}: the box's tor from an empty data directory -> routing`,
        value: Number((bootstrap / 1000).toFixed(1)),
        unit: 's',
        goal: found ? '< 180 s' : '< 30 s',
        pass: bootstrap < (found ? 180_000 : 30_000),
      },
      {
        name:
          variant === 'obfs4-later'
            ? `${what}: tor.bridges -> the LAN device fetches`
            : `${what}: world start -> the LAN device fetches`,
        value: Number((total / 1000).toFixed(1)),
        unit: 's',
        goal: variant === 'obfs4-later' ? '< 30 s' : found ? '< 240 s' : '< 60 s',
        pass: total < (variant === 'obfs4-later' ? 30_000 : found ? 240_000 : 60_000),
        detail: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, `${(v / 1000).toFixed(1)} s`])),
      },
      {
        name: `${what}: LAN download through tor (8 MiB from ${WEB_ADDR})`,
        value: Number(mibs.toFixed(2)),
        unit: 'MiB/s',
        goal: '> 1 MiB/s',
        pass: mibs > 1,
      },
    ];
  } finally {
    routed?.stop();
    await world.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const censoredSuite: BenchSuite = {
  name: 'censored',
  needs: ['root', 'tor', 'nft'],
  async run(): Promise<BenchResult[]> {
    const only = process.env.BENCH_CENSORED_VARIANTS?.split(',');
    const runs = Number(process.env.BENCH_CENSORED_RUNS ?? 1);
    const out: BenchResult[] = [];
    for (let i = 0; i < runs; i++) {
      const variants = [
        'direct',
        'obfs4',
        'webtunnel',
        'meek',
        'obfs4-later',
        'obfs4-found',
        'moat-found',
      ] as const;
      for (const v of variants) {
        if (only && !only.includes(v)) continue;
        out.push(...(await run(v)));
      }
    }
    return out;
  },
};
