/**
 * BoxController with the real state machine, the real config store, the real event bus, the simulated
 * board and small test doubles of tor and the firewall (their real implementations are built in
 * parallel; test/integration/board-killswitch.test.ts runs the same path against the real Firewall in a
 * network namespace). The doubles behave like the real ones where it matters here: apply() is
 * asynchronous and may fail (the kernel keeps the previous ruleset), tor reports status on the bus.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import type { ApplyTorResult, BoxStatus, FirewallModeName } from '../../firmware/box/api.js';
import { BoxController, type FirewallLike, type TorLike } from '../../firmware/box/controller.js';
import type { TorConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { registerBoardIpc } from '../../firmware/control/commands.js';
import { IpcServer, ipcCall } from '../../firmware/control/socket.js';
import { EventBus } from '../../firmware/events.js';
import type { TorStatus } from '../../firmware/state/machine.js';
import { unchangedClock } from '../helpers/clock.js';
import { tmpDir } from '../helpers/tmp.js';

const READY: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };

class TorDouble implements TorLike {
  #status: TorStatus = { phase: 'starting', progress: 0, summary: 'Starting', ready: false };
  applied: TorConfig[] = [];
  applyResult: ApplyTorResult = { ok: true, rolledBack: false, message: 'applied' };
  newnyms = 0;
  constructor(private readonly bus: EventBus) {}
  status(): TorStatus {
    return { ...this.#status };
  }
  report(s: TorStatus): void {
    this.#status = s;
    this.bus.emit('tor:status', { ...s });
  }
  async newIdentity(): Promise<void> {
    this.newnyms++;
  }
  async circuits() {
    return [];
  }
  async applySettings(cfg: TorConfig): Promise<ApplyTorResult> {
    this.applied.push(cfg);
    return this.applyResult;
  }
  lastWarnings(): string[] {
    return ['clock skew 3 s'];
  }
}

class FirewallDouble implements FirewallLike {
  /** The ruleset the "kernel" holds; a failed apply leaves it as it was (nft -f is one transaction). */
  kernel: FirewallModeName | 'boot-lockdown' = 'boot-lockdown';
  history: FirewallModeName[] = [];
  failing = new Set<FirewallModeName>();
  async apply(mode: FirewallModeName): Promise<unknown> {
    await new Promise((r) => setImmediate(r));
    if (this.failing.has(mode)) throw new Error(`nft: could not load ${mode}`);
    this.kernel = mode;
    this.history.push(mode);
    return { mode };
  }
  async counters() {
    return { 'drop-udp': { packets: 3, bytes: 200 } };
  }
}

function logger() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_obj: object, msg: string) => {
    lines.push({ level, msg });
  };
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

async function setup(
  t: Test,
  opts: {
    initialSwitch?: 'engaged' | 'released';
    held?: boolean;
    softKill?: boolean;
    containment?: { engage(): Promise<void>; release(): Promise<void> };
  } = {},
) {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  if (opts.softKill) await config.update((c) => ({ ...c, softKill: true }));
  const bus = new EventBus();
  const board = new SimBoard({
    initialSwitch: opts.initialSwitch ?? 'released',
    buttonHeldAtBoot: opts.held ?? false,
  });
  const tor = new TorDouble(bus);
  const firewall = new FirewallDouble();
  const { lines, log } = logger();
  let clockSet: number | null = null;
  const box = new BoxController({
    config,
    bus,
    board,
    tor,
    firewall,
    log,
    simulate: true,
    sim: board.controls(),
    retryMs: 10,
    containment: opts.containment,
    clock: {
      set: async (ms) => {
        clockSet = ms;
      },
    },
  });
  t.teardown(() => box.stop());
  return { dir, config, bus, board, tor, firewall, box, lines, clock: () => clockSet };
}

