/**
 * The leak self-test's probes against the real kernel: a "box" namespace and a "modem" namespace whose
 * dnsmasq answers DNS on UDP and TCP port 53. With no firewall the probes see the answers (a leak);
 * with the box's own routing ruleset loaded they are stopped inside the box (EPERM for UDP, no confirmed
 * conntrack entry for TCP); when the modem drops them instead, conntrack shows they left (a leak); and
 * where the namespace tracks nothing at all, the probe says it cannot tell rather than pass.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { TransportOpenings } from '../../firmware/firewall/params.js';
import { renderRuleset } from '../../firmware/firewall/render.js';
import { judgeProbe, type ProbeResult } from '../../firmware/leak-test/judge.js';
import { SAMPLE } from '../fixtures/firewall/sample.js';
import {
  addAddr,
  linkUp,
  makeNetns,
  makeVeth,
  nsRun,
  rootSkipReason,
  uniqueSuffix,
} from '../helpers/netns.js';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const execFileP = promisify(execFile);
/** The firewall's openings of each transport (firmware/tor/transports.ts); obfs4 opens nothing. */
const TRANSPORT_VARIANTS: Record<string, Omit<TransportOpenings, 'resolvers'> | undefined> = {
  obfs4: undefined,
  webtunnel: { tcpPorts: [443, 8443], udp: false },
  meek_lite: { tcpPorts: [443], udp: false },
  snowflake: { tcpPorts: [443], udp: true },
};
const skip = rootSkipReason(['ip', 'nft', 'conntrack', 'dnsmasq']);
const MODEM = '192.0.2.1';
const BOX = '192.0.2.2';
const child = new URL('../helpers/leak-probe-child.ts', import.meta.url).pathname;

