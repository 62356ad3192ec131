/**
 * Boot lockdown (docs/architecture.md): the static ruleset closes a fresh namespace completely
 * (proved by a capture from before the link goes up, with IPv6 left enabled so that DAD/MLD/RS would
 * show), a control namespace without it shows the capture would have seen them, the systemd unit is
 * ordered before network-pre.target without default dependencies and loads the file with nft only, and
 * the sysctl file turns forwarding and IPv6 off.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseUnit } from '../../scripts/sim/unit-file.js';
import {
  addAddr,
  describeFrame,
  type Frame,
  linkUp,
  makeNetns,
  makeVeth,
  nsRun,
  parsePcap,
  rootSkipReason,
  startCapture,
  sysctl,
  uniqueSuffix,
} from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const SYSTEM = fileURLToPath(new URL('../../firmware/system/', import.meta.url));
const LOCKDOWN = join(SYSTEM, 'onionbox-lockdown.nft');
const UNIT = join(SYSTEM, 'systemd/onionbox-lockdown.service');
const SYSCTL = join(SYSTEM, '60-onionbox.conf');
const PROBES = fileURLToPath(new URL('../helpers/bin/probes.py', import.meta.url));

t.test('the boot lockdown unit: ordering and command', async (t) => {
  const unit = parseUnit(readFileSync(UNIT, 'utf8'));
  const u = unit.Unit ?? {};
  t.same(u.DefaultDependencies, ['no'], 'DefaultDependencies=no');
  t.ok(u.Before?.includes('network-pre.target'), 'Before=network-pre.target');
  t.ok(u.Wants?.includes('network-pre.target'), 'Wants=network-pre.target (pulls the target in)');
  t.notOk(
    u.After?.some((x) => /network|sysinit|basic/.test(x)),
    'not ordered after anything network-ish',
  );
  t.notOk(u.ConditionPathExists, 'never skipped: a missing ruleset fails the unit');
  const s = unit.Service ?? {};
  t.same(s.Type, ['oneshot']);
  t.same(s.RemainAfterExit, ['yes']);
  t.same(s.ExecStart, ['/usr/sbin/nft', '-f', '/etc/onionbox/lockdown.nft'], 'nft only, no Node');
  t.ok(unit.Install?.WantedBy?.includes('sysinit.target'));
  t.ok(unit.Install?.RequiredBy?.includes('network-pre.target'));
  const dropIn = parseUnit(
    readFileSync(join(SYSTEM, 'systemd/onionbox-network-requires-lockdown.conf'), 'utf8'),
  );
  t.same(dropIn.Unit?.Requires, ['onionbox-lockdown.service']);
  t.same(dropIn.Unit?.After, ['onionbox-lockdown.service']);
  t.throws(() => parseUnit('Before=x'), /bad unit line/);
});

t.test(
  'systemd-analyze verify accepts the unit',
  { skip: rootSkipReason(['systemd-analyze']) },
  async (t) => {
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn('systemd-analyze', ['verify', UNIT], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      c.stdout.on('data', (d) => {
        err += d;
      });
      c.stderr.on('data', (d) => {
        err += d;
      });
      c.on('error', (e) => resolve({ code: -1, err: String(e) }));
      c.on('exit', (code) => resolve({ code, err }));
    });
    t.equal(r.code, 0, r.err);
    t.notMatch(r.err, /onionbox-lockdown/, 'no warning about our unit');
  },
);

t.test(
  'the lockdown ruleset holds a fresh namespace closed from its first packet',
  {
    skip: rootSkipReason(['ip', 'nft', 'tcpdump', '/usr/bin/python3']),
  },
  async (t) => {
    const dir = tmpDir(t, 'onionbox-boot-');
    const sfx = uniqueSuffix();

    async function scenario(
      label: string,
      lockdown: boolean,
    ): Promise<{ frames: Frame[]; boxMac: string; box: string }> {
      const box = await makeNetns(t, `boot${label}`);
      const peer = await makeNetns(t, `peer${label}`);
      await sysctl(peer, 'net.ipv6.conf.all.disable_ipv6', '1');
      await sysctl(peer, 'net.ipv6.conf.default.disable_ipv6', '1');
      // The box keeps IPv6 on: the ruleset alone must stop DAD, MLD and router solicitations.
      if (lockdown) await nsRun(box, 'nft', ['-f', LOCKDOWN]);
      const bIf = `b${label}${sfx}`.slice(0, 15);
      const pIf = `p${label}${sfx}`.slice(0, 15);
      await makeVeth(box, bIf, peer, pIf);
      await addAddr(peer, pIf, '198.18.1.1/24');
      await linkUp(peer, pIf);
      const cap = await startCapture(t, peer, pIf, join(dir, `${label}.pcap`));
      await addAddr(box, bIf, '198.18.1.2/24');
      await linkUp(box, bIf);
      const listener = nsRun(peer, '/usr/bin/python3', [PROBES, 'listen', '8080', '4']);
      await new Promise((r) => setTimeout(r, 300));
      const probes: string[][] = [
        ['tcp', '198.18.1.1', '8080', '1'],
        ['udp', '198.18.1.1', '53'],
        ['icmp', '198.18.1.1'],
        ['icmp6', `ff02::1%${bIf}`],
        ['multicast', '239.255.255.250', '1900'],
        ['broadcast', '67'],
      ];
      await Promise.all([
        ...probes.map((p) => nsRun(box, '/usr/bin/python3', [PROBES, ...p]).catch(() => '')),
        nsRun(peer, '/usr/bin/python3', [PROBES, 'tcp', '198.18.1.2', '22', '1']).catch(() => ''),
        nsRun(peer, '/usr/bin/python3', [PROBES, 'icmp', '198.18.1.2']).catch(() => ''),
      ]);
      await listener.catch(() => '');
      await new Promise((r) => setTimeout(r, 1500)); // DAD, MLD reports and router solicitations
      await cap.stop();
      const link = JSON.parse(await nsRun(box, 'ip', ['-j', 'link', 'show', bIf])) as { address: string }[];
      return { frames: parsePcap(readFileSync(cap.file)), boxMac: link[0]?.address ?? '', box };
    }

    const [closed, open] = await Promise.all([scenario('l', true), scenario('c', false)]);

    const fromBox = (r: typeof closed) => r.frames.filter((f) => f.srcMac === r.boxMac);
    const leaked = fromBox(closed).filter((f) => f.etherType !== 0x0806);
    t.same(leaked.map(describeFrame), [], 'lockdown: not one IP or IPv6 frame left the box');
    t.ok(closed.frames.length > 0, 'the capture saw the peer trying (it works)');
    const counters = await nsRun(closed.box, 'nft', ['list', 'counter', 'inet', 'onionbox_boot', 'dropped']);
    t.match(counters, /packets [1-9]/, 'the lockdown counted what it dropped');

    // Control: the same namespace without the lockdown leaks at once; this is what the test would catch.
    const controlLeaks = fromBox(open).filter((f) => f.etherType !== 0x0806);
    t.ok(
      controlLeaks.some((f) => f.etherType === 0x86dd),
      `control: IPv6 (DAD/MLD/RS) seen: ${controlLeaks.length} frames`,
    );
    t.ok(
      controlLeaks.some((f) => f.proto === 6 && f.dport === 8080),
      'control: the TCP probe was seen',
    );
  },
);

t.test(
  'sysctl file: forwarding off, IPv6 off on existing and new interfaces',
  {
    skip: rootSkipReason(['ip', 'sysctl']),
  },
  async (t) => {
    const text = readFileSync(SYSCTL, 'utf8');
    const kv = Object.fromEntries(
      text
        .split('\n')
        .filter((l) => /^[a-z]/.test(l))
        .map((l) => l.split('=').map((x) => x.trim())),
    ) as Record<string, string>;
    t.equal(kv['net.ipv4.ip_forward'], '0');
    t.equal(kv['net.ipv6.conf.all.disable_ipv6'], '1');
    t.equal(kv['net.ipv6.conf.default.disable_ipv6'], '1');
    const ns = await makeNetns(t, 'sysctl');
    const sfx = uniqueSuffix();
    await nsRun(ns, 'ip', ['link', 'add', `a${sfx}`, 'type', 'veth', 'peer', 'name', `b${sfx}`]);
    await sysctl(ns, 'net.ipv4.ip_forward', '1');
    await nsRun(ns, 'sysctl', ['-q', '-p', SYSCTL]);
    const read = async (k: string) => (await nsRun(ns, 'sysctl', ['-n', k])).trim();
    t.equal(await read('net.ipv4.ip_forward'), '0');
    t.equal(await read('net.ipv6.conf.all.disable_ipv6'), '1');
    t.equal(await read(`net.ipv6.conf.a${sfx}.disable_ipv6`), '1', 'an existing interface has IPv6 off');
    const later = `c${sfx}`;
    await nsRun(ns, 'ip', ['link', 'add', later, 'type', 'veth', 'peer', 'name', `d${sfx}`]);
    t.equal(
      await read(`net.ipv6.conf.${later}.disable_ipv6`),
      '1',
      'an interface created later has IPv6 off',
    );
  },
);
