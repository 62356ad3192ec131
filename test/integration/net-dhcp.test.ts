/**
 * Real dnsmasq in a box namespace, run as onionbox-dnsmasq.service says (its user onionbox-dhcp, its
 * three capabilities, its configuration as a credential; scripts/sim/helper-units.ts plays systemd's
 * part, the .path trigger included), configured by the LanDhcp service, hands a lease to a LAN device
 * namespace through a veth: address in the pool, the box as router and (twice) as DNS server, the lease
 * in the file the page reads; a crash is the unit's to restart; bad settings and a config dnsmasq refuses
 * change nothing; a new config restarts it.
 */
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { LanDhcp } from '../../firmware/net/lan-dhcp.js';
import { capEff, HelperUnit, uidOf, userName } from '../../scripts/sim/helper-units.js';
import { alive, until } from '../helpers/child.js';
import { dhcpLease } from '../helpers/dhcp-client.js';
import { addAddr, linkUp, makeNetns, makeVeth, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const skip = rootSkipReason(['ip', 'dnsmasq', 'dhclient', 'setpriv']);

t.test('LAN DHCP with real dnsmasq', { skip }, async (t) => {
  const dir = tmpDir(t);
  chmodSync(dir, 0o711);
  const box = await makeNetns(t, 'dhcpbox');
  // LanDhcp runs here, on the host (it only writes the config); dnsmasq's unit runs in the box namespace
  const unit = new HelperUnit({
    name: 'dnsmasq',
    netns: box,
    pathMap: { '/var/lib/onionbox': dir, '/run': join(dir, 'run') },
    logFile: join(dir, 'dnsmasq.log'),
  });
  unit.start();
  t.teardown(() => unit.stop());
  const dev = await makeVeth_(t, box);
  const runDir = join(dir, 'run/onionbox-dhcp');
  const settings = {
    interface: 'lan0',
    lanAddr: '10.42.0.1/24',
    leaseFile: `${runDir}/dnsmasq.leases`,
    pidFile: `${runDir}/dnsmasq.pid`,
    leaseSeconds: 120,
  };
  const lan = new LanDhcp({ settings, confPath: `${dir}/dnsmasq.conf`, startTimeoutMs: 5000 });
  t.equal(lan.status().pid, null, 'the constructor started nothing');
  t.teardown(() => lan.stop());
  await lan.start();
  const pid = lan.status().pid ?? 0;
  t.ok(pid > 0 && alive(pid), 'dnsmasq runs');
  t.equal(pid, unit.pid(), "the unit's process");
  t.equal(userName(uidOf(pid) ?? -1), 'onionbox-dhcp', 'as its own user');
  // CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13): nothing else
  t.equal(capEff(pid), '0000000000003400', 'only NET_BIND_SERVICE, NET_ADMIN and NET_RAW');
  t.match(readFileSync(`${dir}/dnsmasq.conf`, 'utf8'), /^port=0$/m);
  t.equal(readFileSync(`${dir}/dnsmasq.conf.good`, 'utf8'), readFileSync(`${dir}/dnsmasq.conf`, 'utf8'));

  const lease = await dhcpLease(dev.ns, 'dev0', tmpDir(t));
  t.teardown(() => lease.stop());
  const ip = lease.vars.new_ip_address ?? '';
  t.match(
    ip,
    /^10\.42\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$/,
    `address in the pool: ${ip}`,
  );
  t.equal(lease.vars.new_routers, '10.42.0.1', 'router: the box');
  t.equal(lease.vars.new_domain_name_servers, '10.42.0.1 10.42.0.1', 'DNS: the box, advertised twice');
  t.equal(lease.vars.new_subnet_mask, '255.255.255.0');
  t.equal(lease.vars.new_dhcp_lease_time, '120');
  t.match(
    await nsRun(dev.ns, 'ip', ['-4', 'addr', 'show', 'dev0']),
    new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`),
  );
  await until(() => readFileSync(`${runDir}/dnsmasq.leases`, 'utf8').includes(ip));
  const leases = await lan.leases();
  t.equal(leases.length, 1);
  t.equal(leases[0]?.address, ip);
  t.equal(leases[0]?.hostname, 'lan-device');
  await nsRun(dev.ns, 'ping', ['-c', '1', '-W', '2', '10.42.0.1']);
  t.pass('the device reaches the box at its LAN address');
  await lease.stop();

  // a crash: the unit's Restart=always, still serving
  process.kill(pid, 'SIGKILL');
  await until(() => unit.pid() !== null && unit.pid() !== pid, 15_000);
  const again = await dhcpLease(dev.ns, 'dev0', tmpDir(t));
  t.teardown(() => again.stop());
  t.equal(again.vars.new_ip_address, ip, 'the restarted dnsmasq serves (same address from its lease file)');
  await again.stop();

  // bad settings: nothing changes
  const before = readFileSync(`${dir}/dnsmasq.conf`, 'utf8');
  const running = unit.pid();
  const bad = await lan.update({ ...settings, lanAddr: '172.16.0.1/24' }).catch((e: unknown) => e);
  t.ok(isObxError(bad, 'NET_VALUE_INVALID'), 'tor virtual network refused');
  t.equal(readFileSync(`${dir}/dnsmasq.conf`, 'utf8'), before);
  t.equal(unit.pid(), running, 'same dnsmasq still running');

  // a config dnsmasq itself refuses (here: a dnsmasq that refuses everything): nothing changes
  const refusing = new LanDhcp({ settings, confPath: `${dir}/other.conf`, dnsmasq: '/bin/false' });
  const r = await refusing.start().catch((e: unknown) => e);
  t.ok(isObxError(r, 'NET_DHCP_CONFIG_REJECTED'), 'dnsmasq --test refusal');
  t.throws(() => readFileSync(`${dir}/other.conf`), 'the live file was never written');

  // a config that passes --test but does not run (no such interface): the last good one is back, running
  const late = await lan.update({ ...settings, interface: 'nosuch0' }).catch((e: unknown) => e);
  t.ok(isObxError(late, 'NET_DHCP_FAILED'), 'the restart with it failed');
  t.match((late as Error).message, /journalctl -u onionbox-dnsmasq/);
  t.equal(readFileSync(`${dir}/dnsmasq.conf`, 'utf8'), before, 'the last good config is back');
  await until(() => unit.pid() !== null && unit.pid() !== running, 15_000);
  t.equal(lan.status().interface, 'lan0');
  const back = await dhcpLease(dev.ns, 'dev0', tmpDir(t));
  t.teardown(() => back.stop());
  t.equal(back.vars.new_ip_address, ip, 'and serving again');
  await back.stop();

  // a good update: new config, new process
  await lan.update({ ...settings, leaseSeconds: 600 });
  t.match(readFileSync(`${dir}/dnsmasq.conf`, 'utf8'), /,600$/m);
  t.not(lan.status().pid, running);

  t.equal(lan.status().pid, unit.pid(), 'the restarted one');
  const last = lan.status().pid ?? 0;
  await lan.stop();
  t.ok(alive(last), "stop ends nothing: dnsmasq's unit stops with onionboxd's (PartOf=)");
  await unit.stop();
  t.notOk(alive(last));
});

async function makeVeth_(t: Tap, box: string): Promise<{ ns: string }> {
  const ns = await makeNetns(t, 'dhcpdev');
  await makeVeth(box, 'lan0', ns, 'dev0');
  await addAddr(box, 'lan0', '10.42.0.1/24');
  await linkUp(box, 'lan0');
  await linkUp(ns, 'dev0');
  return { ns };
}
type Tap = Parameters<typeof makeNetns>[0];
