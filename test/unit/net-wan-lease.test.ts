/** The WAN's DHCP lease as nmcli reports it (firmware/net/wan-lease.ts): the address and its prefix. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  leaseCidr,
  maskToPrefix,
  parseDhcp4,
  renderResolvConf,
  type WanLease,
  WanLeaseWatcher,
} from '../../firmware/net/wan-lease.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('WAN lease: the subnet mask becomes the prefix of the leased subnet', async (t) => {
  const lease = parseDhcp4(
    [
      'DHCP4.OPTION[1]:dhcp_server_identifier = 198.18.0.1',
      'DHCP4.OPTION[2]:ip_address = 198.18.0.2',
      'DHCP4.OPTION[3]:subnet_mask = 255.255.255.0',
    ].join('\n'),
  );
  t.same(lease, { serverId: '198.18.0.1', address: '198.18.0.2', prefix: 24, resolvers: [] });
  t.equal(leaseCidr(lease), '198.18.0.2/24');
  t.equal(leaseCidr({ ...lease, prefix: null }), '198.18.0.2/32', 'unknown mask: the address alone');
  t.equal(leaseCidr({ ...lease, address: null }), null);
  t.equal(maskToPrefix('255.255.0.0'), 16);
  t.equal(maskToPrefix('255.255.255.255'), 32);
  t.equal(maskToPrefix('0.0.0.0'), 0);
  t.equal(maskToPrefix('255.0.255.0'), null, 'not contiguous');
  t.equal(maskToPrefix('255.255.255'), null);
});

t.test("WAN lease: the DHCP server's DNS servers, as NetworkManager reports them", async (t) => {
  const lease = parseDhcp4(
    [
      'DHCP4.OPTION[1]:dhcp_server_identifier = 198.18.0.1',
      'DHCP4.OPTION[2]:domain_name_servers = 198.18.0.53 192.0.2.53 198.18.0.53 not-an-ip',
      'DHCP4.OPTION[3]:ip_address = 198.18.0.2',
      'DHCP4.OPTION[4]:subnet_mask = 255.255.255.0',
    ].join('\n'),
  );
  t.same(lease.resolvers, ['198.18.0.53', '192.0.2.53'], 'each once, addresses only');
  t.equal(
    renderResolvConf(lease.resolvers ?? []),
    [
      '# Rendered by onionboxd from the WAN lease: for tor and its transports only.',
      'nameserver 198.18.0.53',
      'nameserver 192.0.2.53',
      'options edns0 timeout:2 attempts:2',
      '',
    ].join('\n'),
  );
});

t.test(
  "the simulator's nmcli reports the lease its DHCP hook recorded, DNS servers too; a new resolver alone is a change",
  async (t) => {
    const dir = tmpDir(t);
    const lease = join(dir, 'wan-lease.env');
    const nmcliBin = fileURLToPath(new URL('../../scripts/sim/bin/nmcli', import.meta.url));
    // `lo` is not eth0: the fake reads the lease beside eth0's (wan-lease.lo.env), as for a second WAN port
    const loLease = join(dir, 'wan-lease.lo.env');
    const record = (dns: string) =>
      writeFileSync(
        loLease,
        [
          'ip_address=198.18.0.2',
          'subnet_mask=255.255.255.0',
          'routers=198.18.0.1',
          'dhcp_server_identifier=198.18.0.1',
          'dhcp_lease_time=120',
          `domain_name_servers=${dns}`,
          'reason=BOUND',
          'at=1',
          '',
        ].join('\n'),
      );
    record('198.18.0.53');
    const before = process.env.OBX_SIM_WAN_LEASE;
    process.env.OBX_SIM_WAN_LEASE = lease;
    t.teardown(() => {
      if (before === undefined) delete process.env.OBX_SIM_WAN_LEASE;
      else process.env.OBX_SIM_WAN_LEASE = before;
    });
    const seen: WanLease[] = [];
    const watcher = new WanLeaseWatcher({
      wanIf: 'lo',
      nmcli: nmcliBin,
      intervalMs: 3_600_000,
      onChange: (l) => {
        seen.push(l);
      },
      log: { warn: () => undefined, info: () => undefined },
    });
    t.teardown(() => watcher.stop());
    await watcher.start();
    t.same(seen, [{ serverId: '198.18.0.1', address: '198.18.0.2', prefix: 24, resolvers: ['198.18.0.53'] }]);
    await watcher.poll();
    t.equal(seen.length, 1, 'the same lease again: no change');
    record('198.18.0.53 198.18.0.54');
    await watcher.poll();
    t.same(seen[1]?.resolvers, ['198.18.0.53', '198.18.0.54'], 'another resolver: a change');
    record('');
    await watcher.poll();
    t.same(seen[2]?.resolvers, [], 'none offered: none');
  },
);
