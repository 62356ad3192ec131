/**
 * When the running slot is marked good (firmware/update/slot.ts): at `routing`, or after NO_WAN_MINUTES of
 * unbroken health with no WAN; never for a box with a WAN that does not route, never while unhealthy. The
 * adapter asks once per boot, through the request file only.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { BoxStateName, WanView } from '../../firmware/box/api.js';
import {
  INITIAL_SLOT_POLICY,
  NO_WAN_MINUTES,
  SLOT_GOOD_FILE,
  SlotGoodReporter,
  type SlotPolicy,
  slotPhase,
  slotVerdict,
  wanPresent,
} from '../../firmware/update/slot.js';
import { tmpDir } from '../helpers/tmp.js';

const MIN = 60_000;
const N = NO_WAN_MINUTES * MIN;

/** Runs samples of [minute, state, wan] through the policy; the verdict after each. */
function run(samples: [number, BoxStateName, boolean][]): { good: boolean; reason: string }[] {
  let p: SlotPolicy = INITIAL_SLOT_POLICY;
  return samples.map(([m, state, wan]) => {
    const v = slotVerdict(p, { now: m * MIN, state, wan });
    p = v.policy;
    return { good: v.good, reason: v.reason };
  });
}

t.test('routing marks good at once, with or without a WAN', async (t) => {
  t.same(run([[0, 'routing', true]]).at(-1), { good: true, reason: 'routing' });
  t.same(
    run([
      [0, 'connecting', true],
      [1, 'routing', true],
    ]).at(-1),
    { good: true, reason: 'routing' },
  );
});

t.test('a WAN that never routes is never good', async (t) => {
  const r = run(
    Array.from({ length: 200 }, (_, i) => [i, 'connecting', true] as [number, BoxStateName, boolean]),
  );
  t.notOk(r.some((v) => v.good));
  t.equal(r.at(-1)?.reason, 'waiting-for-routing');
});

t.test(`no WAN: good after ${NO_WAN_MINUTES} unbroken healthy minutes, not a sample earlier`, async (t) => {
  const r = run([
    [0, 'connecting', false],
    [NO_WAN_MINUTES - 0.01, 'connecting', false],
    [NO_WAN_MINUTES, 'connecting', false],
  ]);
  t.same(
    r.map((v) => v.good),
    [false, false, true],
  );
  t.equal(r[1]?.reason, 'waiting-offline');
  t.equal(r[2]?.reason, 'healthy-without-wan');
  // the owner's kill switch is a healthy box too
  t.ok(
    run([
      [0, 'killed', false],
      [NO_WAN_MINUTES, 'killed', false],
    ]).at(-1)?.good,
  );
});

t.test('the offline stretch restarts after a WAN or an unhealthy moment', async (t) => {
  const half = NO_WAN_MINUTES / 2;
  for (const interruption of [
    [half, 'connecting', true],
    [half, 'error', false],
    [half, 'tor-down', false],
    [half, 'booting', false],
  ] as [number, BoxStateName, boolean][]) {
    const r = run([[0, 'connecting', false], interruption, [NO_WAN_MINUTES + 0.5, 'connecting', false]]);
    t.notOk(r.at(-1)?.good, `interrupted by ${interruption[1]}/${interruption[2] ? 'wan' : 'no wan'}`);
    const again = run([
      [0, 'connecting', false],
      interruption,
      [NO_WAN_MINUTES + 0.5, 'connecting', false],
      [NO_WAN_MINUTES + 0.5 + NO_WAN_MINUTES, 'connecting', false],
    ]);
    t.ok(again.at(-1)?.good, 'good a full stretch after the interruption');
  }
});

t.test('unhealthy is never good; good stays good within a boot', async (t) => {
  for (const s of ['error', 'tor-down', 'booting'] as BoxStateName[]) {
    t.notOk(
      run([
        [0, s, false],
        [N / MIN + 1, s, false],
      ]).at(-1)?.good,
      s,
    );
  }
  t.ok(
    run([
      [0, 'routing', true],
      [1, 'error', true],
    ]).at(-1)?.good,
  );
});

