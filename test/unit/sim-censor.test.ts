/**
 * The simulated world's censoring ISP (scripts/sim/censor.ts) and the private network's obfs4 bridge line
 * (scripts/privnet/index.ts, obfs4BridgeLine): pure halves. The censor at work on a real box is
 * test/e2e/sim-censored.test.ts.
 */
import t from 'tap';
import { parseBridgeLine } from '../../firmware/tor/grammar.js';
import { obfs4BridgeLine, type PrivnetRelay } from '../../scripts/privnet/index.js';
import {
  CENSOR_TABLE,
  censoredEndpoints,
  censorRuleset,
  droppedPackets,
  uncensorRuleset,
} from '../../scripts/sim/censor.js';

const relay = (i: number, role: PrivnetRelay['role']): PrivnetRelay => ({
  nickname: `r${i}`,
  role,
  address: `198.18.0.${10 + i}`,
  orPort: 5000 + i,
  dirPort: 7000 + i,
  fingerprint: 'A'.repeat(40),
  pid: 1,
});

t.test('the censor blocks every relay ORPort and DirPort, nothing else', async (t) => {
  const relays = [relay(0, 'authority'), relay(1, 'authority'), relay(3, 'middle'), relay(5, 'exit')];
  const blocked = censoredEndpoints({ relays });
  t.same(
    blocked.map((e) => `${e.address}:${e.port}`),
    [
      '198.18.0.10:5000',
      '198.18.0.10:7000',
      '198.18.0.11:5001',
      '198.18.0.11:7001',
      '198.18.0.13:5003',
      '198.18.0.13:7003',
      '198.18.0.15:5005',
      '198.18.0.15:7005',
    ],
  );
  const text = censorRuleset(blocked);
  t.match(text, `delete table inet ${CENSOR_TABLE}`, 'replaces an earlier censor table');
  t.match(text, 'elements = { 198.18.0.10 . 5000, 198.18.0.10 . 7000, 198.18.0.11 . 5001,');
  t.match(
    text,
    'iifname != "lo" ip daddr . tcp dport @blocked counter name "censored" drop',
    'only what comes from outside (the relays talk over loopback), only TCP',
  );
  t.notMatch(text, /198\.18\.0\.17/, 'the bridge address is not among them');
  t.match(text, /hook prerouting priority raw; policy accept;/, 'everything else passes');
});

t.test('a relay without a DirPort gives only its ORPort; duplicates once', async (t) => {
  const a = { ...relay(0, 'middle'), dirPort: 0 };
  t.same(censoredEndpoints({ relays: [a, a] }), [{ address: '198.18.0.10', port: 5000 }]);
});

t.test('the censor refuses bad input', async (t) => {
  t.throws(() => censorRuleset([]), /nothing to block/);
  t.throws(() => censorRuleset([{ address: '198.18.0.10; flush ruleset', port: 1 }]), /bad address/);
  t.throws(() => censorRuleset([{ address: '198.18.0.10', port: 0 }]), /bad port/);
  t.throws(() => censorRuleset([{ address: '198.18.0.10', port: 70000 }]), /bad port/);
});

t.test('turning the censor off deletes its table only', async (t) => {
  t.equal(uncensorRuleset(), `table inet ${CENSOR_TABLE}\ndelete table inet ${CENSOR_TABLE}\n`);
});

t.test('the dropped counter is read from nft list counter', async (t) => {
  const listing = `table inet ${CENSOR_TABLE} {\n\tcounter censored {\n\t\tpackets 42 bytes 2520\n\t}\n}\n`;
  t.equal(droppedPackets(listing), 42);
  t.throws(() => droppedPackets('table inet x {}'), /no counter/);
});

// lyrebird's pt_state/obfs4_bridgeline.txt as it writes it (the cert is an example's)
const CERT = 'ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw';
const FILE = `# obfs4 torrc client bridge line
#
# This file is an automatically generated bridge line based on
# the current obfs4proxy configuration.  EDITING IT WILL HAVE NO
# EFFECT.
#
# Before distributing this Bridge, edit the placeholder fields
# to contain the actual values:
#  <IP ADDRESS>  - The public IP address of your obfs4 bridge.
#  <PORT>        - The TCP/IP port of your obfs4 bridge.
#  <FINGERPRINT> - The bridge's fingerprint.

Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=${CERT} iat-mode=IAT
`;
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const bridge = { address: '198.18.0.17', port: 5011, fingerprint: FP };

t.test(
  "the bridge line: lyrebird's cert and iat-mode, the bridge's address, port and fingerprint",
  async (t) => {
    for (const iat of ['0', '1', '2']) {
      const line = obfs4BridgeLine(FILE.replace('IAT', iat), bridge);
      t.equal(line, `obfs4 198.18.0.17:5011 ${FP} cert=${CERT} iat-mode=${iat}`);
      const parsed = parseBridgeLine(line ?? '');
      t.equal(parsed.transport, 'obfs4', "the box's grammar accepts it");
    }
  },
);

t.test('no line while lyrebird has not written a complete one', async (t) => {
  t.equal(obfs4BridgeLine('', bridge), null);
  t.equal(obfs4BridgeLine(FILE.replace('IAT', '0').replace(CERT, CERT.slice(0, 30)), bridge), null);
  t.equal(obfs4BridgeLine(FILE.replace('IAT', '3'), bridge), null);
});

t.test('bad bridge parameters are refused', async (t) => {
  const text = FILE.replace('IAT', '0');
  t.throws(() => obfs4BridgeLine(text, { ...bridge, address: '198.18.0.300' }), /bad bridge address/);
  t.throws(() => obfs4BridgeLine(text, { ...bridge, port: 0 }), /bad bridge port/);
  t.throws(() => obfs4BridgeLine(text, { ...bridge, fingerprint: 'x' }), /bad bridge fingerprint/);
});
