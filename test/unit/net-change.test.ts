/**
 * A WAN/LAN change (firmware/net/change.ts): the pure plan by table, the executor's order and its stop
 * at the first failure, the state machine's net-change phases and 'wan' fault, and BoxController's
 * changeNetwork()/wanLease() with the real state machine, config store and simulated board, a recording
 * firewall double (every apply is checked against the network it was rendered for) and recording
 * system steps. test/integration/net-change.test.ts runs the same path with the real Firewall (nft).
 */
import t, { type Test } from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import type { FirewallModeName } from '../../firmware/box/api.js';
import {
  BoxController,
  type FirewallLike,
  type NetworkChangeSystem,
  type TorLike,
} from '../../firmware/box/controller.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { isObxError } from '../../firmware/errors.js';
import { EventBus } from '../../firmware/events.js';
import {
  type ChangeHandlers,
  type ChangeStep,
  type ChangeStepKind,
  describeChange,
  executeNetworkChange,
  type NetworkShape,
  networkShapeProblems,
  planNetworkChange,
} from '../../firmware/net/change.js';
import { leaseCidr, maskToPrefix, parseDhcp4 } from '../../firmware/net/wan-lease.js';
import { initialState, mayRoute, type TorStatus, view } from '../../firmware/state/machine.js';
import { unchangedClock } from '../helpers/clock.js';
import { FakeNetwork } from '../helpers/fake-network.js';
import { after } from '../helpers/machine.js';
import { tmpDir } from '../helpers/tmp.js';

