/** BoxController's networking commands: delegated to the network adapters, or NET_UNAVAILABLE without. */
import { pino } from 'pino';
import t from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import { BoxController } from '../../firmware/box/controller.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { checked, WEB_COMMANDS } from '../../firmware/control/web-protocol.js';
import { isObxError } from '../../firmware/errors.js';
import { EventBus } from '../../firmware/events.js';
import { REDACT_PATHS } from '../../firmware/log.js';
import { lanConflict, type NetworkLike, networkAdapters } from '../../firmware/net/box-network.js';
import { BoxNetwork } from '../../firmware/net/network.js';
import { unchangedClock } from '../helpers/clock.js';
import { FakeFirewall } from '../helpers/fake-firewall.js';
import { FakeNetwork } from '../helpers/fake-network.js';
import { fakeNmcli } from '../helpers/fake-nmcli.js';
import { FakeTor, TOR_READY } from '../helpers/fake-tor.js';
import { tmpDir } from '../helpers/tmp.js';

async function controller(
  t: Parameters<typeof tmpDir>[0],
  network?: NetworkLike,
  config = new ConfigStore(tmpDir(t)),
) {
  await config.load();
  const board = new SimBoard();
  const bus = new EventBus();
  return new BoxController({
    config,
    bus,
    board,
    tor: new FakeTor(bus, { status: TOR_READY }),
    firewall: new FakeFirewall(),
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    simulate: true,
    clock: unchangedClock,
    network,
  });
}

t.test('with network adapters', async (t) => {
  const network = new FakeNetwork({ sharedRadio: true });
  const box = await controller(t, network);
  const s = await box.networkStatus();
  t.equal(s.wan?.interface, 'eth0');
  t.equal(s.lan.devices.length, 2);
  t.equal(s.lan.devices[0]?.expiresAt, 1_900_000_000_000, 'seconds to ms');
  t.equal(s.sharedRadio, true);
  t.equal((await box.wifiScan()).length, 4);
  await box.joinWifi({ ssid: 'Home', passphrase: 'correct horse battery', hidden: false });
  t.same(box.settings().network.upstreamWifi, { interface: 'wlan1', ssid: 'Home', hidden: false });
  const wrong = await box
    .joinWifi({ ssid: 'Café: Lobby', passphrase: 'wrong-wrong', hidden: false })
    .catch((e) => e);
  t.ok(isObxError(wrong, 'NET_WIFI_AUTH_FAILED'));
  t.equal(box.settings().network.upstreamWifi?.ssid, 'Home', 'unchanged after a failure');
  await box.setAccessPoint({
    ssid: 'Box',
    passphrase: 'abcdefgh',
    country: 'nl',
    channel: 11,
    security: 'wpa2',
  });
  const bssid = network.applied[0]?.bssid;
  t.match(bssid, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, "the box's own random BSSID (issue 23)");
  t.same(network.applied, [
    {
      ssid: 'Box',
      passphrase: 'abcdefgh',
      country: 'NL',
      channel: 11,
      security: 'wpa2',
      isolateClients: true,
      bssid,
    },
  ]);
  await box.setAccessPoint({
    ssid: 'Box',
    passphrase: '',
    country: 'NL',
    channel: 11,
    security: 'wpa2',
    isolateClients: false,
  });
  t.same(
    network.applied[1],
    { ...network.applied[0], isolateClients: false },
    'casting allowed; the BSSID stays the one drawn first',
  );
  t.equal((await box.networkStatus()).accessPoint?.isolateClients, false);
  t.equal((await box.networkStatus()).accessPoint?.country, 'NL');
  t.notOk('passphrase' in ((await box.networkStatus()).accessPoint ?? {}), 'the view has no passphrase');
  const bad = await box
    .setAccessPoint({ ssid: 'Box', passphrase: 'abcdefgh', country: 'NL', channel: 52, security: 'wpa2' })
    .catch((e) => e);
  t.ok(isObxError(bad, 'NET_VALUE_INVALID') && bad.details.channel, 'DFS channel refused');
  t.equal(box.settings().network.accessPoint?.channel, 11);
});

t.test('without network adapters', async (t) => {
  const box = await controller(t);
  const s = await box.networkStatus();
  t.equal(s.wan, null);
  t.match(s.wanProblem, /without network control/);
  t.ok(isObxError(await box.wifiScan().catch((e) => e), 'NET_UNAVAILABLE'));
  t.ok(
    isObxError(
      await box.joinWifi({ ssid: 'Home', passphrase: null, hidden: false }).catch((e) => e),
      'NET_UNAVAILABLE',
    ),
  );
  await box.setAccessPoint({
    ssid: 'Box',
    passphrase: 'abcdefgh',
    country: 'DE',
    channel: 1,
    security: 'wpa2',
  });
  t.equal(box.settings().network.accessPoint?.ssid, 'Box', 'stored; applied when the adapter exists');
});

