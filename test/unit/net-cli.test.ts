/** `onionbox net render hostapd|dnsmasq`: output equals the golden files; bad values print nothing. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { runCli } from '../../firmware/cli/index.js';

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    stateDir: '/nonexistent',
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  return { code, out: out.join(''), err: err.join('') };
}

const fixture = (n: string) => readFileSync(new URL(`../fixtures/net/${n}`, import.meta.url), 'utf8');
const HOSTAPD = ['net', 'render', 'hostapd', '--interface', 'wlan0', '--ssid', 'Onionbox'];
const HOSTAPD_REST = [
  '--passphrase',
  'correct horse battery',
  '--country',
  'DE',
  '--channel',
  '6',
  '--security',
  'wpa2',
];

t.test('render hostapd', async (t) => {
  const r = await cli([...HOSTAPD, ...HOSTAPD_REST]);
  t.equal(r.code, 0);
  t.equal(r.out, fixture('hostapd-wpa2.conf'));
  t.equal(r.err, '');
  const w3 = await cli([
    'net',
    'render',
    'hostapd',
    '--interface',
    'wlan0',
    '--ssid',
    'Café ☕ net',
    '--passphrase',
    'correct horse battery',
    '--country',
    'fr',
    '--channel',
    '44',
    '--bssid',
    '7a:3f:09:c1:55:e2',
  ]);
  t.equal(w3.out, fixture('hostapd-wpa3-5ghz.conf'), 'WPA2/WPA3 without --security');
});

t.test('render dnsmasq', async (t) => {
  const r = await cli(['net', 'render', 'dnsmasq', '--interface', 'wlan0', '--lan-addr', '10.42.0.1/24']);
  t.equal(r.code, 0);
  t.equal(r.out, fixture('dnsmasq.conf'));
  const s = await cli([
    'net',
    'render',
    'dnsmasq',
    '--interface',
    'wlan0',
    '--lan-addr',
    '192.168.77.254/28',
    '--lease-seconds',
    '120',
  ]);
  t.equal(s.out, fixture('dnsmasq-short.conf'));
});

t.test('bad values: clear error, non-zero exit, nothing on stdout', async (t) => {
  const cases: [string, string[], RegExp, number][] = [
    [
      'SSID with newline',
      [...HOSTAPD.slice(0, 6), 'a\nwpa=0', ...HOSTAPD_REST],
      /network name contains a newline/,
      1,
    ],
    [
      'short passphrase',
      [...HOSTAPD, '--passphrase', 'short', '--country', 'DE', '--channel', '6'],
      /8 to 63/,
      1,
    ],
    ['channel 14', [...HOSTAPD, ...HOSTAPD_REST.slice(0, 4), '--channel', '14'], /channel "14"/, 1],
    [
      'unknown country',
      [...HOSTAPD, ...HOSTAPD_REST.slice(0, 2), '--country', 'XX', '--channel', '6'],
      /country/,
      1,
    ],
    ['missing flag', HOSTAPD, /--passphrase is required/, 2],
    ['unknown flag', [...HOSTAPD, ...HOSTAPD_REST, '--wpa', '0'], /Unknown option/, 2],
    [
      'LAN inside tor virtual network',
      ['net', 'render', 'dnsmasq', '--interface', 'wlan0', '--lan-addr', '172.16.0.1/24'],
      /tor's virtual address network/,
      1,
    ],
    [
      'LAN overlaps the WAN',
      [
        'net',
        'render',
        'dnsmasq',
        '--interface',
        'eth1',
        '--lan-addr',
        '192.168.1.1/24',
        '--wan-addr',
        '192.168.1.50/24',
      ],
      /overlaps the WAN/,
      1,
    ],
    [
      'lease seconds not a number',
      [
        'net',
        'render',
        'dnsmasq',
        '--interface',
        'eth1',
        '--lan-addr',
        '10.1.0.1/24',
        '--lease-seconds',
        '1h',
      ],
      /--lease-seconds/,
      2,
    ],
  ];
  for (const [name, argv, msg, code] of cases) {
    const r = await cli(argv);
    t.equal(r.code, code, `${name}: exit ${code}`);
    t.equal(r.out, '', `${name}: nothing on stdout`);
    t.match(r.err, msg, `${name}: says why`);
    t.notMatch(r.err, /correct horse/, `${name}: never echoes the passphrase`);
  }
});

t.test('wifi scan|connect|status against the fake nmcli', async (t) => {
  const { fakeNmcli } = await import('../helpers/fake-nmcli.js');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const fake = fakeNmcli(t, {
    running: true,
    devices: [{ device: 'wlan1', type: 'wifi', state: 'disconnected', connection: '' }],
    networks: [
      {
        ssid: 'Home',
        bssid: 'AA:BB:CC:DD:EE:01',
        chan: 6,
        freq: 2437,
        signal: 82,
        security: 'WPA2',
        psk: 'home-passphrase',
      },
      { ssid: 'Free', bssid: 'AA:BB:CC:DD:EE:03', chan: 11, freq: 2462, signal: 41, security: '' },
    ],
  });
  const scan = await cli(['wifi', 'scan', '--interface', 'wlan1']);
  t.equal(scan.code, 0);
  t.match(scan.out, /82% ch 6 +WPA2 +"Home"/);
  t.match(scan.out, /open +"Free"/);
  const json = await cli(['wifi', 'scan', '--interface', 'wlan1', '--json']);
  t.equal(JSON.parse(json.out).length, 2);
  // NetworkManager's keyfile directory defaults to /etc; the CLI test points the adapter at the fake's.
  process.env.ONIONBOX_WIFI_INTERFACE = 'wlan1';
  t.teardown(() => {
    delete process.env.ONIONBOX_WIFI_INTERFACE;
  });
  const dir = mkdtempSync(`${fake.dir}/p-`);
  writeFileSync(`${dir}/pass`, 'home-passphrase\n');
  const bad = await cli(['wifi', 'connect', '--ssid', 'Home', '--passphrase', 'x']);
  t.equal(bad.code, 2, 'no --passphrase flag exists');
  t.equal(bad.out, '');
  const st = await cli(['wifi', 'status', '--json']);
  t.equal(JSON.parse(st.out).state, 'disconnected');
  const short = await cli(['wifi', 'connect', '--ssid', 'Home', '--passphrase-file', `${dir}/missing`]);
  t.equal(short.code, 2);
  t.match(short.err, /ENOENT/);
  const wrong = `${dir}/wrong`;
  writeFileSync(wrong, 'not-the-passphrase\n');
  const refused = await cli(['wifi', 'connect', '--ssid', 'Home', '--passphrase-file', wrong]);
  t.equal(refused.code, 1);
  t.match(refused.err, /OBX_ERR_NET_WIFI_AUTH_FAILED/);
  t.equal(refused.out, '');
  const ok = await cli(['wifi', 'connect', '--ssid', 'Home', '--passphrase-file', `${dir}/pass`]);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /joined "Home" on wlan1: 192\.168\.1\.23\/24/);
  t.match((await cli(['wifi', 'status'])).out, /network +"Home", signal 82%/);
  t.notOk(
    fake.calls().some((c) => c.argv.some((a) => a.includes('home-passphrase'))),
    'never in argv',
  );
});