t.test('boot: lockdown until tor is ready, then routing; LEDs and OLED follow', async (t) => {
  const { box, board, tor, firewall } = await setup(t);
  await box.start();
  t.equal(box.status().state, 'connecting');
  t.equal(firewall.kernel, 'connecting');
  t.equal(board.leds().amber, 'blink');
  tor.report({ phase: 'bootstrapping', progress: 60, summary: 'Loading relay descriptors', ready: false });
  await box.settled();
  t.equal(board.screen()?.progress, 60);
  tor.report(READY);
  await box.settled();
  t.equal(box.status().state, 'routing');
  t.equal(firewall.kernel, 'routing');
  t.same(board.leds(), { green: 'on', amber: 'off', red: 'off' });
  t.equal(board.screen()?.state, 'routing');
  t.same(firewall.history, ['connecting', 'routing']);
  t.ok(board.oledPng().length > 100, 'the OLED PNG is there');
});

t.test('kill switch: edge -> killed ruleset; released -> routing only while tor is ready', async (t) => {
  const { box, board, tor, firewall } = await setup(t);
  await box.start();
  tor.report(READY);
  await box.settled();
  board.setSwitch(true);
  await box.settled();
  t.equal(firewall.kernel, 'killed');
  t.equal(box.status().state, 'killed');
  t.equal(box.status().killSwitch.hardware, true);
  t.equal(board.leds().red, 'on');
  tor.report({ phase: 'crashed', progress: 0, summary: 'tor exited', ready: false });
  board.setSwitch(false);
  await box.settled();
  t.equal(firewall.kernel, 'connecting', 'switch off but tor down: the LAN stays cut');
  t.equal(box.status().state, 'tor-down');
  tor.report(READY);
  await box.settled();
  t.equal(firewall.kernel, 'routing');
});

t.test('a broken switch reads as engaged', async (t) => {
  const { box, board, tor, firewall } = await setup(t);
  await box.start();
  tor.report(READY);
  await box.settled();
  board.setSwitch('unreadable');
  await box.settled();
  t.equal(firewall.kernel, 'killed');
  t.match(box.status().explanation, /cannot be read/);
});

t.test('switch engaged at power-on: the first ruleset is killed', async (t) => {
  const { box, tor, firewall } = await setup(t, { initialSwitch: 'engaged' });
  tor.report(READY);
  await box.start();
  t.same(firewall.history, ['killed']);
});

t.test('a burst of toggles ends in the last position', async (t) => {
  const { box, board, tor, firewall } = await setup(t);
  await box.start();
  tor.report(READY);
  await box.settled();
  for (let i = 0; i < 25; i++) board.setSwitch(i % 2 === 0);
  await box.settled();
  t.equal(firewall.kernel, 'killed', '25 toggles starting with "on": on');
  board.setSwitch(false);
  await box.settled();
  t.equal(firewall.kernel, 'routing');
});

t.test('apply failure fails closed (error state, closed mode), then retries the real target', async (t) => {
  const { box, tor, firewall, lines } = await setup(t);
  await box.start();
  firewall.failing.add('routing');
  tor.report(READY);
  await box.settled();
  t.equal(box.status().state, 'error');
  t.equal(firewall.kernel, 'lockdown', 'the most closed mode was applied');
  t.ok(lines.some((l) => l.level === 'error' && /failing closed/.test(l.msg)));
  firewall.failing.clear();
  while (firewall.kernel !== 'routing') {
    await new Promise((r) => setTimeout(r, 5));
    await box.settled();
  }
  t.equal(box.status().state, 'routing');
});

t.test('apply failure while killed stays killed', async (t) => {
  const { box, board, tor, firewall } = await setup(t);
  await box.start();
  tor.report(READY);
  await box.settled();
  firewall.failing.add('killed');
  board.setSwitch(true);
  await box.settled();
  t.equal(box.status().state, 'error');
  t.equal(box.status().firewallMode, 'killed');
  firewall.failing.clear();
  while (firewall.kernel !== 'killed') {
    await new Promise((r) => setTimeout(r, 5));
    await box.settled();
  }
  t.equal(box.status().state, 'killed');
});

