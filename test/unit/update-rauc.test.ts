import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  checkBundlePath,
  parseRaucSignal,
  RaucDbusInstaller,
  REBOOT_REQUEST_FILE,
} from '../../firmware/update/rauc.js';

t.test('gdbus monitor lines: Completed, LastError, Progress; anything else is nothing', async (t) => {
  t.same(parseRaucSignal('/: de.pengutronix.rauc.Installer.Completed (0,)'), {
    kind: 'completed',
    result: 0,
  });
  t.same(parseRaucSignal('/: de.pengutronix.rauc.Installer.Completed (1,)'), {
    kind: 'completed',
    result: 1,
  });
  t.same(
    parseRaucSignal(
      "/: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'LastError': <'Failed to verify bundle: signature isn\\'t valid'>}, @as [])",
    ),
    { kind: 'last-error', message: "Failed to verify bundle: signature isn't valid" },
  );
  t.same(
    parseRaucSignal(
      "/: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'Progress': <(40, 'Copying image to rootfs.1', 2)>}, @as [])",
    ),
    { kind: 'progress', percent: 40, message: 'Copying image to rootfs.1' },
  );
  t.same(
    parseRaucSignal(
      "/: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'Operation': <'installing'>}, @as [])",
    ),
    null,
  );
  t.equal(parseRaucSignal('Monitoring signals on object / owned by de.pengutronix.rauc'), null);
  t.equal(parseRaucSignal('/: de.pengutronix.rauc.Installer.Completed (0,) trailing'), null);
});

t.test('bundle paths: absolute, plain characters only', async (t) => {
  t.equal(
    checkBundlePath('/var/lib/onionbox/updates/1.1.0-onionbox.raucb'),
    '/var/lib/onionbox/updates/1.1.0-onionbox.raucb',
  );
  for (const bad of ['relative.raucb', '/a/../etc/shadow', '/a b', '/a\nb', "/a'b"]) {
    t.throws(() => checkBundlePath(bad), { code: 'OBX_ERR_UPDATE_INSTALL_FAILED' }, JSON.stringify(bad));
  }
});

/** A stand-in gdbus: `monitor` prints its banner, waits for `call`, then prints the scenario's lines. */
function fakeGdbus(t: Test, lines: string[], callExit = 0): { bin: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'obx-gdbus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'lines'), `${lines.join('\n')}\n`);
  const bin = join(dir, 'gdbus');
  writeFileSync(
    bin,
    `#!/bin/sh
D='${dir}'
case "$1" in
monitor)
  printf '%s\\n' "$*" > "$D/monitor-args"
  echo "Monitoring signals on object / owned by de.pengutronix.rauc"
  while [ ! -f "$D/called" ]; do sleep 0.02; done
  cat "$D/lines"
  exec sleep 30 ;;
call)
  for a in "$@"; do printf '%s\\n' "$a"; done > "$D/call-args.tmp"
  mv "$D/call-args.tmp" "$D/called"
  [ ${callExit} -eq 0 ] || { echo "Error: GDBus.Error:org.freedesktop.DBus.Error.AccessDenied: Rejected send message" >&2; exit ${callExit}; }
  echo "()" ;;
esac
`,
  );
  chmodSync(bin, 0o755);
  return { bin, dir };
}

t.test('install: InstallBundle with the path, progress followed, done at Completed 0', async (t) => {
  const { bin, dir } = fakeGdbus(t, [
    "/: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'Progress': <(50, 'Copying image', 1)>}, @as [])",
    '/: de.pengutronix.rauc.Installer.Completed (0,)',
  ]);
  const progress: number[] = [];
  await new RaucDbusInstaller({ gdbus: bin }).install('/data/updates/b.raucb', (p) => progress.push(p));
  t.same(progress, [50]);
  t.same(readFileSync(join(dir, 'called'), 'utf8').trim().split('\n'), [
    'call',
    '--system',
    '--dest',
    'de.pengutronix.rauc',
    '--object-path',
    '/',
    '--method',
    'de.pengutronix.rauc.Installer.InstallBundle',
    '/data/updates/b.raucb',
    '@a{sv} {}',
  ]);
  t.match(
    readFileSync(join(dir, 'monitor-args'), 'utf8'),
    /^monitor --system --dest de\.pengutronix\.rauc --object-path \//,
  );
});

t.test(
  "install: RAUC's LastError is the message when Completed is not 0; a refused call fails at once",
  async (t) => {
    const failing = fakeGdbus(t, [
      "/: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'LastError': <'Compatible mismatch'>}, @as [])",
      '/: de.pengutronix.rauc.Installer.Completed (1,)',
    ]);
    await t.rejects(new RaucDbusInstaller({ gdbus: failing.bin }).install('/data/b.raucb'), {
      code: 'OBX_ERR_UPDATE_INSTALL_FAILED',
      message: /Compatible mismatch/,
    });
    const denied = fakeGdbus(t, [], 1);
    await t.rejects(new RaucDbusInstaller({ gdbus: denied.bin }).install('/data/b.raucb'), {
      code: 'OBX_ERR_UPDATE_INSTALL_FAILED',
      message: /AccessDenied/,
    });
    const silent = fakeGdbus(t, []);
    await t.rejects(new RaucDbusInstaller({ gdbus: silent.bin, timeoutMs: 300 }).install('/data/b.raucb'), {
      message: /did not finish/,
    });
  },
);

t.test('restart asks through the runtime directory; a failure is reported, never silent', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'obx-rauc-restart-'));
  t.teardown(() => rmSync(run, { recursive: true, force: true }));
  await new RaucDbusInstaller({ runtimeDir: run }).restart();
  t.equal(
    readFileSync(join(run, REBOOT_REQUEST_FILE), 'utf8'),
    'update installed\n',
    'the .path unit sees it',
  );
  t.equal(statSync(join(run, REBOOT_REQUEST_FILE)).mode & 0o777, 0o600);
  await t.rejects(new RaucDbusInstaller({ runtimeDir: join(run, 'gone') }).restart(), {
    code: 'OBX_ERR_UPDATE_INSTALL_FAILED',
    message: /could not write .*gone\/reboot-requested/,
  });
  await t.rejects(new RaucDbusInstaller({}).restart(), {
    code: 'OBX_ERR_UPDATE_INSTALL_FAILED',
    message: /restart the box by hand/,
  });
});
