/**
 * Networking grammars and renderers: golden files (regenerate with UPDATE_GOLDEN=1 and read the diff),
 * must / must-not lines, and attack tables: every renderer refuses newline, CR and NUL injection,
 * over-long and malformed values, and renders Unicode SSIDs byte-exact.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import {
  netsOverlap,
  parseBssid,
  parseChannel,
  parseLanRange,
  parsePassphrase,
  parseSsid,
  parseWifiCountry,
  randomBssid,
} from '../../firmware/net/grammar.js';
import {
  dhcpPool,
  renderDnsmasq,
  renderEthernetKeyfile,
  renderHostapd,
  renderNetworkManagerConf,
  validateAccessPoint,
  validateUpstreamWifi,
  wifiProfileArgs,
  wifiProfileId,
  wifiSecretsFile,
} from '../../firmware/net/render.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

function golden(t: { equal: (a: string, b: string, m: string) => unknown }, name: string, got: string): void {
  const file = new URL(`../fixtures/net/${name}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, got);
  t.equal(got, readFileSync(file, 'utf8'), `${name} matches test/fixtures/net/${name}`);
}

const AP = {
  interface: 'wlan0',
  ssid: 'Onionbox',
  passphrase: 'correct horse battery',
  country: 'DE',
  channel: 6,
  security: 'wpa2',
};

/** The lease file left to its default: /run/onionbox (memory, not the SD card). */
const DHCP = { interface: 'wlan0', lanAddr: '10.42.0.1/24' };

t.test('golden files', async (t) => {
  golden(t, 'hostapd-wpa2.conf', renderHostapd(AP));
  golden(
    t,
    'hostapd-wpa3-5ghz.conf',
    renderHostapd({
      ...AP,
      ssid: 'Café ☕ net',
      channel: 44,
      country: 'fr',
      security: 'wpa2-wpa3',
      bssid: '7a:3f:09:c1:55:e2',
    }),
  );
  golden(t, 'hostapd-psk.conf', renderHostapd({ ...AP, passphrase: 'AB'.repeat(32), isolateClients: false }));
  golden(t, 'dnsmasq.conf', renderDnsmasq(DHCP));
  golden(
    t,
    'dnsmasq-short.conf',
    renderDnsmasq({ ...DHCP, lanAddr: '192.168.77.254/28', leaseSeconds: 120 }),
  );
  golden(t, 'NetworkManager.conf', renderNetworkManagerConf({ unmanaged: ['wlan0', 'eth1'] }));
  golden(t, 'wan-ethernet.nmconnection', renderEthernetKeyfile({ interface: 'eth0' }));
  golden(
    t,
    'wan-wifi.add-args',
    `${wifiProfileArgs(validateUpstreamWifi({ interface: 'wlan1', ssid: 'Hotel: Lobby\\5G', passphrase: ' pass\\word#1 ' }), { asWan: true }).join('\n')}\n`,
  );
  golden(
    t,
    'wan-wifi-open.add-args',
    `${wifiProfileArgs(validateUpstreamWifi({ interface: 'wlan1', ssid: 'Free', hidden: true })).join('\n')}\n`,
  );
});

t.test('hostapd: what every config must say', async (t) => {
  const s = renderHostapd(AP);
  for (const l of ['wpa=2', 'wpa_key_mgmt=WPA-PSK', 'rsn_pairwise=CCMP', 'country_code=DE', 'ieee80211d=1']) {
    t.match(s, new RegExp(`^${l}$`, 'm'), l);
  }
  t.match(s, /^ssid2=4f6e696f6e626f78$/m, 'SSID in hex');
  t.notMatch(s, /^ssid=/m, 'never the plain ssid= form');
  t.notMatch(s, /SAE|ieee80211w/, 'no SAE or 802.11w by default');
  t.notMatch(s, /TKIP|wpa_pairwise/, 'no TKIP');
  const w3 = renderHostapd({ ...AP, security: 'wpa2-wpa3' });
  t.match(w3, /^wpa_key_mgmt=WPA-PSK SAE$/m, 'transition mode keeps WPA-PSK beside SAE');
  t.match(w3, /^ieee80211w=1$/m, 'management frame protection optional, never mandatory (2)');
  t.match(renderHostapd({ ...AP, channel: 36 }), /^hw_mode=a$/m);
  t.match(renderHostapd({ ...AP, channel: 13 }), /^hw_mode=g$/m);
  const bytes = Buffer.from(
    /^ssid2=([0-9a-f]+)$/m.exec(renderHostapd({ ...AP, ssid: 'Ünï 🧅' }))?.[1] ?? '',
    'hex',
  );
  t.equal(bytes.toString('utf8'), 'Ünï 🧅', 'Unicode SSID byte-exact');
  t.match(renderHostapd({ ...AP, ssid: 'Ünï' }), /^utf8_ssid=1$/m);
  t.notMatch(s, /utf8_ssid/, 'ASCII SSID: no utf8 flag');
});