t.test(
  'when the killed ruleset cannot be loaded, lockdown is loaded instead (both cut the LAN)',
  async (t) => {
    const { box, board, tor, firewall, lines } = await setup(t);
    await box.start();
    tor.report(READY);
    await box.settled();
    firewall.failing.add('killed');
    board.setSwitch(true);
    await box.settled();
    t.equal(firewall.kernel, 'lockdown', 'not left routing');
    t.equal(box.status().state, 'error');
    t.ok(lines.some((l) => /fell back to lockdown/.test(l.msg)));
    firewall.failing.add('lockdown');
    const contained: string[] = [];
    const again = await setup(t, {
      containment: {
        engage: async () => {
          contained.push('engage');
        },
        release: async () => {
          contained.push('release');
        },
      },
    });
    await again.box.start();
    again.tor.report(READY);
    await again.box.settled();
    again.firewall.failing.add('killed');
    again.firewall.failing.add('lockdown');
    again.board.setSwitch(true);
    await again.box.settled();
    t.equal(again.firewall.kernel, 'routing', 'nft refusing every closed ruleset leaves the previous one');
    t.ok(
      again.lines.some((l) => /no closed ruleset could be loaded/.test(l.msg)),
      'and says so loudly',
    );
    t.same(contained, ['engage'], 'the last resort (onionboxd: stop tor) is engaged once');
    again.firewall.failing.clear();
    await new Promise((r) => setTimeout(r, 30)); // the 10 ms retry
    await again.box.settled();
    t.equal(again.firewall.kernel, 'killed', 'the retry loads the closed ruleset');
    t.same(contained, ['engage', 'release'], 'and releases the last resort');
  },
);

t.test('web kill switch: cuts first, is stored, and survives a restart', async (t) => {
  const { box, tor, firewall, config } = await setup(t);
  await box.start();
  tor.report(READY);
  await box.settled();
  await box.setSoftKill(true);
  t.equal(firewall.kernel, 'killed');
  t.equal(config.get().softKill, true);
  t.equal(box.status().killSwitch.software, true);
  await t.rejects(box.setSoftKill('yes' as unknown as boolean), { code: 'OBX_ERR_BOX_BAD_INPUT' });
  await box.setSoftKill(false);
  t.equal(firewall.kernel, 'routing');
  const again = await setup(t, { softKill: true });
  again.tor.report(READY);
  await again.box.start();
  t.same(again.firewall.history, ['killed']);
});

t.test('web kill switch reports an apply that could not be done', async (t) => {
  const { box, tor, firewall } = await setup(t);
  await box.start();
  tor.report(READY);
  await box.settled();
  firewall.failing.add('killed');
  await t.rejects(box.setSoftKill(true), { code: 'OBX_ERR_BOX_APPLY_FAILED' });
  t.equal(box.status().state, 'error');
});

t.test(
  'claim: code and claim id on the OLED; a press approves one claim and tells no one else',
  async (t) => {
    const { box, board, config } = await setup(t);
    await box.start();
    const shown = box.claimDisplay();
    t.match(shown?.code, /^\d{6}$/);
    t.equal(board.screen()?.claimCode, shown?.code);
    t.equal(board.screen()?.claimId, null, 'no claim pending yet');
    const seen: BoxStatus[] = [];
    box.onStatus((s) => seen.push(s));
    board.pressButton();
    const a = box.startClaim();
    t.equal(box.claimProgress(a.ticket).state, 'waiting', 'a press before the claim started does not count');
    t.equal(board.screen()?.claimId, a.id, 'the OLED shows the pending claim id');
    board.pressButton();
    t.same(box.claimProgress(a.ticket), { state: 'approved', id: a.id });
    t.same(box.claimProgress('someone-else'), { state: 'none', id: null });
    t.same(seen, [], 'a press sends no status event');
    t.equal(
      await box.claim({ password: 'short', ticket: a.ticket }).catch((e) => e.code),
      'OBX_ERR_WEB_FORM_INVALID',
    );
    t.equal(await box.claim({ password: 'violet tractor umbrella 42', ticket: 'nope' }), 'no-presence');
    t.equal(await box.claim({ password: 'violet tractor umbrella 42', ticket: a.ticket }), 'claimed');
    t.match(config.get().web.passwordHash, /^scrypt\$/);
    t.equal(board.screen()?.claimCode, null, 'no code once claimed');
    t.throws(() => box.startClaim(), { code: 'OBX_ERR_WEB_ALREADY_CLAIMED' });
    t.equal(await box.verifyPassword('violet tractor umbrella 42'), true);
    t.equal(await box.changePassword('wrong one here', 'a brand new passphrase'), 'wrong-password');
    t.equal(await box.changePassword('violet tractor umbrella 42', 'a brand new passphrase'), 'changed');
    t.equal(await box.verifyPassword('violet tractor umbrella 42'), false);
    const bak = await readFile(`${config.path}.bak`, 'utf8');
    t.notOk(bak.includes('violet'), 'sanity');
    t.equal(
      JSON.parse(bak).web.passwordHash,
      config.get().web.passwordHash,
      'the old hash is not in the backup',
    );
  },
);

