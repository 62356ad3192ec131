/**
 * onionboxd's systemd unit (issue 13): its own user, only the capabilities it uses, and an exposure
 * score from `systemd-analyze security --offline=true` of at most 3.0 (it was 9.7 running as root with
 * every capability). Runs wherever systemd is installed (scripts/setup installs it).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseUnit } from '../../scripts/sim/unit-file.js';

const UNIT = fileURLToPath(new URL('../../firmware/system/systemd/onionboxd.service', import.meta.url));
/** systemd-analyze's --threshold is the exposure times ten. */
const THRESHOLD = 30;

export const ONIONBOXD_CAPS = [
  'CAP_NET_ADMIN',
  'CAP_NET_BIND_SERVICE',
  // dnsmasq's ping check (a raw ICMP socket, which nftables' output hook still sees); hostapd's EAPOL
  'CAP_NET_RAW',
  'CAP_SYS_TIME',
  'CAP_SETUID',
  'CAP_SETGID',
  'CAP_DAC_READ_SEARCH',
];

function analyze(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

t.test('systemd-analyze security --offline scores the unit at most 3.0', async (t) => {
  const r = await analyze(['security', '--offline=true', `--threshold=${THRESHOLD}`, '--no-pager', UNIT]);
  const score = Number(/Overall exposure level for onionboxd\.service: ([0-9.]+)/.exec(r.out)?.[1]);
  t.ok(score <= THRESHOLD / 10, `exposure ${score}`);
  t.equal(r.code, 0, 'systemd-analyze passes the threshold');
});

t.test('own user, only the capabilities it uses, no packet sockets, lockdown after stop', async (t) => {
  const unit = parseUnit(readFileSync(UNIT, 'utf8'));
  const svc = unit.Service ?? {};
  t.same(svc.User, ['onionbox']);
  t.same(svc.Group, ['onionbox']);
  t.same([...(svc.CapabilityBoundingSet ?? [])].sort(), [...ONIONBOXD_CAPS].sort());
  t.same([...(svc.AmbientCapabilities ?? [])].sort(), [...ONIONBOXD_CAPS].sort());
  t.same(svc.NoNewPrivileges, ['yes']);
  t.same(svc.ProtectSystem, ['strict']);
  t.same(svc.PrivateTmp, ['yes']);
  t.same([...(svc.RestrictAddressFamilies ?? [])].sort(), ['AF_INET', 'AF_NETLINK', 'AF_UNIX']);
  t.ok((svc.SystemCallFilter ?? []).includes('@system-service'));
  t.same(svc.ExecStopPost, ['+/usr/sbin/nft', '-f', '/etc/onionbox/lockdown.nft']);
  for (const p of ['/var/lib/onionbox', '/var/lib/tor', '/run/onionbox']) {
    t.ok((svc.ReadWritePaths ?? []).includes(p), `writable: ${p}`);
  }
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