/** The error a promise rejects with (null when it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return null;
  } catch (e) {
    return e;
  }
}

const BASE: NetworkShape = {
  wanInterface: 'eth0',
  lanInterface: 'wlan0',
  lanAddress: '10.42.0.1',
  lanPrefix: 24,
  accessPoint: false,
};
const kinds = (steps: ChangeStep[]) => steps.map((s) => s.kind);

t.test('plan: a table of current/wanted pairs', async (t) => {
  const frame = (...middle: ChangeStepKind[]): ChangeStepKind[] => [
    'close',
    'firewall',
    ...middle,
    'reconnect',
    'commit',
    'open',
  ];
  const table: [string, Partial<NetworkShape>, Partial<NetworkShape>, ChangeStepKind[]][] = [
    ['nothing changes', {}, {}, []],
    ['nothing that matters (access point flag alone)', {}, { accessPoint: true }, []],
    ['new WAN interface', {}, { wanInterface: 'eth1' }, frame('wan-watch')],
    ['WAN to the Wi-Fi client', {}, { wanInterface: 'wlan1' }, frame('wan-watch')],
    ['new LAN interface, no access point', {}, { lanInterface: 'eth2' }, frame('lan-address', 'dhcp')],
    [
      'new LAN interface with an access point',
      { accessPoint: true },
      { lanInterface: 'wlan2', accessPoint: true },
      frame('lan-address', 'dhcp', 'access-point'),
    ],
    [
      'new LAN address: tor and the page move with it',
      {},
      { lanAddress: '10.43.0.1' },
      frame('lan-address', 'dhcp', 'tor-listen', 'web-listen'),
    ],
    ['new prefix only: tor keeps its address', {}, { lanPrefix: 16 }, frame('lan-address', 'dhcp')],
    [
      'WAN and LAN at once',
      { accessPoint: true },
      { wanInterface: 'eth1', lanInterface: 'wlan2', lanAddress: '192.168.7.1', accessPoint: true },
      frame('wan-watch', 'lan-address', 'dhcp', 'access-point', 'tor-listen', 'web-listen'),
    ],
    [
      'interfaces swapped',
      {},
      { wanInterface: 'wlan0', lanInterface: 'eth0' },
      frame('wan-watch', 'lan-address', 'dhcp'),
    ],
  ];
  for (const [name, cur, want, expected] of table) {
    const steps = planNetworkChange({ ...BASE, ...cur }, { ...BASE, ...want });
    t.same(kinds(steps), expected, name);
  }
});

t.test(
  'plan: every changing plan is closed first and opened last, and commits after tor is back',
  async (t) => {
    const values: Partial<NetworkShape>[] = [
      { wanInterface: 'eth1' },
      { lanInterface: 'eth2' },
      { lanAddress: '10.43.0.1' },
      { lanPrefix: 20 },
      { accessPoint: true },
    ];
    // every combination of the changes above
    for (let mask = 1; mask < 1 << values.length; mask++) {
      const wanted = { ...BASE };
      values.forEach((v, i) => {
        if (mask & (1 << i)) Object.assign(wanted, v);
      });
      const steps = kinds(planNetworkChange(BASE, wanted));
      if (steps.length === 0) {
        t.ok(mask === 16, 'only the access point flag alone changes nothing');
        continue;
      }
      t.equal(steps[0], 'close');
      t.equal(steps[1], 'firewall');
      t.same(steps.slice(-3), ['reconnect', 'commit', 'open']);
      t.equal(new Set(steps).size, steps.length, 'no step twice');
    }
  },
);

t.test('plan: the steps carry the wanted values', async (t) => {
  const wanted = { ...BASE, wanInterface: 'eth1', lanAddress: '10.43.0.1', lanPrefix: 25 };
  const steps = planNetworkChange(BASE, wanted);
  t.same(steps[0], { kind: 'close', reason: 'WAN eth0 -> eth1, LAN address 10.42.0.1/24 -> 10.43.0.1/25' });
  t.same(steps[1], { kind: 'firewall', network: wanted });
  t.same(
    steps.find((s) => s.kind === 'lan-address'),
    {
      kind: 'lan-address',
      lanInterface: 'wlan0',
      address: '10.43.0.1',
      prefix: 25,
      previous: { lanInterface: 'wlan0', address: '10.42.0.1', prefix: 24 },
    },
  );
  t.same(
    steps.find((s) => s.kind === 'dhcp'),
    { kind: 'dhcp', lanInterface: 'wlan0', lanAddress: '10.43.0.1', lanPrefix: 25 },
  );
  t.same(
    steps.find((s) => s.kind === 'wan-watch'),
    { kind: 'wan-watch', wanInterface: 'eth1' },
  );
  t.equal(describeChange(BASE, { ...BASE, lanInterface: 'eth9' }), 'LAN wlan0 -> eth9');
});

t.test('plan: bad wanted values are refused before any step, by field', async (t) => {
  const bad: [Partial<NetworkShape>, string, RegExp][] = [
    [{ wanInterface: 'eth0; reboot' }, 'wanInterface', /interface name/],
    [{ wanInterface: 'eth0\n' }, 'wanInterface', /interface name/],
    [{ wanInterface: '' }, 'wanInterface', /interface name/],
    [{ wanInterface: 'a-very-long-interface' }, 'wanInterface', /interface name/],
    [{ lanInterface: '../x' }, 'lanInterface', /interface name/],
    [{ wanInterface: 'wlan0' }, 'wanInterface', /differ from the LAN/],
    [{ lanAddress: '172.16.0.1' }, 'lanAddress', /virtual address network/],
    [{ lanAddress: '10.42.0.0' }, 'lanAddress', /network or broadcast/],
    [{ lanAddress: '8.8.8.1' }, 'lanAddress', /private/],
    [{ lanAddress: '10.42.0.1', lanPrefix: 31 }, 'lanAddress', /not 16-30/],
    [{ lanAddress: '10.42.0.300' }, 'lanAddress', /./],
  ];
  for (const [change, field, re] of bad) {
    const wanted = { ...BASE, ...change };
    t.match(networkShapeProblems(wanted)[field], re, JSON.stringify(change));
    let thrown: unknown = null;
    try {
      planNetworkChange(BASE, wanted);
    } catch (e) {
      thrown = e;
    }
    t.ok(isObxError(thrown, 'NET_VALUE_INVALID') && thrown.details[field] !== undefined, 'refused');
  }
  t.same(networkShapeProblems(BASE), {}, 'the defaults are fine');
});

function recordingHandlers(fail?: ChangeStepKind): { calls: ChangeStepKind[]; handlers: ChangeHandlers } {
  const calls: ChangeStepKind[] = [];
  const h = async (s: ChangeStep) => {
    calls.push(s.kind);
    if (s.kind === fail) throw new Error(`${s.kind} broke`);
  };
  const handlers: ChangeHandlers = {
    close: h,
    firewall: h,
    'wan-watch': h,
    'lan-address': h,
    dhcp: h,
    'access-point': h,
    'tor-listen': h,
    'web-listen': h,
    reconnect: h,
    commit: h,
    open: h,
  };
  return { calls, handlers };
}

t.test('executor: runs the steps in order, stops at the first failure and names it', async (t) => {
  const steps = planNetworkChange(BASE, { ...BASE, wanInterface: 'eth1', lanAddress: '10.43.0.1' });
  const ok = recordingHandlers();
  t.same(await executeNetworkChange(steps, ok.handlers), kinds(steps));
  t.same(ok.calls, kinds(steps));
  for (const failing of kinds(steps)) {
    const r = recordingHandlers(failing);
    const e = await failure(executeNetworkChange(steps, r.handlers));
    t.ok(
      isObxError(e, 'NET_CHANGE_FAILED') && e.message.includes(`${failing}: ${failing} broke`),
      `${failing} named`,
    );
    const at = kinds(steps).indexOf(failing);
    t.same(r.calls, kinds(steps).slice(0, at + 1), `nothing after ${failing} ran`);
  }
});

const READY: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };

t.test('state machine: a network change closes, then reconnects, and only then routes', async (t) => {
  const routing = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: READY },
  ]);
  t.equal(view(routing).firewallMode, 'routing');
  const closed = after([{ type: 'net-change', phase: 'closed', reason: 'WAN eth0 -> eth1' }], routing);
  t.equal(view(closed).firewallMode, 'lockdown');
  t.equal(view(closed).state, 'connecting');
  t.match(view(closed).explanation, /changing its network \(WAN eth0 -> eth1\)/);
  t.notOk(mayRoute(closed), 'tor still says ready, but the change holds the LAN closed');
  const reconnecting = after([{ type: 'net-change', phase: 'reconnecting' }], closed);
  t.equal(view(reconnecting).firewallMode, 'connecting', 'tor may reach the new WAN, the LAN may not');
  t.notOk(mayRoute(reconnecting));
  const done = after([{ type: 'net-change', phase: null }], reconnecting);
  t.equal(view(done).firewallMode, 'routing');
  // the kill switch and faults still win during a change
  t.equal(view(after([{ type: 'switch', position: 'engaged' }], closed)).firewallMode, 'killed');
  t.equal(
    view(after([{ type: 'fault', source: 'network', message: 'x' }], reconnecting)).firewallMode,
    'lockdown',
  );
  // a malformed phase reads as the most closed one; control characters never reach the page
  const odd = after([{ type: 'net-change', phase: 'open' as 'closed', reason: 'a\nb\u0000c' }], routing);
  t.equal(view(odd).firewallMode, 'lockdown');
  t.match(view(odd).explanation, /\(abc\)/);
  t.equal(initialState().netChange, undefined, 'no change at power-on');
});

t.test("state machine: a 'wan' fault closes the box with its explanation until cleared", async (t) => {
  const routing = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: READY },
  ]);
  const overlap = after([{ type: 'fault', source: 'wan', message: 'The modem gave the box ...' }], routing);
  t.equal(view(overlap).state, 'error');
  t.equal(view(overlap).firewallMode, 'lockdown');
  t.match(view(overlap).explanation, /wan: The modem gave the box/);
  t.equal(view(after([{ type: 'fault-cleared', source: 'wan' }], overlap)).firewallMode, 'routing');
});

t.test('WAN lease: the subnet mask becomes the prefix of the leased subnet', async (t) => {
  const lease = parseDhcp4(
    [
      'DHCP4.OPTION[1]:dhcp_server_identifier = 198.18.0.1',
      'DHCP4.OPTION[2]:ip_address = 198.18.0.2',
      'DHCP4.OPTION[3]:subnet_mask = 255.255.255.0',
    ].join('\n'),
  );
  t.same(lease, { serverId: '198.18.0.1', address: '198.18.0.2', prefix: 24 });
  t.equal(leaseCidr(lease), '198.18.0.2/24');
  t.equal(leaseCidr({ ...lease, prefix: null }), '198.18.0.2/32', 'unknown mask: the address alone');
  t.equal(leaseCidr({ ...lease, address: null }), null);
  t.equal(maskToPrefix('255.255.0.0'), 16);
  t.equal(maskToPrefix('255.255.255.255'), 32);
  t.equal(maskToPrefix('0.0.0.0'), 0);
  t.equal(maskToPrefix('255.0.255.0'), null, 'not contiguous');
  t.equal(maskToPrefix('255.255.255'), null);
});

// --- BoxController.changeNetwork with doubles at the edges ---

class TorDouble implements TorLike {
  #status: TorStatus = { phase: 'starting', progress: 0, summary: '', ready: false };
  constructor(private readonly bus: EventBus) {}
  status(): TorStatus {
    return { ...this.#status };
  }
  report(s: TorStatus): void {
    this.#status = s;
    this.bus.emit('tor:status', { ...s });
  }
  async newIdentity(): Promise<void> {}
  async circuits() {
    return [];
  }
  async applySettings() {
    return { ok: true, rolledBack: false, message: '' };
  }
  lastWarnings(): string[] {
    return [];
  }
}

/** Records each apply with the WAN/LAN names the ruleset was rendered for (as the daemon's params). */
class FirewallDouble implements FirewallLike {
  applies: string[] = [];
  constructor(private readonly names: () => string) {}
  async apply(mode: FirewallModeName): Promise<unknown> {
    await new Promise((r) => setImmediate(r));
    this.applies.push(`${mode} ${this.names()}`);
    return { mode };
  }
  async counters() {
    return {};
  }
}

