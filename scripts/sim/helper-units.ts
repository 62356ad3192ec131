/**
 * systemd's part for the units onionboxd configures but does not run (dnsmasq, hostapd: issue 23), where
 * there is no systemd (the simulator, the tests), on top of the unit runner (scripts/sim/units.ts: the
 * command line, user, capabilities, runtime directory and Restart= as systemd would). What this adds,
 * from the same unit files in firmware/system/systemd/:
 *
 *   onionbox-NAME.path     PathChanged=: every new configuration file restarts the service (on a box:
 *                          through onionbox-restart@NAME.service, `systemctl restart --no-block`;
 *                          restarts queued before one begins merge into it, as systemd's jobs do)
 *   LoadCredential=        the file copied at each start into a credentials directory only the service's
 *                          user can read, named by %d in ExecStart=
 *   ConditionPathExists=   no start without its configuration
 *   Type=forking           the main process is the one in PIDFile= (hostapd -B); the parent's exit 0 is
 *                          no failure
 *
 * Paths in the unit files move by prefix into the world (`pathMap`, longest prefix wins), so parallel
 * worlds do not share files.
 */
import { type ChildProcess, spawn } from 'node:child_process';
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
import { parseUnitLines } from './unit-file.js';
import {
  mapPath,
  planUnit,
  type RunningUnit,
  replaceProgram,
  startUnit,
  type UnitPlan,
  type UnitSpawn,
} from './units.js';

const UNIT_DIR = fileURLToPath(new URL('../../firmware/system/systemd/', import.meta.url));

export interface HelperUnitOptions {
  /** dnsmasq, hostapd or moat: onionbox-NAME.path and onionbox-NAME.service */
  name: 'dnsmasq' | 'hostapd' | 'moat';
  /** Unit path prefix -> world path, e.g. { '/var/lib/onionbox': stateDir, '/run': runDir }. */
  pathMap: Record<string, string>;
  /** How a process of the unit starts (the world's tracked spawn); default: spawned here. */
  spawn?: UnitSpawn | undefined;
  /** With the default spawn: inside this network namespace. */
  netns?: string | undefined;
  /** With the default spawn: where its output goes (default: discarded). */
  logFile?: string | undefined;
  /** Another program in place of ExecStart's (a test's fake hostapd). */
  binary?: string | undefined;
  /**
   * The firmware from source in place of the built one: ExecStart's argv up to and including the
   * argument ending in `marker` (e.g. dist/firmware/cli/main.js) replaced by `argv`.
   */
  program?: { marker: string; argv: string[] } | undefined;
  /** Extra environment for the service's processes (the world's test CA for the Moat client). */
  env?: Record<string, string> | undefined;
  /** Where the credentials go (made here, removed at stop(); default: a new directory in /tmp). */
  credentialsDir?: string | undefined;
}

function idsOf(user: string): [number, number] {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === user);
  const f = line?.split(':') ?? [];
  if (f.length < 4)
    throw new Error(`helper-units: no user ${user} on this machine (scripts/setup creates it)`);
  return [Number(f[2]), Number(f[3])];
}