t.test('networkAdapters without adapters, and the log redacts passphrases', async (t) => {
  const n = networkAdapters({ wan: null, lan: null, sharedRadio: false, lanInterface: () => 'wlan0' });
  t.equal(n.wifiInterface, null);
  t.same(await n.leases(), []);
  t.ok(isObxError(await n.wanStatus().catch((e) => e), 'NET_UNAVAILABLE'));
  t.ok(isObxError(await n.scan().catch((e) => e), 'NET_UNAVAILABLE'));
  t.ok(REDACT_PATHS.includes('passphrase') && REDACT_PATHS.includes('*.passphrase'));
});

t.test('the WAN lease is checked against the LAN range', async (t) => {
  t.equal(lanConflict('10.42.0.1/24', '192.168.1.23/24'), null);
  t.equal(lanConflict('10.42.0.1/24', null), null);
  t.match(lanConflict('10.42.0.1/24', '10.42.0.77/16'), /overlaps the box's own network 10\.42\.0\.1\/24/);
  t.match(lanConflict('192.168.1.1/24', '192.168.1.50/24'), /overlaps/);
  t.equal(lanConflict('10.42.0.1/24', 'garbage'), null);
  const box = await controller(t, new FakeNetwork());
  t.equal((await box.networkStatus()).lanConflict, null);
});

/** tor and the page a network change would move: none here (no change runs). */
const NO_PEERS = { reconnectTor: async () => undefined };

t.test('a box on its wired WAN shows that WAN and its address, not NET_UNAVAILABLE', async (t) => {
  const dir = tmpDir(t);
  const config = new ConfigStore(dir);
  await config.load();
  // the default config: WAN eth0, no Wi-Fi client (the simulator's box)
  const network = new BoxNetwork({
    config,
    stateDir: dir,
    log: pino({ level: 'silent' }),
    peers: NO_PEERS,
    interfaceAddresses: (iface) => (iface === 'eth0' ? ['192.168.1.23/24'] : []),
  });
  t.equal(network.wifiInterface, null);
  const box = await controller(t, network, config);
  const s = await box.networkStatus();
  t.equal(s.wanProblem, null, 'no error in place of the WAN');
  t.match(s.wan, {
    interface: 'eth0',
    type: 'ethernet',
    state: 'connected',
    address: '192.168.1.23/24',
    dhcpServer: null,
  });
  const none = new BoxNetwork({
    config,
    stateDir: dir,
    log: pino({ level: 'silent' }),
    peers: NO_PEERS,
    interfaceAddresses: () => [],
  });
  t.match(await none.wanStatus(), { interface: 'eth0', state: 'disconnected', address: null });
});

t.test(
  'a Wi-Fi adapter NetworkManager manages becomes the Wi-Fi client before a scan (no config names one)',
  async (t) => {
    const dir = tmpDir(t);
    const config = new ConfigStore(dir);
    await config.load();
    const fake = fakeNmcli(t, {
      running: true,
      devices: [
        { device: 'eth0', type: 'ethernet', state: 'connected', connection: 'onionbox-wan-eth0' },
        { device: 'wlan1', type: 'wifi', state: 'disconnected', connection: '' },
      ],
      networks: [
        { ssid: 'Home', bssid: 'AA:BB:CC:DD:EE:01', chan: 6, freq: 2437, signal: 82, security: 'WPA2' },
      ],
    });
    const network = new BoxNetwork({
      config,
      stateDir: dir,
      log: pino({ level: 'silent' }),
      peers: NO_PEERS,
      interfaceAddresses: () => [],
    });
    t.equal(network.wifiInterface, null, 'nothing runs in the constructor');
    t.same(fake.calls(), []);
    t.same(
      (await network.scan()).map((n) => n.ssid),
      ['Home'],
      'the scan found the adapter and ran on it',
    );
    t.equal(network.wifiInterface, 'wlan1');
    // what goes over the page socket passes its reply schemas (NetworkManager's scan has more fields)
    const scanned = await network.scan();
    t.same(
      checked(WEB_COMMANDS['web.wifiScan'].result, scanned, 'scan'),
      scanned,
      'the scan as the page gets it',
    );
    await config.update((c) => ({
      ...c,
      network: {
        ...c.network,
        wanInterface: 'wlan1',
        upstreamWifi: { interface: 'wlan1', ssid: 'Home', hidden: false },
      },
    }));
    const wan = await network.wanStatus();
    t.same(
      checked(WEB_COMMANDS['web.networkStatus'].result.properties.wan, wan, 'wan'),
      wan,
      'the Wi-Fi WAN as the page gets it',
    );
    t.match(wan, { interface: 'wlan1', type: 'wifi', dhcpServer: null });
    fake.update((w) => {
      w.devices = w.devices.filter((d) => d.type !== 'wifi');
    });
    t.equal(network.wifiInterface, 'wlan1', 'once found it stays (the join records it in the configuration)');
  },
);