async function changeSetup(t: Test, opts: { fail?: ChangeStepKind } = {}) {
  const config = new ConfigStore(tmpDir(t));
  await config.load();
  const bus = new EventBus();
  const tor = new TorDouble(bus);
  let net: NetworkShape = { ...BASE, wanInterface: config.get().network.wanInterface };
  const firewall = new FirewallDouble(() => `wan=${net.wanInterface} lan=${net.lanInterface}`);
  const calls: string[] = [];
  const step = (kind: ChangeStepKind) => async (s: ChangeStep) => {
    calls.push(
      `${kind}${'lanInterface' in s ? ` ${s.lanInterface}` : ''}${'wanInterface' in s ? ` ${s.wanInterface}` : ''}`,
    );
    if (opts.fail === kind) throw new Error(`${kind} refused`);
  };
  const system: NetworkChangeSystem = {
    current: () => net,
    firewall: async (s) => {
      calls.push('firewall');
      net = { ...s.network };
      if (opts.fail === 'firewall') throw new Error('firewall refused');
    },
    'wan-watch': step('wan-watch'),
    'lan-address': step('lan-address'),
    dhcp: step('dhcp'),
    'access-point': step('access-point'),
    'tor-listen': step('tor-listen'),
    'web-listen': step('web-listen'),
    reconnect: async () => {
      calls.push(`reconnect (firewall ${firewall.applies.at(-1)})`);
      if (opts.fail === 'reconnect') throw new Error('tor is not ready over the new network');
      // tor proves a new circuit: not ready, then ready
      tor.report({ phase: 'bootstrapping', progress: 100, summary: 'new circuits', ready: false });
      tor.report(READY);
    },
    commit: async (wanted) => {
      calls.push('commit');
      if (opts.fail === 'commit') throw new Error('SD card full');
      await config.update((c) => ({
        ...c,
        network: { ...c.network, wanInterface: wanted.wanInterface, lanInterface: wanted.lanInterface },
      }));
    },
  };
  const box = new BoxController({
    config,
    bus,
    board: new SimBoard({ initialSwitch: 'released' }),
    tor,
    firewall,
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    simulate: true,
    clock: unchangedClock,
    retryMs: 60_000,
    network: Object.assign(new FakeNetwork(), { change: system }),
  });
  t.teardown(() => box.stop());
  await box.start();
  tor.report(READY);
  await box.settled();
  firewall.applies.length = 0;
  return { box, config, tor, firewall, calls, system, net: () => net };
}