function readPid(file: string | null): number | null {
  if (file === null || !existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

async function killAndWait(pid: number): Promise<void> {
  if (!signal(pid, 'SIGTERM')) return;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  signal(pid, 'SIGKILL');
}

/** One helper unit and its .path trigger. */
export class HelperUnit {
  readonly #opts: HelperUnitOptions;
  readonly #watchPath: string;
  readonly #plan: UnitPlan;
  readonly #forking: boolean;
  readonly #pidFile: string | null;
  readonly #credential: { name: string; source: string } | null;
  readonly #condition: string | null;
  readonly #credDir: string;
  #watcher: FSWatcher | null = null;
  #running: RunningUnit | null = null;
  #queue: Promise<void> = Promise.resolve();
  #pending = false;
  #stopping = false;
  #starts = 0;

  constructor(opts: HelperUnitOptions) {
    this.#opts = opts;
    const read = (f: string) => readFileSync(join(UNIT_DIR, f), 'utf8');
    const path = parseUnitLines(read(`onionbox-${opts.name}.path`));
    const changed = path.Path?.PathChanged?.at(-1);
    if (!changed) throw new Error(`helper-units: onionbox-${opts.name}.path has no PathChanged=`);
    this.#watchPath = mapPath(changed, opts.pathMap);
    const text = read(`onionbox-${opts.name}.service`);
    const unit = parseUnitLines(text);
    const svc = unit.Service ?? {};
    this.#credDir = opts.credentialsDir ?? mkdtempSync('/tmp/onionbox-credentials-');
    mkdirSync(this.#credDir, { recursive: true, mode: 0o700 });
    this.#plan = planUnit(text, {
      name: opts.name,
      pathMap: opts.pathMap,
      specifiers: { d: this.#credDir },
    });
    if (opts.binary) this.#plan.main.argv[0] = opts.binary;
    if (opts.program)
      this.#plan.main = replaceProgram(this.#plan.main, opts.program.marker, opts.program.argv);
    const type = svc.Type?.at(-1) ?? 'simple';
    if (type !== 'simple' && type !== 'forking') throw new Error(`helper-units: Type=${type} not emulated`);
    this.#forking = type === 'forking';
    // the forking parent's exit 0 is its start, not an end to restart after
    if (this.#forking && this.#plan.restart === 'always') this.#plan.restart = 'on-failure';
    const pidFile = svc.PIDFile?.at(-1);
    this.#pidFile = pidFile ? mapPath(pidFile, opts.pathMap) : null;
    const cred = svc.LoadCredential?.at(-1);
    const m = cred === undefined ? null : /^([A-Za-z0-9._-]+):(\/\S+)$/.exec(cred);
    this.#credential = m ? { name: m[1] as string, source: mapPath(m[2] as string, opts.pathMap) } : null;
    const condition = unit.Unit?.ConditionPathExists?.at(-1);
    this.#condition = condition ? mapPath(condition, opts.pathMap) : null;
  }

  /** How many times the service was started. */
  get starts(): number {
    return this.#starts;
  }

  /** The service's main process (Type=forking: the one its PID file names), or null. */
  pid(): number | null {
    if (this.#forking) return readPid(this.#pidFile);
    const main = this.#running?.main();
    return main && main.child.exitCode === null && main.child.signalCode === null ? main.pid : null;
  }

  /** Watches the configuration file, as the enabled .path unit does. */
  start(): void {
    mkdirSync(dirname(this.#watchPath), { recursive: true });
    this.#watcher = watch(dirname(this.#watchPath), (_event, file) => {
      if (file === basename(this.#watchPath)) this.#trigger();
    });
  }

  /** Stops watching and ends the service (as stopping onionboxd does, PartOf=). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#watcher?.close();
    this.#watcher = null;
    await this.#queue;
    await this.#end();
    rmSync(this.#credDir, { recursive: true, force: true });
  }

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

  async #end(): Promise<void> {
    const running = this.#running;
    this.#running = null;
    running?.stop();
    const pid = this.#forking ? readPid(this.#pidFile) : (running?.main()?.pid ?? null);
    if (pid !== null) await killAndWait(pid);
  }

  async #restart(): Promise<void> {
    await this.#end();
    if (this.#stopping) return;
    if (this.#condition !== null && !existsSync(this.#condition)) return;
    const user = this.#plan.credentials.user;
    if (this.#credential && user) {
      // LoadCredential=: a copy, made at each start, that only the service's user can read
      const [uid, gid] = idsOf(user);
      chmodSync(this.#credDir, 0o700);
      const file = join(this.#credDir, this.#credential.name);
      rmSync(file, { force: true });
      copyFileSync(this.#credential.source, file);
      chownSync(file, uid, gid);
      chmodSync(file, 0o400);
      chownSync(this.#credDir, uid, gid);
      chmodSync(this.#credDir, 0o500);
    }
    this.#starts++;
    const running = startUnit(
      this.#plan,
      this.#opts.spawn ?? ((n, a, e) => this.#spawn(n, a, e)),
      this.#opts.env,
    );
    this.#running = running;
    await running.started;
  }

  #spawn(_name: string, argv: string[], env: Record<string, string>): { pid: number; child: ChildProcess } {
    const full = this.#opts.netns ? ['ip', 'netns', 'exec', this.#opts.netns, ...argv] : argv;
    const out = this.#opts.logFile ? openSync(this.#opts.logFile, 'a') : 'ignore';
    const child = spawn(full[0] as string, full.slice(1), {
      stdio: ['ignore', out, out],
      env: { ...process.env, ...env },
    });
    return { pid: child.pid ?? 0, child };
  }
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

/** The name of a uid from /etc/passwd (for checks and reports), or the number. */
export function userName(uid: number): string {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[2] === String(uid));
  return line?.split(':')[0] ?? String(uid);
}
