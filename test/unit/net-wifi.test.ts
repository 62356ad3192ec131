/**
 * The upstream Wi-Fi adapter against the fake nmcli on PATH (test/helpers/bin/fake-nmcli): forced
 * rescans, exact SSIDs, the passphrase never in argv, every quirk (Secrets on stdout with exit 4 or 0,
 * network gone, NetworkManager not running, a stale profile's missing key-mgmt), the child-only
 * locale, and node-wifi contained (process.env restored after its require).
 */
import { existsSync, readdirSync } from 'node:fs';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { wifiProfileId } from '../../firmware/net/render.js';
import {
  classifyNmcli,
  findUpstreamCable,
  findUpstreamWifi,
  keyMgmtFor,
  loadNodeWifi,
  NetworkManagerWan,
  nmcliEnv,
  pickUpstreamCable,
  pickUpstreamWifi,
  runNmcli,
} from '../../firmware/net/wifi.js';
import { type FakeWorld, fakeNmcli } from '../helpers/fake-nmcli.js';

const PASS = 'tr0ub4dor&3 horse';

function world(): FakeWorld {
  return {
    running: true,
    devices: [
      { device: 'eth0', type: 'ethernet', state: 'unavailable', connection: '' },
      { device: 'wlan1', type: 'wifi', state: 'disconnected', connection: '' },
      { device: 'wlan0', type: 'wifi', state: 'unmanaged', connection: '' },
    ],
    networks: [
      {
        ssid: 'Home',
        bssid: 'AA:BB:CC:DD:EE:01',
        chan: 6,
        freq: 2437,
        signal: 82,
        security: 'WPA2',
        psk: PASS,
      },
      {
        ssid: 'Hotel: Lobby\\5G',
        bssid: 'AA:BB:CC:DD:EE:02',
        chan: 44,
        freq: 5220,
        signal: 54,
        security: 'WPA2 WPA3',
        psk: ' lobby\\guest 1 ',
      },
      { ssid: 'Free', bssid: 'AA:BB:CC:DD:EE:03', chan: 11, freq: 2462, signal: 41, security: '' },
      {
        ssid: 'Secret',
        bssid: 'AA:BB:CC:DD:EE:04',
        chan: 1,
        freq: 2412,
        signal: 60,
        security: 'WPA2',
        psk: 'hidden-pass',
        hidden: true,
      },
    ],
    appearing: [
      {
        ssid: 'New',
        bssid: 'AA:BB:CC:DD:EE:05',
        chan: 1,
        freq: 2412,
        signal: 70,
        security: 'WPA2',
        psk: 'newnewnew',
      },
    ],
  };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

t.test('classifyNmcli: exit code and output both count', async (t) => {
  t.equal(classifyNmcli({ code: 0, stdout: 'ok\n', stderr: '' }), null);
  const secrets = 'Error: Connection activation failed: (7) Secrets were required, but not provided.\n';
  t.ok(isObxError(classifyNmcli({ code: 4, stdout: secrets, stderr: '' }), 'NET_WIFI_AUTH_FAILED'));
  t.ok(
    isObxError(classifyNmcli({ code: 0, stdout: secrets, stderr: '' }), 'NET_WIFI_AUTH_FAILED'),
    'exit 0 too',
  );
  t.ok(isObxError(classifyNmcli({ code: 8, stdout: '', stderr: 'x' }), 'NET_NM_NOT_RUNNING'));
  t.ok(
    isObxError(
      classifyNmcli({ code: 10, stdout: '', stderr: "Error: No network with SSID 'x' found." }),
      'NET_WIFI_NOT_FOUND',
    ),
  );
  t.ok(isObxError(classifyNmcli({ code: 0, stdout: 'Error: something\n', stderr: '' }), 'NET_NMCLI_FAILED'));
  t.ok(
    isObxError(classifyNmcli({ code: 3, stdout: '', stderr: 'Error: Timeout expired' }), 'NET_NMCLI_FAILED'),
  );
  t.same(nmcliEnv({ PATH: '/bin', LANGUAGE: 'de', LC_ALL: 'de_DE.UTF-8' }), {
    PATH: '/bin',
    LANGUAGE: '',
    LC_ALL: 'C.UTF-8',
  });
  t.equal(keyMgmtFor(''), 'none');
  t.equal(keyMgmtFor('WPA2 WPA3'), 'wpa-psk', 'transition networks: PSK works');
  t.equal(keyMgmtFor('WPA3'), 'sae');
  t.equal(keyMgmtFor('WPA1 WPA2'), 'wpa-psk');
});

t.test('scan: forced rescan, exact SSIDs, child-only locale', async (t) => {
  const fake = fakeNmcli(t, world());
  const saved = process.env.LANGUAGE;
  process.env.LANGUAGE = 'de';
  t.teardown(() => {
    if (saved === undefined) delete process.env.LANGUAGE;
    else process.env.LANGUAGE = saved;
  });
  const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
  t.same(fake.calls(), [], 'the constructor runs nothing');
  const list = await wan.scan();
  t.same(
    list.map((n) => n.ssid),
    ['Home', 'New', 'Hotel: Lobby\\5G', 'Free', ''],
    'the network that appeared is there (rescan), the SSID with : and \\ is exact, hidden last',
  );
  const call = fake.calls()[0];
  t.same(call?.argv.slice(0, 3), ['-t', '-e', 'yes']);
  t.ok(
    call?.argv.includes('--rescan') && call.argv[call.argv.indexOf('--rescan') + 1] === 'yes',
    '--rescan yes',
  );
  t.equal(call?.LC_ALL, 'C.UTF-8');
  t.equal(call?.LANGUAGE, '', 'LANGUAGE emptied for the child');
  t.equal(process.env.LANGUAGE, 'de', 'the parent environment is untouched');
  t.equal(process.env.LC_ALL, saved === undefined ? process.env.LC_ALL : process.env.LC_ALL);
});

t.test(
  'connect: the profile without its secret, the passphrase only in a passwd-file, never in argv',
  async (t) => {
    const fake = fakeNmcli(t, world());
    const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
    const st = await wan.connect({ ssid: 'Home', passphrase: PASS });
    t.equal(st.state, 'connected');
    t.equal(st.address, '192.168.1.23/24');
    t.equal(st.ssid, 'Home');
    t.equal(st.signal, 82);
    for (const c of fake.calls()) {
      t.notOk(
        c.argv.some((a) => a.includes('tr0ub4dor')),
        `not in argv: ${c.argv.slice(0, 4).join(' ')}`,
      );
    }
    const id = wifiProfileId(Buffer.from('Home'));
    const add = fake.calls().find((c) => c.argv[0] === 'connection' && c.argv[1] === 'add');
    t.ok(add, 'the profile is added through NetworkManager');
    t.equal(add?.argv[add.argv.indexOf('con-name') + 1], id);
    t.notOk(
      add?.argv.some((a) => a.endsWith('.psk')),
      'no psk property in the add',
    );
    t.notOk(add?.argv.includes('ipv4.route-metric'), "the CLI's join keeps NetworkManager's Wi-Fi metric");
    // the page's join: the WAN moves to it, so its profile takes the default route
    await wan.connect({ ssid: 'Home', passphrase: PASS, asWan: true });
    const adds = fake.calls().filter((c) => c.argv[0] === 'connection' && c.argv[1] === 'add');
    const asWan = adds.at(-1)?.argv ?? [];
    t.equal(asWan[asWan.indexOf('ipv4.route-metric') + 1], '50', 'asWan: metric 50, below Ethernet 100');
    const up = fake.calls().find((c) => c.argv.includes('up'));
    const pf = up?.argv[(up?.argv.indexOf('passwd-file') ?? -2) + 1];
    t.ok(pf?.startsWith(fake.dir), 'the passwd-file is in the secrets directory');
    t.notOk(pf && existsSync(pf), 'and removed after the activation');
    t.same(
      readdirSync(fake.dir).filter((f) => f.startsWith('obx-nm-')),
      [],
      'no directory left behind',
    );
    t.same(
      fake.read().profiles?.map((p) => p.psk),
      [PASS],
      'NetworkManager got exactly the passphrase (passwd-file escaping round-trips) and keeps it',
    );
    t.notOk(
      fake.calls().some((c) => c.argv.includes('load')),
      'no keyfile loading (root only)',
    );
    const s2 = await wan.connect({ ssid: 'Hotel: Lobby\\5G', passphrase: ' lobby\\guest 1 ' });
    t.equal(s2.ssid, 'Hotel: Lobby\\5G', 'spaces at both ends and a backslash survive the passwd-file');
    const open = await wan.connect({ ssid: 'Free' });
    t.equal(open.ssid, 'Free', 'open network, no "undefined" passphrase anywhere');
    t.notOk(fake.calls().some((c) => c.argv.includes('undefined')));
    t.equal(fake.read().profiles?.length, 3, 'one profile per network');
    await wan.forget('Free');
    t.equal(fake.read().profiles?.length, 2, 'forget removes it');
  },
);

t.test('deactivate keeps the profile and its secret; activate brings it back without one', async (t) => {
  const fake = fakeNmcli(t, world());
  const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
  await wan.connect({ ssid: 'Home', passphrase: PASS, asWan: true });
  await wan.deactivate('Home');
  t.equal((await wan.status()).state, 'disconnected', 'down');
  t.same(
    fake.read().profiles?.map((p) => p.psk),
    [PASS],
    'the profile and its secret stay with NetworkManager',
  );
  const again = await caught(wan.deactivate('Home'));
  t.ok(isObxError(again), `an inactive connection cannot be taken down: ${String(again)}`);
  const before = fake.calls().length;
  await wan.activate('Home');
  const st = await wan.status();
  t.equal(st.state, 'connected');
  t.equal(st.ssid, 'Home');
  const up = fake
    .calls()
    .slice(before)
    .find((c) => c.argv.includes('up'));
  t.same(
    up?.argv,
    ['--wait', '45', 'connection', 'up', 'id', wifiProfileId(Buffer.from('Home')), 'ifname', 'wlan1'],
    'by the profile id, no passwd-file: NetworkManager has the secret',
  );
  t.ok(isObxError(await caught(wan.activate('Elsewhere'))), 'an unknown network cannot be brought up');
});

t.test('wrong passphrase (Secrets on stdout, exit 4 and exit 0): refused, nothing kept', async (t) => {
  for (const exit0 of [false, true]) {
    const fake = fakeNmcli(t, { ...world(), quirks: { secretsExit0: exit0 } });
    const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
    const e = await caught(wan.connect({ ssid: 'Home', passphrase: 'wrong-passphrase' }));
    t.ok(isObxError(e, 'NET_WIFI_AUTH_FAILED'), `exit ${exit0 ? 0 : 4}: auth failed`);
    t.notMatch(String((e as Error).message), /wrong-passphrase/, 'the passphrase is not in the message');
    t.same(fake.read().profiles, [], 'the profile with the wrong passphrase is gone');
  }
});

t.test('network gone, hidden networks, NetworkManager not running, no device', async (t) => {
  const fake = fakeNmcli(t, world());
  const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
  fake.update((w) => {
    w.networks = w.networks.filter((n) => n.ssid !== 'Home');
  });
  t.ok(
    isObxError(await caught(wan.connect({ ssid: 'Home', passphrase: PASS })), 'NET_WIFI_NOT_FOUND'),
    'gone',
  );
  t.ok(
    isObxError(
      await caught(wan.connect({ ssid: 'Secret', passphrase: 'hidden-pass' })),
      'NET_WIFI_NOT_FOUND',
    ),
    'a hidden network is not found without hidden',
  );
  t.equal(
    (await wan.connect({ ssid: 'Secret', passphrase: 'hidden-pass', hidden: true })).ssid,
    'Secret',
    'hidden: joined, and named once connected',
  );
  t.equal((await wan.status()).state, 'connected');
  fake.update((w) => {
    w.running = false;
  });
  for (const p of [
    () => wan.scan(),
    () => wan.status(),
    () => wan.connect({ ssid: 'Home', passphrase: PASS }),
  ]) {
    t.ok(isObxError(await caught(p()), 'NET_NM_NOT_RUNNING'), 'NetworkManager not running (exit 8)');
  }
  const r = await runNmcli(['device', 'status']);
  t.equal(r.code, 8, 'the fake exits 8 like nmcli');
  fake.update((w) => {
    w.running = true;
  });
  const other = new NetworkManagerWan({ interface: 'wlan9', secretsDir: fake.dir });
  t.ok(isObxError(await caught(other.scan()), 'NET_WIFI_NOT_FOUND'), 'no such device (exit 10)');
});

t.test('a stale profile (key-mgmt: property is missing) is deleted before joining', async (t) => {
  const fake = fakeNmcli(t, {
    ...world(),
    profiles: [
      {
        name: 'Home',
        uuid: '11111111-2222-4333-8444-555555555555',
        type: '802-11-wireless',
        ssidHex: '486F6D65',
        keyMgmt: null,
        psk: null,
        device: '',
      },
    ],
  });
  const direct = await runNmcli(['device', 'wifi', 'connect', 'Home', 'password', PASS, 'ifname', 'wlan1']);
  t.equal(direct.code, 4);
  t.match(direct.stderr, /key-mgmt: property is missing/, 'the fake reproduces the quirk');
  t.ok(isObxError(classifyNmcli(direct), 'NET_NMCLI_FAILED'));
  const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
  t.equal((await wan.connect({ ssid: 'Home', passphrase: PASS })).state, 'connected');
  t.same(
    fake.read().profiles?.map((p) => p.name),
    [wifiProfileId(Buffer.from('Home'))],
    'the stale profile is gone, ours remains',
  );
});

t.test(
  'the Wi-Fi client for the WAN when the configuration names none: found through NetworkManager',
  async (t) => {
    t.equal(
      pickUpstreamWifi(
        [
          { device: 'eth0', type: 'ethernet', state: 'connected' },
          { device: 'wlan0', type: 'wifi', state: 'unmanaged' },
          { device: 'wlan1', type: 'wifi', state: 'disconnected' },
        ],
        'eth1',
      ),
      'wlan1',
      "the managed radio, not the access point's (unmanaged)",
    );
    t.equal(
      pickUpstreamWifi([{ device: 'wlan0', type: 'wifi', state: 'disconnected' }], 'wlan0'),
      null,
      "never the LAN's interface",
    );
    t.equal(
      pickUpstreamWifi(
        [
          { device: 'wlan;x', type: 'wifi', state: 'disconnected' },
          { device: 'wlan2', type: 'wifi', state: 'connected' },
        ],
        'eth1',
      ),
      'wlan2',
      'a name that is no interface name is passed over',
    );
    t.equal(pickUpstreamWifi([{ device: 'eth0', type: 'ethernet', state: 'connected' }], 'eth1'), null);
    t.equal(
      pickUpstreamCable(
        [
          { device: 'eth1', type: 'ethernet', state: 'unmanaged' },
          { device: 'wlan1', type: 'wifi', state: 'connected' },
          { device: 'eth0', type: 'ethernet', state: 'unavailable' },
        ],
        'eth1',
      ),
      'eth0',
      "the cable port: managed Ethernet, not the LAN's, plugged in or not",
    );
    t.equal(pickUpstreamCable([{ device: 'eth0', type: 'ethernet', state: 'connected' }], 'eth0'), null);
    const fake = fakeNmcli(t, world());
    t.equal(await findUpstreamWifi('eth1'), 'wlan1', 'from nmcli device status (wlan0 is unmanaged)');
    t.equal(await findUpstreamCable('wlan0'), 'eth0', 'the cable port from nmcli device status');
    fake.update((w) => {
      w.running = false;
    });
    t.equal(await findUpstreamWifi('eth1'), null, 'NetworkManager not running: none, no error');
    t.equal(await findUpstreamWifi('eth1', { bin: '/nonexistent/nmcli' }), null, 'no nmcli: none');
  },
);

t.test('bad input: refused before nmcli runs', async (t) => {
  const fake = fakeNmcli(t, world());
  const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
  for (const req of [
    { ssid: 'x'.repeat(33), passphrase: PASS },
    { ssid: 'Home', passphrase: 'short' },
    { ssid: 'Home', passphrase: 'line\nbreak-pass' },
    { ssid: '', passphrase: PASS },
    { ssid: 'Home\u0000', passphrase: PASS },
  ]) {
    t.ok(isObxError(await caught(wan.connect(req)), 'NET_VALUE_INVALID'));
  }
  t.same(fake.calls(), [], 'nothing ran');
  t.throws(() => new NetworkManagerWan({ interface: 'wlan1;rm' }), /interface/);
});

t.test('disconnect goes through node-wifi, whose env clobbering is undone', async (t) => {
  const fake = fakeNmcli(t, world());
  const before = { LANG: process.env.LANG, LC_ALL: process.env.LC_ALL, LC_MESSAGES: process.env.LC_MESSAGES };
  const wan = new NetworkManagerWan({ interface: 'wlan1', secretsDir: fake.dir });
  await wan.connect({ ssid: 'Free' });
  await wan.disconnect();
  t.same(
    { LANG: process.env.LANG, LC_ALL: process.env.LC_ALL, LC_MESSAGES: process.env.LC_MESSAGES },
    before,
    'LANG, LC_ALL, LC_MESSAGES as before node-wifi was required',
  );
  t.ok(loadNodeWifi(), 'cached');
  t.same(fake.calls().at(-1)?.argv, ['device', 'disconnect', 'wlan1']);
  t.equal((await wan.status()).state, 'disconnected');
  t.ok(isObxError(await caught(wan.disconnect()), 'NET_NMCLI_FAILED'), 'disconnecting twice fails (exit 6)');
});
