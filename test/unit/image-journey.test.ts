/**
 * The journey inside the emulated image: what the image's WAN NIC may carry (images/journey-report.ts)
 * and QEMU's arguments for the external box (scripts/sim/external-box.ts).
 */
import t from 'tap';
import type { Ipv4Frame, PcapSummary } from '../../images/boot-report.js';
import { formatStepTimes, wanNotTorOrDhcp, wanSummary } from '../../images/journey-report.js';
import { EXTERNAL_TAPS, externalBoxQemuArgs } from '../../scripts/sim/external-box.js';

const relays = [
  { address: '198.18.0.10', port: 5000 },
  { address: '198.18.0.15', port: 5005 },
];
const frame = (f: Partial<Ipv4Frame>): Ipv4Frame => ({
  src: '198.18.0.2',
  dst: '198.18.0.10',
  protocol: 6,
  srcPort: 40000,
  dstPort: 5000,
  ...f,
});
const pcap = (ipv4: Ipv4Frame[], other: number[] = []): PcapSummary => ({
  frames: ipv4.length + other.length,
  ipv4,
  otherEtherTypes: other,
});

t.test('ARP, DHCP and TCP to a relay ORPort pass', async (t) => {
  const p = pcap(
    [
      frame({ src: '0.0.0.0', dst: '255.255.255.255', protocol: 17, srcPort: 68, dstPort: 67 }),
      frame({}),
      frame({ dst: '198.18.0.15', dstPort: 5005 }),
    ],
    [0x0806, 0x0806],
  );
  t.same(wanNotTorOrDhcp(p, relays), []);
  t.equal(wanSummary(p), '5 frames: 2 ARP, 1 DHCP, 2 TCP');
});

t.test('anything else is reported', async (t) => {
  const bad = wanNotTorOrDhcp(
    pcap(
      [
        frame({ dstPort: 80 }), // a relay's address, not its ORPort
        frame({ dst: '198.18.0.16', dstPort: 80 }), // the web server directly
        frame({ protocol: 17, srcPort: 5353, dstPort: 53, dst: '198.18.0.53' }), // DNS
        frame({ protocol: 17, srcPort: 123, dstPort: 123 }), // NTP
        frame({ protocol: 1, srcPort: undefined, dstPort: undefined }), // ICMP
        frame({ src: '10.42.0.50', dst: '198.51.100.7', dstPort: 7777 }), // from the LAN
      ],
      [0x86dd, 0x88cc],
    ),
    relays,
  );
  t.equal(bad.length, 8);
  t.match(bad[0], /198\.18\.0\.10:80 proto 6/);
  t.match(bad[6], /EtherType 0x86dd/);
  t.equal(
    wanNotTorOrDhcp(pcap(Array.from({ length: 30 }, () => frame({ dstPort: 1 }))), relays, 10).length,
    10,
  );
});

t.test('step times', async (t) => {
  t.equal(
    formatStepTimes({ lockdown: 182.08, page: 400, torRouting: 520.5 }),
    'lockdown 182.1 s (box) -> page 400.0 s (host) -> tor routing 520.5 s (box) -> first LAN fetch never',
  );
});

t.test("QEMU's NICs on the closet's taps, the test network as fw_cfg", async (t) => {
  const a = externalBoxQemuArgs({ testNetworkFile: '/tmp/w/fw-cfg-test-network.json' });
  t.ok(a.includes(`tap,id=wan,ifname=${EXTERNAL_TAPS.wan},script=no,downscript=no`));
  t.ok(a.includes(`tap,id=lan,ifname=${EXTERNAL_TAPS.lan},script=no,downscript=no`));
  t.equal(a[a.indexOf('-fw_cfg') + 1], 'name=opt/onionbox/test-network,file=/tmp/w/fw-cfg-test-network.json');
  t.notOk(externalBoxQemuArgs({}).includes('-fw_cfg'), 'no test network: no fw_cfg entry');
  t.throws(() => externalBoxQemuArgs({ testNetworkFile: '/tmp/a,b' }), /not usable/);
  t.throws(() => externalBoxQemuArgs({ testNetworkFile: 'relative.json' }), /not usable/);
});
