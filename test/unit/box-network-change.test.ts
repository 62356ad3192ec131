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

/**
 * `fail`: that step fails on the way to the new network (eth1); `failBack`: that step fails on the way
 * back to the old one (eth0) after a failed change. `holdBack`: the way back's reconnect waits for it.
 */
async function changeSetup(
  t: Test,
  opts: { fail?: ChangeStepKind; failBack?: ChangeStepKind; holdBack?: Promise<void> } = {},
) {
  const config = new ConfigStore(tmpDir(t));
  await config.load();
  const bus = new EventBus();
  const tor = new FakeTor(bus, { status: { phase: 'starting', progress: 0, summary: '', ready: false } });
  // the box's defaults: WAN eth0, LAN wlan0 10.42.0.1/24, no access point
  let net: NetworkShape = configuredNetwork(config.get().network);
  // each apply recorded with the WAN/LAN names the ruleset was rendered for (as the daemon's params)
  const firewall = new FakeFirewall({ renderedFor: () => `wan=${net.wanInterface} lan=${net.lanInterface}` });
  const calls: string[] = [];
  // whether this step goes to the new network or back to the old one (the WAN is eth0 before the change)
  const failing = (kind: ChangeStepKind, wan: string) =>
    wan === 'eth0' ? opts.failBack === kind : opts.fail === kind;
  const step = (kind: ChangeStepKind) => async (s: ChangeStep) => {
    calls.push(
      `${kind}${'lanInterface' in s ? ` ${s.lanInterface}` : ''}${'wanInterface' in s ? ` ${s.wanInterface}` : ''}`,
    );
    if (failing(kind, 'wanInterface' in s ? s.wanInterface : 'eth1')) throw new Error(`${kind} refused`);
  };
  const system: NetworkChangeSystem = {
    current: () => net,
    firewall: async (s) => {
      calls.push('firewall');
      if (failing('firewall', s.network.wanInterface)) throw new Error('firewall refused');
      net = { ...s.network };
    },
    'wan-watch': step('wan-watch'),
    'lan-address': step('lan-address'),
    dhcp: step('dhcp'),
    'access-point': step('access-point'),
    'tor-listen': step('tor-listen'),
    reconnect: async () => {
      calls.push(`reconnect (firewall ${firewall.applies.at(-1)})`);
      // as the supervisor's networkChanged: every connection dropped (not ready), then a new circuit
      tor.report({ phase: 'bootstrapping', progress: 100, summary: 'new circuits', ready: false });
      if (net.wanInterface === 'eth0' && opts.holdBack) await opts.holdBack;
      if (failing('reconnect', net.wanInterface)) throw new Error('tor is not ready over the new network');
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
  const network = Object.assign(new FakeNetwork(), { change: system });
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
    network,
  });
  t.teardown(() => box.stop());
  await box.start();
  tor.report(TOR_READY);
  await box.settled();
  firewall.applies.length = 0;
  return { box, config, tor, firewall, calls, system, network, net: () => net };
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

/** Resolves once the diagnostics' recent events match `re` (polled: the events have no listener). */
async function diagnosticsUntil(box: BoxController, re: RegExp): Promise<void> {
  while (!re.test(await box.diagnostics())) await new Promise((r) => setTimeout(r, 5));
}

/** Resolves once the box's status satisfies `ok` (the rollback's reconnect runs in the background). */
function statusUntil(box: BoxController, ok: (s: ReturnType<BoxController['status']>) => boolean) {
  return new Promise<void>((resolve) => {
    if (ok(box.status())) return resolve();
    const off = box.onStatus((s) => {
      if (ok(s)) {
        off();
        resolve();
      }
    });
  });
}

for (const fail of ['firewall', 'wan-watch', 'reconnect', 'commit'] as const) {
  t.test(`changeNetwork: ${fail} fails -> closed, the old network back, then routing over it`, async (t) => {
    const { box, config, firewall, calls, net } = await changeSetup(t, { fail });
    const e = await failure(box.changeNetwork({ wanInterface: 'eth1' }));
    t.ok(isObxError(e, 'NET_CHANGE_FAILED') && e.message.includes(`${fail}:`), String(e));
    t.equal(config.get().network.wanInterface, 'eth0', 'the stored WAN is the old one');
    t.equal(net().wanInterface, 'eth0', 'the firewall renders the old names again');
    if (fail !== 'firewall') t.ok(calls.includes('wan-watch eth0'), 'the WAN watcher is back on eth0');
    await statusUntil(box, (s) => s.state === 'routing');
    await box.settled();
    const failedAt = firewall.applies.findIndex((a, i) => i > 0 && a === 'lockdown wan=eth0 lan=wlan0');
    t.ok(failedAt > 0, `closed with the old names after the failure (${firewall.applies.join(', ')})`);
    t.same(
      firewall.applies.slice(failedAt),
      ['lockdown wan=eth0 lan=wlan0', 'connecting wan=eth0 lan=wlan0', 'routing wan=eth0 lan=wlan0'],
      'then tor reconnects over the old network under connecting, and only then routing',
    );
    t.notOk(
      firewall.applies.some((a) => a.startsWith('routing wan=eth1')),
      'never routing over the new network',
    );
    t.equal(calls.at(-1), 'reconnect (firewall connecting wan=eth0 lan=wlan0)', 'tor reconnected over eth0');
    t.match(
      await box.diagnostics(),
      /network change undone .*back on WAN eth0/,
      'the recent events say the change was undone',
    );
  });
}

t.test('changeNetwork: a step back that fails keeps the box closed until a change works', async (t) => {
  const { box, config, firewall, tor, system } = await changeSetup(t, {
    fail: 'reconnect',
    failBack: 'wan-watch',
  });
  await t.rejects(box.changeNetwork({ wanInterface: 'eth1' }), /reconnect: tor is not ready/);
  await box.settled();
  t.equal(box.status().state, 'error');
  t.equal(box.status().firewallMode, 'lockdown');
  t.match(box.status().explanation, /network: .*reconnect/);
  t.match(
    await box.diagnostics(),
    /rollback failed at wan-watch.*stays closed/,
    'the recent events name the step back that failed',
  );
  tor.report(TOR_READY);
  await box.settled();
  t.equal(box.status().firewallMode, 'lockdown', 'tor being ready does not reopen it');
  t.notOk(
    firewall.applies.some((a) => a.startsWith('routing')),
    'never routing after the failure',
  );
  t.equal(config.get().network.wanInterface, 'eth0');
  // a later change that works clears the fault
  system.reconnect = async () => {
    tor.report(TOR_READY);
  };
  system['wan-watch'] = async () => undefined;
  await box.changeNetwork({ wanInterface: 'eth1' });
  t.equal(box.status().firewallMode, 'routing');
  t.equal(config.get().network.wanInterface, 'eth1');
});

t.test('changeNetwork: tor not ready over the old network either -> connecting until it is', async (t) => {
  const { box, firewall, tor } = await changeSetup(t, { fail: 'reconnect', failBack: 'reconnect' });
  await t.rejects(box.changeNetwork({ wanInterface: 'eth1' }), /reconnect:/);
  await diagnosticsUntil(box, /back on WAN eth0, tor not ready yet/);
  await box.settled();
  t.equal(box.status().state, 'connecting');
  t.equal(firewall.applies.at(-1), 'connecting wan=eth0 lan=wlan0', 'tor may reach the WAN, the LAN nothing');
  t.match(await box.diagnostics(), /back on WAN eth0, tor not ready yet/, 'the recent events say so');
  tor.report(TOR_READY);
  await box.settled();
  t.equal(firewall.applies.at(-1), 'routing wan=eth0 lan=wlan0', 'routing once tor is ready');
});

t.test('changeNetwork: the next change waits for the way back to finish', async (t) => {
  let release: () => void = () => undefined;
  const holdBack = new Promise<void>((r) => {
    release = r;
  });
  const { box } = await changeSetup(t, { fail: 'reconnect', holdBack });
  await t.rejects(box.changeNetwork({ wanInterface: 'eth1' }), /reconnect:/);
  await statusUntil(box, (s) => s.firewallMode === 'connecting');
  t.equal(box.status().state, 'connecting', 'reconnecting over the old network');
  t.equal(box.networkChanging(), true, 'the way back counts as part of the change (the assist waits)');
  t.ok(isObxError(await failure(box.changeNetwork({ wanInterface: 'eth2' })), 'NET_CHANGE_BUSY'));
  release();
  await diagnosticsUntil(box, /network change undone/);
  t.equal(box.networkChanging(), false, 'over');
  t.ok(
    isObxError(await failure(box.changeNetwork({ wanInterface: 'eth1' })), 'NET_CHANGE_FAILED'),
    'free again',
  );
});

t.test('joinWifi: the WAN moves to the Wi-Fi; a move that fails forgets the network again', async (t) => {
  const home = { ssid: 'Home', passphrase: 'correct horse battery', hidden: false };
  const ok = await changeSetup(t);
  await ok.box.joinWifi(home);
  t.equal(ok.config.get().network.wanInterface, 'wlan1', 'the WAN moved to the Wi-Fi client');
  t.same(ok.config.get().network.upstreamWifi, { interface: 'wlan1', ssid: 'Home', hidden: false });
  t.same(ok.network.forgotten, []);
  t.equal(ok.box.status().state, 'routing');

  // tor cannot be reached over that network: the box goes back to eth0 without it
  const bad = await changeSetup(t, { fail: 'reconnect' });
  const e = await failure(bad.box.joinWifi(home));
  t.ok(isObxError(e, 'NET_CHANGE_FAILED'), String(e));
  t.same(bad.network.forgotten, ['Home'], 'its profile is deleted (it would take the default route)');
  t.equal(bad.config.get().network.upstreamWifi, null, 'and not recorded');
  t.equal(bad.config.get().network.wanInterface, 'eth0');
  t.match(await bad.box.diagnostics(), /Wi-Fi join undone: the WAN did not move to wlan1/);
  await statusUntil(bad.box, (s) => s.state === 'routing');
  await bad.box.settled();
  t.equal(bad.firewall.applies.at(-1), 'routing wan=eth0 lan=wlan0', 'routing over the cable again');
});

t.test('useCable: the Wi-Fi down, the WAN to the cable, the Wi-Fi forgotten once tor works', async (t) => {
  const home = { ssid: 'Home', passphrase: 'correct horse battery', hidden: false };
  const { box, config, network, firewall } = await changeSetup(t);
  const notWifi = await failure(box.useCable());
  t.ok(isObxError(notWifi, 'NET_VALUE_INVALID'), 'refused while the WAN is the cable');
  await box.joinWifi(home);
  network.cable = null;
  t.ok(isObxError(await failure(box.useCable()), 'NET_UNAVAILABLE'), 'refused without a cable port');
  t.same(network.wifiCalls, [], 'nothing was taken down');
  network.cable = 'eth0';
  await box.useCable();
  t.same(network.wifiCalls, ['deactivate Home', 'forget Home'], 'down before the move, forgotten after');
  t.equal(config.get().network.wanInterface, 'eth0');
  t.equal(config.get().network.upstreamWifi, null);
  t.equal(firewall.applies.at(-1), 'routing wan=eth0 lan=wlan0');
  t.match(await box.diagnostics(), /WAN moved from the Wi-Fi to eth0; the Wi-Fi network is forgotten/);
});

t.test('useCable: tor not reachable over the cable -> back on the Wi-Fi, which is kept', async (t) => {
  const home = { ssid: 'Home', passphrase: 'correct horse battery', hidden: false };
  // reconnecting over eth0 fails (the fake's failBack: a step towards eth0)
  const { box, config, network, firewall } = await changeSetup(t, { failBack: 'reconnect' });
  await box.joinWifi(home);
  t.equal(config.get().network.wanInterface, 'wlan1');
  const e = await failure(box.useCable());
  t.ok(isObxError(e, 'NET_CHANGE_FAILED'), String(e));
  t.same(network.wifiCalls, ['deactivate Home', 'activate Home'], 'the Wi-Fi is brought back, not forgotten');
  t.equal(config.get().network.wanInterface, 'wlan1');
  t.same(config.get().network.upstreamWifi, { interface: 'wlan1', ssid: 'Home', hidden: false });
  await statusUntil(box, (s) => s.state === 'routing');
  await box.settled();
  t.equal(firewall.applies.at(-1), 'routing wan=wlan1 lan=wlan0', 'routing over the Wi-Fi again');
  t.match(await box.diagnostics(), /moving the WAN to eth0 failed: the WAN stays on wlan1/);
});

t.test(
  'changeNetwork away from the Wi-Fi WAN (onionbox net set --wan eth0) takes the Wi-Fi down first',
  async (t) => {
    const home = { ssid: 'Home', passphrase: 'correct horse battery', hidden: false };
    const { box, config, network, firewall } = await changeSetup(t);
    await box.joinWifi(home);
    // a LAN-only change leaves the Wi-Fi alone
    await box.changeNetwork({ lanAddress: '10.43.0.1', lanPrefix: 24 });
    t.same(network.wifiCalls, [], 'the Wi-Fi untouched by a LAN change');
    const r = await box.changeNetwork({ wanInterface: 'eth0' });
    t.ok(r.steps.length > 0, 'the change ran');
    t.same(network.wifiCalls, ['deactivate Home', 'forget Home'], 'down before the move, forgotten after');
    t.equal(config.get().network.wanInterface, 'eth0');
    t.equal(config.get().network.upstreamWifi, null);
    t.equal(firewall.applies.at(-1), 'routing wan=eth0 lan=wlan0');
    // on the cable, a move elsewhere is an ordinary change
    network.wifiCalls.length = 0;
    await box.changeNetwork({ wanInterface: 'eth1' });
    t.same(network.wifiCalls, [], 'no Wi-Fi to take down');
  },
);

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
