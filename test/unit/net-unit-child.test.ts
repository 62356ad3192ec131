/**
 * How onionboxd sees a helper unit it cannot signal (firmware/net/unit-child.ts): a PID file's number,
 * whether that process runs (also when it is another user's), and the wait for a restart: a new running
 * PID that keeps running, never the one from before the new config, and a timeout when none comes.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parsePidFile, pidRuns, UnitChild, UnitStartTimeout } from '../../firmware/net/unit-child.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('PID files: one decimal number, nothing else', async (t) => {
  t.equal(parsePidFile('1234\n'), 1234);
  t.equal(parsePidFile('  77 '), 77);
  for (const bad of ['', '0', '-1', '12 34', '0x10', '12\n13\n', 'abc', '99999999999', '4194305']) {
    t.equal(parsePidFile(bad), null, JSON.stringify(bad));
  }
});

t.test('a PID runs when signal 0 reaches it, or is refused (another user)', async (t) => {
  t.ok(pidRuns(process.pid));
  // PID 1 is root's: from a non-root test this is EPERM, which still means "runs"
  t.ok(pidRuns(1));
  const c = spawn('true');
  await new Promise((r) => c.once('exit', r));
  t.notOk(pidRuns(c.pid ?? 0), 'an exited child does not run');
});

t.test('waitForStart: a new PID that keeps running; never the old one; a timeout', async (t) => {
  const dir = tmpDir(t);
  const pidFile = join(dir, 'x.pid');
  const unit = new UnitChild({ pidFile, startTimeoutMs: 1500, settleMs: 100, pollMs: 20 });
  t.equal(await unit.pid(), null, 'no file: nothing runs');

  const old = spawn('sleep', ['30']);
  t.teardown(() => old.kill());
  writeFileSync(pidFile, `${old.pid}\n`);
  t.equal(await unit.pid(), old.pid);
  const late = await unit.waitForStart(old.pid ?? null).catch((e: unknown) => e);
  t.ok(late instanceof UnitStartTimeout, 'the old process is not a restart');

  const fresh = spawn('sleep', ['30']);
  t.teardown(() => fresh.kill());
  setTimeout(() => writeFileSync(pidFile, `${fresh.pid}\n`), 200);
  t.equal(await unit.waitForStart(old.pid ?? null), fresh.pid, 'the new one, once it stays up');

  // a process that is gone again within the settle time does not count
  const brief = spawn('sleep', ['0.05']);
  writeFileSync(pidFile, `${brief.pid}\n`);
  const r = await unit.waitForStart(fresh.pid ?? null).catch((e: unknown) => e);
  t.ok(r instanceof UnitStartTimeout, 'one that exits at once is no start');
});
