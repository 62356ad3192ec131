/** Parsers for nmcli's terse output and dnsmasq's lease file, from text the real tools print. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import {
  escapeTerse,
  groupScan,
  parseConnections,
  parseDeviceStatus,
  parseLeases,
  parseTerseFields,
  parseWifiList,
  splitTerse,
} from '../../firmware/net/parse.js';

const fixture = (n: string) => readFileSync(new URL(`../fixtures/net/${n}`, import.meta.url), 'utf8');

t.test('splitTerse: unescaped colons split, \\: and \\\\ unescape', async (t) => {
  t.same(splitTerse('a:b:c'), ['a', 'b', 'c']);
  t.same(splitTerse('Hotel\\: Lobby:AA\\:BB'), ['Hotel: Lobby', 'AA:BB']);
  t.same(splitTerse('back\\\\slash:x'), ['back\\slash', 'x']);
  t.same(splitTerse('ends\\\\:x'), ['ends\\', 'x'], 'an escaped backslash before a separator');
  t.same(splitTerse(':'), ['', '']);
  t.same(splitTerse('a&&b:c'), ['a&&b', 'c'], '&& survives (node-wifi corrupts it)');
  fc.assert(
    fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 6 }), (fields) => {
      const line = fields.map(escapeTerse).join(':');
      return JSON.stringify(splitTerse(line)) === JSON.stringify(fields);
    }),
  );
});

t.test('wifi list: exact SSIDs from SSID-HEX, BSSIDs with colons', async (t) => {
  const r = parseWifiList(fixture('nmcli-wifi-list.txt'));
  t.equal(r.length, 6, 'the garbage line is skipped');
  t.same(r[0], {
    ssidHex: '486f6d65',
    ssid: 'Home',
    bssid: 'AA:BB:CC:DD:EE:01',
    channel: 6,
    frequencyMhz: 2437,
    signal: 82,
    security: 'WPA2',
    inUse: true,
  });
  t.equal(r[2]?.ssid, 'Hotel: Lobby\\5G');
  t.equal(r[2]?.security, 'WPA2 WPA3');
  t.equal(r[3]?.ssidHex, '', 'hidden network');
  t.equal(r[4]?.security, '', 'open network');
  t.equal(r[5]?.ssid, 'Maïs');
  const g = groupScan(r);
  t.same(
    g.map((x) => x.ssid),
    ['Home', 'Hotel: Lobby\\5G', 'Free', 'Maïs', ''],
    'one per SSID, the one in use kept, strongest first, hidden last',
  );
  t.equal(g[0]?.bssid, 'AA:BB:CC:DD:EE:01', 'the BSSID in use wins over a stronger one');
});

t.test('device status, connections, multi-line fields', async (t) => {
  t.same(
    parseDeviceStatus(
      'eth0:ethernet:connected:onionbox-wan-eth0\nwlan0:wifi:unmanaged:\nlo:loopback:unmanaged:--\n',
    ),
    [
      { device: 'eth0', type: 'ethernet', state: 'connected', connection: 'onionbox-wan-eth0' },
      { device: 'wlan0', type: 'wifi', state: 'unmanaged', connection: '' },
      { device: 'lo', type: 'loopback', state: 'unmanaged', connection: '' },
    ],
  );
  t.same(
    parseConnections(
      'Hotel\\: Lobby:0b2d5c1e-6a36-4c47-9d3e-1f2a3b4c5d6e:802-11-wireless:wlan1\nbad:line\nx:nouuid:a:b\n',
    ),
    [
      {
        name: 'Hotel: Lobby',
        uuid: '0b2d5c1e-6a36-4c47-9d3e-1f2a3b4c5d6e',
        type: '802-11-wireless',
        device: 'wlan1',
      },
    ],
  );
  const m = parseTerseFields(
    'GENERAL.STATE:100 (connected)\nIP4.ADDRESS[1]:192.168.1.23/24\nIP4.GATEWAY:192.168.1.1\n',
  );
  t.equal(m.get('GENERAL.STATE'), '100 (connected)');
  t.equal(m.get('IP4.ADDRESS[1]'), '192.168.1.23/24');
});

t.test('dnsmasq leases', async (t) => {
  t.same(parseLeases(fixture('dnsmasq.leases')), [
    { expires: 1764640000, mac: '02:00:00:00:00:01', address: '10.42.0.23', hostname: 'phone' },
    { expires: 1764640100, mac: '02:00:00:00:00:02', address: '10.42.0.24', hostname: '' },
    { expires: 0, mac: '02:00:00:00:00:03', address: '10.42.0.25', hostname: '' },
  ]);
  t.same(parseLeases(''), []);
});