t.test('hostapd attack table: nothing renders, nothing leaks into the message', async (t) => {
  const attacks: [string, Record<string, unknown>, string][] = [
    ['newline in SSID', { ssid: 'a\nwpa=0' }, 'ssid'],
    ['CR in SSID', { ssid: 'a\rb' }, 'ssid'],
    ['NUL in SSID', { ssid: 'a\u0000b' }, 'ssid'],
    ['tab in SSID', { ssid: 'a\tb' }, 'ssid'],
    ['C1 control in SSID', { ssid: 'a\u0085b' }, 'ssid'],
    ['empty SSID', { ssid: '' }, 'ssid'],
    ['33-byte SSID', { ssid: 'x'.repeat(33) }, 'ssid'],
    ['17 two-byte chars (34 bytes)', { ssid: 'é'.repeat(17) }, 'ssid'],
    ['9 emoji (36 bytes)', { ssid: '🧅'.repeat(9) }, 'ssid'],
    ['lone surrogate', { ssid: 'a\ud800' }, 'ssid'],
    ['SSID not a string', { ssid: 42 }, 'ssid'],
    ['newline in passphrase', { passphrase: 'password\nwpa=0' }, 'passphrase'],
    ['CR in passphrase', { passphrase: 'password\r1' }, 'passphrase'],
    ['NUL in passphrase', { passphrase: 'password\u00001' }, 'passphrase'],
    ['7 chars', { passphrase: '1234567' }, 'passphrase'],
    ['64 non-hex chars', { passphrase: 'g'.repeat(64) }, 'passphrase'],
    ['65 chars', { passphrase: 'a'.repeat(65) }, 'passphrase'],
    ['63 hex + newline', { passphrase: `${'a'.repeat(63)}\n` }, 'passphrase'],
    ['accented passphrase', { passphrase: 'pässwörter' }, 'passphrase'],
    ['country unknown', { country: 'XX' }, 'country'],
    ['country injection', { country: 'DE\nwpa=0' }, 'country'],
    ['country three letters', { country: 'DEU' }, 'country'],
    ['channel 14', { channel: 14 }, 'channel'],
    ['channel 52 (DFS)', { channel: 52 }, 'channel'],
    ['channel 0', { channel: 0 }, 'channel'],
    ['channel text injection', { channel: '6\nwpa=0' }, 'channel'],
    ['channel float', { channel: 6.5 }, 'channel'],
    ['interface injection', { interface: 'wlan0\nwpa=0' }, 'interface'],
    ['interface too long', { interface: 'a'.repeat(16) }, 'interface'],
    ['interface lo', { interface: 'lo' }, 'interface'],
    ['security unknown', { security: 'sae-only' }, 'security'],
    ['SAE with hex key', { security: 'wpa2-wpa3', passphrase: 'a'.repeat(64) }, 'passphrase'],
  ];
  for (const [name, patch, field] of attacks) {
    const e = caught(() => renderHostapd({ ...AP, ...patch }));
    t.ok(isObxError(e, 'NET_VALUE_INVALID'), `${name}: refused`);
    if (isObxError(e)) {
      t.ok(e.details[field], `${name}: names the field ${field}`);
      t.notMatch(e.message, /wpa=0|password|horse/, `${name}: the message does not echo secrets or payloads`);
    }
  }
  const many = caught(() => renderHostapd({ ...AP, ssid: '', channel: 99, country: 'zz' }));
  t.ok(isObxError(many) && Object.keys(many.details).length === 3, 'every bad field is named at once');
  t.ok(
    isObxError(
      caught(() => renderHostapd(null)),
      'NET_VALUE_INVALID',
    ),
    'not an object',
  );
});