t.test('wrong codes are counted box-wide: the 10th replaces the code on the OLED', async (t) => {
  const { box, board } = await setup(t);
  await box.start();
  const first = box.claimDisplay()?.code ?? '';
  const wrong = first === '000000' ? '000001' : '000000';
  for (let i = 0; i < 9; i++) {
    t.equal(await box.claim({ password: 'violet tractor umbrella 42', code: wrong }), 'no-presence');
  }
  t.equal(box.claimDisplay()?.code, first, 'nine wrong codes: same code');
  await box.claim({ password: 'violet tractor umbrella 42', code: wrong });
  const second = box.claimDisplay()?.code;
  t.not(second, first, 'the tenth: a new code');
  t.equal(board.screen()?.claimCode, second, 'and the OLED shows it');
  t.equal(await box.claim({ password: 'violet tractor umbrella 42', code: first }), 'no-presence');
});

t.test('the press of a reset hold approves nothing; the reset leaves no old secret on disk', async (t) => {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  const bus = new EventBus();
  const board = new SimBoard();
  const box = new BoxController({
    config,
    bus,
    board,
    tor: new TorDouble(bus),
    firewall: new FirewallDouble(),
    log: logger().log,
    simulate: true,
    clock: unchangedClock,
  });
  t.teardown(() => box.stop());
  await box.start();
  const a = box.startClaim();
  board.pressButton(10_000); // within the boot window: press + hold
  while (box.claimProgress(a.ticket).state !== 'none') await new Promise((r) => setTimeout(r, 5));
  t.equal(await box.claim({ password: 'violet tractor umbrella 42', ticket: a.ticket }), 'no-presence');
  // claimed, then reset: neither the hash nor the old key survives in config.json or its backup
  const b = box.startClaim();
  board.pressButton();
  t.equal(await box.claim({ password: 'violet tractor umbrella 42', ticket: b.ticket }), 'claimed');
  const hash = config.get().web.passwordHash ?? 'x';
  const key = box.sessionKey();
  await box.resetClaim();
  for (const file of [config.path, `${config.path}.bak`]) {
    const text = await readFile(file, 'utf8');
    t.notOk(text.includes(hash), `${file}: old hash gone`);
    t.notOk(text.includes(key), `${file}: old session key gone`);
  }
  t.not(box.sessionKey(), key);
  t.equal(box.isClaimed(), false);
});