async function probe(ns: string): Promise<{ tcp: ProbeResult; udp: ProbeResult }> {
  const { stdout } = await execFileP(
    'ip',
    ['netns', 'exec', ns, process.execPath, ...nodeTsArgs(), child, MODEM],
    {
      timeout: 30_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { tcp: ProbeResult; udp: ProbeResult };
}

t.test('leak probes in namespaces', { skip }, async (t) => {
  const dir = tmpDir(t, 'onionbox-leak-');
  const box = await makeNetns(t, 'lkbox');
  const modem = await makeNetns(t, 'lkmod');
  const sfx = uniqueSuffix();
  const wanIf = `lkw${sfx}`.slice(0, 15);
  const modemIf = `lkm${sfx}`.slice(0, 15);
  await makeVeth(box, wanIf, modem, modemIf);
  await addAddr(box, wanIf, `${BOX}/24`);
  await addAddr(modem, modemIf, `${MODEM}/24`);
  await linkUp(box, wanIf);
  await linkUp(modem, modemIf);

  // The modem's DNS: real dnsmasq answering on UDP and TCP 53 (no upstream: it answers REFUSED/NXDOMAIN).
  const pidFile = join(dir, 'dnsmasq.pid');
  const dnsmasq = spawn(
    'ip',
    [
      'netns',
      'exec',
      modem,
      'dnsmasq',
      '--keep-in-foreground',
      '--no-resolv',
      '--no-hosts',
      '--bind-interfaces',
      `--listen-address=${MODEM}`,
      '--port=53',
      `--pid-file=${pidFile}`,
      '--log-facility=-',
      '--user=root',
    ],
    { stdio: 'ignore' },
  );
  t.teardown(() => {
    if (dnsmasq.exitCode === null) dnsmasq.kill('SIGTERM');
  });
  for (let i = 0; i < 100; i++) {
    const ss = await nsRun(modem, 'ss', ['-ltnH', 'sport = :53']).catch(() => '');
    if (ss.includes(MODEM)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  t.test('no firewall: the modem answers both probes (a leak)', async (t) => {
    const r = await probe(box);
    t.same(r.tcp, { kind: 'connected' });
    t.same(r.udp, { kind: 'answered' });
    t.equal(judgeProbe('clearnet-tcp', MODEM, r.tcp).outcome, 'fail');
    t.equal(judgeProbe('clearnet-udp', MODEM, r.udp).outcome, 'fail');
  });

  t.test('the box firewall (routing): both stopped inside the box', async (t) => {
    const file = join(dir, 'routing.nft');
    // torUid: a uid that is not ours; the probe runs as root, whose only WAN exception is DHCP (68 -> 67)
    writeFileSync(file, renderRuleset('routing', { ...SAMPLE, wanIf, dhcpServers: [MODEM] }));
    await nsRun(box, 'nft', ['-f', file]);
    t.teardown(() => nsRun(box, 'nft', ['delete', 'table', 'inet', 'onionbox']).catch(() => undefined));
    const r = await probe(box);
    t.same(r.tcp, { kind: 'silent', tracked: false }, 'the SYN never got a confirmed conntrack entry');
    t.same(r.udp, { kind: 'error', code: 'EPERM' }, 'the output hook refused the datagram');
    t.equal(judgeProbe('clearnet-tcp', MODEM, r.tcp).outcome, 'pass');
    t.equal(judgeProbe('clearnet-udp', MODEM, r.udp).outcome, 'pass');
  });

  t.test(
    'every transport variant (routing): still stopped inside the box, the modem as the resolver',
    async (t) => {
      // The worst case for the transports' DNS opening: the modem is the WAN's resolver. Only tor's uid may
      // ask it; the probes (root, as onionboxd's own sockets would be) must still be refused.
      for (const [name, transports] of Object.entries(TRANSPORT_VARIANTS)) {
        const file = join(dir, `routing-${name}.nft`);
        writeFileSync(
          file,
          renderRuleset('routing', {
            ...SAMPLE,
            wanIf,
            dhcpServers: [MODEM],
            ...(transports ? { transports: { ...transports, resolvers: [MODEM] } } : {}),
          }),
        );
        await nsRun(box, 'nft', ['-f', file]);
        const r = await probe(box);
        await nsRun(box, 'nft', ['delete', 'table', 'inet', 'onionbox']);
        t.same(r.tcp, { kind: 'silent', tracked: false }, `${name}: the SYN never got a confirmed entry`);
        t.same(r.udp, { kind: 'error', code: 'EPERM' }, `${name}: the output hook refused the datagram`);
      }
    },
  );

  t.test(
    "tor's uid itself: DNS to the resolver only while a transport needs it; never to private UDP",
    async (t) => {
      // A positive control for the openings: the same DNS query sent as tor's uid (SAMPLE.torUid), from
      // python3 under setpriv: answered only with a transport that needs DNS configured.
      const asTor = async (target: string, port: number): Promise<string> => {
        const script = [
          'import socket,sys',
          's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1.5)',
          "q=bytes.fromhex('123401000001000000000000076578616d706c6503636f6d0000010001')",
          'try:',
          '  s.sendto(q,(sys.argv[1],int(sys.argv[2]))); s.recvfrom(512); print("answered")',
          'except PermissionError: print("EPERM")',
          'except socket.timeout: print("silent")',
        ].join('\n');
        const uid = String(SAMPLE.torUid);
        const { stdout } = await execFileP('ip', [
          'netns',
          'exec',
          box,
          'setpriv',
          `--reuid=${uid}`,
          `--regid=${uid}`,
          '--clear-groups',
          '/usr/bin/python3',
          '-c',
          script,
          target,
          String(port),
        ]);
        return stdout.trim();
      };
      for (const [name, transports] of Object.entries(TRANSPORT_VARIANTS)) {
        const file = join(dir, `tor-${name}.nft`);
        writeFileSync(
          file,
          renderRuleset('connecting', {
            ...SAMPLE,
            wanIf,
            ...(transports ? { transports: { ...transports, resolvers: [MODEM] } } : {}),
          }),
        );
        await nsRun(box, 'nft', ['-f', file]);
        const dns = await asTor(MODEM, 53);
        const stray = await asTor('192.0.2.77', 40000); // private (documentation) range: never
        await nsRun(box, 'nft', ['delete', 'table', 'inet', 'onionbox']);
        t.equal(dns, transports ? 'answered' : 'EPERM', `${name}: tor's DNS to the WAN's resolver`);
        t.equal(stray, 'EPERM', `${name}: tor's UDP to a non-public address refused in the box`);
      }
    },
  );

  t.test('dropped by the modem, not the box: conntrack shows the packets left', async (t) => {
    // The box tracks connections (as its own table makes it) but lets everything out.
    const boxFile = join(dir, 'track.nft');
    writeFileSync(
      boxFile,
      'table inet lktrack {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    ct state invalid drop\n  }\n}\n',
    );
    await nsRun(box, 'nft', ['-f', boxFile]);
    t.teardown(() => nsRun(box, 'nft', ['delete', 'table', 'inet', 'lktrack']).catch(() => undefined));
    const modemFile = join(dir, 'modem-drop.nft');
    writeFileSync(
      modemFile,
      'table inet lkdrop {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    th dport 53 drop\n  }\n}\n',
    );
    await nsRun(modem, 'nft', ['-f', modemFile]);
    t.teardown(() => nsRun(modem, 'nft', ['delete', 'table', 'inet', 'lkdrop']).catch(() => undefined));
    const r = await probe(box);
    t.same(r.tcp, { kind: 'silent', tracked: true });
    t.same(r.udp, { kind: 'silent', tracked: true });
    t.equal(judgeProbe('clearnet-tcp', MODEM, r.tcp).outcome, 'fail');
    t.equal(judgeProbe('clearnet-udp', MODEM, r.udp).outcome, 'fail');
  });

  t.test('a namespace that tracks nothing: the probe cannot tell, and says so', async (t) => {
    const modemFile = join(dir, 'modem-drop2.nft');
    writeFileSync(
      modemFile,
      'table inet lkdrop2 {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    th dport 53 drop\n  }\n}\n',
    );
    await nsRun(modem, 'nft', ['-f', modemFile]);
    t.teardown(() => nsRun(modem, 'nft', ['delete', 'table', 'inet', 'lkdrop2']).catch(() => undefined));
    const r = await probe(box);
    t.same(r.tcp, { kind: 'silent', tracked: null });
    t.equal(judgeProbe('clearnet-tcp', MODEM, r.tcp).outcome, 'not-run');
  });
});
