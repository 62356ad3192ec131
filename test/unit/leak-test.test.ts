/**
 * The leak self-test's verdicts (firmware/leak-test/judge.ts), its sequence (leak-test.ts) on stand-in
 * probes, the DNS query it sends, and the page's and CLI's presentation of a report.
 */
import t from 'tap';
import { formatLeakReport } from '../../firmware/cli/leak-test.js';
import {
  judgeFirewall,
  judgeForwarding,
  judgeIpv6,
  judgeProbe,
  judgeTorExit,
  type ProbeResult,
  parseDefaultGateways,
  summarize,
} from '../../firmware/leak-test/judge.js';
import { type LeakProbes, type LeakTestDeps, LeakTester } from '../../firmware/leak-test/leak-test.js';
import { dnsQuery } from '../../firmware/leak-test/probes.js';
import { describeLeakReport } from '../../web/lib/leak-test.js';

t.test('a direct probe passes only when the box itself stopped it', async (t) => {
  const cases: [ProbeResult, 'pass' | 'fail' | 'not-run'][] = [
    [{ kind: 'error', code: 'EPERM' }, 'pass'],
    [{ kind: 'silent', tracked: false }, 'pass'],
    [{ kind: 'connected' }, 'fail'],
    [{ kind: 'answered' }, 'fail'],
    [{ kind: 'error', code: 'ECONNREFUSED' }, 'fail'], // the peer's RST: the SYN left
    [{ kind: 'error', code: 'EHOSTUNREACH' }, 'fail'], // no neighbour: past the output hook
    [{ kind: 'error', code: 'ETIMEDOUT' }, 'fail'],
    [{ kind: 'silent', tracked: true }, 'fail'], // conntrack confirmed it: it left
    [{ kind: 'error', code: 'ENETUNREACH' }, 'not-run'], // no route: decided before the hook
    [{ kind: 'silent', tracked: null }, 'not-run'],
  ];
  for (const [result, want] of cases) {
    for (const id of ['clearnet-tcp', 'clearnet-udp'] as const) {
      const c = judgeProbe(id, '192.168.1.1', result);
      t.equal(c.outcome, want, `${id} ${JSON.stringify(result)}`);
      t.equal(c.id, id);
      t.match(c.detail, /192\.168\.1\.1/);
    }
  }
  t.equal(judgeProbe('clearnet-tcp', null, null).outcome, 'not-run', 'no target known');
});

t.test('sysctls', async (t) => {
  const good = { ipForward: '0', allForwarding: '0', ipv6Disabled: '1', ipv6Present: true };
  t.equal(judgeForwarding(good).outcome, 'pass');
  t.equal(judgeIpv6(good).outcome, 'pass');
  t.equal(judgeForwarding({ ...good, ipForward: '1' }).outcome, 'fail');
  t.match(judgeForwarding({ ...good, allForwarding: null }).detail, /unreadable/);
  t.equal(judgeForwarding({ ...good, allForwarding: null }).outcome, 'fail');
  t.equal(judgeIpv6({ ...good, ipv6Disabled: '0' }).outcome, 'fail');
  t.equal(judgeIpv6({ ...good, ipv6Disabled: null, ipv6Present: false }).outcome, 'pass', 'no IPv6 at all');
  t.equal(judgeIpv6({ ...good, ipv6Disabled: null, ipv6Present: true }).outcome, 'fail');
});

t.test('firewall and tor exit', async (t) => {
  t.equal(judgeFirewall('routing', null).outcome, 'pass');
  t.equal(judgeFirewall(null, null).outcome, 'fail', 'nothing applied yet');
  const diff = judgeFirewall('routing', 'chain output: 3 rules, expected 5');
  t.equal(diff.outcome, 'fail');
  t.match(diff.detail, /3 rules, expected 5/);
  const wan = ['192.168.1.23'];
  t.equal(judgeTorExit({ kind: 'checked', isTor: true, ip: '198.51.100.7' }, wan).outcome, 'pass');
  t.equal(judgeTorExit({ kind: 'checked', isTor: false, ip: '198.51.100.7' }, wan).outcome, 'fail');
  t.equal(
    judgeTorExit({ kind: 'checked', isTor: true, ip: '192.168.1.23' }, wan).outcome,
    'fail',
    'own address',
  );
  t.equal(judgeTorExit({ kind: 'not-ready', why: 'killed' }, wan).outcome, 'not-run');
  t.equal(judgeTorExit({ kind: 'error', message: 'timeout' }, wan).outcome, 'not-run');
});

