/**
 * SupervisedChild (firmware/net/supervised-child.ts) with real short-lived children (`node -e`): ready
 * on a matching line, the failures a start can end in, restart with backoff after a crash, kill/stop
 * end exactly the PID it started and never count as a crash.
 */
import t from 'tap';
import { type ChildFailure, SupervisedChild } from '../../firmware/net/supervised-child.js';
import { alive, until } from '../helpers/child.js';

class Failed extends Error {
  constructor(
    readonly kind: ChildFailure,
    detail: string,
    readonly lines: readonly string[],
  ) {
    super(`${kind}: ${detail}`);
  }
}

/** A child running `script` under node; `ready` on stderr unless said otherwise. */
function child(script: string, extra: Partial<ConstructorParameters<typeof SupervisedChild>[0]> = {}) {
  const events: string[] = [];
  const c = new SupervisedChild({
    command: () => [process.execPath, ['-e', script]],
    output: 'stderr',
    ready: /^READY$/,
    startTimeoutMs: 5000,
    backoffMs: { initial: 20, max: 80 },
    failure: (kind, detail, lines) => new Failed(kind, detail, lines),
    onReady: () => events.push('ready'),
    onCrash: (why) => events.push(`crash ${why}`),
    onRestartFailed: () => events.push('restart failed'),
    ...extra,
  });
  return { c, events };
}

async function failure(p: Promise<unknown>): Promise<Failed> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Failed) return e;
    throw e;
  }
  throw new Error('resolved');
}

const STAY = 'setInterval(() => {}, 1000);';

t.test('ready on the matching line; kill ends that PID and is not a crash', async (t) => {
  const { c, events } = child(`console.error('starting'); console.error('READY'); ${STAY}`);
  await c.launch();
  const pid = c.pid ?? 0;
  t.ok(pid > 0 && alive(pid), 'running');
  t.ok(c.running);
  t.same(c.lines, ['starting', 'READY']);
  await c.kill();
  t.notOk(alive(pid), 'gone');
  t.notOk(c.running);
  t.equal(c.pid, null);
  await new Promise((r) => setTimeout(r, 100));
  t.same(events, ['ready'], 'no crash, no restart');
  t.equal(c.restarts, 0);
  await c.kill(); // nothing running: fine
});

t.test('readiness on stdout only counts with output "both"', async (t) => {
  const stdoutOnly = `console.log('READY'); ${STAY}`;
  const a = child(stdoutOnly, { startTimeoutMs: 300 });
  const e = await failure(a.c.launch());
  t.equal(e.kind, 'timeout', 'stdout ignored');
  await until(() => !a.c.running);
  const b = child(stdoutOnly, { output: 'both' });
  await b.c.launch();
  t.ok(b.c.running);
  await b.c.stop();
});

t.test('a start fails: exit before ready, silence past the timeout, a missing binary', async (t) => {
  const exited = await failure(child(`console.error('bad config line 3'); process.exit(3)`).c.launch());
  t.equal(exited.kind, 'exited');
  t.match(exited.message, /exited \(3\)/);
  t.same(exited.lines, ['bad config line 3'], 'its last lines for the message');

  const silent = child(STAY, { startTimeoutMs: 200 });
  const timeout = await failure(silent.c.launch());
  t.equal(timeout.kind, 'timeout');
  await until(() => !silent.c.running);
  t.pass('the silent child was ended');

  const missing = new SupervisedChild({
    command: () => ['/nonexistent/daemon', []],
    output: 'stderr',
    ready: /x/,
    startTimeoutMs: 2000,
    backoffMs: { initial: 10, max: 10 },
    failure: (kind, detail, lines) => new Failed(kind, detail, lines),
  });
  const spawnErr = await failure(missing.launch());
  t.equal(spawnErr.kind, 'spawn');
  t.match(spawnErr.message, /ENOENT/);
});

t.test('a crash after ready restarts it with backoff; stop ends supervision', async (t) => {
  // ready, then dies 100 ms later: every run crashes
  const { c, events } = child(`console.error('READY'); setTimeout(() => process.exit(1), 100)`);
  await c.launch();
  const first = c.pid;
  await until(() => c.restarts >= 2 && c.running);
  t.not(c.pid, first, 'a new process');
  t.ok(events.filter((e) => e === 'crash exited (1)').length >= 2, 'each crash reported');
  await c.stop();
  const restarts = c.restarts;
  await new Promise((r) => setTimeout(r, 400));
  t.equal(c.restarts, restarts, 'no restart after stop');
  t.notOk(c.running);
});

t.test('a restart that fails is retried', async (t) => {
  let runs = 0;
  const events: string[] = [];
  const c = new SupervisedChild({
    // first run: ready then crash; second: fails before ready; third: ready and stays
    command: () => {
      runs++;
      const script =
        runs === 1
          ? `console.error('READY'); setTimeout(() => process.exit(1), 50)`
          : runs === 2
            ? 'process.exit(2)'
            : `console.error('READY'); ${STAY}`;
      return [process.execPath, ['-e', script]];
    },
    output: 'stderr',
    ready: /^READY$/,
    startTimeoutMs: 5000,
    backoffMs: { initial: 10, max: 40 },
    failure: (kind, detail, lines) => new Failed(kind, detail, lines),
    onRestartFailed: () => events.push('restart failed'),
  });
  t.teardown(() => c.stop());
  await c.launch();
  await until(() => runs >= 3 && c.running);
  t.same(events, ['restart failed']);
  t.equal(c.restarts, 2);
});

t.test('a long line is cut to maxLineLength, and only the last 20 lines are kept', async (t) => {
  const { c } = child(
    `for (let i = 0; i < 30; i++) console.error('line ' + i); console.error('x'.repeat(500)); console.error('READY'); ${STAY}`,
    { maxLineLength: 50 },
  );
  await c.launch();
  t.equal(c.lines.length, 20);
  t.equal(c.lines.at(-2)?.length, 50);
  t.equal(c.lines[0], 'line 12');
  await c.stop();
});
