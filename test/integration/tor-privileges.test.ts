/**
 * The privilege split between onionboxd and tor (issue 23), measured with the real tor: tor started with
 * exactly onionbox-tor.service's credentials (the simulator's unit runner, scripts/sim/units.ts, stands
 * in for systemd) runs as debian-tor with no capability at all; onionboxd's credentials (its own unit:
 * user onionbox, tor's group as a supplementary one, no CAP_DAC_READ_SEARCH) read the group-readable
 * cookie and authenticate on the ControlSocket; a plain user can do neither, and onionboxd cannot read
 * tor's data directory. Inside a namespace of its own with DisableNetwork: no traffic.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { renderTorrc } from '../../firmware/tor/torrc.js';
import { createDirectories, planUnit, setprivArgs, type UnitCredentials } from '../../scripts/sim/units.js';
import { makeNetns, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const UNITS = fileURLToPath(new URL('../../firmware/system/systemd/', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const skip = rootSkipReason(['ip', 'tor', 'setpriv']);

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const [k, v] = line.split(':\t');
    if (k && v !== undefined) out[k] = v.trim();
  }
  return out;
}

/** Runs a command with a unit's credentials; exit code and output. */
function runAs(c: UnitCredentials, cmd: string[]): Promise<{ code: number; out: string }> {
  const argv = [...setprivArgs(c), ...cmd];
  return new Promise((resolve) =>
    execFile(argv[0] ?? '', argv.slice(1), { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
    ),
  );
}

t.test(
  "tor as its unit runs it: debian-tor, no capability; onionboxd's unit reaches its control socket",
  { skip, timeout: 120_000 },
  async (t) => {
    const ns = await makeNetns(t, 'torcaps');
    await nsRun(ns, 'ip', ['addr', 'add', '10.42.0.1/32', 'dev', 'lo']);
    const dir = tmpDir(t, 'obx-torcaps-');
    chmodSync(dir, 0o755);
    const pathMap = {
      '/var/lib/onionbox': join(dir, 'onionbox'),
      '/var/lib/tor': join(dir, 'tor-data'),
      '/run/onionbox-tor': join(dir, 'run-tor'),
      '/run/onionbox': join(dir, 'run'),
      '/opt/onionbox': root.replace(/\/$/, ''),
    };
    const torPlan = planUnit(readFileSync(join(UNITS, 'onionbox-tor.service'), 'utf8'), {
      name: 'onionbox-tor',
      pathMap,
    });
    const boxPlan = planUnit(readFileSync(join(UNITS, 'onionboxd.service'), 'utf8'), {
      name: 'onionboxd',
      pathMap,
    });
    createDirectories(boxPlan);
    createDirectories(torPlan);
    const socket = join(dir, 'run-tor', 'control');
    const cookie = join(dir, 'run-tor', 'control_auth_cookie');
    const text = renderTorrc(defaultConfig().tor, {
      dataDir: join(dir, 'tor-data'),
      socks: { host: '127.0.0.1', port: 9050 },
      control: { unix: socket },
      cookieFile: cookie,
      controlGroup: true,
      lanAddress: '10.42.0.1',
      transPort: 9040,
      dnsPort: 5353,
    });
    const torrc = join(dir, 'onionbox', 'torrc');
    writeFileSync(torrc, `${text}DisableNetwork 1\n`, { mode: 0o644 });
    const torArgv = [
      ...setprivArgs(torPlan.credentials),
      'tor',
      '--defaults-torrc',
      '/dev/null',
      '-f',
      torrc,
    ];
    let log = '';
    const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, ...torArgv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    t.teardown(async () => {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
      await exited;
    });
    const t0 = Date.now();
    while (!(existsSync(cookie) && existsSync(socket))) {
      if (child.exitCode !== null || Date.now() - t0 > 20_000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(
      child.exitCode,
      null,
      `tor keeps running (log: ${log
        .split('\n')
        .filter((l) => /warn|err/.test(l))
        .join(' | ')})`,
    );
    const st = child.pid && child.exitCode === null ? status(child.pid) : {};
    const torUid = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('debian-tor:'))
      ?.split(':')[2];
    t.match(
      st.Uid,
      new RegExp(`^${torUid}\\s+${torUid}\\s+${torUid}\\s+${torUid}$`),
      'every uid is debian-tor',
    );
    t.equal(BigInt(`0x${st.CapEff ?? '0'}`), 0n, 'no effective capability');
    t.equal(BigInt(`0x${st.CapPrm ?? '0'}`), 0n, 'no permitted capability');
    t.equal(BigInt(`0x${st.CapBnd ?? '0'}`), 0n, 'an empty bounding set');

    // onionboxd's credentials: the cookie (0640, group debian-tor) and the control socket, as a group member
    const box = boxPlan.credentials;
    t.notOk(
      box.ambientCaps.includes('dac_read_search'),
      'onionboxd holds no CAP_DAC_READ_SEARCH (the cookie comes through the group)',
    );
    t.equal((await runAs(box, ['cat', cookie])).code, 0, "onionboxd's unit reads the cookie");
    const nobody: UnitCredentials = {
      user: 'nobody',
      group: 'nogroup',
      supplementaryGroups: [],
      ambientCaps: [],
      boundingSet: [],
      noNewPrivileges: true,
    };
    t.not((await runAs(nobody, ['cat', cookie])).code, 0, 'a plain user cannot');
    t.not((await runAs(box, ['ls', join(dir, 'tor-data')])).code, 0, "onionboxd cannot list tor's data");
    // the real client, authenticating with the pinned cookie over the socket, as onionboxd's unit
    const script = [
      "import { connectControl } from './firmware/tor/control.ts';",
      `const c = await connectControl({ endpoint: { path: ${JSON.stringify(socket)} }, cookieFile: ${JSON.stringify(cookie)} }, 10000);`,
      'console.log(await c.version()); c.close();',
    ].join('\n');
    const probe = join(dir, 'probe.mts');
    writeFileSync(probe, script.replace('./firmware/', `${root}firmware/`), { mode: 0o644 });
    // tsx's own CLI: the probe runs outside tap, with the firmware's TypeScript source
    const tsx = [process.execPath, join(root, 'node_modules/tsx/dist/cli.mjs'), probe];
    const asBox = await runAs(box, tsx);
    t.match(
      asBox.out,
      /^0\.4\./m,
      `onionboxd's unit authenticates on the control socket (${asBox.out.slice(0, 200)})`,
    );
    const asNobody = await runAs(nobody, tsx);
    t.notMatch(asNobody.out, /^0\.4\./m, 'a plain user cannot open the socket');
  },
);
