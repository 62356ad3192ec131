/**
 * Real dnsmasq (the LanDhcp service) in a box namespace hands a lease to a LAN device namespace through
 * a veth: address in the pool, the box as router and (twice) as DNS server, the lease in the file the
 * page reads; a crash is restarted; bad settings and a config dnsmasq refuses change nothing; stop ends
 * the PID it started.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { LanDhcp } from '../../firmware/net/lan-dhcp.js';
import { alive, until } from '../helpers/child.js';
import { dhcpLease } from '../helpers/dhcp-client.js';
import { addAddr, linkUp, makeNetns, makeVeth, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const DNSMASQ_IN_NETNS = fileURLToPath(new URL('../helpers/bin/dnsmasq-in-netns', import.meta.url));
const skip = rootSkipReason(['ip', 'dnsmasq', 'dhclient']);

t.test('LAN DHCP with real dnsmasq', { skip }, async (t) => {
  const dir = tmpDir(t);
  const box = await makeNetns(t, 'dhcpbox');
  // LanDhcp runs here, on the host; its dnsmasq runs in the box namespace (the fixture's `ip netns exec`)
  process.env.OBX_DNSMASQ_NETNS = box;
  const dev = await makeVeth_(t, box);
  const settings = {
    interface: 'lan0',
    lanAddr: '10.42.0.1/24',
    leaseFile: `${dir}/dnsmasq.leases`,
    leaseSeconds: 120,
  };
  const lan = new LanDhcp({
    settings,
    confPath: `${dir}/dnsmasq.conf`,
    dnsmasq: DNSMASQ_IN_NETNS,
    backoffMs: { initial: 50, max: 200 },
  });
  t.equal(lan.status().pid, null, 'the constructor started nothing');
  t.teardown(() => lan.stop());
  await lan.start();
  const pid = lan.status().pid ?? 0;
  t.ok(pid > 0 && alive(pid), 'dnsmasq runs');
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
  await until(() => readFileSync(`${dir}/dnsmasq.leases`, 'utf8').includes(ip));
  const leases = await lan.leases();
  t.equal(leases.length, 1);
  t.equal(leases[0]?.address, ip);
  t.equal(leases[0]?.hostname, 'lan-device');
  await nsRun(dev.ns, 'ping', ['-c', '1', '-W', '2', '10.42.0.1']);
  t.pass('the device reaches the box at its LAN address');
  await lease.stop();

  // a crash: supervised restart, still serving
  process.kill(pid, 'SIGKILL');
  await until(() => lan.status().running && lan.status().pid !== pid);
  t.equal(lan.status().restarts, 1, 'restarted once');
  const again = await dhcpLease(dev.ns, 'dev0', tmpDir(t));
  t.teardown(() => again.stop());
  t.equal(again.vars.new_ip_address, ip, 'the restarted dnsmasq serves (same address from its lease file)');
  await again.stop();

  // bad settings: nothing changes
  const before = readFileSync(`${dir}/dnsmasq.conf`, 'utf8');
  const running = lan.status().pid;
  const bad = await lan.update({ ...settings, lanAddr: '172.16.0.1/24' }).catch((e: unknown) => e);
  t.ok(isObxError(bad, 'NET_VALUE_INVALID'), 'tor virtual network refused');
  t.equal(readFileSync(`${dir}/dnsmasq.conf`, 'utf8'), before);
  t.equal(lan.status().pid, running, 'same dnsmasq still running');

  // a config dnsmasq itself refuses (here: a dnsmasq that refuses everything): nothing changes
  const refusing = new LanDhcp({ settings, confPath: `${dir}/other.conf`, dnsmasq: '/bin/false' });
  const r = await refusing.start().catch((e: unknown) => e);
  t.ok(isObxError(r, 'NET_DHCP_CONFIG_REJECTED'), 'dnsmasq --test refusal');
  t.throws(() => readFileSync(`${dir}/other.conf`), 'the live file was never written');

  // a good update: new config, new process
  await lan.update({ ...settings, leaseSeconds: 600 });
  t.match(readFileSync(`${dir}/dnsmasq.conf`, 'utf8'), /,600$/m);
  t.not(lan.status().pid, running);

  const last = lan.status().pid ?? 0;
  await lan.stop();
  t.notOk(alive(last), 'stop ended the PID it started');
  t.equal(lan.status().running, false);
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
