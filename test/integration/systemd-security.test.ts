/**
 * onionboxd's and tor's systemd units (issues 13 and 23): their own users, only the capabilities each
 * uses, and exposure scores from `systemd-analyze security --offline=true`: onionboxd at most 2.5 (it was
 * 9.7 running as root with every capability), tor's unit at most 1.5. Runs wherever systemd is installed
 * (scripts/setup installs it).
 * dnsmasq's and hostapd's units (issue 23): each under its own user with only the capabilities it needs,
 * restarted by a .path unit through a root oneshot with no capabilities; every one scored <= 3.0, and a
 * capability gained or a restriction lost fails here.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseUnit } from '../../scripts/sim/unit-file.js';
import { tmpDir } from '../helpers/tmp.js';

const UNIT = fileURLToPath(new URL('../../firmware/system/systemd/onionboxd.service', import.meta.url));
const TOR_UNIT = fileURLToPath(
  new URL('../../firmware/system/systemd/onionbox-tor.service', import.meta.url),
);
/** systemd-analyze's --threshold is the exposure times ten. */
const THRESHOLD = 30;

// no CAP_NET_BIND_SERVICE: the page binds port 80 in its own unit (onionbox-web.service)
export const ONIONBOXD_CAPS = ['CAP_NET_ADMIN', 'CAP_SYS_TIME'];

