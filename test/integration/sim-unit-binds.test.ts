/**
 * tor's private resolv.conf as systemd gives it (issue 21): onionbox-tor.service's own BindReadOnlyPaths=
 * line, run by the simulator's unit runner the way systemd runs it (scripts/sim/units.ts: a mount
 * namespace of the unit's own, the file bound over /etc/resolv.conf read-only, then the credentials).
 * Checked from inside the running unit's mount namespace (nsenter): it reads the WAN's resolvers that
 * onionboxd wrote, sees every later rewrite made in place (rewriteInPlace), would never see a rename
 * (the reason for the in-place write), and cannot write the file; the host's /etc/resolv.conf is untouched.
 * Nothing is sent anywhere: no network at all.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { atomicWriteFile, rewriteInPlace } from '../../firmware/lib/atomic-write.js';
import { renderResolvConf } from '../../firmware/net/wan-lease.js';
import { TOR_RESOLV_SIZE } from '../../firmware/phases/network.js';
import { parseUnitLines } from '../../scripts/sim/unit-file.js';
import { planUnit, startUnit } from '../../scripts/sim/units.js';
import { rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const UNIT = new URL('../../firmware/system/systemd/onionbox-tor.service', import.meta.url);

/** What the unit's process sees at /etc/resolv.conf (read inside its mount namespace). */
function seen(pid: number): string {
  const r = spawnSync('nsenter', ['-t', String(pid), '-m', 'cat', '/etc/resolv.conf'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nsenter: ${r.stderr}`);
  return r.stdout;
}

t.test(
  "tor's unit sees the WAN's resolvers over /etc/resolv.conf, and nobody else does",
  { skip: rootSkipReason(['unshare', 'nsenter', 'mount', 'setpriv']) },
  async (t) => {
    const dir = tmpDir(t);
    const run = join(dir, 'run');
    const file = join(run, 'tor-resolv.conf');
    // onionbox-tor.service's own line, in a unit that only sleeps (tor itself is not needed for this)
    const binds = parseUnitLines(readFileSync(UNIT, 'utf8')).Service?.BindReadOnlyPaths ?? [];
    t.same(binds, ['/run/onionbox/tor-resolv.conf:/etc/resolv.conf']);
    const text = `[Service]\nExecStart=/bin/sleep 300\nUser=debian-tor\nBindReadOnlyPaths=${binds.join(' ')}\n`;
    const plan = planUnit(text, { name: 'resolv-check', pathMap: { '/run/onionbox': run } });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(run, { mode: 0o700 });
    // as onionboxd does at its wan-lease phase: no resolver yet, then the lease's
    await rewriteInPlace(file, renderResolvConf([]), TOR_RESOLV_SIZE);
    const hostBefore = readFileSync('/etc/resolv.conf', 'utf8');
    const unit = startUnit(plan, (_name, argv, env) => {
      const child = spawn(argv[0] ?? '', argv.slice(1), { env, stdio: 'ignore' });
      return { pid: child.pid ?? 0, child };
    });
    await unit.started;
    const main = unit.main();
    if (!main) throw new Error('the unit did not start');
    t.teardown(() => {
      unit.stop();
      main.child.kill('SIGTERM');
    });
    // the mounts come before the command: wait until the process is sleep itself (exec'd, same PID)
    for (let i = 0; i < 500; i++) {
      const comm = spawnSync('cat', [`/proc/${main.pid}/comm`], { encoding: 'utf8' }).stdout.trim();
      if (comm === 'sleep') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    t.equal(readFileSync(`/proc/${main.pid}/comm`, 'utf8').trim(), 'sleep', 'the command runs with its PID');
    t.notMatch(seen(main.pid), /nameserver/, 'before a lease: no resolver at all');

    await rewriteInPlace(file, renderResolvConf(['198.18.0.53']), TOR_RESOLV_SIZE);
    t.match(seen(main.pid), /^nameserver 198\.18\.0\.53$/m, 'the lease, seen through the bind');
    await rewriteInPlace(file, renderResolvConf(['198.18.0.54', '198.18.0.55']), TOR_RESOLV_SIZE);
    const now = seen(main.pid);
    t.match(now, /^nameserver 198\.18\.0\.54$/m, 'a new lease, rewritten in place');
    t.notMatch(now, /198\.18\.0\.53/, 'nothing of the old one');
    t.equal(Buffer.byteLength(now), TOR_RESOLV_SIZE, 'always the same length');

    // what a rename would do: the bind keeps the old inode, so the unit would never see it
    await atomicWriteFile(file, renderResolvConf(['198.18.0.99']), 0o644);
    t.notMatch(seen(main.pid), /198\.18\.0\.99/, 'a renamed file does not reach the unit');

    const writable = spawnSync('nsenter', ['-t', String(main.pid), '-m', 'test', '-w', '/etc/resolv.conf']);
    t.not(writable.status, 0, 'read-only inside the unit (even for root)');
    t.equal(readFileSync('/etc/resolv.conf', 'utf8'), hostBefore, "the host's /etc/resolv.conf is untouched");
    const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8');
    t.notMatch(hostMounts, / \/etc\/resolv\.conf .*tor-resolv/, 'no mount of it outside the unit');
  },
);
