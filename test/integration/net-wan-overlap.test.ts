/**
 * A WAN lease whose subnet overlaps the LAN range closes the box, on the real path: the WAN lease
 * watcher (firmware/net/wan-lease.ts) asking the simulator's nmcli for the lease of a WAN interface in a
 * namespace, BoxController.wanLease() as the daemon calls it on every lease, and the real Firewall (nft)
 * in that namespace. tor's readiness comes from the tests' FakeTor on the bus (the e2e tests run real tor).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SimBoard } from '../../board/sim/board.js';
import { BoxController } from '../../firmware/box/controller.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { EventBus } from '../../firmware/events.js';
import { Firewall, firewallForBox } from '../../firmware/firewall/apply.js';
import type { FirewallParams } from '../../firmware/firewall/params.js';
import { leaseCidr, WanLeaseWatcher } from '../../firmware/net/wan-lease.js';
import { unchangedClock } from '../helpers/clock.js';
import { FakeTor, TOR_READY } from '../helpers/fake-tor.js';
import { addAddr, makeNetns, makeVeth, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const skip = rootSkipReason(['ip', 'nft']);
const NMCLI = fileURLToPath(new URL('../helpers/bin/sim-nmcli-in-netns', import.meta.url));
function lease(file: string, ip: string, mask: string): void {
  writeFileSync(
    file,
    `ip_address=${ip}\nsubnet_mask=${mask}\nrouters=\ndhcp_server_identifier=${ip.replace(/\.\d+$/, '.1')}\n`,
  );
}

t.test('an overlapping WAN lease closes the box until a lease no longer overlaps', { skip }, async (t) => {
  const dir = tmpDir(t);
  const box = await makeNetns(t, 'ovl');
  await makeVeth(box, 'eth0', box, 'wanpeer0');
  await makeVeth(box, 'lan0', box, 'lanpeer0');
  await addAddr(box, 'lan0', '10.42.0.1/24');
  const leaseFile = join(dir, 'wan-lease.env');
  process.env.OBX_NMCLI_NETNS = box;
  process.env.OBX_SIM_WAN_LEASE = leaseFile;

  const fw = new Firewall({ netns: box });
  await fw.start();
  t.teardown(() => fw.stop());
  let dhcpServers: string[] = [];
  const params = (): FirewallParams => ({
    lanIf: 'lan0',
    wanIf: 'eth0',
    lanAddr: '10.42.0.1',
    lanPrefix: 24,
    torUid: 65534,
    transPort: 9040,
    dnsPort: 5353,
    webPort: 80,
    relays: [],
    dhcpServers,
  });
  const config = new ConfigStore(dir);
  await config.load();
  const bus = new EventBus();
  const tor = new FakeTor(bus, { status: TOR_READY });
  const controller = new BoxController({
    config,
    bus,
    board: new SimBoard({ initialSwitch: 'released' }),
    tor,
    firewall: firewallForBox(fw, params),
    log: {
      info: () => undefined,
      warn: () => undefined,
      error: (o, m) => t.comment(`${m} ${JSON.stringify(o)}`),
    },
    simulate: true,
    clock: unchangedClock,
  });
  t.teardown(() => controller.stop());
  await controller.start();
  await controller.settled();
  t.equal(fw.current(), 'routing', 'tor ready, no lease yet: routing');

  // what the daemon does on every lease (firmware/daemon.ts #wanLeaseChanged); eth0: the simulator's
  // nmcli answers it from $OBX_SIM_WAN_LEASE
  const watcher = new WanLeaseWatcher({
    wanIf: 'eth0',
    nmcli: NMCLI,
    intervalMs: 60_000,
    log: { info: () => undefined, warn: (o, m) => t.comment(`${m} ${JSON.stringify(o)}`) },
    onChange: async (l) => {
      dhcpServers = l.serverId ? [l.serverId] : [];
      controller.wanLease(leaseCidr(l));
      await controller.reapply();
    },
  });
  t.teardown(() => watcher.stop());
  const table = () => nsRun(box, 'nft', ['list', 'table', 'inet', 'onionbox']);

  lease(leaseFile, '198.18.0.2', '255.255.255.0');
  await watcher.start();
  await controller.settled();
  t.same(watcher.lease, { serverId: '198.18.0.1', address: '198.18.0.2', prefix: 24, resolvers: [] });
  t.equal(fw.current(), 'routing', 'a WAN subnet apart from the LAN: routing');
  t.match(await table(), /198\.18\.0\.1/, "the lease's server is the DHCP exception");

  // the modem now leases 10.42.0.0/16: it contains the box's LAN
  lease(leaseFile, '10.42.9.9', '255.255.0.0');
  await watcher.poll();
  await controller.settled();
  t.equal(fw.current(), 'lockdown', 'closed');
  t.notMatch(await table(), /dnat/, 'the kernel redirects nothing');
  const s = controller.status();
  t.equal(s.state, 'error');
  t.match(
    s.explanation,
    /The modem gave the box 10\.42\.9\.9\/16, which overlaps the box's own network 10\.42\.0\.1\/24/,
  );
  t.match(
    await controller.diagnostics(),
    /wan: -> error|error \(firewall lockdown\)/,
    'and the box log says so',
  );

  // tor being ready again changes nothing while the lease overlaps
  tor.report(TOR_READY);
  await controller.settled();
  t.equal(fw.current(), 'lockdown');

  // a lease that no longer overlaps: routing again
  lease(leaseFile, '192.168.1.20', '255.255.255.0');
  await watcher.poll();
  await controller.settled();
  t.equal(fw.current(), 'routing', 'the box routes again');
  t.equal(controller.status().state, 'routing');
  t.match(await table(), /dnat ip to 10\.42\.0\.1:9040/);
});
