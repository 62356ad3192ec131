/**
 * The emulated boot test's pure parts: the self-test's serial-console lines and the WAN capture
 * (a pcap written by hand here, frame by frame, the way QEMU's filter-dump writes one).
 */
import t from 'tap';
import { parsePcap, parseSerial, wanLeaks, wanLeaseAddress } from '../../images/boot-report.js';
import { ImageRecipeError } from '../../images/render.js';

t.test('serial console: self-test lines among kernel and systemd noise', async (t) => {
  const text = [
    '[    1.234567] Run /init as init process',
    '[  OK  ] Started onionbox-lockdown.service',
    'OBX-SELFTEST lockdown-before-links PASS t=12.50 table inet onionbox_boot loaded; interfaces all down: eth0 eth1 lo',
    'OBX-SELFTEST test-setup PASS t=13.01 LAN eth1 10.42.0.1/24\r',
    'OBX-SS tcp   LISTEN 0      511        10.42.0.1:80         0.0.0.0:*    users:(("node",pid=412,fd=21))',
    '[  123.1] some kernel line OBX-SS udp   UNCONN 0 0 10.42.0.1:5353 0.0.0.0:* users:(("tor",pid=5,fd=9))',
    'OBX-SELFTEST onionboxd-user FAIL t=200.7 onionboxd (pid 400) runs as root: not its own user',
    'OBX-SELFTEST DONE t=250.25',
  ].join('\n');
  const r = parseSerial(text);
  t.same(
    r.checks.map((c) => [c.check, c.pass, c.t]),
    [
      ['lockdown-before-links', true, 12.5],
      ['test-setup', true, 13.01],
      ['onionboxd-user', false, 200.7],
    ],
  );
  t.equal(r.checks[1]?.detail, 'LAN eth1 10.42.0.1/24');
  t.equal(r.ss.length, 2);
  t.match(r.ss[1], /^udp/);
  t.ok(r.done);
  t.equal(r.doneAt, 250.25);
  const none = parseSerial('[ 0.0] Booting Linux\n');
  t.same(none, { checks: [], ss: [], done: false, doneAt: undefined });
});

function ipv4Frame(src: number[], dst: number[], protocol: number, sport: number, dport: number): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const iph = Buffer.alloc(20);
  iph[0] = 0x45;
  iph[9] = protocol;
  Buffer.from(src).copy(iph, 12);
  Buffer.from(dst).copy(iph, 16);
  const l4 = Buffer.alloc(8);
  l4.writeUInt16BE(sport, 0);
  l4.writeUInt16BE(dport, 2);
  return Buffer.concat([eth, iph, l4]);
}

function ethFrame(etherType: number): Buffer {
  const b = Buffer.alloc(60);
  b.writeUInt16BE(etherType, 12);
  return b;
}

function pcap(frames: Buffer[], bigEndian = false): Buffer {
  const w32 = (b: Buffer, v: number, at: number) =>
    bigEndian ? b.writeUInt32BE(v, at) : b.writeUInt32LE(v, at);
  const head = Buffer.alloc(24);
  w32(head, 0xa1b2c3d4, 0);
  w32(head, 65535, 16);
  w32(head, 1, 20); // Ethernet
  const parts: Buffer[] = [head];
  for (const f of frames) {
    const rec = Buffer.alloc(16);
    w32(rec, f.length, 8);
    w32(rec, f.length, 12);
    parts.push(rec, f);
  }
  return Buffer.concat(parts);
}

const dhcp = ipv4Frame([0, 0, 0, 0], [255, 255, 255, 255], 17, 68, 67);
const torTcp = ipv4Frame([10, 0, 2, 15], [128, 31, 0, 39], 6, 40000, 9101);

t.test('pcap: frames, IPv4 headers and ports, both byte orders', async (t) => {
  for (const be of [false, true]) {
    const p = parsePcap(pcap([dhcp, torTcp, ethFrame(0x0806), ethFrame(0x86dd)], be));
    t.equal(p.frames, 4);
    t.same(p.ipv4, [
      { src: '0.0.0.0', dst: '255.255.255.255', protocol: 17, srcPort: 68, dstPort: 67 },
      { src: '10.0.2.15', dst: '128.31.0.39', protocol: 6, srcPort: 40000, dstPort: 9101 },
    ]);
    t.same(p.otherEtherTypes, [0x0806, 0x86dd]);
  }
  // a capture cut off mid-frame (QEMU killed) keeps the whole frames before it
  const cut = pcap([dhcp, torTcp]);
  t.equal(parsePcap(cut.subarray(0, cut.length - 5)).frames, 1);
  t.throws(() => parsePcap(Buffer.alloc(10)), ImageRecipeError);
  t.throws(() => parsePcap(Buffer.alloc(24)), /not a pcap/);
  const raw = pcap([]);
  raw.writeUInt32LE(101, 20);
  t.throws(() => parsePcap(raw), /not Ethernet/);
});

t.test(
  'WAN leaks: DHCP and tor TCP pass; LAN sources, the probe target, UDP, ICMP, IPv6 do not',
  async (t) => {
    const o = { lanNet: '10.42.0.0', probeTarget: '198.51.100.7' };
    t.same(wanLeaks(parsePcap(pcap([dhcp, torTcp, ethFrame(0x0806)])), o), []);
    const cases: [Buffer, RegExp][] = [
      [ipv4Frame([10, 42, 0, 50], [198, 51, 100, 7], 6, 5000, 7777), /LAN source/],
      [ipv4Frame([10, 0, 2, 15], [198, 51, 100, 7], 6, 5000, 7777), /probe's target/],
      [ipv4Frame([10, 0, 2, 15], [10, 0, 2, 3], 17, 5000, 53), /UDP other than DHCP/],
      [ipv4Frame([10, 0, 2, 15], [10, 0, 2, 2], 17, 123, 123), /UDP other than DHCP/],
      [ipv4Frame([10, 0, 2, 15], [10, 0, 2, 2], 1, 0, 0), /neither TCP nor DHCP/],
      [ethFrame(0x86dd), /IPv6/],
    ];
    for (const [frame, re] of cases) {
      const leaks = wanLeaks(parsePcap(pcap([dhcp, frame])), o);
      t.equal(leaks.length, 1);
      t.match(leaks[0], re);
    }
  },
);

t.test('the WAN lease address from the wan-lease check; none when it failed', async (t) => {
  const ok = parseSerial('OBX-SELFTEST wan-lease PASS t=205.1 10.0.2.15/24\n');
  t.equal(wanLeaseAddress(ok), '10.0.2.15');
  t.equal(
    wanLeaseAddress(parseSerial('OBX-SELFTEST wan-lease FAIL t=300 no IPv4 address on eth0\n')),
    undefined,
  );
  t.equal(wanLeaseAddress(parseSerial('OBX-SELFTEST wan-lease PASS t=1 10.0.2.15; rm -rf /\n')), undefined);
  t.equal(wanLeaseAddress(parseSerial('')), undefined);
});
