/**
 * The simulator's unit runner, planning half: the firmware's own unit files turn into the argv,
 * credentials, environment and directories systemd would use (scripts/sim/units.ts).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  commandArgv,
  mapPath,
  planUnit,
  setprivArgs,
  shouldRestart,
  splitWords,
  startUnit,
  UNIT_MOUNTS,
  unitEnvironment,
} from '../../scripts/sim/units.js';

const root = new URL('../../', import.meta.url).pathname;
const unitText = (name: string) => readFileSync(join(root, 'firmware/system/systemd', name), 'utf8');
const pathMap = {
  '/opt/onionbox': '/w/checkout',
  '/var/lib/onionbox': '/w/box',
  '/var/lib/tor': '/w/tor-data',
  '/run/onionbox': '/w/run',
  '/usr/bin/node': '/usr/local/bin/node',
};

t.test('onionboxd.service: its command line in the world, the simulator arguments appended', async (t) => {
  const plan = planUnit(unitText('onionboxd.service'), {
    name: 'onionboxd',
    pathMap,
    extraArgs: ['--simulate', '--test-network', '/w/test-network.json'],
  });
  t.same(plan.main.argv.slice(0, 2), ['/usr/local/bin/node', '--max-semi-space-size=1']);
  t.ok(plan.main.argv.includes('/w/checkout/dist/firmware/main.js'));
  const at = plan.main.argv.indexOf('--state-dir');
  t.equal(plan.main.argv[at + 1], '/w/box');
  t.same(plan.main.argv.slice(-3), ['--simulate', '--test-network', '/w/test-network.json']);
  t.equal(plan.credentials.user, 'onionbox');
  t.equal(plan.credentials.group, 'onionbox');
  t.ok(plan.credentials.ambientCaps.includes('net_admin'));
  t.same(plan.credentials.ambientCaps, plan.credentials.boundingSet, 'ambient = bounding set');
  t.equal(plan.credentials.noNewPrivileges, true);
  t.equal(plan.restart, 'always');
  t.equal(plan.restartMs, 2000);
  t.same(plan.env.NODE_ENV, 'production');
  t.same(plan.env.MALLOC_MMAP_THRESHOLD_, '131072');
  t.same(
    plan.directories.map((d) => [d.kind, d.path, d.mode.toString(8)]),
    [
      ['runtime', '/w/run', '700'],
      ['state', '/w/box', '711'],
    ],
  );
  // the board hand-over, then the emulator's fw_cfg hand-over: `-+`, root and failure ignored
  t.equal(plan.pre.length, 2);
  t.ok(plan.pre[1]?.argv.includes('fw-cfg'), 'the fw_cfg hand-over second');
  t.equal(plan.pre[1]?.privileged, true);
  t.equal(plan.pre[0]?.privileged, true);
  t.equal(plan.pre[0]?.ignoreFailure, true);
  t.equal(commandArgv(plan, plan.pre[0] ?? plan.main)[0], '/usr/local/bin/node', 'no setpriv for +');
  const argv = commandArgv(plan, plan.main);
  t.equal(argv[0], 'setpriv');
  t.ok(argv.includes('--reuid=onionbox') && argv.includes('--regid=onionbox'));
  t.ok(
    argv.includes('--groups=onionbox,debian-tor,onionbox-dhcp,onionbox-ap,onionbox-web'),
    "SupplementaryGroups=: tor's control socket, dnsmasq's leases, the helpers' PID files, the page socket",
  );
  t.ok(argv.includes('--no-new-privs'));
  t.notOk(plan.credentials.ambientCaps.includes('setuid'), 'no CAP_SETUID any more');
  t.equal(argv[argv.indexOf('--') + 1], '/usr/local/bin/node');
});

t.test(
  'onionbox-tor.service: tor as debian-tor, no capability, the socket directory for its group',
  async (t) => {
    const plan = planUnit(unitText('onionbox-tor.service'), {
      name: 'onionbox-tor',
      pathMap: { ...pathMap, '/run/onionbox-tor': '/w/run-tor' },
    });
    t.same(plan.main.argv, ['/usr/bin/tor', '--defaults-torrc', '/dev/null', '-f', '/w/box/tor/torrc']);
    t.same(plan.pre[0]?.argv.at(-1), '--verify-config');
    t.same(plan.credentials.boundingSet, [], 'an empty bounding set');
    t.same(plan.credentials.ambientCaps, []);
    t.equal(plan.restart, 'always');
    t.same(
      plan.directories.map((d) => [d.kind, d.path, d.mode.toString(8)]),
      [
        ['runtime', '/w/run-tor', '750'],
        ['state', '/w/tor-data', '700'],
      ],
    );
    const argv = commandArgv(plan, plan.main);
    t.ok(argv.includes('--reuid=debian-tor') && argv.includes('--init-groups'));
    t.ok(argv.includes('--bounding-set=-all'));
    // the WAN's resolvers over /etc/resolv.conf, in tor's own mount namespace only
    t.same(plan.binds, [{ source: '/w/run/tor-resolv.conf', dest: '/etc/resolv.conf', optional: false }]);
    t.same(argv.slice(0, 9), [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      UNIT_MOUNTS,
      '--ro',
      '/w/run/tor-resolv.conf',
      '/etc/resolv.conf',
    ]);
    t.same(argv.slice(9, 11), ['--', 'setpriv'], 'the mounts as root, then the credentials');
    t.equal(commandArgv(plan, plan.pre[0] ?? plan.main)[0], 'unshare', 'ExecStartPre= sees the same mounts');
  },
);

t.test("BindReadOnlyPaths=: only tor's unit has it; entries read as systemd reads them", async (t) => {
  for (const name of ['onionboxd.service', 'onionbox-web.service', 'onionbox-dnsmasq.service']) {
    const plan = planUnit(unitText(name), { name, pathMap, specifiers: { d: '/w/creds' } });
    t.same(plan.binds, [], `${name}: no bind`);
    t.notOk(commandArgv(plan, plan.main).includes('unshare'), `${name}: no mount namespace`);
  }
  const unit = (binds: string) => `[Service]\nExecStart=/bin/true\nBindReadOnlyPaths=${binds}\n`;
  t.same(planUnit(unit('-/run/onionbox/x /etc/a:/etc/b:norbind'), { name: 'u', pathMap }).binds, [
    { source: '/w/run/x', dest: '/w/run/x', optional: true },
    { source: '/etc/a', dest: '/etc/b', optional: false },
  ]);
  for (const bad of ['relative:/etc/x', '/etc/a:/etc/b:bogus', '/etc/a:../b', '/etc/a:/etc/b:rbind:x']) {
    t.throws(() => planUnit(unit(bad), { name: 'u', pathMap }), /BindReadOnlyPaths/, bad);
  }
  const privileged = planUnit('[Service]\nExecStart=+/bin/true\nBindReadOnlyPaths=/etc/a\n', {
    name: 'p',
    pathMap,
  });
  t.same(commandArgv(privileged, privileged.main), ['/bin/true'], '`+`: no namespacing, as systemd');
});

t.test('setpriv arguments: groups, capabilities and bounding set as systemd sets them', async (t) => {
  t.same(
    setprivArgs({
      user: 'onionbox',
      group: undefined,
      supplementaryGroups: ['debian-tor'],
      ambientCaps: ['net_admin', 'net_raw'],
      boundingSet: ['net_admin', 'net_raw'],
      noNewPrivileges: false,
    }),
    [
      'setpriv',
      '--reuid=onionbox',
      '--regid=onionbox',
      '--groups=onionbox,debian-tor',
      '--inh-caps=-all,+net_admin,+net_raw',
      '--ambient-caps=-all,+net_admin,+net_raw',
      '--bounding-set=-all,+net_admin,+net_raw',
      '--',
    ],
  );
  t.same(
    setprivArgs({
      user: 'debian-tor',
      group: undefined,
      supplementaryGroups: [],
      ambientCaps: [],
      boundingSet: [],
      noNewPrivileges: true,
    }),
    [
      'setpriv',
      '--reuid=debian-tor',
      '--regid=debian-tor',
      '--init-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
    ],
    'no capabilities at all: an empty bounding set',
  );
  t.same(
    setprivArgs({
      supplementaryGroups: [],
      ambientCaps: [],
      boundingSet: null,
      noNewPrivileges: false,
    }),
    [],
    'root without restrictions: no setpriv',
  );
});

t.test('a small unit: prefixes, quoting, Environment, Restart, directories', async (t) => {
  const text = [
    '[Unit]',
    'Description=x',
    '[Service]',
    'ExecStartPre=-/bin/false',
    'ExecStartPre=/bin/true "a b"',
    "ExecStart=/opt/onionbox/bin/x --dir /var/lib/onionbox/sub 'q r'",
    'Environment=A=1 "B=two words"',
    'Environment=C=3',
    'User=debian-tor',
    'SupplementaryGroups=onionbox',
    'Restart=on-failure',
    'RestartSec=0.5',
    'RuntimeDirectory=onionbox-tor',
    'RuntimeDirectoryMode=0750',
  ].join('\n');
  const plan = planUnit(text, { name: 'x', pathMap: { ...pathMap, '/run': '/w/runroot' } });
  t.same(plan.pre[0], { argv: ['/bin/false'], ignoreFailure: true, privileged: false });
  t.same(plan.pre[1]?.argv, ['/bin/true', 'a b']);
  t.same(plan.main.argv, ['/w/checkout/bin/x', '--dir', '/w/box/sub', 'q r']);
  t.same(plan.env, { A: '1', B: 'two words', C: '3' });
  t.same(unitEnvironment(plan, { D: '4' }).PATH?.split(':').includes('/usr/bin'), true);
  t.equal(unitEnvironment(plan, { D: '4' }).D, '4');
  t.equal(plan.restartMs, 500);
  t.same(plan.directories, [{ kind: 'runtime', path: '/w/runroot/onionbox-tor', mode: 0o750 }]);
  t.same(plan.credentials.boundingSet, null);
  t.throws(() => planUnit('[Service]\nExecStart=/bin/x $HOME', { name: 'x', pathMap }), /expansion/);
  t.throws(() => planUnit('[Service]\nExecStart=x', { name: 'x', pathMap }), /absolute/);
  t.throws(
    () => planUnit('[Service]\nExecStart=/bin/x\nRestart=on-abort', { name: 'x', pathMap }),
    /Restart/,
  );
  t.throws(() => planUnit('[Service]\nExecStart=!/bin/x', { name: 'x', pathMap }), /prefix/);
  t.throws(() =>
    planUnit('[Service]\nExecStart=/bin/x\nAmbientCapabilities=NET_ADMIN', { name: 'x', pathMap }),
  );
});

t.test('paths map at a boundary, the longest prefix first', async (t) => {
  t.equal(mapPath('/var/lib/onionbox', pathMap), '/w/box');
  t.equal(mapPath('/var/lib/onionboxes', pathMap), '/var/lib/onionboxes');
  t.equal(mapPath('/var/lib/tor/x', pathMap), '/w/tor-data/x');
  t.equal(mapPath('relative', pathMap), 'relative');
  t.same(splitWords(' a  "b c" \'d\' '), ['a', 'b c', 'd']);
  t.same(
    splitWords('--conf-file=%d/dnsmasq.conf', { d: '/cred' }),
    ['--conf-file=/cred/dnsmasq.conf'],
    '%d when given',
  );
  t.throws(() => splitWords('-P %t/x.pid', { d: '/cred' }), 'a specifier not given is refused');
});

t.test('Restart= decides from the exit', async (t) => {
  t.equal(shouldRestart('always', 0, null), true);
  t.equal(shouldRestart('on-failure', 0, null), false);
  t.equal(shouldRestart('on-failure', 1, null), true);
  t.equal(shouldRestart('on-failure', null, 'SIGKILL'), true);
  t.equal(shouldRestart('no', 1, null), false);
});

t.test(
  'startUnit: Restart=on-failure restarts after RestartSec until stopped; a failing pre without - fails',
  async (t) => {
    const spawned: string[][] = [];
    const spawnOne = (_name: string, argv: string[]) => {
      spawned.push(argv);
      const child = spawn(argv[0] ?? '', argv.slice(1), { stdio: 'ignore' });
      return { pid: child.pid ?? 0, child };
    };
    const plan = planUnit('[Service]\nExecStart=/bin/false\nRestart=on-failure\nRestartSec=0.05', {
      name: 'x',
      pathMap,
    });
    const unit = startUnit(plan, spawnOne);
    await unit.started;
    for (let i = 0; i < 100 && unit.starts() < 3; i++) await new Promise((r) => setTimeout(r, 20));
    unit.stop();
    t.ok(unit.starts() >= 3, `restarted (${unit.starts()} starts)`);
    const settled = unit.starts();
    await new Promise((r) => setTimeout(r, 200));
    t.equal(unit.starts(), settled, 'no start after stop()');

    const once = planUnit('[Service]\nExecStart=/bin/false\nRestart=no', { name: 'y', pathMap });
    const u2 = startUnit(once, spawnOne);
    await u2.started;
    await new Promise((r) => setTimeout(r, 200));
    t.equal(u2.starts(), 1, 'Restart=no: started once');

    const pre = planUnit('[Service]\nExecStartPre=/bin/false\nExecStart=/bin/true', { name: 'z', pathMap });
    await t.rejects(startUnit(pre, spawnOne).started, /ExecStartPre \/bin\/false failed/);
  },
);
