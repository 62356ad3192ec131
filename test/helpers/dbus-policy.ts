/**
 * A private bus with a system bus's default policy, for judging the image's D-Bus policy files with a
 * real dbus-daemon: the given policy files are included in order (as the system bus reads
 * /usr/share/dbus-1/system.d before /etc/dbus-1/system.d), a stand-in owns the service's name
 * (dbus-test-tool echo answers every call), and `call` runs gdbus as a given local user.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { tmpDir } from './tmp.js';

const execFileP = promisify(execFile);

/** What the policy tests need on PATH (and root, for runuser). */
export const DBUS_POLICY_TOOLS = ['dbus-daemon', 'dbus-test-tool', 'gdbus', 'runuser'];

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

/**
 * Starts the bus with `policies` (file texts, in order) and a stand-in owning `name`; returns the bus's
 * address. Both processes stop with the test.
 */
export async function policyBus(t: Test, policies: string[], name: string): Promise<string> {
  const dir = tmpDir(t, 'obx-dbus-');
  chmodSync(dir, 0o755);
  const files = policies.map((text, i) => {
    const f = join(dir, `${10 + i}-policy.conf`);
    writeFileSync(f, text);
    return f;
  });
  const socket = join(dir, 'bus');
  const conf = join(dir, 'bus.conf');
  writeFileSync(conf, busConfig(socket, files));
  const daemon: ChildProcess = spawn('dbus-daemon', ['--config-file', conf, '--nofork', '--nopidfile'], {
    stdio: 'ignore',
  });
  t.teardown(() => {
    daemon.kill('SIGTERM');
  });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  const address = `unix:path=${socket}`;
  const standIn = spawn('dbus-test-tool', ['echo', `--name=${name}`, '--session'], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address },
    stdio: 'ignore',
  });
  t.teardown(() => {
    standIn.kill('SIGTERM');
  });
  // wait until the stand-in owns the name
  for (let i = 0; i < 100; i++) {
    const r = await busCall(
      'root',
      address,
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.NameHasOwner',
      [name],
    );
    if (r.includes('true')) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  return address;
}

/** gdbus call as `user`: "()" (or the reply) when the bus let it through, the error text otherwise. */
export async function busCall(
  user: string,
  address: string,
  dest: string,
  path: string,
  method: string,
  args: readonly string[],
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
