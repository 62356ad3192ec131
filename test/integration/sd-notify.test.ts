import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { createSdNotifier } from '../../firmware/lib/sd-notify.js';
import { tmpDir } from '../helpers/tmp.js';

/** A real NOTIFY_SOCKET (Unix datagram) served by python3, printing each datagram on a line. */
async function notifySocket(t: Test, path: string) {
  const py = spawn('python3', [
    '-c',
    'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\nwhile True:\n  d=s.recv(4096)\n  print(d.decode().replace("\\n","|"),flush=True)',
    path,
  ]);
  t.teardown(() => {
    py.kill();
  });
  const lines: string[] = [];
  py.stdout.setEncoding('utf8');
  await new Promise<void>((resolve) => {
    py.stdout.on('data', (c: string) => {
      for (const l of c.split('\n').filter(Boolean)) {
        if (l === 'bound') resolve();
        else if (l !== 'BARRIER=1') lines.push(l); // systemd-notify's own synchronisation datagram
      }
    });
  });
  return lines;
}

/**
 * A spy `systemd-notify` first on PATH: a script that records each call's arguments (a line each) in a
 * file of the test's directory, then hands over to the real systemd-notify when `passOn` is set.
 */
function spyNotify(t: Test, passOn: boolean): { path: string; calls: () => string[] } {
  const dir = tmpDir(t, 'onionbox-spy-');
  const callsFile = join(dir, 'calls');
  const hostPath = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  const real = hostPath
    .split(delimiter)
    .map((d) => join(d, 'systemd-notify'))
    .find((f) => existsSync(f));
  if (passOn && !real) throw new Error('no systemd-notify on PATH to pass on to');
  writeFileSync(
    join(dir, 'systemd-notify'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${callsFile}'\n${passOn ? `exec '${real}' "$@"` : 'exit 0'}\n`,
    { mode: 0o755 },
  );
  return {
    path: `${dir}${delimiter}${hostPath}`,
    calls: () => (existsSync(callsFile) ? readFileSync(callsFile, 'utf8').split('\n').filter(Boolean) : []),
  };
}

t.test('ready/status/stopping/watchdog reach a real NOTIFY_SOCKET through systemd-notify', async (t) => {
  const path = join(tmpDir(t), 'notify.sock');
  const got = await notifySocket(t, path);
  const spy = spyNotify(t, true);
  const sd = createSdNotifier({
    ...process.env,
    PATH: spy.path,
    NOTIFY_SOCKET: path,
    WATCHDOG_USEC: '2000000',
  });
  await sd.ready('routing');
  await sd.status('bad\nstatus');
  const stopWatchdog = sd.startWatchdog();
  await new Promise((r) => setTimeout(r, 1300));
  stopWatchdog();
  await sd.stopping();
  await new Promise((r) => setTimeout(r, 200));
  t.match(got[0], /READY=1\|STATUS=routing/);
  t.match(got[1], /\|STATUS=status unavailable$/, 'a status with a newline is not passed on');
  t.ok(
    got.some((l) => l.endsWith('|WATCHDOG=1')),
    'watchdog keep-alive sent',
  );
  t.match(got.at(-1), /\|STOPPING=1$/);
  for (const l of got)
    t.match(l, new RegExp(`^MAINPID=${process.pid}\\|`), 'about onionboxd, not the helper');
  const calls = spy.calls();
  t.match(
    calls[0],
    new RegExp(`^--pid=${process.pid} READY=1 STATUS=routing$`),
    'systemd-notify found on PATH',
  );
  t.match(calls.at(-1), /STOPPING=1$/);
});

t.test('without NOTIFY_SOCKET every call is a no-op: systemd-notify is never run', async (t) => {
  for (const socket of [undefined, '']) {
    const spy = spyNotify(t, false);
    const sd = createSdNotifier({
      PATH: spy.path,
      WATCHDOG_USEC: '2000000',
      ...(socket === undefined ? {} : { NOTIFY_SOCKET: socket }),
    });
    await sd.ready('x');
    await sd.status('x');
    await sd.stopping();
    const stop = sd.startWatchdog();
    await sleep(1300); // longer than one watchdog interval (1 s)
    stop();
    t.same(spy.calls(), [], `nothing spawned (NOTIFY_SOCKET ${socket === undefined ? 'unset' : 'empty'})`);
  }
});
