/**
 * The root side of the trial (firmware/update/trial-root.ts) against Debian's real `rauc`: its D-Bus
 * service on a private bus, the image's two root slots, RAUC's central status file with slot B's install,
 * and a custom boot backend (a shell script keeping U-Boot's BOOT_x_LEFT in files) standing in for
 * U-Boot's environment. Only the reboot is recorded instead of done. A "boot" is RAUC's service restarted
 * with --override-boot-slot (the kernel's rauc.slot= on a box).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { exec } from '../../firmware/lib/exec.js';
import type { TrialRootDeps } from '../../firmware/update/trial-root.js';
import { recordGood, trialCheck } from '../../firmware/update/trial-root.js';
import { rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const skip = rootSkipReason(['rauc', 'dbus-daemon']);

const B_INSTALL = `[slot.rootfs.1]
bundle.compatible=onionbox-rpi-arm64
bundle.version=1.1.0
status=ok
installed.timestamp=2026-12-07T12:40:11Z
installed.count=1
`;

interface Rig {
  dir: string;
  env: NodeJS.ProcessEnv;
  log: string[];
  reboots: string[][];
  deps(): TrialRootDeps;
  boot(slot: 'A' | 'B'): Promise<void>;
  left(slot: 'A' | 'B'): string;
}

async function rig(t: Parameters<typeof tmpDir>[0]): Promise<Rig> {
  const dir = tmpDir(t, 'obx-trial-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'rauc')); // RAUC's data directory: /var/lib/rauc on the data partition
  for (const s of ['a.img', 'b.img']) {
    writeFileSync(join(dir, s), '');
    truncateSync(join(dir, s), 1024 * 1024);
  }
  writeFileSync(join(dir, 'left-A'), '3\n');
  writeFileSync(join(dir, 'left-B'), '3\n');
  writeFileSync(join(dir, 'primary'), 'B\n');
  // RAUC's custom bootloader backend: good = tries left, as RAUC's U-Boot backend reads BOOT_x_LEFT
  const backend = join(dir, 'backend');
  writeFileSync(
    backend,
    `#!/bin/sh
d=${dir}
case "$1" in
  get-primary) cat "$d/primary" ;;
  set-primary) echo "$2" > "$d/primary"; echo 3 > "$d/left-$2" ;;
  get-state) if [ "$(cat "$d/left-$2")" -gt 0 ]; then echo good; else echo bad; fi ;;
  set-state) if [ "$3" = good ]; then echo 3 > "$d/left-$2"; else echo 0 > "$d/left-$2"; fi ;;
  *) exit 1 ;;
esac
`,
    { mode: 0o755 },
  );
  writeFileSync(
    join(dir, 'system.conf'),
    `[system]
compatible=onionbox-rpi-arm64
bootloader=custom
data-directory=${dir}/rauc

[handlers]
bootloader-custom-backend=${backend}

[slot.rootfs.0]
device=${dir}/a.img
type=ext4
bootname=A

[slot.rootfs.1]
device=${dir}/b.img
type=ext4
bootname=B
`,
  );
  const bus: ChildProcess = spawn(
    'dbus-daemon',
    ['--session', '--nofork', '--nopidfile', '--print-address=1'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  t.teardown(() => {
    bus.kill('SIGTERM');
  });
  const address = await new Promise<string>((resolve, reject) => {
    bus.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim()));
    bus.once('exit', () => reject(new Error('dbus-daemon ended')));
  });
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address, DBUS_STARTER_BUS_TYPE: 'session' };
  let service: ChildProcess | null = null;
  t.teardown(() => {
    service?.kill('SIGTERM');
  });
  const log: string[] = [];
  const reboots: string[][] = [];
  const r: Rig = {
    dir,
    env,
    log,
    reboots,
    left: (slot) => readFileSync(join(dir, `left-${slot}`), 'utf8').trim(),
    deps: () => ({
      recordPath: join(dir, 'rauc', 'onionbox-good.json'),
      log: (l) => log.push(l),
      now: () => new Date('2026-12-07T13:00:00Z'),
      run: async (cmd, args) => {
        if (cmd === '/usr/bin/systemctl') {
          reboots.push([...args]);
          return { ok: true, code: 0, stdout: '', stderr: '' };
        }
        return exec(cmd, args, { env, timeoutMs: 30_000 });
      },
    }),
    async boot(slot) {
      if (service) {
        const old = service;
        await new Promise((res) => {
          old.once('exit', res);
          old.kill('SIGTERM');
        });
      }
      service = spawn(
        'rauc',
        ['service', `--conf=${join(dir, 'system.conf')}`, `--override-boot-slot=${slot}`],
        {
          env,
          stdio: 'ignore',
        },
      );
      for (let i = 0; i < 200; i++) {
        const s = await exec('rauc', ['status', '--output-format=json'], { env });
        if (s.ok && JSON.parse(s.stdout).booted === slot) return;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`rauc service did not come up booted from ${slot}`);
    },
  };
  return r;
}

t.test(
  'v1 on A marked good, v2 installed on B never marked good: B is marked bad, the box reboots',
  { skip },
  async (t) => {
    const r = await rig(t);
    // A, the flashed system, reached routing: the mark-good oneshot records it
    await r.boot('A');
    await recordGood(r.deps());
    t.same(JSON.parse(readFileSync(join(r.dir, 'rauc', 'onionbox-good.json'), 'utf8')).slots, {
      A: { install: null, markedAt: '2026-12-07T13:00:00.000Z' },
    });
    // RAUC wrote B (its central status holds the install), B is primary, the box boots it on trial
    writeFileSync(join(r.dir, 'rauc', 'central.raucs'), B_INSTALL);
    writeFileSync(join(r.dir, 'left-B'), '2\n'); // U-Boot took one try
    await r.boot('B');
    const res = await trialCheck(r.deps());
    t.match(res, { verdict: { action: 'roll-back', slot: 'B', to: 'A' }, markedBad: true, rebooting: true });
    t.equal(r.left('B'), '0', "RAUC's mark-bad took B's tries: U-Boot boots A");
    t.equal(r.left('A'), '3');
    t.same(r.reboots, [['--no-block', 'reboot']]);
    t.match(
      r.log.join('\n'),
      /slot B \(version 1\.1\.0 of 2026-12-07T12:40:11Z, install #1\) was not marked good/,
    );
    // back on A: an ordinary boot of a good slot
    await r.boot('A');
    const back = await trialCheck(r.deps());
    t.match(back, { verdict: { action: 'keep', reason: 'never-installed' }, rebooting: false });
    t.equal(r.reboots.length, 1);
  },
);

t.test(
  'v2 on B marked good once: later boots are never trials, even when it does not route',
  { skip },
  async (t) => {
    const r = await rig(t);
    await r.boot('A');
    await recordGood(r.deps());
    writeFileSync(join(r.dir, 'rauc', 'central.raucs'), B_INSTALL);
    await r.boot('B');
    await recordGood(r.deps()); // B reached routing on its trial
    const path = join(r.dir, 'rauc', 'onionbox-good.json');
    const first = readFileSync(path, 'utf8');
    t.match(JSON.parse(first).slots.B, { install: { timestamp: '2026-12-07T12:40:11Z', count: 1 } });
    await r.boot('B');
    await recordGood({ ...r.deps(), now: () => new Date('2026-12-08T09:00:00Z') }); // routes again
    t.equal(readFileSync(path, 'utf8'), first, 'the same install is not written again');
    await r.boot('B'); // a later boot where tor cannot connect (a censored network)
    const res = await trialCheck(r.deps());
    t.match(res, { verdict: { action: 'keep', reason: 'marked-good' }, markedBad: false, rebooting: false });
    t.equal(r.left('B'), '3');
    t.same(r.reboots, []);
  },
);

t.test('in doubt nothing changes: an unreadable record, RAUC unreachable', { skip }, async (t) => {
  const r = await rig(t);
  writeFileSync(join(r.dir, 'rauc', 'central.raucs'), B_INSTALL);
  await r.boot('B');
  writeFileSync(join(r.dir, 'rauc', 'onionbox-good.json'), '{"format":1,"slots":{"A":');
  await t.rejects(trialCheck(r.deps()), { code: 'OBX_ERR_UPDATE_GOOD_RECORD_INVALID' });
  t.equal(r.left('B'), '3');
  t.same(r.reboots, []);
  const noBus: TrialRootDeps = {
    ...r.deps(),
    run: (cmd, args) =>
      exec(cmd, args, { env: { ...r.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' } }),
  };
  await t.rejects(trialCheck(noBus), {
    code: 'OBX_ERR_UPDATE_SLOT_STATUS_INVALID',
    message: /rauc status failed/,
  });
  t.same(r.reboots, []);
});
