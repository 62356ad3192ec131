/**
 * The recipe's lists and the checker that holds a built image to them: enabled units, masked units,
 * forbidden packages and listening sockets; and the parsers that turn the build's raw text into a
 * manifest (unit symlinks, ss output, dpkg-query and the .deb checksums).
 */
import t from 'tap';
import {
  checkManifest,
  FORBIDDEN_PACKAGES,
  type ImageManifest,
  packagesFrom,
  parseImageManifest,
  parseSs,
  socketAllowed,
  unitAllowed,
  unitsFromLinks,
} from '../../images/check.js';
import {
  ALLOWED_ENABLED_UNITS,
  ALLOWED_SOCKETS,
  BUILD_PACKAGES,
  ENABLED_BY_IMAGE,
  PACKAGES,
  REMOVE_MODULE_DIRS,
} from '../../images/recipe.js';
import { ImageRecipeError } from '../../images/render.js';
import { MASKED_UNITS } from '../../images/system-files.js';

const good: ImageManifest = {
  name: 'onionbox-0.1.0-arm64',
  packages: [
    { name: 'tor', version: '0.4.8.16-1', arch: 'arm64', debSha256: 'c'.repeat(64) },
    { name: 'nodejs', version: '20.19.2+dfsg-1', arch: 'arm64' },
  ],
  enabledUnits: [
    'NetworkManager.service',
    'getty@tty1.service',
    'onionbox-lockdown.service',
    'onionboxd.service',
  ],
  maskedUnits: [...MASKED_UNITS],
  listening: [
    { proto: 'tcp', address: '10.42.0.1', port: 80, program: 'node' },
    { proto: 'tcp', address: '127.0.0.1', port: 9051, program: 'tor' },
  ],
};

t.test("the recipe: the issue's packages, no duplicates, nothing forbidden, lists that agree", async (t) => {
  for (const p of [
    'linux-image-arm64',
    'raspi-firmware',
    'firmware-brcm80211',
    'wireless-regdb',
    'nodejs',
    'tor',
    'lyrebird',
    'nftables',
    'network-manager',
    'hostapd',
    'dnsmasq-base',
    'iw',
    'rfkill',
  ]) {
    t.ok(PACKAGES.includes(p), p);
  }
  t.equal(new Set(PACKAGES).size, PACKAGES.length, 'no package twice');
  for (const p of PACKAGES) t.notOk(FORBIDDEN_PACKAGES.includes(p), `${p} is not forbidden`);
  for (const p of BUILD_PACKAGES)
    t.ok(FORBIDDEN_PACKAGES.includes(p), `build-only ${p} must be gone from the image`);
  for (const u of ENABLED_BY_IMAGE) t.ok(ALLOWED_ENABLED_UNITS.includes(u), `${u} allowed`);
  for (const u of MASKED_UNITS) t.notOk(unitAllowed(u), `${u} is masked, never allowed enabled`);
  for (const u of [
    'nftables.service',
    'systemd-timesyncd.service',
    'apt-daily.timer',
    'apt-daily-upgrade.timer',
    'ModemManager.service',
  ]) {
    t.ok(MASKED_UNITS.includes(u), `${u} masked`);
  }
  for (const d of REMOVE_MODULE_DIRS) {
    t.match(d, /^(sound|drivers|net|fs)(\/[a-z0-9_-]+)*$/, `${d} is a plain relative directory`);
    for (const keep of [
      'drivers/net/virtio_net',
      'drivers/mmc',
      'drivers/usb',
      'net/netfilter',
      'drivers/net/wireless/broadcom',
    ]) {
      t.notOk(keep.startsWith(`${d}/`) || keep === d, `${d} keeps ${keep}`);
    }
  }
  // the web page listens on the LAN address only, never on every address
  const page = ALLOWED_SOCKETS.filter((s) => s.port === 80);
  t.same(
    page.map((s) => s.address),
    ['10.42.0.1'],
  );
  t.notOk(
    ALLOWED_SOCKETS.some((s) => s.proto === 'tcp' && (s.address === '*' || s.address === '0.0.0.0')),
    'no TCP socket on every address',
  );
});

t.test('a manifest inside the allow lists passes', async (t) => {
  t.same(checkManifest(good), []);
  // runtime pieces named like the compiler are not the compiler
  t.same(
    checkManifest({
      ...good,
      packages: [...good.packages, { name: 'gcc-14-base', version: '1', arch: 'arm64' }],
    }),
    [],
  );
});

