/**
 * onionboxd's and tor's systemd units (issues 13 and 23): their own users, only the capabilities each
 * uses, and exposure scores from `systemd-analyze security --offline=true`: onionboxd at most 2.5 (it was
 * 9.7 running as root with every capability), tor's unit at most 1.5. Runs wherever systemd is installed (scripts/setup installs it).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseUnit } from '../../scripts/sim/unit-file.js';

const UNIT = fileURLToPath(new URL('../../firmware/system/systemd/onionboxd.service', import.meta.url));
const TOR_UNIT = fileURLToPath(
  new URL('../../firmware/system/systemd/onionbox-tor.service', import.meta.url),
);
/** systemd-analyze's --threshold is the exposure times ten. */
const THRESHOLD = 30;

export const ONIONBOXD_CAPS = [
  'CAP_NET_ADMIN',
  'CAP_NET_BIND_SERVICE',
  // dnsmasq's ping check (a raw ICMP socket, which nftables' output hook still sees); hostapd's EAPOL
  'CAP_NET_RAW',
  'CAP_SYS_TIME',
];

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
  t.same(svc.SupplementaryGroups, ['debian-tor'], "tor's control socket and cookie through its group");
  t.same(svc.IPAddressDeny, ['any'], 'an egress wall that does not depend on nftables');
  t.same(
    svc.IPAddressAllow,
    ['localhost', '10.0.0.0/8', '192.168.0.0/16', '0.0.0.0', '255.255.255.255'],
    "loopback, the LAN ranges the box's LAN may use, and DHCP's addresses only",
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