function analyze(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

t.test('systemd-analyze security --offline scores onionboxd.service at most 2.5', async (t) => {
  const r = await analyze(['security', '--offline=true', `--threshold=${THRESHOLD}`, '--no-pager', UNIT]);
  const score = Number(/Overall exposure level for onionboxd\.service: ([0-9.]+)/.exec(r.out)?.[1]);
  t.ok(score <= 2.5, `exposure ${score} (measured 2.3)`);
  t.equal(r.code, 0, 'systemd-analyze passes the threshold');
});

t.test('onionbox-tor.service: systemd-analyze scores it at most 3.0', async (t) => {
  const r = await analyze(['security', '--offline=true', `--threshold=${THRESHOLD}`, '--no-pager', TOR_UNIT]);
  const score = Number(/Overall exposure level for onionbox-tor\.service: ([0-9.]+)/.exec(r.out)?.[1]);
  t.ok(score <= 1.5, `exposure ${score} (measured 1.1)`);
  t.equal(r.code, 0, 'systemd-analyze passes the threshold');
});

const MOAT_UNIT = fileURLToPath(
  new URL('../../firmware/system/systemd/onionbox-moat.service', import.meta.url),
);

t.test(
  "onionbox-moat.service: scored at most 1.5; tor's user, no capability, tor's private resolv.conf",
  async (t) => {
    const r = await analyze([
      'security',
      '--offline=true',
      `--threshold=${THRESHOLD}`,
      '--no-pager',
      MOAT_UNIT,
    ]);
    const score = Number(/Overall exposure level for onionbox-moat\.service: ([0-9.]+)/.exec(r.out)?.[1]);
    t.ok(score <= 1.5, `exposure ${score} (measured 1.1)`);
    t.equal(r.code, 0, 'systemd-analyze passes the threshold');
    const svc = parseUnit(readFileSync(MOAT_UNIT, 'utf8')).Service ?? {};
    t.same(
      svc.User,
      ['debian-tor'],
      "tor's uid: the firewall's rules for tor's transports are the ones that apply",
    );
    t.same(svc.CapabilityBoundingSet, []);
    t.same(svc.AmbientCapabilities, []);
    t.same(svc.Restart, ['no'], 'one job per start');
    t.same(svc.BindReadOnlyPaths, ['/run/onionbox/tor-resolv.conf:/etc/resolv.conf']);
    t.same(svc.RuntimeDirectoryMode, ['0750'], "the answer: debian-tor's group (onionboxd) only");
  },
);

t.test(
  'onionbox-tor.service: debian-tor, no capability, restarted always, its socket directory private',
  async (t) => {
    const svc = parseUnit(readFileSync(TOR_UNIT, 'utf8')).Service ?? {};
    t.same(svc.User, ['debian-tor']);
    t.same(svc.CapabilityBoundingSet, [], 'empty bounding set');
    t.same(svc.AmbientCapabilities, []);
    t.same(svc.Restart, ['always']);
    t.same(svc.NotifyAccess, ['main']);
    t.same(svc.RuntimeDirectory, ['onionbox-tor']);
    t.same(svc.RuntimeDirectoryMode, ['0750'], 'only debian-tor and its group (onionboxd) open the socket');
    t.same([...(svc.RestrictAddressFamilies ?? [])].sort(), ['AF_INET', 'AF_UNIX']);
    t.notOk(svc.IPAddressDeny, 'tor is the one process that reaches the WAN (nft narrows it)');
  },
);

t.test('own user, only the capabilities it uses, no packet sockets, lockdown after stop', async (t) => {
  const unit = parseUnit(readFileSync(UNIT, 'utf8'));
  const svc = unit.Service ?? {};
  t.same(svc.User, ['onionbox']);
  t.same(svc.Group, ['onionbox']);
  t.same([...(svc.CapabilityBoundingSet ?? [])].sort(), [...ONIONBOXD_CAPS].sort());
  t.same([...(svc.AmbientCapabilities ?? [])].sort(), [...ONIONBOXD_CAPS].sort());
  t.same(svc.NoNewPrivileges, ['yes']);
  t.same(svc.NotifyAccess, ['main'], 'only the main process is heard (no child keeps the watchdog fed)');
  t.same(svc.ProtectSystem, ['strict']);
  t.same(svc.PrivateTmp, ['yes']);
  t.same([...(svc.RestrictAddressFamilies ?? [])].sort(), ['AF_INET', 'AF_NETLINK', 'AF_UNIX']);
  t.ok((svc.SystemCallFilter ?? []).includes('@system-service'));
  t.same(svc.ExecStopPost, ['+/usr/sbin/nft', '-f', '/etc/onionbox/lockdown.nft']);
  for (const p of ['/var/lib/onionbox', '/run/onionbox']) {
    t.ok((svc.ReadWritePaths ?? []).includes(p), `writable: ${p}`);
  }
  t.notOk((svc.ReadWritePaths ?? []).includes('/var/lib/tor'), "tor's data is tor's unit's alone");
  t.same(
    svc.SupplementaryGroups,
    ['debian-tor', 'onionbox-dhcp', 'onionbox-ap', 'onionbox-web'],
    "tor's control socket and cookie, dnsmasq's leases, the helpers' PID files, the page socket's group",
  );
  t.same(svc.IPAddressDeny, ['any'], 'an egress wall that does not depend on nftables');
  t.same(
    svc.IPAddressAllow,
    ['localhost', '10.0.0.0/8', '192.168.0.0/16'],
    "loopback and the LAN ranges the box's LAN may use only (DHCP is dnsmasq's own unit's)",
  );
  t.ok(
    (svc.ExecStart ?? []).includes('--tor-control-socket'),
    "onionboxd drives tor's unit over its control socket, never spawns it",
  );
  t.same(
    svc.DeviceAllow,
    ['/dev/i2c-1', 'rw', '/dev/rfkill', 'rw'],
    'devices: the OLED bus and rfkill only (GPIO is sysfs)',
  );
});

// ---- the page's unit (issue 23: the page in its own process)

const WEB_UNIT = fileURLToPath(
  new URL('../../firmware/system/systemd/onionbox-web.service', import.meta.url),
);
/** The page's unit: at most 2.0 (issue 23). */
const WEB_THRESHOLD = 20;
/** Loopback and the LAN ranges the box allows (firmware/net/grammar.ts), nothing else. */
const WEB_PEERS = ['localhost', '10.0.0.0/8', '192.168.0.0/16'];

t.test('the page unit: systemd-analyze security --offline scores it at most 2.0', async (t) => {
  const r = await analyze([
    'security',
    '--offline=true',
    `--threshold=${WEB_THRESHOLD}`,
    '--no-pager',
    WEB_UNIT,
  ]);
  const score = Number(/Overall exposure level for onionbox-web\.service: ([0-9.]+)/.exec(r.out)?.[1]);
  t.ok(score <= WEB_THRESHOLD / 10, `exposure ${score}`);
  t.equal(r.code, 0, 'systemd-analyze passes the threshold');
});

t.test(
  'the page unit: own user, port 80 its one capability, IPv4 and Unix sockets, LAN and loopback peers',
  async (t) => {
    const svc = parseUnit(readFileSync(WEB_UNIT, 'utf8')).Service ?? {};
    t.same(svc.User, ['onionbox-web']);
    t.same(svc.Group, ['onionbox-web']);
    t.same(svc.CapabilityBoundingSet, ['CAP_NET_BIND_SERVICE']);
    t.same(svc.AmbientCapabilities, ['CAP_NET_BIND_SERVICE']);
    t.same(svc.NoNewPrivileges, ['yes']);
    t.same(svc.ProtectSystem, ['strict']);
    t.same(svc.PrivateDevices, ['yes']);
    t.same(svc.ReadWritePaths, undefined, 'it writes nothing');
    t.same([...(svc.RestrictAddressFamilies ?? [])].sort(), ['AF_INET', 'AF_UNIX']);
    t.same(svc.IPAddressDeny, ['any']);
    t.same(svc.IPAddressAllow, WEB_PEERS);
    t.ok((svc.SystemCallFilter ?? []).includes('@system-service'));
    t.ok((svc.SystemCallFilter ?? []).includes('~@privileged'));
    t.match(
      svc.ExecStart?.join(' '),
      /^\/usr\/bin\/node .*\/opt\/onionbox\/dist\/web\/main\.js --state-dir \/var\/lib\/onionbox$/,
    );
    t.notMatch(svc.ExecStart?.join(' '), /--listen/, "the page follows the box's LAN address");
  },
);

const unitPath = (name: string) =>
  fileURLToPath(new URL(`../../firmware/system/systemd/${name}`, import.meta.url));

/** What each of onionboxd's helpers' units must keep (issue 23). */
const HELPERS: {
  unit: string;
  user: string | null;
  caps: string[];
  families: string[];
  /** settings that must stay exactly so */
  pinned: Record<string, string[]>;
}[] = [
  {
    unit: 'onionbox-dnsmasq.service',
    user: 'onionbox-dhcp',
    // measured with dnsmasq 2.90: without any one of these it does not start
    caps: ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'],
    families: ['AF_INET', 'AF_NETLINK', 'AF_UNIX'],
    pinned: {
      ExecStart: [
        '/usr/sbin/dnsmasq',
        '--keep-in-foreground',
        '--conf-file=%d/dnsmasq.conf',
        '--log-facility=-',
      ],
      LoadCredential: ['dnsmasq.conf:/var/lib/onionbox/dnsmasq.conf'],
      RuntimeDirectory: ['onionbox-dhcp'],
      RuntimeDirectoryMode: ['0750'],
      RuntimeDirectoryPreserve: ['yes'],
      PrivateDevices: ['yes'],
    },
  },
  {
    unit: 'onionbox-hostapd.service',
    user: 'onionbox-ap',
    caps: ['CAP_NET_ADMIN', 'CAP_NET_RAW'],
    // AF_PACKET: its EAPOL socket, here and in no other unit
    families: ['AF_INET', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX'],
    pinned: {
      ExecStart: ['/usr/sbin/hostapd', '-B', '-P', '/run/onionbox-ap/hostapd.pid', '%d/hostapd.conf'],
      LoadCredential: ['hostapd.conf:/var/lib/onionbox/hostapd.conf'],
      RuntimeDirectory: ['onionbox-ap'],
      RuntimeDirectoryMode: ['0750'],
      IPAddressDeny: ['any'],
      DeviceAllow: ['/dev/rfkill', 'r'],
    },
  },
  {
    unit: 'onionbox-restart@.service',
    // root for systemctl's private socket, but no capability at all
    user: null,
    caps: [],
    families: ['AF_UNIX'],
    pinned: {
      Type: ['oneshot'],
      ExecStart: ['/usr/bin/systemctl', 'restart', '--no-block', 'onionbox-%i.service'],
      PrivateNetwork: ['yes'],
      IPAddressDeny: ['any'],
    },
  },
];

/** Restrictions every helper unit keeps. */
const COMMON: Record<string, string[]> = {
  NoNewPrivileges: ['yes'],
  ProtectSystem: ['strict'],
  ProtectHome: ['yes'],
  PrivateTmp: ['yes'],
  ProtectKernelModules: ['yes'],
  ProtectKernelLogs: ['yes'],
  ProtectKernelTunables: ['yes'],
  ProtectControlGroups: ['yes'],
  ProtectClock: ['yes'],
  ProtectProc: ['invisible'],
  PrivateMounts: ['yes'],
  RestrictNamespaces: ['yes'],
  RestrictSUIDSGID: ['yes'],
  LockPersonality: ['yes'],
  MemoryDenyWriteExecute: ['yes'],
  SystemCallArchitectures: ['native'],
};

for (const h of HELPERS) {
  t.test(`${h.unit}: scored at most 3.0 by systemd-analyze security --offline`, async (t) => {
    // a template is analysed as an instance (systemd-analyze wants a name it can load)
    const name = h.unit.replace('@.service', '@dnsmasq.service');
    const dir = tmpDir(t);
    copyFileSync(unitPath(h.unit), join(dir, name));
    const r = await analyze([
      'security',
      '--offline=true',
      `--threshold=${THRESHOLD}`,
      '--no-pager',
      join(dir, name),
    ]);
    const score = Number(
      new RegExp(`Overall exposure level for ${name.replace(/[.@]/g, '\\$&')}: ([0-9.]+)`).exec(r.out)?.[1],
    );
    t.ok(score <= THRESHOLD / 10, `exposure ${score}`);
    t.equal(r.code, 0, 'systemd-analyze passes the threshold');
  });

  t.test(`${h.unit}: its own user, only its capabilities, its restrictions`, async (t) => {
    const svc = parseUnit(readFileSync(unitPath(h.unit), 'utf8')).Service ?? {};
    if (h.user === null) {
      t.same(svc.User, undefined, 'root (systemctl), but ...');
      t.same(svc.CapabilityBoundingSet, [], '... no capability at all');
      t.same(svc.AmbientCapabilities, undefined);
    } else {
      t.same(svc.User, [h.user]);
      t.same(svc.Group, [h.user]);
      t.same(svc.SupplementaryGroups, undefined, 'no other group');
      t.same([...(svc.CapabilityBoundingSet ?? [])].sort(), [...h.caps].sort());
      t.same([...(svc.AmbientCapabilities ?? [])].sort(), [...h.caps].sort());
      t.same(svc.SecureBits, ['noroot-locked']);
    }
    for (const cap of ['CAP_SETUID', 'CAP_SETGID', 'CAP_DAC_READ_SEARCH', 'CAP_SYS_TIME', 'CAP_SYS_ADMIN']) {
      t.notOk((svc.CapabilityBoundingSet ?? []).includes(cap), `no ${cap}`);
    }
    t.same([...(svc.RestrictAddressFamilies ?? [])].sort(), [...h.families].sort());
    t.ok((svc.SystemCallFilter ?? []).includes('@system-service'));
    t.ok((svc.SystemCallFilter ?? []).includes('~@privileged'), 'no privileged system calls');
    for (const [key, value] of Object.entries({ ...COMMON, ...h.pinned })) t.same(svc[key], value, key);
    t.same(svc.ReadWritePaths, undefined, 'writes nothing but its runtime directory');
  });
}

t.test('each helper is restarted by a .path unit watching the file onionboxd writes', async (t) => {
  for (const name of ['dnsmasq', 'hostapd']) {
    const unit = parseUnit(readFileSync(unitPath(`onionbox-${name}.path`), 'utf8'));
    t.same(
      unit.Path?.PathChanged,
      [`/var/lib/onionbox/${name}.conf`],
      `${name}: the file onionboxd renames in`,
    );
    t.same(unit.Path?.Unit, [`onionbox-restart@${name}.service`]);
    t.same(unit.Install?.WantedBy, ['paths.target']);
    const svc = parseUnit(readFileSync(unitPath(`onionbox-${name}.service`), 'utf8'));
    t.same(svc.Unit?.PartOf, ['onionboxd.service'], `${name}: stops and restarts with onionboxd`);
    t.notOk(
      (svc.Unit?.After ?? []).includes('onionboxd.service'),
      `${name}: not ordered after onionboxd, which waits for it before it is ready`,
    );
    t.same(svc.Unit?.Requires, ['onionbox-lockdown.service'], `${name}: never before the boot lockdown`);
    t.same(svc.Unit?.ConditionPathExists, [`/var/lib/onionbox/${name}.conf`]);
    t.same(svc.Install, undefined, `${name}: started only for a configuration, never enabled on its own`);
  }
});