t.test('anything off the lists fails, one sentence each', async (t) => {
  const cases: [Partial<ImageManifest>, RegExp][] = [
    [{ enabledUnits: [...good.enabledUnits, 'ssh.service'] }, /^unit ssh\.service is enabled$/],
    [{ enabledUnits: [...good.enabledUnits, 'avahi-daemon.service'] }, /avahi-daemon/],
    [
      {
        enabledUnits: [...good.enabledUnits, 'systemd-timesyncd.service'],
        maskedUnits: [...MASKED_UNITS, 'x'],
      },
      /timesyncd\.service is both enabled and masked/,
    ],
    [
      {
        enabledUnits: [...good.enabledUnits, 'apt-daily.timer'],
        maskedUnits: MASKED_UNITS.filter((u) => u !== 'apt-daily.timer'),
      },
      /unit apt-daily\.timer is (enabled|not masked)/,
    ],
    [{ enabledUnits: [...good.enabledUnits, 'cloud-init.target'] }, /cloud-init/],
    [{ enabledUnits: [...good.enabledUnits, 'tor.service'] }, /tor\.service is both enabled and masked/],
    [
      { maskedUnits: MASKED_UNITS.filter((u) => u !== 'nftables.service') },
      /^unit nftables\.service is not masked$/,
    ],
    [
      { packages: [...good.packages, { name: 'openssh-server', version: '1', arch: 'arm64' }] },
      /openssh-server is installed/,
    ],
    [{ packages: [...good.packages, { name: 'g++', version: '1', arch: 'arm64' }] }, /g\+\+ is installed/],
    [{ packages: [...good.packages, { name: 'npm', version: '1', arch: 'all' }] }, /npm is installed/],
    [
      { packages: [...good.packages, { name: 'gcc-14', version: '1', arch: 'arm64' }] },
      /gcc-14 is installed/,
    ],
    [
      { packages: [...good.packages, { name: 'libc6-dev', version: '1', arch: 'arm64' }] },
      /development package libc6-dev/,
    ],
    [
      { listening: [{ proto: 'tcp', address: '0.0.0.0', port: 22, program: 'sshd' }] },
      /^sshd listens on tcp 0\.0\.0\.0:22$/,
    ],
    // the page on every address (so on the WAN too) is not the page on the LAN address
    [
      { listening: [{ proto: 'tcp', address: '0.0.0.0', port: 80, program: 'node' }] },
      /node listens on tcp 0\.0\.0\.0:80/,
    ],
    [
      { listening: [{ proto: 'udp', address: '*', port: 5353, program: 'avahi-daemon' }] },
      /avahi-daemon listens/,
    ],
    [
      { listening: [{ proto: 'tcp', address: '10.42.0.1', port: 80, program: 'python3' }] },
      /python3 listens/,
    ],
  ];
  for (const [change, re] of cases) {
    const problems = checkManifest({ ...good, ...change });
    t.ok(problems.length >= 1 && problems.length <= 2, JSON.stringify(change));
    t.ok(
      problems.some((p) => re.test(p)),
      `${re} in ${problems.join('; ')}`,
    );
  }
});

t.test('templates: an instance is allowed by its template, not by a prefix', async (t) => {
  t.ok(unitAllowed('getty@tty1.service'));
  t.ok(unitAllowed('serial-getty@ttyS1.service'));
  t.notOk(unitAllowed('getty@tty1.timer'));
  t.notOk(unitAllowed('evil-getty@tty1.service'));
  t.notOk(unitAllowed('NetworkManager.service.d'));
  t.ok(socketAllowed({ proto: 'udp', address: '10.42.0.1', port: 5353, program: 'tor' }));
  t.notOk(socketAllowed({ proto: 'tcp', address: '10.42.0.1', port: 5353, program: 'tor' }));
});

t.test('the WAN DHCP client on its leased address: only that address, only port 68', async (t) => {
  const nm = { proto: 'udp', address: '10.0.2.15', port: 68, program: 'NetworkManager' } as const;
  t.ok(socketAllowed(nm, ALLOWED_SOCKETS, '10.0.2.15'));
  t.notOk(socketAllowed(nm), 'without the lease address nothing matches "wan"');
  t.notOk(socketAllowed(nm, ALLOWED_SOCKETS, '10.0.2.16'));
  t.notOk(socketAllowed({ ...nm, port: 67 }, ALLOWED_SOCKETS, '10.0.2.15'));
  t.notOk(socketAllowed({ ...nm, proto: 'tcp' }, ALLOWED_SOCKETS, '10.0.2.15'));
  t.notOk(socketAllowed({ ...nm, program: 'node' }, ALLOWED_SOCKETS, '10.0.2.15'));
  t.notOk(socketAllowed({ ...nm, address: 'wan' }), 'the word itself is no address');
});

