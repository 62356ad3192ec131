/**
 * systemd's part for the units onionboxd configures but does not run (dnsmasq, hostapd: issue 23), where
 * there is no systemd (the simulator, the tests). Everything comes from the unit files in
 * firmware/system/systemd/, as systemd would read them:
 *
 *   onionbox-NAME.path     PathChanged=: a new configuration file restarts the service (systemd: through
 *                          onionbox-restart@NAME.service)
 *   onionbox-NAME.service  ExecStart= (with %d, the credentials directory), User=/Group=, the ambient
 *                          capabilities (also the bounding set), LoadCredential= (the file copied at each
 *                          start into a directory only that user can read), RuntimeDirectory= (+Mode,
 *                          owned by the user), Type=simple (Restart=always after RestartSec=) or
 *                          Type=forking (PIDFile=)
 *
 * The process runs under the unit's user with exactly its capabilities (`setpriv`), inside a network
 * namespace when given one (`ip netns exec`). Paths in the unit files are moved by prefix (`paths`:
 * /var/lib/onionbox -> the world's state directory, /run -> its runtime root), so parallel worlds do not
 * share files. Not emulated: the sandboxing directives (ProtectSystem=, SystemCallFilter=, ...), which
 * systemd-analyze checks (test/integration/systemd-security.test.ts).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  type FSWatcher,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  watch,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const UNIT_DIR = fileURLToPath(new URL('../../firmware/system/systemd/', import.meta.url));

/** One unit file: section -> key -> raw values in order (keys may repeat). */
export function readUnitFile(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s?.[1]) {
      section = s[1];
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv?.[1] || !section) throw new Error(`helper-units: bad unit line: ${line}`);
    out[section] ??= {};
    const sec = out[section] as Record<string, string[]>;
    sec[kv[1]] = [...(sec[kv[1]] ?? []), kv[2] ?? ''];
  }
  return out;
}

export interface HelperUnitOptions {
  /** dnsmasq or hostapd: onionbox-NAME.path and onionbox-NAME.service */
  name: 'dnsmasq' | 'hostapd';
  /** Path prefixes moved, e.g. { '/var/lib/onionbox': stateDir, '/run': runDir }. */
  paths: Record<string, string>;
  /** Run inside this network namespace. */
  netns?: string | undefined;
  /** Another program in place of ExecStart's (a test's fake hostapd). */
  binary?: string | undefined;
  /** Where its output goes (default: discarded). */
  logFile?: string | undefined;
  /** The unit files' directory (default firmware/system/systemd/). */
  unitDir?: string | undefined;
}

interface ServiceSpec {
  type: 'simple' | 'forking';
  argv: string[];
  user: string;
  group: string;
  caps: string[];
  credential: { name: string; source: string } | null;
  runtimeDir: { path: string; mode: number } | null;
  pidFile: string | null;
  restartSec: number;
  conditionPath: string | null;
}

function one(sec: Record<string, string[]> | undefined, key: string): string | undefined {
  const v = sec?.[key];
  return v === undefined ? undefined : v[v.length - 1];
}