t.test('changeNetwork: lockdown, lockdown with the new names, connecting, then routing', async (t) => {
  const { box, config, firewall, calls } = await changeSetup(t);
  const states: string[] = [];
  box.onStatus((s) => states.push(`${s.state}/${s.firewallMode}`));
  const result = await box.changeNetwork({ wanInterface: 'eth1' });
  t.same(result.steps, ['close', 'firewall', 'wan-watch', 'reconnect', 'commit', 'open']);
  t.same(firewall.applies, [
    'lockdown wan=eth0 lan=wlan0',
    'lockdown wan=eth1 lan=wlan0',
    'connecting wan=eth1 lan=wlan0',
    'routing wan=eth1 lan=wlan0',
  ]);
  t.same(calls, [
    'firewall',
    'wan-watch eth1',
    'reconnect (firewall connecting wan=eth1 lan=wlan0)',
    'commit',
  ]);
  t.equal(config.get().network.wanInterface, 'eth1', 'stored once tor was back');
  t.equal(box.status().state, 'routing');
  t.ok(states.includes('connecting/lockdown'), 'the page saw the change');
  t.same(await box.changeNetwork({ wanInterface: 'eth1' }), { steps: [] }, 'again: nothing to do');
});

t.test('changeNetwork: bad input changes nothing and never closes the box', async (t) => {
  const { box, firewall, calls } = await changeSetup(t);
  t.ok(isObxError(await failure(box.changeNetwork({ wanInterface: 'eth1 up' })), 'NET_VALUE_INVALID'));
  await t.rejects(box.changeNetwork({ wanInterface: 'wlan0' }), /differ from the LAN/);
  t.same(firewall.applies, []);
  t.same(calls, []);
  t.equal(box.status().state, 'routing');
});