t.test('summary: ok unless a check failed', async (t) => {
  const pass = judgeFirewall('routing', null);
  const notRun = judgeProbe('clearnet-tcp', null, null);
  const fail = judgeForwarding({ ipForward: '1', allForwarding: '1', ipv6Disabled: '1', ipv6Present: true });
  t.equal(summarize([pass, notRun], 10, 2).ok, true);
  t.equal(summarize([pass, fail], 10, 2).ok, false);
  t.same(summarize([], 10, 2), { at: 10, durationMs: 2, ok: true, checks: [] });
});

t.test('default gateways from /proc/net/route', async (t) => {
  const table = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
    'wlan0\t00000000\t0100000A\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0', // the same gateway twice
    'eth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0', // a default route without gateway
    'eth0\t00000000\tZZZZZZZZ\t0003', // garbage
    '',
  ].join('\n');
  t.same(parseDefaultGateways(table, 'eth0'), ['192.168.1.1']);
  t.same(parseDefaultGateways(table, 'wlan0'), ['10.0.0.1']);
  t.same(parseDefaultGateways(table, 'lan0'), []);
  t.same(parseDefaultGateways('', 'eth0'), []);
});

t.test('the DNS query is one well-formed question under .invalid', async (t) => {
  const q = dnsQuery(0x1234);
  t.equal(q.readUInt16BE(0), 0x1234);
  t.equal(q.readUInt16BE(4), 1, 'one question');
  t.equal(q.readUInt16BE(6) + q.readUInt16BE(8) + q.readUInt16BE(10), 0, 'no other records');
  t.equal(q.subarray(12, q.length - 4).toString('latin1'), '\x09leak-test\x08onionbox\x07invalid\x00');
  t.same([...q.subarray(q.length - 4)], [0, 1, 0, 1], 'type A, class IN');
});

function deps(over: Partial<LeakTestDeps> = {}, probes: Partial<LeakProbes> = {}): LeakTestDeps {
  return {
    firewallMode: () => 'routing',
    audit: async () => undefined,
    routing: () => true,
    torCheck: async () => ({ isTor: true, ip: '198.51.100.7' }),
    wanInterface: () => 'eth0',
    dhcpServers: () => ['192.168.1.1'],
    wanAddresses: () => ['192.168.1.23'],
    now: () => 1_000,
    probes: {
      tcp: async () => ({ kind: 'silent', tracked: false }),
      udp: async () => ({ kind: 'error', code: 'EPERM' }),
      sysctls: async () => ({ ipForward: '0', allForwarding: '0', ipv6Disabled: '1', ipv6Present: true }),
      routeTable: async () => '',
      ...probes,
    },
    ...over,
  };
}

t.test('LeakTester: a sound box passes every check', async (t) => {
  const lt = new LeakTester(deps());
  t.equal(lt.last(), null);
  const r = await lt.run();
  t.equal(r.ok, true);
  t.same(
    r.checks.map((c) => [c.id, c.outcome]),
    [
      ['firewall', 'pass'],
      ['forwarding', 'pass'],
      ['ipv6', 'pass'],
      ['clearnet-tcp', 'pass'],
      ['clearnet-udp', 'pass'],
      ['tor-exit', 'pass'],
    ],
  );
  t.equal(lt.last(), r);
});

t.test('LeakTester: every failure is reported, one at a time', async (t) => {
  const leaky = await new LeakTester(
    deps(
      {
        audit: async () => {
          throw new Error('routing: table inet onionbox is missing');
        },
        torCheck: async () => ({ isTor: false, ip: '192.168.1.23' }),
      },
      { tcp: async () => ({ kind: 'connected' }), udp: async () => ({ kind: 'answered' }) },
    ),
  ).run();
  t.equal(leaky.ok, false);
  t.same(
    leaky.checks.filter((c) => c.outcome === 'fail').map((c) => c.id),
    ['firewall', 'clearnet-tcp', 'clearnet-udp', 'tor-exit'],
  );
  t.match(leaky.checks[0]?.detail, /missing/);
});