t.test('grammar edges that must pass', async (t) => {
  t.equal(parseSsid('x'.repeat(32)).length, 32, '32 bytes');
  t.equal(parseSsid('🧅'.repeat(8)).length, 32, '8 emoji = 32 bytes');
  t.equal(parseSsid('Hotel\tlobby').toString(), 'Hotel\tlobby', 'a network to join may hold a tab');
  t.ok(
    caught(() => parseSsid('Hotel\tlobby', { forAccessPoint: true })),
    'the box own name may not',
  );
  t.same(parsePassphrase('12345678'), { kind: 'passphrase', value: '12345678' });
  t.same(parsePassphrase('x'.repeat(63)).kind, 'passphrase');
  t.same(parsePassphrase('AB'.repeat(32)), { kind: 'psk', value: 'ab'.repeat(32) });
  t.equal(parsePassphrase(' ~!@#$%^&*()_+{}|:"<>?`-=[]\\;\',./').kind, 'passphrase', 'all printable ASCII');
  t.equal(parseWifiCountry('de'), 'DE');
  t.equal(parseChannel('11'), 11);
  t.equal(parseChannel(48), 48);
  for (const c of [36, 40, 44, 48, 1, 13]) t.equal(parseChannel(c), c);
});

t.test('LAN range checks', async (t) => {
  t.same(parseLanRange('10.42.0.1/24'), { address: '10.42.0.1', prefix: 24 });
  t.same(parseLanRange('192.168.8.1/24'), { address: '192.168.8.1', prefix: 24 });
  const refused: [string, unknown, { address: string; prefix: number } | null][] = [
    ['inside tor virtual network', '172.16.0.1/24', null],
    ['tor virtual network, other end', '172.31.255.1/24', null],
    ['public range', '8.8.8.1/24', null],
    ['network address', '10.42.0.0/24', null],
    ['broadcast', '10.42.0.255/24', null],
    ['prefix too wide', '10.42.0.1/8', null],
    ['prefix /31', '10.42.0.1/31', null],
    ['same subnet as WAN', '192.168.1.10/24', { address: '192.168.1.77', prefix: 24 }],
    ['inside a wide WAN', '10.1.2.1/24', { address: '10.0.0.5', prefix: 8 }],
    ['around the WAN', '10.0.0.1/16', { address: '10.0.3.9', prefix: 28 }],
    ['not CIDR', '10.42.0.1', null],
    ['injection', '10.42.0.1/24\nport=53', null],
    ['octet out of range', '10.42.0.256/24', null],
  ];
  for (const [name, v, wan] of refused) {
    t.ok(
      isObxError(
        caught(() => parseLanRange(v, wan)),
        'NET_VALUE_INVALID',
      ),
      `${name}: refused`,
    );
  }
  t.ok(parseLanRange('10.42.0.1/24', { address: '192.168.1.5', prefix: 24 }), 'other WAN subnet: fine');
  t.ok(netsOverlap({ address: '172.20.1.1', prefix: 32 }, { address: '172.16.0.0', prefix: 12 }));
  t.notOk(netsOverlap({ address: '172.32.0.1', prefix: 24 }, { address: '172.16.0.0', prefix: 12 }));
});

t.test('dnsmasq: DHCP only, on the LAN, the box as router and DNS', async (t) => {
  const s = renderDnsmasq(DHCP);
  const body = s.split('\n').filter((l) => l && !l.startsWith('#'));
  t.same(
    body.map((l) => l.split('=')[0]),
    [
      'port',
      'interface',
      'bind-interfaces',
      'dhcp-range',
      'dhcp-option',
      'dhcp-option',
      'dhcp-leasefile',
      'pid-file',
      'quiet-dhcp',
    ],
    'no other options',
  );
  t.match(
    s,
    /^dhcp-leasefile=\/run\/onionbox-dhcp\/dnsmasq\.leases$/m,
    "leases in memory (dnsmasq's own runtime directory), not on the SD card",
  );
  t.match(
    s,
    /^pid-file=\/run\/onionbox-dhcp\/dnsmasq\.pid$/m,
    'the PID file onionboxd watches for a restart',
  );
  t.match(s, /^quiet-dhcp$/m, 'no DHCP exchange (MAC, hostname) in the journal');
  t.match(s, /^port=0$/m, 'its DNS is off');
  t.match(s, /^dhcp-range=10\.42\.0\.2,10\.42\.0\.254,255\.255\.255\.0,43200$/m);
  t.match(s, /^dhcp-option=option:dns-server,10\.42\.0\.1,10\.42\.0\.1$/m, 'DNS advertised twice');
  t.same(dhcpPool({ address: '10.42.0.254', prefix: 24 }), { start: '10.42.0.1', end: '10.42.0.253' });
  t.same(dhcpPool({ address: '10.42.0.100', prefix: 24 }), { start: '10.42.0.101', end: '10.42.0.254' });
  t.same(
    dhcpPool({ address: '10.42.0.1', prefix: 16 }),
    { start: '10.42.0.2', end: '10.42.0.254' },
    'capped',
  );
  t.same(dhcpPool({ address: '10.42.0.1', prefix: 30 }), { start: '10.42.0.2', end: '10.42.0.2' });
  const attacks: [string, Record<string, unknown>][] = [
    ['interface newline', { interface: 'wlan0\nport=53' }],
    ['lan newline', { lanAddr: '10.42.0.1/24\nport=53' }],
    ['lease file relative', { leaseFile: 'leases' }],
    ['lease file dotdot', { leaseFile: '/var/../etc/passwd' }],
    ['lease file newline', { leaseFile: '/var/lib/x\nport=53' }],
    ['lease file space', { leaseFile: '/var/lib/a b' }],
    ['lease too short', { leaseSeconds: 60 }],
    ['lease not integer', { leaseSeconds: '3600' }],
    ['overlaps WAN', { wan: { address: '10.42.0.9', prefix: 16 } }],
    ['tor virtual network', { lanAddr: '172.16.5.1/24' }],
  ];
  for (const [name, patch] of attacks) {
    t.ok(
      isObxError(
        caught(() => renderDnsmasq({ ...DHCP, ...patch })),
        'NET_VALUE_INVALID',
      ),
      `${name}: refused`,
    );
  }
});

