/**
 * The whole box in the simulated world (scripts/sim/world.ts), as `npm start` runs it: the unchanged
 * onionboxd in its own namespace, tor as debian-tor from an EMPTY data directory, the firewall's relay
 * set as the only way out, the WAN address from the modem's DHCP (2-minute lease, renewed while we
 * watch), and a LAN device.
 *
 * Asserted from outside, as a household and an attacker would see it:
 *   - the LAN device fetches http://web.sim.test/ip and the web site sees the exit's address;
 *   - tcpdump on the box's WAN link, from before its first link is up to the end, sees only ARP about
 *     the box and the network, the box's DHCP client (UDP 68 -> 67), and TCP from the box to a relay's
 *     address and ORPort; the DHCP client renews by unicast through the firewall and keeps its address;
 *   - the kill switch cuts the device and releases it;
 *   - the page answers the LAN device and never the internet side;
 *   - with an obfs4 bridge configured, the box bootstraps through lyrebird to the bridge only;
 *   - after stop nothing is left: namespaces, /etc/netns, processes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { capEff, uidOf, userName } from '../../scripts/sim/helper-units.js';
import {
  ADDR,
  EXIT_ADDR,
  HOSTNAME,
  leasedAddress,
  namespacesOf,
  uniquePrefix,
} from '../../scripts/sim/world.js';
import { describeFrame, type Frame, parsePcap, rootSkipReason } from '../helpers/netns.js';
import { boxStatus, cli, lanCurl, macOf, startWorld, until, wanLeaks } from '../helpers/sim-world.js';
import { tmpDir } from '../helpers/tmp.js';

const _root = new URL('../../', import.meta.url).pathname;
const skip = rootSkipReason(['ip', 'nft', 'tor', 'tcpdump', 'dnsmasq', 'dhclient', 'curl', 'lyrebird']);

t.test('the whole box in the simulated world', { skip, timeout: 420_000 }, async (t) => {
  const dir = tmpDir(t);
  const prefix = uniquePrefix();
  const t0 = Date.now();
  const world = await startWorld(t, { prefix, dir, capture: true });
  const boxMac = await macOf(world, world.netns.box, 'eth0');

  // the box's tor started from an empty data directory, with only authorities in the set
  const seeded = readFileSync(join(dir, 'onionboxd.log'), 'utf8')
    .split('\n')
    .find((l) => l.includes('relay set seeded'));
  t.ok(seeded, 'the relay set was seeded before tor started');
  const sizes = JSON.parse(seeded ?? '{}') as { dirs: number; consensus: number; total: number };
  t.equal(sizes.dirs, 3, "the private network's three authorities");
  t.equal(sizes.consensus, 0, 'no cached consensus: a fresh box');

  // the LAN device has its address, router and DNS from the box's own DHCP server (dnsmasq)
  const lanAddr = leasedAddress(join(dir, 'lan-lease.env'));
  t.match(lanAddr ?? '', /^10\.42\.0\.\d+$/, `the LAN device leased ${lanAddr} from the box`);
  t.equal(world.info().lan.address, lanAddr);
  t.equal(
    readFileSync(`/etc/netns/${prefix}-lan/resolv.conf`, 'utf8').trim().split('\n')[0],
    `nameserver ${ADDR.boxLan}`,
    'its resolv.conf names the box, from the lease',
  );
  const route = await world.exec(world.netns.lan, 'ip', ['route', 'show', 'default']);
  t.match(route, new RegExp(`default via ${ADDR.boxLan.replace(/\./g, '\\.')}`), 'and its router is the box');
  // ... which runs as its own unit says (issue 23): its own user, only its three capabilities, its
  // leases in its own runtime directory (memory), none in the box's state directory
  const dnsmasqPid = Number(readFileSync(join(dir, 'runroot/onionbox-dhcp/dnsmasq.pid'), 'utf8').trim());
  t.equal(userName(uidOf(dnsmasqPid) ?? -1), 'onionbox-dhcp', 'dnsmasq runs as onionbox-dhcp');
  t.comment(`dnsmasq (pid ${dnsmasqPid}) CapEff ${capEff(dnsmasqPid)}`);
  const daemon = world.daemon()?.pid ?? 0;
  t.comment(`onionboxd (pid ${daemon}, ${userName(uidOf(daemon) ?? -1)}) CapEff ${capEff(daemon)}`);
  t.equal(capEff(dnsmasqPid), '0000000000003400', 'with NET_BIND_SERVICE, NET_ADMIN and NET_RAW only');
  t.match(readFileSync(join(dir, 'runroot/onionbox-dhcp/dnsmasq.leases'), 'utf8'), lanAddr ?? '-');
  t.notOk(existsSync(join(dir, 'box/dnsmasq.leases')), 'no lease file in the state directory');

  const routing = await until(
    'routing',
    async () => {
      const s = await boxStatus(world);
      return s.state === 'routing' ? s : null;
    },
    120_000,
  );
  t.comment(`routing ${((Date.now() - t0) / 1000).toFixed(1)} s after the world began (time to routing)`);
  t.match(String(routing.tor), /^ready 100%/);
  t.same(routing.dhcpServers, [EXIT_ADDR], "the modem's DHCP server is the firewall's DHCP exception");
  const kernel = await world.exec(world.netns.box, 'nft', ['list', 'table', 'inet', 'onionbox']);
  t.match(kernel, /dnat ip to 10\.42\.0\.1:9040/, 'the kernel holds the routing ruleset');
  const dhcpRule = kernel.split('\n').find((l) => l.includes('udp dport 67 ip daddr')) ?? '';
  t.match(dhcpRule, /meta skuid 0 udp sport 68 udp dport 67 ip daddr \{ /, 'DHCP renewals by root only');
  t.match(dhcpRule, /255\.255\.255\.255/, 'to broadcast');
  t.match(dhcpRule, /198\.18\.0\.15/, 'or to the leasing server');

  // the CLI, from the host, over the box's control socket
  const check = cli(world, ['tor', 'check', '--json']);
  t.equal(check.status, 0, check.stderr);
  t.equal((JSON.parse(check.stdout) as { isTor: boolean }).isTor, true, '"is this Tor?" sees an exit');
  const torStatus = cli(world, ['tor', 'status']);
  t.match(torStatus.stdout, /ready/);

  // the leak self-test, as the page's button runs it: every check passes, and its probes towards the
  // modem never reach the wire (the capture checked below holds only ARP, DHCP and tor's TCP)
  const leak = cli(world, ['leak-test', '--json']);
  t.equal(leak.status, 0, leak.stdout + leak.stderr);
  const report = JSON.parse(leak.stdout) as {
    ok: boolean;
    checks: { id: string; outcome: string; detail: string }[];
  };
  t.same(
    report.checks.map((c) => [c.id, c.outcome]),
    [
      ['firewall', 'pass'],
      ['forwarding', 'pass'],
      ['ipv6', 'pass'],
      ['clearnet-tcp', 'pass'],
      ['clearnet-udp', 'pass'],
      ['tor-exit', 'pass'],
    ],
    JSON.stringify(report.checks),
  );
  t.match(
    report.checks.find((c) => c.id === 'tor-exit')?.detail,
    EXIT_ADDR,
    'the check service saw the exit',
  );

  // through tor: the web site sees the exit's address
  const seen = await until('a fetch through tor', () => lanCurl(world, `http://${HOSTNAME}/ip`), 60_000);
  t.equal(seen.trim(), EXIT_ADDR, 'the web site sees the exit, not the box');

  // the page: from the LAN yes, from the internet side never
  const page = await world.exec(world.netns.lan, 'curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-m',
    '10',
    `http://${ADDR.boxLan}/`,
  ]);
  t.equal(page, '303', 'the page answers the LAN device (to the claim page)');
  await world.exec(world.netns.inet, 'ip', ['route', 'add', `${ADDR.boxLan}/32`, 'via', ADDR.boxWan]);
  for (const target of [ADDR.boxWan, ADDR.boxLan]) {
    const r = spawnSync('ip', [
      'netns',
      'exec',
      world.netns.inet,
      'curl',
      '-s',
      '-m',
      '4',
      '-o',
      '/dev/null',
      `http://${target}/`,
    ]);
    t.not(r.status, 0, `the page does not answer the internet side at ${target}`);
  }

  // the kill switch cuts the LAN device and releases it
  const on = cli(world, ['board', 'switch', 'on']);
  t.equal(on.status, 0, on.stderr);
  await until('killed', async () => (await boxStatus(world)).firewallMode === 'killed', 10_000);
  t.equal(await lanCurl(world, `http://${HOSTNAME}/ip`, 4), null, 'killed: the LAN device reaches nothing');
  const off = cli(world, ['board', 'switch', 'off']);
  t.equal(off.status, 0, off.stderr);
  await until('routing again', async () => (await boxStatus(world)).state === 'routing', 30_000);
  const again = await until('a fetch after release', () => lanCurl(world, `http://${HOSTNAME}/ip`), 30_000);
  t.equal(again.trim(), EXIT_ADDR);

  // the lease is renewed by unicast through the firewall (T1 = half of the 2-minute lease): the
  // capture sees the box's request to the leasing server and its answer, dhclient logs the ACK
  const dhclientLog = join(dir, 'dhclient.log');
  const isRenewal = (f: Frame) =>
    f.srcMac === boxMac && f.sport === 68 && f.dport === 67 && f.dst === EXIT_ADDR;
  await until(
    'a unicast DHCP renewal on the wire',
    async () => parsePcap(readFileSync(world.captureFile ?? '')).some(isRenewal),
    110_000,
  ).catch((e: Error) => {
    t.comment(readFileSync(dhclientLog, 'utf8').split('\n').slice(-12).join('\n'));
    throw e;
  });
  await until(
    'the renewal acknowledged',
    async () =>
      /to 198\.18\.0\.15 port 67\n(.*\n)*DHCPACK of 198\.18\.0\.2/.test(readFileSync(dhclientLog, 'utf8')),
    20_000,
  );
  t.pass('the box renewed its lease with the leasing server, through the firewall');
  const addr = await world.exec(world.netns.box, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  t.match(addr, /198\.18\.0\.2\/24/, 'and keeps its WAN address');

  // the capture: only ARP, the DHCP client and TCP to relays
  const relays = new Set(world.privnet.relayEndpoints().map((r) => `${r.address}:${r.port}`));
  const known = new Set([ADDR.modem, ...world.privnet.relays.map((r) => r.address)]);
  const daemonPid = world.daemon()?.pid ?? 0;
  const dmn = world.daemon();
  if (!dmn) throw new Error('no daemon');
  const exited = new Promise<number | null>((r) => dmn.child.once('exit', (code) => r(code)));
  process.kill(dmn.pid, 'SIGTERM');
  t.equal(await exited, 0, 'onionboxd exits 0 on SIGTERM');
  t.match(readFileSync(join(dir, 'onionboxd.log'), 'utf8'), /"msg":"stopped"/);
  const after = await world.exec(world.netns.box, 'nft', ['list', 'table', 'inet', 'onionbox']);
  t.notMatch(after, /dnat/, 'and leaves a closed ruleset in the kernel (fail-closed)');
  await world.stop();
  const frames = parsePcap(readFileSync(world.captureFile ?? ''));
  t.ok(
    frames.filter((f) => f.srcMac === boxMac && f.proto === 6).length > 10,
    'the capture saw the box talk to tor relays',
  );

  const leaks = wanLeaks(frames, { mac: boxMac, addr: ADDR.boxWan, relays, known });
  t.same(leaks.slice(0, 10).map(describeFrame), [], 'nothing else left the box on the WAN');

  // nothing is left
  t.same(await namespacesOf(prefix), [], 'no namespace left');
  t.notOk(existsSync(`/etc/netns/${prefix}-lan`), 'no /etc/netns entry left');
  for (const p of world.processes()) {
    t.ok(p.child.exitCode !== null || p.child.signalCode !== null, `${p.name} (pid ${p.pid}) has exited`);
  }
  t.ok(daemonPid > 0 && !existsSync(`/proc/${daemonPid}`), 'onionboxd is gone');
});

t.test(
  'with an obfs4 bridge: a fresh box bootstraps through lyrebird, to the bridge only',
  { skip, timeout: 300_000 },
  async (t) => {
    const dir = tmpDir(t);
    const prefix = uniquePrefix();
    const world = await startWorld(t, {
      prefix,
      dir,
      capture: true,
      obfs4Bridge: true,
      boxConfig: (privnet) => {
        const cfg = defaultConfig();
        return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [privnet.obfs4Bridge?.line ?? ''] } };
      },
    });
    const boxMac = await macOf(world, world.netns.box, 'eth0');
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    await until(
      'routing through the bridge',
      async () => (await boxStatus(world)).state === 'routing',
      150_000,
    );
    const seen = await until(
      'a fetch through the bridge',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    );
    t.equal(seen.trim(), EXIT_ADDR);
    const obfs = spawnSync('pgrep', ['-u', 'debian-tor', '-x', 'lyrebird'], { encoding: 'utf8' });
    t.equal(obfs.status, 0, 'lyrebird runs as debian-tor');
    await world.stop();
    const tcp = parsePcap(readFileSync(world.captureFile ?? '')).filter(
      (f) => f.srcMac === boxMac && f.etherType === 0x0800 && f.proto === 6,
    );
    t.ok(tcp.length > 10, 'the box talked over TCP');
    t.same(
      [...new Set(tcp.map((f) => `${f.dst}:${f.dport}`))],
      [`${bridge.address}:${bridge.port}`],
      'every TCP packet went to the bridge',
    );
  },
);

t.test(
  'bridges added while the box runs reach the relay set before tor dials them (no rollback)',
  { skip, timeout: 300_000 },
  async (t) => {
    const dir = tmpDir(t);
    const world = await startWorld(t, { prefix: uniquePrefix(), dir, capture: true, obfs4Bridge: true });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    await until('routing without bridges', async () => (await boxStatus(world)).state === 'routing', 120_000);
    const before = await world.exec(world.netns.box, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']);
    t.notMatch(before, new RegExp(bridge.address.replace(/\./g, '\\.')), 'the bridge is not in the set yet');

    const set = cli(world, ['tor', 'bridges', bridge.line]);
    t.equal(set.status, 0, `applied: ${set.stdout}${set.stderr}`);
    t.match(set.stdout, /ready with the new settings/);
    const after = await world.exec(world.netns.box, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']);
    t.match(
      after,
      new RegExp(`${bridge.address.replace(/\./g, '\\.')} \\. ${bridge.port}`),
      'the bridge is in the set',
    );
    const circuits = cli(world, ['tor', 'circuits']);
    t.match(circuits.stdout, /BUILT\s+\S+\s+bridge0 ->/, 'circuits now start at the bridge');
    const seen = await until(
      'a fetch through the bridge',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    );
    t.equal(seen.trim(), EXIT_ADDR);
    const stored = JSON.parse(readFileSync(join(world.boxStateDir, 'config.json'), 'utf8')) as {
      tor: { useBridges: boolean; bridges: string[] };
    };
    t.equal(stored.tor.useBridges, true, 'and the setting is stored');

    const off = cli(world, ['tor', 'bridges', '--off']);
    t.equal(off.status, 0, off.stdout + off.stderr);
    const bad = cli(world, ['tor', 'bridges', 'obfs4 1.2.3.4:1 NOTAFINGERPRINT']);
    t.not(bad.status, 0, 'a bad line is refused');
    t.match(bad.stderr, /OBX_ERR_/);
  },
);
