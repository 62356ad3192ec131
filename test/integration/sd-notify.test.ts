import { spawn } from 'node:child_process';
import { join } from 'node:path';
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

t.test('ready/status/stopping/watchdog reach a real NOTIFY_SOCKET through systemd-notify', async (t) => {
  const path = join(tmpDir(t), 'notify.sock');
  const got = await notifySocket(t, path);
  const sd = createSdNotifier({ ...process.env, NOTIFY_SOCKET: path, WATCHDOG_USEC: '2000000' });
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
});

t.test('without NOTIFY_SOCKET every call is a no-op', async (t) => {
  const sd = createSdNotifier({}, '/nonexistent/systemd-notify');
  await sd.ready('x');
  await sd.status('x');
  await sd.stopping();
  const stop = sd.startWatchdog();
  stop();
  t.pass('no error, nothing spawned');
});
