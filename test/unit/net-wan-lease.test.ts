/** The WAN's DHCP lease as nmcli reports it (firmware/net/wan-lease.ts): the address and its prefix. */
import t from 'tap';
import { leaseCidr, maskToPrefix, parseDhcp4 } from '../../firmware/net/wan-lease.js';

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