t.test('unit symlinks: /dev/null masks, wants/requires/aliases enable', async (t) => {
  const links = [
    'multi-user.target.wants/onionboxd.service\t/etc/systemd/system/onionboxd.service',
    'sysinit.target.wants/onionbox-lockdown.service\t/etc/systemd/system/onionbox-lockdown.service',
    'network-pre.target.requires/onionbox-lockdown.service\t/etc/systemd/system/onionbox-lockdown.service',
    'dbus-org.freedesktop.nm-dispatcher.service\t/usr/lib/systemd/system/NetworkManager-dispatcher.service',
    'getty.target.wants/getty@tty1.service\t/usr/lib/systemd/system/getty@.service',
    'nftables.service\t/dev/null',
    'apt-daily.timer\t/dev/null',
    'NetworkManager.service.d/onionbox-lockdown.conf\t/etc/onionbox/x.conf',
    '',
  ].join('\n');
  t.same(unitsFromLinks(links), {
    enabled: [
      'dbus-org.freedesktop.nm-dispatcher.service',
      'getty@tty1.service',
      'onionbox-lockdown.service',
      'onionboxd.service',
    ],
    masked: ['apt-daily.timer', 'nftables.service'],
  });
  t.throws(() => unitsFromLinks('no-tab-here.service'), ImageRecipeError);
});

t.test('ss -Hlntup output: protocol, address, port and program', async (t) => {
  const ss = [
    'tcp   LISTEN 0      511        10.42.0.1:80         0.0.0.0:*    users:(("node",pid=412,fd=21))',
    'tcp   LISTEN 0      4096       127.0.0.1:9051       0.0.0.0:*    users:(("tor",pid=500,fd=7))',
    'udp   UNCONN 0      0          10.42.0.1:5353       0.0.0.0:*    users:(("tor",pid=500,fd=9))',
    'udp   UNCONN 0      0     0.0.0.0%eth0:68         0.0.0.0:*    users:(("NetworkManager",pid=300,fd=23))',
    'tcp   LISTEN 0      128            [::]:22            [::]:*    users:(("sshd",pid=1,fd=3))',
    'udp   UNCONN 0      0                 *:5353             *:*',
  ].join('\n');
  t.same(parseSs(ss), [
    { proto: 'tcp', address: '10.42.0.1', port: 80, program: 'node' },
    { proto: 'tcp', address: '127.0.0.1', port: 9051, program: 'tor' },
    { proto: 'udp', address: '10.42.0.1', port: 5353, program: 'tor' },
    { proto: 'udp', address: '0.0.0.0', port: 68, program: 'NetworkManager' },
    { proto: 'tcp', address: '::', port: 22, program: 'sshd' },
    { proto: 'udp', address: '*', port: 5353, program: '?' },
  ]);
  t.throws(() => parseSs('raw UNCONN 0 0 *:1 *:*'), /unknown protocol/);
  t.throws(() => parseSs('tcp LISTEN 0 0'), /no local address/);
});

t.test('packages with versions and the checksum of their .deb', async (t) => {
  const dpkg =
    'tor\t0.4.8.16-1\tarm64\nlibc6\t2.41-12\tarm64\nsystemd\t1:257.9-1~deb13u1\tarm64\nbase-files\t13.8\tarm64\n';
  const sums = [
    `${'1'.repeat(64)}  tor_0.4.8.16-1_arm64.deb`,
    `${'2'.repeat(64)}  libc6_2.41-12_arm64.deb`,
    `${'3'.repeat(64)}  systemd_1%3a257.9-1~deb13u1_arm64.deb`,
    `${'4'.repeat(64)}  gone_1.0_arm64.deb`,
    'garbage',
  ].join('\n');
  t.same(packagesFrom(dpkg, sums), [
    { name: 'base-files', version: '13.8', arch: 'arm64', debSha256: undefined },
    { name: 'libc6', version: '2.41-12', arch: 'arm64', debSha256: '2'.repeat(64) },
    { name: 'systemd', version: '1:257.9-1~deb13u1', arch: 'arm64', debSha256: '3'.repeat(64) },
    { name: 'tor', version: '0.4.8.16-1', arch: 'arm64', debSha256: '1'.repeat(64) },
  ]);
  t.throws(() => packagesFrom('tor 0.4', ''), ImageRecipeError);
});

t.test('a manifest read from JSON is validated', async (t) => {
  const round = parseImageManifest(JSON.parse(JSON.stringify(good)));
  t.same(round, good);
  t.same(parseImageManifest({ ...good, listening: undefined }).listening, []);
  const bad: unknown[] = [
    null,
    [],
    { ...good, name: 1 },
    { ...good, packages: {} },
    { ...good, packages: [{ name: 'tor' }] },
    { ...good, packages: [{ name: 'tor', version: '1', arch: 'arm64', debSha256: 'x' }] },
    { ...good, enabledUnits: [1] },
    { ...good, maskedUnits: 'nftables.service' },
    { ...good, listening: {} },
    { ...good, listening: [{ proto: 'sctp', address: '*', port: 1, program: 'x' }] },
  ];
  for (const b of bad) t.throws(() => parseImageManifest(b), ImageRecipeError, JSON.stringify(b));
});
