/**
 * A WAN/LAN change's pure part (firmware/net/change.ts): the plan by table, its refusal of bad values,
 * and the executor's order and its stop at the first failure. The box's side of a change
 * (firmware/box/network-change.ts) is in box-network-change.test.ts.
 */
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
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
import { failure } from '../helpers/failure.js';

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
      frame('lan-address', 'dhcp', 'tor-listen'),
    ],
    ['new prefix only: tor keeps its address', {}, { lanPrefix: 16 }, frame('lan-address', 'dhcp')],
    [
      'WAN and LAN at once',
      { accessPoint: true },
      { wanInterface: 'eth1', lanInterface: 'wlan2', lanAddress: '192.168.7.1', accessPoint: true },
      frame('wan-watch', 'lan-address', 'dhcp', 'access-point', 'tor-listen'),
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
