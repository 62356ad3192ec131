/**
 * What tor needs from a non-root onionboxd (issue 13), measured with the real tor: started by an
 * unprivileged user holding exactly the ambient capabilities of onionboxd's unit (setpriv stands in for
 * systemd; `nobody` for the `onionbox` user), with the production torrc (`User debian-tor`), tor switches
 * to debian-tor and keeps only CAP_NET_BIND_SERVICE; the unit's CAP_DAC_READ_SEARCH is what lets
 * onionboxd read tor's control cookie. Inside a namespace of its own with DisableNetwork: no traffic.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { systemUser } from '../../firmware/tor/process.js';
import { renderTorrc } from '../../firmware/tor/torrc.js';
import { parseUnit } from '../../scripts/sim/unit-file.js';
import { makeNetns, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const UNIT = fileURLToPath(new URL('../../firmware/system/systemd/onionboxd.service', import.meta.url));
const skip = rootSkipReason(['ip', 'tor', 'setpriv']);
const CAP_NET_BIND_SERVICE = 1n << 10n;

/** The unit's ambient capabilities in setpriv's spelling (+net_admin,+setuid,...). */
function unitCaps(): string {
  const caps = parseUnit(readFileSync(UNIT, 'utf8')).Service?.AmbientCapabilities ?? [];
  return caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
}

function asNobody(caps: string, cmd: string[]): string[] {
  return [
    'setpriv',
    '--reuid=nobody',
    '--regid=nogroup',
    '--clear-groups',
    '--no-new-privs',
    ...(caps ? [`--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=-all,${caps}`] : []),
    '--',
    ...cmd,
  ];
}

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const [k, v] = line.split(':\t');
    if (k && v !== undefined) out[k] = v.trim();
  }
  return out;
}

t.test(
  "tor started with onionboxd's capabilities runs as debian-tor with CAP_NET_BIND_SERVICE only",
  { skip },
  async (t) => {
    const ns = await makeNetns(t, 'torcaps');
    await nsRun(ns, 'ip', ['addr', 'add', '10.42.0.1/32', 'dev', 'lo']);
    const dir = tmpDir(t, 'obx-torcaps-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    const tor = await systemUser('debian-tor');
    chownSync(data, tor.uid, tor.gid);
    const torrc = join(dir, 'torrc');
    const text = renderTorrc(defaultConfig().tor, {
      dataDir: data,
      socks: { host: '127.0.0.1', port: 9050 },
      control: { host: '127.0.0.1', port: 9051 },
      lanAddress: '10.42.0.1',
      transPort: 9040,
      dnsPort: 5353,
      user: 'debian-tor',
    });
    writeFileSync(torrc, `${text}DisableNetwork 1\n`, { mode: 0o644 });
    const caps = unitCaps();
    t.match(caps, /\+setuid.*\+setgid|\+setgid.*\+setuid/, 'the unit grants the switch');
    let log = '';
    const child: ChildProcess = spawn(
      'ip',
      ['netns', 'exec', ns, ...asNobody(caps, ['tor', '--defaults-torrc', '/dev/null', '-f', torrc])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
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
    const cookie = join(data, 'control_auth_cookie');
    const t0 = Date.now();
    while (!(existsSync(cookie) && child.pid && status(child.pid).Uid?.startsWith(`${tor.uid}\t`))) {
      if (child.exitCode !== null || Date.now() - t0 > 15_000) break;
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
    t.match(
      st.Uid,
      new RegExp(`^${tor.uid}\\s+${tor.uid}\\s+${tor.uid}\\s+${tor.uid}$`),
      'every uid is debian-tor',
    );
    t.equal(BigInt(`0x${st.CapEff ?? '0'}`), CAP_NET_BIND_SERVICE, 'effective: CAP_NET_BIND_SERVICE only');
    t.equal(BigInt(`0x${st.CapPrm ?? '0'}`), CAP_NET_BIND_SERVICE, 'permitted: CAP_NET_BIND_SERVICE only');

    // The cookie (0600, debian-tor): readable with the unit's capabilities, not without them.
    const read = (c: string) =>
      new Promise<number>((resolve) =>
        execFile(
          asNobody(c, [])[0] ?? 'setpriv',
          asNobody(c, ['cat', cookie]).slice(1),
          { encoding: 'buffer' },
          (err, out) => resolve(err ? -1 : out.length),
        ),
      );
    t.equal(await read(caps), 32, "onionboxd's capabilities read the 32-byte cookie");
    t.equal(await read(''), -1, 'a plain user cannot');
  },
);