for (const fail of ['firewall', 'wan-watch', 'reconnect', 'commit'] as const) {
  t.test(`changeNetwork: ${fail} fails -> closed, a clear error, the old config kept`, async (t) => {
    const { box, config, firewall, calls, net } = await changeSetup(t, { fail });
    const e = await failure(box.changeNetwork({ wanInterface: 'eth1' }));
    t.ok(isObxError(e, 'NET_CHANGE_FAILED') && e.message.includes(`${fail}:`), String(e));
    await box.settled();
    t.equal(config.get().network.wanInterface, 'eth0', 'the stored WAN is the old one');
    t.equal(box.status().state, 'error');
    t.equal(box.status().firewallMode, 'lockdown');
    t.match(box.status().explanation, new RegExp(`network: .*${fail}`));
    t.notOk(
      firewall.applies.some((a) => a.startsWith('routing')),
      'never routing after the failure',
    );
    t.equal(net().wanInterface, 'eth0', 'the firewall renders the old names again');
    t.match(firewall.applies.at(-1) ?? '', /^lockdown wan=eth0/, 'the last ruleset: closed, old names');
    if (fail !== 'firewall') t.ok(calls.includes('wan-watch eth0'), 'the WAN watcher is back on eth0');
    // a later change that works clears the fault
    const ok = await changeSetup(t);
    await ok.box.changeNetwork({ wanInterface: 'eth1' });
    t.equal(ok.box.status().state, 'routing');
  });
}

t.test('changeNetwork: one at a time', async (t) => {
  const { box } = await changeSetup(t);
  const first = box.changeNetwork({ wanInterface: 'eth1' });
  t.ok(isObxError(await failure(box.changeNetwork({ wanInterface: 'eth2' })), 'NET_CHANGE_BUSY'));
  await first;
});

t.test('changeNetwork: a failed change is cleared by the next one that works', async (t) => {
  const { box, tor, system } = await changeSetup(t);
  // the first attempt fails in the middle (a handler that throws once)
  const original = system['wan-watch'];
  system['wan-watch'] = async () => {
    system['wan-watch'] = original;
    throw new Error('no such device');
  };
  await t.rejects(box.changeNetwork({ wanInterface: 'eth1' }), /no such device/);
  t.equal(box.status().firewallMode, 'lockdown');
  tor.report(READY);
  await box.settled();
  t.equal(box.status().firewallMode, 'lockdown', 'tor being ready does not reopen a failed change');
  await box.changeNetwork({ wanInterface: 'eth1' });
  t.equal(box.status().firewallMode, 'routing');
});

t.test('wanLease: an overlapping WAN subnet closes the box until a lease no longer overlaps', async (t) => {
  const { box, firewall } = await changeSetup(t);
  box.wanLease('198.18.0.2/24');
  await box.settled();
  t.equal(box.status().firewallMode, 'routing', 'no overlap');
  box.wanLease('10.42.0.77/16');
  await box.settled();
  t.equal(box.status().state, 'error');
  t.equal(box.status().firewallMode, 'lockdown');
  t.match(
    box.status().explanation,
    /10\.42\.0\.77\/16, which overlaps the box's own network 10\.42\.0\.1\/24/,
  );
  box.wanLease('10.42.0.77/16');
  await box.settled();
  box.wanLease('192.168.1.20/24');
  await box.settled();
  t.equal(box.status().firewallMode, 'routing', 'the new lease no longer overlaps');
  t.same(
    firewall.applies.map((a) => a.split(' ')[0]),
    ['lockdown', 'routing'],
  );
  box.wanLease(null);
  await box.settled();
  t.equal(box.status().firewallMode, 'routing', 'no lease: nothing to compare');
});
