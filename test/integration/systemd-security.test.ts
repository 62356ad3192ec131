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
  t.same(svc.NotifyAccess, ['main'], 'only the main process is heard (no child keeps the watchdog fed)');
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
