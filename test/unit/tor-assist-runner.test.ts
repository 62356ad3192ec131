/**
 * The connection assist's adapter (firmware/tor/assist-runner.ts): what it does with the machine's
 * decisions. Real parts: the event bus, the config store (on disk, in a temp directory), the pure machine,
 * the built-in list's filter. The edge is faked: tor (its events are control-spec lines parsed by the real
 * parser and put on the bus as the supervisor does; its trySettings records), the WAN's carrier and
 * lease, and the timer (driven by hand with a clock the test moves).
 */
import t, { type Test } from 'tap';
import type { Config, TorConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { EventBus } from '../../firmware/events.js';
import type { TorStatus } from '../../firmware/state/machine.js';
import { STALL_MS, TRY_MS } from '../../firmware/tor/assist.js';
import {
  type AssistOutput,
  ConnectionAssist,
  carrier,
  ownBridgesOf,
  TICK_MS,
} from '../../firmware/tor/assist-runner.js';
import { assistBuiltins, MOAT_FAILED_WHY, MOAT_SKIPPED_WHY } from '../../firmware/tor/builtin-bridges.js';
import type { MoatParts } from '../../firmware/tor/moat-ask.js';
import { parseEvent, parseTranscript } from '../../firmware/tor/protocol.js';
import { parseTestNetwork } from '../../firmware/tor/test-network.js';
import { tmpDir } from '../helpers/tmp.js';

const FP1 = 'A'.repeat(40);
const FP2 = 'B'.repeat(40);
const CERT = 'c'.repeat(70);
const LINE1 = `obfs4 198.18.0.21:4430 ${FP1} cert=${CERT} iat-mode=0`;
const LINE2 = `obfs4 198.18.0.22:4430 ${FP2} cert=${CERT} iat-mode=0`;
const OWN = `obfs4 203.0.113.9:443 ${'C'.repeat(40)} cert=${CERT} iat-mode=0`;
const SNOW = `snowflake 192.0.2.3:80 ${'D'.repeat(40)} fingerprint=${'D'.repeat(40)} url=https://snow.example/ fronts=front.example ice=stun:stun.example:3478`;

/** tor at the assist's edge: the supervisor's trySettings, keepAsGood, retryNow, status, settings. */
class EdgeTor {
  settings: TorConfig;
  readonly tried: TorConfig[] = [];
  kept = 0;
  retries = 0;
  refuse: (s: TorConfig) => string | null = () => null;
  /** Runs while a setting is applied, after tor took it and before its reload (tor verifies meanwhile). */
  whileApplying: (s: TorConfig) => void = () => undefined;
  #status: TorStatus = { phase: 'bootstrapping', progress: 0, summary: 'Starting', ready: false };
  constructor(
    readonly bus: EventBus,
    settings: TorConfig,
  ) {
    this.settings = settings;
  }
  async trySettings(s: TorConfig): Promise<true | string> {
    const refused = this.refuse(s);
    if (refused !== null) return refused;
    this.tried.push(s);
    this.settings = s;
    this.whileApplying(s);
    await Promise.resolve();
    this.report({ phase: 'bootstrapping', progress: 0, summary: 'reloading', ready: false });
    return true;
  }
  async keepAsGood(): Promise<void> {
    this.kept++;
  }
  async retryNow(): Promise<void> {
    this.retries++;
  }
  status(): TorStatus {
    return { ...this.#status };
  }
  report(s: TorStatus): void {
    this.#status = s;
    this.bus.emit('tor:status', { ...s });
  }
  /** One line as tor sends it on the control port, put on the bus as the supervisor does. */
  line(text: string): void {
    const [reply] = parseTranscript(`${text}\r\n`);
    if (!reply) throw new Error('no reply');
    this.bus.emit('tor:client-status', parseEvent(reply));
  }
  ready(): void {
    this.report({ phase: 'ready', progress: 100, summary: 'Done', ready: true });
  }
}

async function world(
  t: Test,
  opts: {
    tor?: Partial<TorConfig>;
    assist?: Config['assist'];
    builtins?: string[];
    /** The built-in part of the try-list as settings of their own (default: assistBuiltins(builtins)). */
    groups?: string[][];
    refuse?: (s: TorConfig) => string | null;
    link?: boolean;
    lease?: boolean;
    /** Moat's part of the try-list (absent: the box has no Moat client). */
    moat?: () => Promise<MoatParts>;
  } = {},
) {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  if (opts.tor || opts.assist) {
    await config.update((c) => ({
      ...c,
      tor: { ...c.tor, ...opts.tor },
      ...(opts.assist ? { assist: opts.assist } : {}),
    }));
  }
  const bus = new EventBus();
  const tor = new EdgeTor(bus, config.get().tor);
  if (opts.refuse) tor.refuse = opts.refuse;
  const groups = opts.groups;
  let now = 1_000_000;
  const wan = { link: opts.link ?? true, lease: opts.lease ?? true };
  let tickFn: (() => void) | null = null;
  const shown: AssistOutput[] = [];
  const assist = new ConnectionAssist({
    bus,
    tor,
    config,
    wan: { link: async () => wan.link, lease: () => wan.lease },
    builtins: () =>
      groups === undefined
        ? assistBuiltins(opts.builtins ?? [LINE1, SNOW], { moat: opts.moat !== undefined })
        : { candidates: groups.map((lines) => ({ transport: 'obfs4', lines })), skipped: [] },
    show: (o) => shown.push(o),
    ...(opts.moat ? { moat: opts.moat } : {}),
    now: () => now,
    timer: {
      every: (ms, fn) => {
        t.equal(ms, TICK_MS);
        tickFn = fn;
        return () => {
          tickFn = null;
        };
      },
    },
  });
  await assist.start();
  t.teardown(() => assist.stop());
  const last = () => shown.at(-1);
  return {
    dir,
    config,
    bus,
    tor,
    wan,
    assist,
    shown,
    last,
    /** Moves the clock and runs one tick (as the timer would), then lets the actions run. */
    async advance(ms: number) {
      now += ms;
      if (tickFn === null) throw new Error('no timer');
      await assist.tick();
      await assist.settled();
    },
    settled: () => assist.settled(),
  };
}

const WARN_TIMEOUT =
  '650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="Connection timed out" REASON=TIMEOUT COUNT=10 RECOMMENDATION=warn HOSTID="0123456789ABCDEF0123456789ABCDEF01234567" HOSTADDR="198.18.0.10:5000"';

t.test("a direct connection: tor's own 100 % is not routing; readiness is", async (t) => {
  const w = await world(t);
  w.tor.line('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay"');
  w.tor.line('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
  t.equal(w.assist.state.phase, 'connecting', 'Bootstrapped 100% without an exit circuit');
  t.equal(w.last()?.words, 'Connecting to Tor (99 %).');
  w.tor.ready();
  await w.settled();
  t.equal(w.assist.state.phase, 'connected');
  t.equal(w.last()?.words, 'Connected to Tor.');
  t.same(w.tor.tried, [], 'nothing was tried');
  await w.advance(STALL_MS * 2);
  t.equal(w.assist.state.phase, 'connected', 'a stall after routing changes nothing');
  // tor loses routing later (its circuits, a restart): not "connected" any more
  w.tor.report({ phase: 'bootstrapping', progress: 100, summary: 'circuits lost', ready: false });
  await w.settled();
  t.equal(w.assist.state.phase, 'connecting');
  t.equal(w.last()?.words, 'Connecting to Tor (0 %).');
  await w.advance(STALL_MS);
  t.equal(w.assist.state.phase, 'trying', 'lost for STALL_MS with a link and a lease: a bridge is tried');
  t.same(w.tor.tried[0]?.bridges, [LINE1]);
});

t.test('routing lost and back through the bridge the box found: its words again', async (t) => {
  const w = await world(t);
  w.tor.line(WARN_TIMEOUT);
  await w.settled();
  w.tor.ready();
  await w.settled();
  t.equal(w.last()?.words, 'Connected through a obfs4 bridge the box found.');
  w.tor.report({ phase: 'crashed', progress: 0, summary: 'tor exited', ready: false });
  await w.settled();
  t.equal(w.assist.state.phase, 'connecting', 'tor restarting is not connected');
  w.tor.ready();
  await w.settled();
  t.equal(w.last()?.words, 'Connected through a obfs4 bridge the box found.');
  t.equal(w.tor.kept, 1, 'kept once');
  t.equal(w.tor.tried.length, 1, 'nothing else tried');
});

t.test('blocked, no own bridges: the built-in obfs4 lines, kept once tor routes, stored', async (t) => {
  const w = await world(t);
  w.tor.line(WARN_TIMEOUT);
  await w.settled();
  t.equal(w.assist.state.phase, 'trying', 'warning -> the WAN answers -> blocked -> the list -> trying');
  t.equal(w.tor.tried.length, 1);
  t.same(w.tor.tried[0]?.bridges, [LINE1], 'obfs4 only: the built-in snowflake is left out');
  t.equal(w.tor.tried[0]?.useBridges, true);
  const out = w.last();
  t.equal(out?.words, 'Your internet provider seems to block Tor. Trying a bridge (1 of 1)...');
  t.equal(out?.oled, 'blocked: try 1/1');
  t.same([out?.attempt, out?.of], [1, 1]);
  t.ok(out?.skipped.includes(MOAT_SKIPPED_WHY), 'the Moat step is skipped, with why');
  t.ok(
    out?.skipped.some((s) => /snowflake/.test(s)),
    'the snowflake lines are skipped, with why',
  );
  t.same(w.config.get().tor.bridges, [], 'nothing stored while trying');
  w.tor.ready();
  await w.settled();
  t.equal(w.assist.state.phase, 'connected');
  t.equal(w.last()?.words, 'Connected through a obfs4 bridge the box found.');
  t.same(w.config.get().tor.bridges, [LINE1]);
  t.equal(w.config.get().tor.useBridges, true);
  t.match(w.config.get().assist?.found, { transport: 'obfs4', lines: [LINE1], source: 'builtin' });
  t.equal(w.tor.kept, 1, "its torrc kept as tor's last working one");
  // a power cut now: the stored document has the bridge, and it counts as the box's, not the owner's
  const reread = new ConfigStore(w.dir);
  await reread.load();
  t.same(reread.get().tor.bridges, [LINE1]);
  t.equal(ownBridgesOf(reread.get().tor, reread.get().assist ?? { blockedHere: false, found: null }), false);
});

t.test(
  "a ready of the previous setting while a candidate is applied is not the candidate's: not kept",
  async (t) => {
    const w = await world(t, { groups: [[LINE1], [LINE2]], assist: { blockedHere: true, found: null } });
    await w.settled();
    t.equal(w.assist.state.phase, 'trying');
    t.same(w.tor.tried.at(-1)?.bridges, [LINE1]);
    // the first setting reaches routing just as its time runs out and the second is being applied:
    // tor's ready speaks of LINE1 while tor already holds LINE2 (the supervisor's settings)
    w.tor.whileApplying = (s) => {
      if (s.bridges.includes(LINE2)) w.tor.ready();
    };
    await w.advance(TRY_MS);
    t.same(w.tor.tried.at(-1)?.bridges, [LINE2], 'the second setting is applied');
    t.equal(w.assist.state.phase, 'trying', "still trying: the ready was the previous setting's");
    t.equal(w.assist.state.index, 1);
    t.equal(w.tor.kept, 0, 'nothing kept');
    t.same(w.config.get().tor.bridges, [], 'nothing stored');
    t.equal(w.config.get().assist?.found ?? null, null);
    // the second setting proves itself: kept
    w.tor.ready();
    await w.settled();
    t.equal(w.assist.state.phase, 'connected');
    t.same(w.config.get().tor.bridges, [LINE2]);
    t.equal(w.tor.kept, 1);
  },
);

t.test('one timeout per setting; a setting tor refuses is skipped at once', async (t) => {
  const w = await world(t, { builtins: [LINE1, LINE2], assist: { blockedHere: true, found: null } });
  await w.settled();
  t.equal(w.assist.state.phase, 'trying', '"blocked here": no direct attempt');
  t.equal(w.tor.tried.length, 1, 'one setting: both lines of the transport');
  t.same(w.tor.tried[0]?.bridges, [LINE1, LINE2]);
});

t.test(
  'several settings: the next after TRY_MS, a refused one at once, the first that routes kept',
  async (t) => {
    const REFUSED = `obfs4 198.18.0.23:4430 ${'E'.repeat(40)} cert=${CERT} iat-mode=0`;
    const w = await world(t, {
      assist: { blockedHere: true, found: null },
      groups: [[LINE1], [REFUSED], [LINE2]],
      refuse: (s) => (s.bridges.includes(REFUSED) ? 'tor --verify-config refused it' : null),
    });
    await w.settled();
    t.same(
      w.tor.tried.map((s) => s.bridges),
      [[LINE1]],
    );
    t.match(w.last()?.words, /Trying a bridge \(1 of 3\)/);
    await w.advance(TRY_MS - TICK_MS);
    t.equal(w.tor.tried.length, 1, 'still within its time');
    await w.advance(TICK_MS);
    t.same(
      w.tor.tried.map((s) => s.bridges),
      [[LINE1], [LINE2]],
      'timed out; the second refused by tor; the third at once',
    );
    t.match(w.last()?.words, /Trying a bridge \(3 of 3\)/);
    w.tor.ready();
    await w.settled();
    t.same(w.config.get().tor.bridges, [LINE2], 'the first that routed is kept');
  },
);

t.test('every setting fails: exhausted, the stored settings back', async (t) => {
  const w = await world(t, { assist: { blockedHere: true, found: null } });
  await w.settled();
  await w.advance(TRY_MS);
  t.equal(w.assist.state.phase, 'exhausted');
  t.same(w.tor.tried.at(-1), w.config.get().tor, 'restore: tor runs with the stored settings again');
  t.match(w.last()?.words, /no bridge the box knows got through/);
  t.same(w.config.get().tor.bridges, []);
});

t.test("the owner's own bridges: never replaced without the owner's word", async (t) => {
  const w = await world(t, { tor: { useBridges: true, bridges: [OWN] } });
  w.tor.line(WARN_TIMEOUT);
  await w.settled();
  t.equal(w.assist.state.phase, 'blocked');
  t.same(w.tor.tried, [], 'nothing tried');
  t.equal(w.last()?.askOwner, true, 'the page asks');
  t.equal(w.last()?.oled, 'blocked: see the page');
  await w.advance(TRY_MS * 3);
  t.same(w.tor.tried, [], 'still nothing, however long');
  t.equal(w.assist.consent(), true);
  await w.settled();
  t.same(
    w.tor.tried.map((s) => s.bridges),
    [[LINE1]],
    'with consent: the box tries its own',
  );
  w.tor.ready();
  await w.settled();
  t.same(w.config.get().tor.bridges, [LINE1], 'the setting that routed replaces the lines that did not');
  t.equal(w.assist.consent(), false, 'consent outside "asking" does nothing');
});

t.test('"blocked here" with own bridges: theirs first, and the page asks when they fail', async (t) => {
  const w = await world(t, {
    tor: { useBridges: true, bridges: [OWN] },
    assist: { blockedHere: true, found: null },
  });
  t.equal(w.assist.state.phase, 'connecting');
  await w.advance(STALL_MS);
  t.equal(w.assist.state.phase, 'blocked');
  t.same(w.tor.tried, []);
});

t.test('no network: no carrier, no lease, NOROUTE; back when the cable is', async (t) => {
  const w = await world(t, { link: false });
  t.equal(w.assist.state.phase, 'no-network');
  t.equal(w.last()?.words, 'No network: check the cable (or the Wi-Fi network the box joins).');
  t.equal(w.last()?.oled, 'no network: cable?');
  w.wan.link = true;
  await w.advance(TICK_MS);
  t.equal(w.assist.state.phase, 'connecting', 'the cable is back');
  w.wan.lease = false;
  await w.advance(TICK_MS);
  t.equal(w.assist.state.phase, 'no-network', 'the lease is gone');
  w.wan.lease = true;
  await w.advance(TICK_MS);
  w.tor.line(
    '650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn WARNING="No route to host" REASON=NOROUTE COUNT=1 RECOMMENDATION=warn',
  );
  t.equal(w.assist.state.phase, 'no-network', "tor's NOROUTE");
  t.same(w.tor.tried, []);
});

t.test('CLOCK_SKEW: clock wrong; once the clock service set it, tor retries at once', async (t) => {
  const w = await world(t);
  w.tor.line('650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-86400 SOURCE=CONSENSUS');
  t.equal(w.assist.state.phase, 'clock-wrong');
  t.match(w.last()?.words, /clock is wrong.*correcting it/);
  t.equal(w.last()?.oled, 'clock wrong: fixing');
  w.bus.emit('clock:set', { by: 'tor', at: Date.now() });
  await w.settled();
  t.equal(w.tor.retries, 1, 'tor retries with the corrected clock');
  t.equal(w.assist.state.phase, 'connecting');
  w.bus.emit('clock:set', { by: 'owner', at: Date.now() });
  await w.settled();
  t.equal(w.tor.retries, 1, 'a clock set while nothing was wrong: no retry');
});

t.test(
  'the owner changes settings while a bridge is tried: the assist starts over, theirs stand',
  async (t) => {
    const w = await world(t, { assist: { blockedHere: true, found: null } });
    await w.settled();
    t.equal(w.assist.state.phase, 'trying');
    // the page saved exit countries (BoxController.applyTorSettings stores them once tor ran with them)
    await w.config.update((c) => ({ ...c, tor: { ...c.tor, exitNodes: ['de'] } }));
    await w.settled();
    t.same(
      w.tor.tried.map((s) => [s.useBridges, s.exitNodes]),
      [
        [true, []],
        [false, ['de']],
        [true, ['de']],
      ],
      "the stored settings back at once, then the try-list again, on the owner's new settings",
    );
    w.tor.ready();
    await w.settled();
    t.same(w.config.get().tor.exitNodes, ['de'], "the owner's change stands");
    t.same(w.config.get().tor.bridges, [LINE1]);
  },
);

t.test('carrier: sysfs, unreadable or a bad name is no link', async (t) => {
  const dir = tmpDir(t);
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(`${dir}/eth0`);
  writeFileSync(`${dir}/eth0/carrier`, '1\n');
  mkdirSync(`${dir}/eth1`);
  writeFileSync(`${dir}/eth1/carrier`, '0\n');
  t.equal(await carrier('eth0', dir), true);
  t.equal(await carrier('eth1', dir), false);
  t.equal(await carrier('eth9', dir), false);
  t.equal(await carrier('../eth0', dir), false);
});

t.test('ownBridgesOf: the lines the box found are not the owner’s', async (t) => {
  const tor = { useBridges: true, bridges: [LINE1], exitNodes: [], excludeExitNodes: [], strictNodes: false };
  t.equal(ownBridgesOf(tor, { blockedHere: false, found: null }), true);
  t.equal(
    ownBridgesOf(tor, {
      blockedHere: false,
      found: { transport: 'obfs4', lines: [LINE1], source: 'builtin', at: 1 },
    }),
    false,
  );
  t.equal(ownBridgesOf({ ...tor, useBridges: false }, { blockedHere: false, found: null }), false);
});

t.test("a test network's own built-in bridges: data, checked by the bridge grammar", async (t) => {
  const base = {
    torrc: ['TestingTorNetwork 1'],
    checkUrl: 'http://web.sim.test/api/ip',
  };
  const ok = parseTestNetwork(JSON.stringify({ ...base, builtinBridges: [LINE1, SNOW] }));
  t.same(ok.builtinBridges, [LINE1, SNOW]);
  t.same(
    assistBuiltins(ok.builtinBridges).candidates,
    [{ transport: 'obfs4', lines: [LINE1] }],
    'the assist tries its obfs4 lines only',
  );
  t.equal(parseTestNetwork(JSON.stringify(base)).builtinBridges, undefined, 'optional');
  const moat = {
    service: 'https://moat.sim.test/moat',
    url: 'https://meek.sim.test/',
    front: 'front.sim.test',
  };
  t.same(parseTestNetwork(JSON.stringify({ ...base, moat })).moat, moat, "the network's own Moat");
  t.throws(() => parseTestNetwork(JSON.stringify({ ...base, moat: { ...moat, front: 'a;b' } })), {
    code: 'OBX_ERR_TOR_VALUE_INVALID',
    message: /moat front/,
  });
  t.throws(
    () => parseTestNetwork(JSON.stringify({ ...base, builtinBridges: ['obfs4 1.2.3.4:1 X\nUseBridges 0'] })),
    { code: 'OBX_ERR_TOR_VALUE_INVALID', message: /builtinBridges\[0\]/ },
  );
  t.throws(() => parseTestNetwork(JSON.stringify({ ...base, builtinBridges: 'obfs4' })), {
    code: 'OBX_ERR_TOR_VALUE_INVALID',
  });
  t.throws(() => parseTestNetwork(JSON.stringify({ ...base, builtinBridges: [7] })), {
    code: 'OBX_ERR_TOR_VALUE_INVALID',
  });
  t.same(
    assistBuiltins().candidates.map((c) => c.transport),
    ['obfs4'],
    "the release's own list: obfs4 only",
  );
  t.same(
    assistBuiltins().skipped.map((s) => s.step),
    ['moat', 'transport'],
  );
});

t.test("Moat first: the country's settings, then its defaults, then the built-in lines", async (t) => {
  const COUNTRY = LINE1.replace('cert=', 'cert=C');
  const DEFAULT = LINE1.replace('cert=', 'cert=D');
  let asked = 0;
  const w = await world(t, {
    moat: async () => {
      asked++;
      return {
        country: [{ transport: 'obfs4', lines: [COUNTRY] }],
        defaults: [
          { transport: 'obfs4', lines: [DEFAULT] },
          { transport: 'obfs4', lines: [COUNTRY] },
        ],
        notes: [],
      };
    },
  });
  w.tor.line(WARN_TIMEOUT);
  await w.settled();
  t.equal(asked, 1, 'Moat asked once the box knows Tor is blocked');
  t.equal(w.assist.state.phase, 'trying');
  t.same(
    w.assist.state.candidates.map((c) => [c.source, c.lines]),
    [
      ['moat-country', [COUNTRY]],
      ['moat-defaults', [DEFAULT]],
      ['builtin', [LINE1]],
    ],
    'the same setting from two places is tried once, at the first',
  );
  t.same(w.tor.tried[0]?.bridges, [COUNTRY], "the country's setting first");
  t.notOk(w.last()?.skipped.includes(MOAT_SKIPPED_WHY), 'Moat is not left out');
  t.equal(w.last()?.words, 'Your internet provider seems to block Tor. Trying a bridge (1 of 3)...');
  await w.advance(TRY_MS);
  t.same(w.tor.tried[1]?.bridges, [DEFAULT], 'then the defaults');
  w.tor.ready();
  await w.settled();
  t.equal(w.assist.state.phase, 'connected');
  t.same(w.config.get().tor.bridges, [DEFAULT], 'stored');
  t.equal(w.config.get().assist?.found?.source, 'moat-defaults');
});

t.test('Moat that fails or names nothing: the built-in lines, and the page says why', async (t) => {
  for (const moat of [
    async (): Promise<MoatParts> => {
      throw new Error('no answer from onionbox-moat.service in time');
    },
    async (): Promise<MoatParts> => ({ country: [], defaults: [], notes: ['settings: Moat says 404'] }),
  ]) {
    const w = await world(t, { moat });
    w.tor.line(WARN_TIMEOUT);
    await w.settled();
    t.equal(w.assist.state.phase, 'trying');
    t.same(w.tor.tried[0]?.bridges, [LINE1], 'the built-in line');
    t.ok(w.last()?.skipped.includes(MOAT_FAILED_WHY), 'Moat gave nothing, with why');
  }
});
