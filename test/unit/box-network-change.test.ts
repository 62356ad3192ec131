/**
 * The box's side of a WAN/LAN change and of the WAN's lease (firmware/box/network-change.ts):
 * BoxController's changeNetwork()/wanLease() with the real state machine, config store and simulated
 * board, the tests' tor and firewall stand-ins (every apply is checked against the network it was
 * rendered for) and recording system steps. The pure plan and executor are in net-change.test.ts.
 */
import t, { type Test } from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import { BoxController, type NetworkChangeSystem } from '../../firmware/box/controller.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { isObxError } from '../../firmware/errors.js';
import { EventBus } from '../../firmware/events.js';
import {
  type ChangeStep,
  type ChangeStepKind,
  configuredNetwork,
  type NetworkShape,
} from '../../firmware/net/change.js';
import { unchangedClock } from '../helpers/clock.js';
import { failure } from '../helpers/failure.js';
import { FakeFirewall } from '../helpers/fake-firewall.js';
import { FakeNetwork } from '../helpers/fake-network.js';
import { FakeTor, TOR_READY } from '../helpers/fake-tor.js';
import { tmpDir } from '../helpers/tmp.js';

async function changeSetup(t: Test, opts: { fail?: ChangeStepKind } = {}) {
  const config = new ConfigStore(tmpDir(t));
  await config.load();
  const bus = new EventBus();
  const tor = new FakeTor(bus, { status: { phase: 'starting', progress: 0, summary: '', ready: false } });
  // the box's defaults: WAN eth0, LAN wlan0 10.42.0.1/24, no access point
  let net: NetworkShape = configuredNetwork(config.get().network);
  // each apply recorded with the WAN/LAN names the ruleset was rendered for (as the daemon's params)
  const firewall = new FakeFirewall({ renderedFor: () => `wan=${net.wanInterface} lan=${net.lanInterface}` });
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
    reconnect: async () => {
      calls.push(`reconnect (firewall ${firewall.applies.at(-1)})`);
      if (opts.fail === 'reconnect') throw new Error('tor is not ready over the new network');
      // tor proves a new circuit: not ready, then ready
      tor.report({ phase: 'bootstrapping', progress: 100, summary: 'new circuits', ready: false });
      tor.report(TOR_READY);
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
  tor.report(TOR_READY);
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
  tor.report(TOR_READY);
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
