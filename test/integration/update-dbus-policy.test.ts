/**
 * The image's D-Bus policy for RAUC (firmware/system/dbus-1/onionbox-rauc.conf), judged by a real
 * dbus-daemon: a private bus with a system bus's default policy, Debian's rauc-service policy (which lets
 * anyone control RAUC; copied in test/fixtures/update/debian-rauc-service.conf) and ours after it, and a
 * stand-in owning RAUC's name (dbus-test-tool echo answers every call). onionboxd's user may call exactly
 * Installer.InstallBundle; everyone else nothing; root everything. `onionbox` is played by `nobody`,
 * another local user by `daemon` (the policy's user name is the only thing changed).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const execFileP = promisify(execFile);
const POLICY = new URL('../../firmware/system/dbus-1/onionbox-rauc.conf', import.meta.url).pathname;
const DEBIAN = new URL('../fixtures/update/debian-rauc-service.conf', import.meta.url).pathname;
const skip = rootSkipReason(['dbus-daemon', 'dbus-test-tool', 'gdbus', 'runuser']);

function busConfig(socket: string, includes: string[]): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
${includes.map((f) => `  <include>${f}</include>`).join('\n')}
</busconfig>
`;
}

async function bus(t: Parameters<typeof tmpDir>[0], withOurs: boolean): Promise<string> {
  const dir = tmpDir(t, 'obx-dbus-');
  chmodSync(dir, 0o755);
  const ours = join(dir, '20-onionbox-rauc.conf');
  writeFileSync(ours, readFileSync(POLICY, 'utf8').replaceAll('user="onionbox"', 'user="nobody"'));
  const socket = join(dir, 'bus');
  const conf = join(dir, 'bus.conf');
  writeFileSync(conf, busConfig(socket, withOurs ? [DEBIAN, ours] : [DEBIAN]));
  const daemon: ChildProcess = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--nopidfile'], {
    stdio: 'ignore',
  });
  t.teardown(() => {
    daemon.kill('SIGTERM');
  });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  const address = `unix:path=${socket}`;
  const rauc = spawn('dbus-test-tool', ['echo', '--name=de.pengutronix.rauc', '--session'], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address },
    stdio: 'ignore',
  });
  t.teardown(() => {
    rauc.kill('SIGTERM');
  });
  // wait until the stand-in owns the name
  for (let i = 0; i < 100; i++) {
    const r = await call(
      'root',
      address,
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.NameHasOwner',
      ['de.pengutronix.rauc'],
    );
    if (r.includes('true')) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  return address;
}

/** gdbus call as `user`: "()" (or the reply) when the bus let it through, the error text otherwise. */
async function call(
  user: string,
  address: string,
  dest: string,
  path: string,
  method: string,
  args: string[],
): Promise<string> {
  try {
    const { stdout } = await execFileP(
      'runuser',
      [
        '-u',
        user,
        '--',
        'env',
        `DBUS_SESSION_BUS_ADDRESS=${address}`,
        'gdbus',
        'call',
        '--session',
        '--dest',
        dest,
        '--object-path',
        path,
        '--method',
        method,
        ...args,
      ],
      { timeout: 10_000 },
    );
    return stdout.trim();
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
}

const rauc = (user: string, address: string, member: string, args: string[]) =>
  call(user, address, 'de.pengutronix.rauc', '/', member, args);

t.test(
  'onionbox may call exactly InstallBundle; other users nothing; root everything',
  { skip, timeout: 60_000 },
  async (t) => {
    const address = await bus(t, true);
    const bundle = ['/var/lib/onionbox/updates/b.raucb', '{}'];
    t.equal(await rauc('nobody', address, 'de.pengutronix.rauc.Installer.InstallBundle', bundle), '()');
    for (const [member, args] of [
      ['de.pengutronix.rauc.Installer.Install', ['/x']],
      ['de.pengutronix.rauc.Installer.Mark', ['good', 'booted']],
      ['de.pengutronix.rauc.Installer.GetSlotStatus', []],
      ['org.freedesktop.DBus.Properties.GetAll', ['de.pengutronix.rauc.Installer']],
    ] as const) {
      t.match(
        await rauc('nobody', address, member, [...args]),
        /AccessDenied/,
        `onionbox: ${member} refused`,
      );
    }
    t.match(
      await rauc('daemon', address, 'de.pengutronix.rauc.Installer.InstallBundle', bundle),
      /AccessDenied/,
    );
    t.equal(await rauc('root', address, 'de.pengutronix.rauc.Installer.Mark', ['good', 'booted']), '()');
  },
);

t.test(
  "without our file, Debian's policy lets any user control RAUC (why the image needs it)",
  { skip, timeout: 60_000 },
  async (t) => {
    const address = await bus(t, false);
    t.equal(await rauc('daemon', address, 'de.pengutronix.rauc.Installer.Mark', ['bad', 'other']), '()');
  },
);