t.test('NetworkManager: chatter off, LAN unmanaged', async (t) => {
  const s = renderNetworkManagerConf({ unmanaged: ['wlan0'] });
  for (const l of [
    'dns=none',
    'hostname-mode=none',
    'no-auto-default=\\*',
    'enabled=false',
    'wifi.scan-rand-mac-address=yes',
    'unmanaged-devices=interface-name:wlan0',
  ]) {
    t.match(s, new RegExp(`^${l}$`, 'm'), l);
  }
  t.match(s, /\[connectivity\]\nenabled=false/);
  t.ok(
    caught(() => renderNetworkManagerConf({ unmanaged: ['wlan0;interface-name:eth0'] })),
    'no list injection',
  );
  t.ok(caught(() => renderNetworkManagerConf({ unmanaged: 'wlan0' })));
  const k = renderEthernetKeyfile({ interface: 'eth0' });
  t.match(k, /^dhcp-send-hostname=false$/m);
  t.match(k, /\[ipv6\]\nmethod=disabled/);
  t.match(k, /^cloned-mac-address=stable$/m);
  t.notMatch(k, /method=shared/, 'never shared (NAT, own DHCP and DNS)');
  const w = wifiProfileArgs(validateUpstreamWifi({ interface: 'w', ssid: 'a' })).join(' ');
  for (const pair of [
    'ipv4.dhcp-send-hostname no',
    'ipv6.method disabled',
    '802-11-wireless.cloned-mac-address stable',
    'ipv4.method auto',
  ]) {
    t.ok(w.includes(pair), `Wi-Fi profile: ${pair}`);
  }
  t.notMatch(w, /shared/, 'never shared (NAT, own DHCP and DNS)');
  t.match(renderNetworkManagerConf({ unmanaged: [] }), /^auth-polkit=false$/m, 'no polkitd: D-Bus decides');
});

t.test(
  'Wi-Fi profile: exact SSID bytes, the secret only in the passwd-file, per-network identity',
  async (t) => {
    const w = validateUpstreamWifi({ interface: 'wlan1', ssid: 'a;b\n', passphrase: ' pass word\\x ' });
    const args = wifiProfileArgs(w);
    const ssid = args[args.indexOf('802-11-wireless.ssid') + 1];
    t.same(Buffer.from(ssid ?? ''), Buffer.from('a;b\n'), 'the SSID bytes as they are, even ; and newline');
    t.notOk(
      args.some((a) => a.includes('pass')),
      'the passphrase is no argument',
    );
    t.equal(args[args.indexOf('802-11-wireless-security.psk-flags') + 1], '0', 'NetworkManager keeps it');
    t.equal(
      wifiSecretsFile(w),
      '802-11-wireless-security.psk:\\040pass\\040word\\\\x\\040\n',
      'spaces and backslashes escaped as nmcli reads them',
    );
    t.equal(wifiSecretsFile(validateUpstreamWifi({ interface: 'w', ssid: 'Free' })), null, 'open: no secret');
    const sae = validateUpstreamWifi({
      interface: 'w',
      ssid: 'S',
      passphrase: 'x'.repeat(8),
      keyMgmt: 'sae',
    });
    t.ok(
      wifiProfileArgs(sae).join(' ').includes('802-11-wireless-security.pmf required'),
      'SAE: PMF required',
    );
    const hexKey = validateUpstreamWifi({ interface: 'w', ssid: 'S', passphrase: 'AB'.repeat(32) });
    t.equal(wifiSecretsFile(hexKey), `802-11-wireless-security.psk:${'ab'.repeat(32)}\n`, 'a raw key as is');
    const a = wifiProfileId(Buffer.from('Home'));
    t.not(a, wifiProfileId(Buffer.from('Home2')), 'one profile (and MAC) per network');
    const home = wifiProfileArgs(
      validateUpstreamWifi({ interface: 'w', ssid: 'Home', passphrase: 'x'.repeat(8) }),
    );
    t.equal(home[home.indexOf('connection.stable-id') + 1], a);
    t.equal(home[home.indexOf('con-name') + 1], a);
    const attacks: [string, Record<string, unknown>][] = [
      ['passphrase newline', { passphrase: 'password\n[ipv4]' }],
      ['open with passphrase', { keyMgmt: 'none', passphrase: 'password' }],
      ['psk without passphrase', { keyMgmt: 'wpa-psk' }],
      ['SSID NUL', { ssid: 'a\u0000' }],
      ['SSID too long', { ssid: 'x'.repeat(33) }],
      ['hidden not boolean', { hidden: 'yes' }],
      ['keyMgmt unknown', { keyMgmt: 'wep', passphrase: 'password' }],
    ];
    for (const [name, patch] of attacks) {
      t.ok(
        isObxError(
          caught(() => validateUpstreamWifi({ interface: 'wlan1', ssid: 'Home', ...patch })),
          'NET_VALUE_INVALID',
        ),
        `${name}: refused`,
      );
    }
  },
);