const wan = (o: Partial<WanView>): WanView => ({
  interface: 'eth0',
  type: 'ethernet',
  state: 'connected',
  address: '192.168.1.20/24',
  gateway: '192.168.1.1',
  ssid: null,
  signal: null,
  ...o,
});

t.test('a WAN counts with its link and a lease', async (t) => {
  t.ok(wanPresent(wan({})));
  t.notOk(wanPresent(null));
  t.notOk(wanPresent(wan({ address: null })), 'link without a lease');
  t.notOk(wanPresent(wan({ state: 'disconnected' })));
  t.notOk(wanPresent(wan({ state: 'connecting (getting IP configuration)' })));
  t.notOk(wanPresent(wan({ state: 'unavailable', address: null })));
});

t.test('the reporter writes the request once, only when good, and retries a failed write', async (t) => {
  let now = 0;
  let state: BoxStateName = 'connecting';
  let failNext = false;
  const writes: [string, string][] = [];
  const logs: string[] = [];
  const r = new SlotGoodReporter({
    runtimeDir: '/run/onionbox',
    state: () => state,
    wan: async () => wan({}),
    log: { info: (_o, m) => logs.push(m), warn: (_o, m) => logs.push(`warn: ${m}`) },
    now: () => now,
    write: async (p, text) => {
      if (failNext) {
        failNext = false;
        throw new Error('EROFS');
      }
      writes.push([p, text]);
    },
  });
  await r.sample();
  now = 30 * MIN;
  await r.sample();
  t.same(writes, [], 'a WAN without routing: nothing asked');
  state = 'routing';
  failNext = true;
  await r.sample();
  t.same(writes, []);
  t.notOk(r.requested, 'a failed write is not a request');
  t.match(logs.at(-1), /^warn: /);
  await r.sample();
  t.same(writes, [[`/run/onionbox/${SLOT_GOOD_FILE}`, 'routing\n']]);
  await r.sample();
  t.equal(writes.length, 1, 'asked once per boot');
});

t.test('without a runtime directory nothing is written', async (t) => {
  const writes: string[] = [];
  const r = new SlotGoodReporter({
    runtimeDir: undefined,
    state: () => 'routing',
    wan: async () => null,
    log: { info: () => undefined, warn: () => undefined },
    write: async (p) => {
      writes.push(p);
    },
  });
  await r.sample();
  t.ok(r.requested);
  t.same(writes, []);
});

t.test(
  'the slot phase: started with the daemon, it asks once the box routes; stopped, it samples no more',
  async (t) => {
    const runtimeDir = tmpDir(t, 'onionbox-slot-');
    let state: BoxStateName = 'connecting';
    let wanAsked = 0;
    const phase = slotPhase({
      runtimeDir,
      box: { status: () => ({ state }) },
      network: {
        wanStatus: async () => {
          wanAsked++;
          // NetworkManager not answering counts as no WAN, never as a crash
          throw new Error('NetworkManager is not running');
        },
      },
      log: { info: () => undefined, warn: () => undefined },
    });
    t.equal(phase.name, 'slot');
    const reporter = await phase.start();
    t.teardown(() => phase.stop());
    const file = join(runtimeDir, SLOT_GOOD_FILE);
    for (let i = 0; i < 200 && wanAsked === 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(wanAsked >= 1, 'start() samples at once');
    t.notOk(existsSync(file), 'connecting: nothing asked');
    reporter.start(); // a second start does not add a second timer
    state = 'routing';
    await reporter.sample();
    // the file appears (open) before its text is written: wait for the text, not only the name
    const written = () => existsSync(file) && readFileSync(file, 'utf8') !== '';
    for (let i = 0; i < 200 && !written(); i++) await new Promise((r) => setTimeout(r, 10));
    t.equal(readFileSync(file, 'utf8'), 'routing\n');
    t.equal(statSync(file).mode & 0o777, 0o600, 'written with mode 0600');
    t.ok(reporter.requested);
    await phase.stop();
    await phase.stop(); // stopping twice is harmless
  },
);