t.test('LeakTester: targets are the WAN gateway and DHCP server, probes go to the first', async (t) => {
  const seen: string[] = [];
  const route =
    'Iface\tDestination\tGateway\tFlags\neth0\t00000000\t0101A8C0\t0003\nlan0\t00000000\t0100C80A\t0003\n';
  const lt = new LeakTester(
    deps(
      { dhcpServers: () => ['192.168.1.254', '192.168.1.1'] },
      {
        routeTable: async () => route,
        tcp: async (x) => {
          seen.push(`tcp ${x}`);
          return { kind: 'silent', tracked: false };
        },
        udp: async (x) => {
          seen.push(`udp ${x}`);
          return { kind: 'error', code: 'EPERM' };
        },
      },
    ),
  );
  t.same(await lt.targets(), ['192.168.1.1', '192.168.1.254'], 'gateway of the WAN only, then DHCP servers');
  await lt.run();
  t.same(seen.sort(), ['tcp 192.168.1.1', 'udp 192.168.1.1']);
  const none = await new LeakTester(deps({ dhcpServers: () => [] })).run();
  t.same(
    none.checks.filter((c) => c.outcome === 'not-run').map((c) => c.id),
    ['clearnet-tcp', 'clearnet-udp'],
  );
  t.equal(none.ok, true, 'a probe that could not run is not a leak');
});

t.test('LeakTester: not routing skips the exit check; concurrent runs are one', async (t) => {
  let checks = 0;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const lt = new LeakTester(
    deps(
      {
        routing: () => false,
        firewallMode: () => null,
        torCheck: async () => {
          checks++;
          return { isTor: true, ip: '1.2.3.4' };
        },
      },
      {
        sysctls: async () => {
          await gate;
          return { ipForward: '0', allForwarding: '0', ipv6Disabled: '1', ipv6Present: true };
        },
      },
    ),
  );
  const a = lt.run();
  const b = lt.run();
  release();
  const [ra, rb] = await Promise.all([a, b]);
  t.equal(ra, rb, 'the second caller joined the first run');
  t.equal(checks, 0, 'no tor check when not routing');
  t.equal(ra.checks.find((c) => c.id === 'tor-exit')?.outcome, 'not-run');
  t.equal(ra.checks.find((c) => c.id === 'firewall')?.outcome, 'fail', 'no firewall applied');
  const c = await lt.run();
  t.not(c, ra, 'a later call runs again');
  const thrown = await new LeakTester(
    deps({
      torCheck: async () => {
        throw new Error('socks timeout');
      },
    }),
  ).run();
  t.match(
    thrown.checks.find((c) => c.id === 'tor-exit'),
    { outcome: 'not-run', detail: /socks timeout/ },
  );
});

t.test('page and CLI presentation', async (t) => {
  t.equal(describeLeakReport(null, 0), null);
  const ok = await new LeakTester(deps()).run();
  const v = describeLeakReport({ ...ok, at: 1_000, durationMs: 2_345 }, 1_000 + 3 * 60_000);
  t.equal(v?.tone, 'ok');
  t.equal(v?.headline, 'No leak found: every check passed.');
  t.equal(v?.when, 'Ran 3 minutes ago, took 2.3 s.');
  t.same(
    v?.checks.map((c) => c.label),
    Array(6).fill('Passed'),
  );
  const some = describeLeakReport(await new LeakTester(deps({ routing: () => false })).run(), 1_000);
  t.match(some?.headline, /1 check could not run/);
  t.equal(some?.when.startsWith('Ran just now'), true);
  const bad = await new LeakTester(deps({}, { udp: async () => ({ kind: 'answered' }) })).run();
  const bv = describeLeakReport(bad, 1_000 + 2 * 3_600_000);
  t.equal(bv?.tone, 'bad');
  t.match(bv?.headline, /1 check found a leak/);
  t.match(bv?.when, /2 hours ago/);
  t.equal(bv?.checks.find((c) => c.id === 'clearnet-udp')?.label, 'LEAK');
  t.match(formatLeakReport(ok), /no leak found\n$/);
  t.match(formatLeakReport(bad), /^LEAK {3}.*DNS query/m);
  t.match(formatLeakReport(bad), /LEAK FOUND/);
});