function idOf(kind: 'passwd' | 'group', name: string): number {
  const line = readFileSync(`/etc/${kind}`, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  const id = line === undefined ? Number.NaN : Number(line.split(':')[2]);
  if (!Number.isInteger(id)) {
    throw new Error(`helper-units: no ${kind === 'passwd' ? 'user' : 'group'} ${name} (run scripts/setup)`);
  }
  return id;
}

/** A running stand-in for one helper unit. */
export class HelperUnit {
  readonly #opts: HelperUnitOptions;
  readonly #spec: ServiceSpec;
  readonly #watchPath: string;
  #watcher: FSWatcher | null = null;
  #child: ChildProcess | null = null;
  #stopping = false;
  #queue: Promise<void> = Promise.resolve();
  #credDir: string | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  #starts = 0;
  #pending = false;

  constructor(opts: HelperUnitOptions) {
    this.#opts = opts;
    const dir = opts.unitDir ?? UNIT_DIR;
    const path = readUnitFile(readFileSync(join(dir, `onionbox-${opts.name}.path`), 'utf8'));
    const svc = readUnitFile(readFileSync(join(dir, `onionbox-${opts.name}.service`), 'utf8'));
    const changed = one(path.Path, 'PathChanged');
    if (!changed) throw new Error(`helper-units: onionbox-${opts.name}.path has no PathChanged=`);
    this.#watchPath = this.#move(changed);
    this.#spec = this.#service(svc);
  }

  /** How many times the service was started. */
  get starts(): number {
    return this.#starts;
  }

  /** The service's main process (Type=forking: from its PID file), or null. */
  pid(): number | null {
    if (this.#spec.type === 'forking') {
      const file = this.#spec.pidFile;
      if (file === null || !existsSync(file)) return null;
      const pid = Number(readFileSync(file, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    }
    const c = this.#child;
    return c && c.exitCode === null && c.signalCode === null ? (c.pid ?? null) : null;
  }

  /** Watches the configuration file (the .path unit); starts the service when the file exists. */
  start(): void {
    mkdirSync(dirname(this.#watchPath), { recursive: true });
    this.#watcher = watch(dirname(this.#watchPath), (_event, file) => {
      if (file === basename(this.#watchPath)) this.#trigger();
    });
    if (this.#spec.runtimeDir) this.#makeRuntimeDir(this.#spec.runtimeDir);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    await this.#queue;
    await this.#kill();
    if (this.#credDir) rmSync(this.#credDir, { recursive: true, force: true });
  }

  /**
   * `systemctl restart --no-block`: queued, one at a time; triggers that arrive before a queued restart
   * begins merge into it (as systemd merges restart jobs).
   */
  #trigger(): void {
    if (this.#stopping || this.#pending) return;
    this.#pending = true;
    this.#queue = this.#queue
      .then(async () => {
        await new Promise((r) => setTimeout(r, 50));
        this.#pending = false;
        await this.#restart();
      })
      .catch(() => undefined);
  }

  async #restart(): Promise<void> {
    await this.#kill();
    if (this.#stopping) return;
    const s = this.#spec;
    if (s.conditionPath !== null && !existsSync(s.conditionPath)) return;
    const uid = idOf('passwd', s.user);
    const gid = idOf('group', s.group);
    if (s.runtimeDir) this.#makeRuntimeDir(s.runtimeDir);
    let argv = s.argv;
    if (s.credential) {
      // LoadCredential=: a copy only the service's user can read, made at each start
      if (this.#credDir) rmSync(this.#credDir, { recursive: true, force: true });
      const credDir = mkdtempSync('/tmp/onionbox-cred-');
      this.#credDir = credDir;
      const file = join(credDir, s.credential.name);
      copyFileSync(s.credential.source, file);
      chmodSync(file, 0o400);
      chownSync(file, uid, gid);
      chmodSync(credDir, 0o500);
      chownSync(credDir, uid, gid);
      argv = argv.map((a) => a.replaceAll('%d', credDir));
    }
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('helper-units: empty ExecStart=');
    const caps = s.caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',') || '-all';
    const setpriv = [
      'setpriv',
      `--reuid=${uid}`,
      `--regid=${gid}`,
      '--clear-groups',
      `--inh-caps=${caps}`,
      ...(s.caps.length > 0 ? [`--ambient-caps=${caps}`] : []),
      `--bounding-set=${caps}`,
      '--',
      this.#opts.binary ?? cmd,
      ...args,
    ];
    const full = this.#opts.netns ? ['ip', 'netns', 'exec', this.#opts.netns, ...setpriv] : setpriv;
    const out = this.#opts.logFile ? openSync(this.#opts.logFile, 'a') : 'ignore';
    const child = spawn(full[0] as string, full.slice(1), { stdio: ['ignore', out, out] });
    this.#child = child;
    this.#starts++;
    child.once('exit', () => {
      if (this.#child !== child || this.#stopping || s.type === 'forking') return;
      // Restart=always
      this.#restartTimer = setTimeout(() => this.#trigger(), s.restartSec * 1000);
    });
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    const pid = this.pid() ?? (child?.pid ? child.pid : null);
    if (this.#spec.type === 'forking') {
      const main = this.#mainPidOfFile();
      if (main !== null) await killAndWait(main);
      return;
    }
    if (child && child.exitCode === null && child.signalCode === null && pid !== null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      signal(pid, 'SIGTERM');
      const t = setTimeout(() => signal(pid, 'SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
  }

  #mainPidOfFile(): number | null {
    const file = this.#spec.pidFile;
    if (file === null || !existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  #makeRuntimeDir(r: { path: string; mode: number }): void {
    mkdirSync(r.path, { recursive: true });
    chownSync(r.path, idOf('passwd', this.#spec.user), idOf('group', this.#spec.group));
    chmodSync(r.path, r.mode);
  }

  #move(path: string): string {
    for (const [from, to] of Object.entries(this.#opts.paths)) {
      if (path === from || path.startsWith(`${from}/`)) return to + path.slice(from.length);
    }
    return path;
  }

  #service(unit: Record<string, Record<string, string[]>>): ServiceSpec {
    const svc = unit.Service;
    const type = one(svc, 'Type') ?? 'simple';
    if (type !== 'simple' && type !== 'forking') throw new Error(`helper-units: Type=${type} not emulated`);
    const exec = one(svc, 'ExecStart');
    const user = one(svc, 'User');
    if (!exec || !user) throw new Error('helper-units: the unit needs ExecStart= and User=');
    const cred = one(svc, 'LoadCredential');
    const credMatch = cred === undefined ? null : /^([A-Za-z0-9._-]+):(\/\S+)$/.exec(cred);
    const runtime = one(svc, 'RuntimeDirectory');
    const pidFile = one(svc, 'PIDFile');
    const condition = one(unit.Unit, 'ConditionPathExists');
    return {
      type,
      argv: exec
        .split(/\s+/)
        .filter((a) => a !== '')
        .map((a) => this.#moveArg(a)),
      user,
      group: one(svc, 'Group') ?? user,
      caps: (svc?.AmbientCapabilities ?? []).flatMap((v) => v.split(/\s+/)).filter((c) => c !== ''),
      credential: credMatch
        ? { name: credMatch[1] as string, source: this.#move(credMatch[2] as string) }
        : null,
      runtimeDir: runtime
        ? {
            path: this.#move(`/run/${runtime}`),
            mode: Number.parseInt(one(svc, 'RuntimeDirectoryMode') ?? '0755', 8),
          }
        : null,
      pidFile: pidFile ? this.#move(pidFile) : null,
      restartSec: Number(one(svc, 'RestartSec') ?? '0.1'),
      conditionPath: condition ? this.#move(condition) : null,
    };
  }

  /** An argument that is a path (or `--opt=PATH`) moves with its prefix. */
  #moveArg(arg: string): string {
    const m = /^(--[a-z-]+=)?(\/.*)$/.exec(arg);
    return m ? `${m[1] ?? ''}${this.#move(m[2] as string)}` : arg;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

async function killAndWait(pid: number): Promise<void> {
  signal(pid, 'SIGTERM');
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  signal(pid, 'SIGKILL');
}

/** A running process's effective capabilities as /proc shows them (CapEff, hex), or null. */
export function capEff(pid: number): string | null {
  try {
    return /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** A process's real uid as /proc shows it, or null. */
export function uidOf(pid: number): number | null {
  try {
    const m = /^Uid:\s*([0-9]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** The user name of a uid (getent), for reports. */
export function userName(uid: number): string {
  try {
    return execFileSync('getent', ['passwd', String(uid)], { encoding: 'utf8' }).split(':')[0] ?? String(uid);
  } catch {
    return String(uid);
  }
}