t.test('holding the claim button 10 s at boot clears the password and rotates the session key', async (t) => {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  await config.update((c) => ({
    ...c,
    web: { ...c.web, passwordHash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==' },
  }));
  const key = config.get().web.sessionKey;
  const bus = new EventBus();
  const board = new SimBoard({ buttonHeldAtBoot: true });
  const { log } = logger();
  const box = new BoxController({
    config,
    bus,
    board,
    tor: new TorDouble(bus),
    firewall: new FirewallDouble(),
    log,
    simulate: true,
    clock: unchangedClock,
  });
  t.teardown(() => box.stop());
  await box.start();
  while (config.get().web.passwordHash !== null) await new Promise((r) => setTimeout(r, 5));
  t.not(config.get().web.sessionKey, key);
  t.equal(box.status().claimed, false);
});

t.test('a long hold later than the boot window changes nothing', async (t) => {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  await config.update((c) => ({
    ...c,
    web: { ...c.web, passwordHash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==' },
  }));
  const bus = new EventBus();
  let now = 1_000_000;
  const board = new SimBoard({ now: () => now });
  const box = new BoxController({
    config,
    bus,
    board,
    tor: new TorDouble(bus),
    firewall: new FirewallDouble(),
    log: logger().log,
    simulate: true,
    clock: unchangedClock,
    now: () => now,
  });
  t.teardown(() => box.stop());
  await box.start();
  now += 120_000;
  board.pressButton(12_000);
  await new Promise((r) => setTimeout(r, 20));
  t.not(config.get().web.passwordHash, null);
});

t.test('tor settings: stored only when tor runs with them', async (t) => {
  const { box, tor, config } = await setup(t);
  await box.start();
  const before = config.get().tor;
  await t.rejects(box.applyTorSettings({ ...before, exitNodes: ['XX1'] }), {
    code: 'OBX_ERR_CONFIG_INVALID',
  });
  t.same(config.get().tor, before);
  t.equal(tor.applied.length, 0, 'invalid settings never reach tor');
  tor.applyResult = { ok: false, rolledBack: true, message: 'tor did not become ready' };
  t.equal((await box.applyTorSettings({ ...before, exitNodes: ['de'] })).rolledBack, true);
  t.same(config.get().tor, before, 'rolled back: nothing stored');
  tor.applyResult = { ok: false, rolledBack: false, message: 'tor refused the torrc' };
  await box.applyTorSettings({ ...before, exitNodes: ['de'] });
  t.same(config.get().tor, before, 'refused: nothing stored');
  tor.applyResult = { ok: true, rolledBack: false, message: 'ok' };
  await box.applyTorSettings({ ...before, exitNodes: ['de'] });
  t.same(config.get().tor.exitNodes, ['de']);
});

t.test('clock, pass-throughs, diagnostics', async (t) => {
  const { box, tor, clock } = await setup(t);
  await box.start();
  await t.rejects(box.setClock(12), { code: 'OBX_ERR_CLOCK_INVALID' });
  await t.rejects(box.setClock(Number.NaN), { code: 'OBX_ERR_CLOCK_INVALID' });
  t.equal(clock(), null);
  const when = Date.UTC(2026, 10, 29, 1, 0, 0);
  await box.setClock(when);
  t.equal(clock(), when);
  await box.newIdentity();
  t.equal(tor.newnyms, 1);
  t.same(await box.circuits(), []);
  t.same(await box.counters(), { 'drop-udp': { packets: 3, bytes: 200 } });
  t.same(box.status().tor.lastWarnings, ['clock skew 3 s']);
  const diag = await box.diagnostics();
  t.match(diag, /state connecting/);
  t.notMatch(diag, /sessionKey|passwordHash/);
});

t.test('status listeners: called on change, not on repeats, and removable', async (t) => {
  const { box, board, tor } = await setup(t);
  await box.start();
  const seen: string[] = [];
  const off = box.onStatus((s) => seen.push(s.state));
  tor.report(READY);
  tor.report(READY);
  await box.settled();
  board.setSwitch(true);
  await box.settled();
  off();
  board.setSwitch(false);
  await box.settled();
  t.same(seen, ['routing', 'killed']);
});

t.test(
  'IPC: onionbox board switch/press reach the simulated board; bad input and real boards refused',
  async (t) => {
    const { box, tor, firewall, dir } = await setup(t);
    await box.start();
    tor.report(READY);
    await box.settled();
    const ipc = new IpcServer(join(dir, 'test.sock'));
    registerBoardIpc(ipc, box);
    await ipc.start();
    t.teardown(() => ipc.stop());
    const on = await ipcCall(ipc.path, 'board.switch', { engaged: true });
    t.same(on, {
      ok: true,
      result: { state: 'killed', firewallMode: 'killed', killSwitch: { hardware: true, software: false } },
    });
    t.equal(firewall.kernel, 'killed');
    const bad = await ipcCall(ipc.path, 'board.switch', { engaged: 'on' });
    t.match(bad, { ok: false, code: 'OBX_ERR_BOX_BAD_INPUT' });
    const press = await ipcCall(ipc.path, 'board.press', {});
    t.same(press, { ok: true, result: { pressed: true } }, 'the CLI learns nothing about claims');
    t.match(await ipcCall(ipc.path, 'board.press', { holdMs: -1 }), {
      ok: false,
      code: 'OBX_ERR_BOX_BAD_INPUT',
    });
    t.match(await ipcCall(ipc.path, 'board.leds', {}), { ok: true, result: { red: 'on' } });

    const real = new IpcServer(join(dir, 'real.sock'));
    registerBoardIpc(real, {
      ...box,
      sim: undefined,
      status: () => box.status(),
    } as unknown as BoxController);
    await real.start();
    t.teardown(() => real.stop());
    t.match(await ipcCall(real.path, 'board.switch', { engaged: true }), {
      ok: false,
      code: 'OBX_ERR_BOARD_NOT_SIMULATED',
    });
  },
);

t.test(
  'property: after any sequence of switch, tor, web kill and apply failures, the kernel routes only when allowed',
  async (t) => {
    type Op =
      | { op: 'switch'; v: boolean | 'unreadable' }
      | { op: 'tor'; s: TorStatus }
      | { op: 'soft'; v: boolean }
      | { op: 'fail'; mode: FirewallModeName; on: boolean }
      | { op: 'settle' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.constantFrom(true, false, 'unreadable' as const).map((v) => ({ op: 'switch' as const, v })),
      fc
        .constantFrom<TorStatus>(
          READY,
          { phase: 'bootstrapping', progress: 30, summary: '', ready: false },
          {
            phase: 'crashed',
            progress: 0,
            summary: '',
            ready: false,
          },
        )
        .map((s) => ({ op: 'tor' as const, s })),
      fc.boolean().map((v) => ({ op: 'soft' as const, v })),
      fc
        .record({
          mode: fc.constantFrom<FirewallModeName>('routing', 'killed', 'lockdown', 'connecting'),
          on: fc.boolean(),
        })
        .map((r) => ({ op: 'fail' as const, ...r })),
      fc.constant({ op: 'settle' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const dir = tmpDir(t);
        const config = new ConfigStore(dir);
        await config.load();
        const bus = new EventBus();
        const board = new SimBoard();
        const tor = new TorDouble(bus);
        const firewall = new FirewallDouble();
        const box = new BoxController({
          config,
          bus,
          board,
          tor,
          firewall,
          log: logger().log,
          simulate: true,
          clock: unchangedClock,
          retryMs: 1,
        });
        await box.start();
        let soft = false;
        const pending: Promise<unknown>[] = [];
        for (const o of ops) {
          if (o.op === 'switch') board.setSwitch(o.v);
          else if (o.op === 'tor') tor.report(o.s);
          else if (o.op === 'soft') {
            soft = o.v;
            pending.push(box.setSoftKill(o.v).catch(() => undefined));
          } else if (o.op === 'fail') {
            // nft refusing BOTH closed rulesets leaves the previous one in force and nothing in the
            // firewall can help (see the example test above); the generator keeps one of them loadable.
            const otherClosed = o.mode === 'killed' ? 'lockdown' : o.mode === 'lockdown' ? 'killed' : null;
            if (o.on && !(otherClosed && firewall.failing.has(otherClosed))) firewall.failing.add(o.mode);
            else if (!o.on) firewall.failing.delete(o.mode);
          } else await box.settled();
          // Whatever is in flight: the kernel never routes while a condition is unmet.
          const m = box.machine();
          const allowed = m.tor.ready && m.hardware === 'released' && !m.softKill;
          if (firewall.kernel === 'routing' && !allowed) {
            // only an apply that is still in flight may lag behind the state; settle and re-check
            await box.settled();
            const m2 = box.machine();
            if (
              firewall.kernel === 'routing' &&
              !(m2.tor.ready && m2.hardware === 'released' && !m2.softKill)
            ) {
              await box.stop();
              return false;
            }
          }
        }
        await Promise.all(pending);
        firewall.failing.clear();
        await box.settled();
        // a pending fault clears on the retry timer (retryMs 1): wait for it, however slow the machine
        for (let i = 0; i < 400 && box.machine().faults.firewall !== undefined; i++) {
          await new Promise((r) => setTimeout(r, 5));
          await box.settled();
        }
        await box.settled();
        const m = box.machine();
        const allowed = m.tor.ready && m.hardware === 'released' && !m.softKill && !soft;
        const ok = (firewall.kernel === 'routing') === allowed;
        await box.stop();
        return ok;
      }),
      {
        numRuns: Number(process.env.FC_RUNS ?? 60),
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
      },
    );
  },
);
