/**
 * sd_notify from onionboxd's main process itself (firmware/lib/sd-notify.ts), against a real Unix datagram
 * NOTIFY_SOCKET that reads each sender's PID from the kernel (SCM_CREDENTIALS), as systemd does for
 * NotifyAccess=main.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { closeNotifySocket, createSdNotifier } from '../../firmware/lib/sd-notify.js';

t.teardown(closeNotifySocket);

import { tmpDir } from '../helpers/tmp.js';

interface Datagram {
  /** The sender's PID, from the kernel's credentials. */
  pid: number;
  /** The assignments, newline-separated in the datagram, joined with | here. */
  text: string;
}

/** A real NOTIFY_SOCKET served by python3 with SO_PASSCRED: each datagram with its sender's PID. */
async function notifySocket(t: Test, path: string): Promise<Datagram[]> {
  const py = spawn('python3', [
    '-c',
    [
      'import socket,struct,sys',
      's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
      's.setsockopt(socket.SOL_SOCKET,socket.SO_PASSCRED,1)',
      's.bind(sys.argv[1])',
      'print("bound",flush=True)',
      'while True:',
      '  d,anc,_,_=s.recvmsg(4096,socket.CMSG_SPACE(12))',
      '  pid=0',
      '  for lvl,typ,data in anc:',
      '    if lvl==socket.SOL_SOCKET and typ==socket.SCM_CREDENTIALS: pid=struct.unpack("iII",data[:12])[0]',
      '  print(str(pid)+" "+d.decode().replace("\\n","|"),flush=True)',
    ].join('\n'),
    path,
  ]);
  t.teardown(() => {
    py.kill();
  });
  const got: Datagram[] = [];
  py.stdout.setEncoding('utf8');
  await new Promise<void>((resolve) => {
    py.stdout.on('data', (c: string) => {
      for (const l of c.split('\n').filter(Boolean)) {
        if (l === 'bound') {
          resolve();
          continue;
        }
        const at = l.indexOf(' ');
        const text = l.slice(at + 1);
        if (text !== 'BARRIER=1') got.push({ pid: Number(l.slice(0, at)), text });
      }
    });
  });
  return got;
}

/** A spy `systemd-notify` first on PATH: records each call; the notifier must never run it. */
function spyNotify(t: Test): { path: string; calls: () => string[] } {
  const dir = tmpDir(t, 'onionbox-spy-');
  const callsFile = join(dir, 'calls');
  writeFileSync(join(dir, 'systemd-notify'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${callsFile}'\n`, {
    mode: 0o755,
  });
  return {
    path: `${dir}${delimiter}${process.env.PATH ?? '/usr/bin:/bin'}`,
    calls: () => (existsSync(callsFile) ? readFileSync(callsFile, 'utf8').split('\n').filter(Boolean) : []),
  };
}

t.test('ready/status/stopping/watchdog reach a real NOTIFY_SOCKET from the main process', async (t) => {
  const path = join(tmpDir(t), 'notify.sock');
  const got = await notifySocket(t, path);
  const spy = spyNotify(t);
  const sd = createSdNotifier({ PATH: spy.path, NOTIFY_SOCKET: path, WATCHDOG_USEC: '2000000' });
  await sd.ready('routing');
  await sd.status('bad\nstatus');
  const stopWatchdog = sd.startWatchdog();
  await sleep(1300);
  stopWatchdog();
  await sd.stopping();
  await sleep(200);
  t.equal(got[0]?.text, 'READY=1|STATUS=routing');
  t.equal(got[1]?.text, 'STATUS=status unavailable', 'a status with a newline is not passed on');
  t.ok(
    got.some((d) => d.text === 'WATCHDOG=1'),
    'watchdog keep-alive sent',
  );
  t.equal(got.at(-1)?.text, 'STOPPING=1');
  t.same(
    [...new Set(got.map((d) => d.pid))],
    [process.pid],
    'every datagram from the main process (as NotifyAccess=main requires)',
  );
  t.same(spy.calls(), [], 'no helper process (systemd-notify) is run');
});

t.test('NotifyAccess=main: the watchdog is kept alive by the main PID, never by a child', async (t) => {
  const path = join(tmpDir(t), 'notify.sock');
  const got = await notifySocket(t, path);
  // what systemd does with NotifyAccess=main: only datagrams whose sender is the main PID count
  const accepted = () => got.filter((d) => d.pid === process.pid && d.text === 'WATCHDOG=1');
  const rejected = () => got.filter((d) => d.pid !== process.pid);
  const sd = createSdNotifier({ NOTIFY_SOCKET: path, WATCHDOG_USEC: '2000000' });
  const stop = sd.startWatchdog();
  await sleep(2300);
  stop();
  t.ok(accepted().length >= 2, `${accepted().length} keep-alives from the main PID`);
  t.same(rejected(), [], 'none from another process');
  // a child speaking for the daemon (what the old systemd-notify helper did, and what an exploited child
  // could do): the kernel names the child, so NotifyAccess=main would drop it
  const child = spawnSync('python3', [
    '-c',
    'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.sendto(b"WATCHDOG=1",sys.argv[1])',
    path,
  ]);
  t.equal(child.status, 0);
  await sleep(200);
  t.equal(rejected().length, 1, "the child's WATCHDOG=1 arrives under the child's PID");
  t.not(rejected()[0]?.pid, process.pid);
});

t.test('without NOTIFY_SOCKET (or with an abstract one) every call is a no-op', async (t) => {
  for (const socket of [undefined, '', '@/org/freedesktop/systemd1/notify']) {
    const sent: string[] = [];
    const sd = createSdNotifier(
      { WATCHDOG_USEC: '2000000', ...(socket === undefined ? {} : { NOTIFY_SOCKET: socket }) },
      async (_p, m) => {
        sent.push(m);
      },
    );
    await sd.ready('x');
    await sd.status('x');
    await sd.stopping();
    const stop = sd.startWatchdog();
    await sleep(1300); // longer than one watchdog interval (1 s)
    stop();
    t.same(sent, [], `nothing sent (NOTIFY_SOCKET ${JSON.stringify(socket)})`);
  }
});
