/**
 * The private network tears down its own tors when the process using it is interrupted (SIGINT) before
 * the network is even ready, and leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('SIGINT to the harness process kills every tor it started', async (t) => {
  const dir = tmpDir(t, 'obx-privnet-int-');
  const child = spawn(
    process.execPath,
    [...nodeTsArgs(), join(root, 'scripts/privnet/cli.ts'), '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code, signal) => r(code ?? (signal ? 128 : null))),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const nicks = ['auth0', 'auth1', 'auth2', 'middle0', 'middle1', 'exit0'];
  const pidFiles = nicks.map((n) => join(dir, n, 'pid'));
  const deadline = Date.now() + 60_000;
  while (!pidFiles.every((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== '')) {
    if (Date.now() > deadline) throw new Error('relays did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const pids = pidFiles.map((f) => Number(readFileSync(f, 'utf8').trim()));
  t.ok(pids.every(alive), 'all six tors run');
  child.kill('SIGINT');
  await exited;
  // SIGKILL is synchronous from the exit handler; give the kernel a moment to reap.
  const gone = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
  t.same(pids.filter(alive), [], 'no tor survives the interrupted harness');
});