t.test('validateAccessPoint returns parsed, frozen values', async (t) => {
  const ap = validateAccessPoint(AP);
  t.ok(Object.isFrozen(ap));
  t.equal(ap.country, 'DE');
  t.equal(ap.security, 'wpa2');
});

t.test('Wi-Fi guests isolated by default; WPA2/WPA3 transition by default (issue 23)', async (t) => {
  const { security: _s, ...noSecurity } = AP;
  const s = renderHostapd(noSecurity);
  t.match(s, /^ap_isolate=1$/m, 'stations cannot reach each other through the box');
  t.match(s, /^wpa_key_mgmt=WPA-PSK SAE$/m, 'WPA2 and WPA3 (SAE) by default');
  t.match(s, /^ieee80211w=1$/m, 'management frame protection optional for WPA2 stations');
  t.match(s, /^sae_require_mfp=1$/m, 'and required for WPA3 ones');
  const hex = renderHostapd({ ...noSecurity, passphrase: 'AB'.repeat(32) });
  t.match(hex, /^wpa_key_mgmt=WPA-PSK$/m, 'a 64-hex key (no SAE possible) falls back to WPA2');
  const casting = renderHostapd({ ...AP, isolateClients: false });
  t.notMatch(casting, /ap_isolate/, 'the household that casts turns isolation off');
  t.ok(
    isObxError(
      caught(() => renderHostapd({ ...AP, isolateClients: 'yes' })),
      'NET_VALUE_INVALID',
    ),
  );
  t.notMatch(s, /^bssid=/m, 'no BSSID given: the interface keeps its own');
});

t.test('BSSID: random, locally administered, unicast; anything else refused', async (t) => {
  for (let i = 0; i < 200; i++) {
    const mac = randomBssid();
    t.equal(parseBssid(mac), mac);
  }
  t.equal(
    randomBssid(() => new Uint8Array([0xff, 1, 2, 3, 4, 5])),
    'fe:01:02:03:04:05',
    'bit 1 set, bit 0 clear',
  );
  t.equal(
    randomBssid(() => new Uint8Array([0x00, 0xab, 0, 0, 0, 0x10])),
    '02:ab:00:00:00:10',
  );
  t.equal(parseBssid('7A:3F:09:C1:55:E2'), '7a:3f:09:c1:55:e2');
  for (const bad of [
    'b8:27:eb:12:34:56', // the Pi's vendor OUI: globally administered
    '7b:3f:09:c1:55:e2', // multicast
    '7a:3f:09:c1:55', // five bytes
    '7a-3f-09-c1-55-e2',
    '7a:3f:09:c1:55:e2\nap_isolate=0',
    42,
  ]) {
    t.ok(
      isObxError(
        caught(() => parseBssid(bad)),
        'NET_VALUE_INVALID',
      ),
      String(bad),
    );
    t.ok(
      isObxError(
        caught(() => renderHostapd({ ...AP, bssid: bad })),
        'NET_VALUE_INVALID',
      ),
      `render: ${bad}`,
    );
  }
});
