/**
 * The simulator's unit runner: this machine has no systemd, so the simulated world starts a unit's
 * process the way systemd would, read from the unit file in firmware/system/systemd/ (issue 23): the
 * same command lines, user, groups, capabilities and environment, its runtime and state directories
 * created with the unit's owner and mode, and its Restart= policy. Never a simulator-only path in the
 * firmware: what differs is only where the unit's absolute paths live (a path map into the world's
 * directory) and the arguments the simulator appends (--simulate, --test-network).
 *
 * Pure planning (unit text -> UnitPlan -> argv) in plain functions; spawning is the thin adapter at the
 * end (startUnit), which takes the world's own spawn function so that every process stays tracked.
 *
 * Supported: ExecStartPre= (prefixes `-` ignore failure, `+` full privileges: root, no setpriv),
 * ExecStart=, User=, Group=, SupplementaryGroups=, AmbientCapabilities=, CapabilityBoundingSet=,
 * Environment=, NoNewPrivileges=, Restart= (no, always, on-failure) with RestartSec=, RuntimeDirectory= and StateDirectory=
 * with their *Mode=, BindReadOnlyPaths= (each command but `+` ones runs in a mount namespace of its own,
 * `unshare --mount --propagation private`, where scripts/sim/bin/unit-mounts binds each source over its
 * destination read-only before it execs the command: systemd's semantics, a bind of one file included,
 * which keeps that file's inode). The other sandboxing options (ProtectSystem=, SystemCallFilter=,
 * IPAddressDeny= ...) are not reproduced: systemd-analyze scores those
 * (test/integration/systemd-security.test.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseUnitLines } from './unit-file.js';

export interface UnitCommand {
  argv: string[];
  /** `-`: a failure is ignored. */
  ignoreFailure: boolean;
  /** `+`: runs with full privileges (root, no user or capability change). */
  privileged: boolean;
}

export interface UnitCredentials {
  /** User=; absent: root. */
  user?: string | undefined;
  /** Group=; absent: the user's primary group. */
  group?: string | undefined;
  supplementaryGroups: string[];
  /** AmbientCapabilities=, as setpriv names (net_admin). */
  ambientCaps: string[];
  /** CapabilityBoundingSet=; null: not set (everything). */
  boundingSet: string[] | null;
  /** NoNewPrivileges=yes. */
  noNewPrivileges: boolean;
}

export interface UnitDirectory {
  kind: 'runtime' | 'state';
  /** Already mapped into the world. */
  path: string;
  mode: number;
}

/** One BindReadOnlyPaths= entry: `[-]SOURCE[:DEST[:OPTIONS]]`, both paths mapped into the world. */
export interface UnitBind {
  source: string;
  dest: string;
  /** `-`: a missing source is skipped. */
  optional: boolean;
}

/** The helper that makes a unit's bind mounts inside its own mount namespace (see the top). */
export const UNIT_MOUNTS = join(import.meta.dirname, 'bin', 'unit-mounts');

export interface UnitPlan {
  name: string;
  pre: UnitCommand[];
  main: UnitCommand;
  credentials: UnitCredentials;
  env: Record<string, string>;
  restart: 'no' | 'always' | 'on-failure';
  restartMs: number;
  directories: UnitDirectory[];
  /** BindReadOnlyPaths=, in order. */
  binds: UnitBind[];
}

export interface PlanOptions {
  /** The unit's name (for messages and logs), e.g. `onionboxd`. */
  name: string;
  /** Unit path prefix -> world path (longest prefix wins): /opt/onionbox -> the checkout, ... */
  pathMap: Record<string, string>;
  /** Appended to ExecStart= (the simulator's own: --simulate, --test-network FILE). */
  extraArgs?: string[] | undefined;
  /**
   * Specifiers the unit's command lines use, as systemd expands them: `{ d: DIR }` for %d (the
   * credentials directory). Any other `%` is refused.
   */
  specifiers?: Record<string, string> | undefined;
}

/** systemd's default PATH for services. */
export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Splits a command line or an assignment list into words as systemd does for the forms our units use:
 * whitespace separates, double or single quotes group (no escapes inside). `$` and `%` (variable and
 * specifier expansion) are refused rather than passed on unexpanded.
 */
export function splitWords(value: string, specifiers: Record<string, string> = {}): string[] {
  value = value.replace(/%([a-zA-Z])/g, (m, k: string) => specifiers[k] ?? m);
  if (/[$%]/.test(value)) throw new Error(`units: expansion not supported in ${JSON.stringify(value)}`);
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) words.push(m[1] ?? m[2] ?? m[3] ?? '');
  return words;
}

/** Maps a unit path into the world: the longest matching prefix, at a path boundary. */
export function mapPath(value: string, pathMap: Record<string, string>): string {
  const prefixes = Object.keys(pathMap).sort((a, b) => b.length - a.length);
  for (const p of prefixes) {
    if (value === p || value.startsWith(`${p}/`)) return `${pathMap[p]}${value.slice(p.length)}`;
  }
  return value;
}

function parseCommand(
  line: string,
  pathMap: Record<string, string>,
  specifiers: Record<string, string> = {},
): UnitCommand {
  const m = /^([-+@!:]*)(.*)$/.exec(line.trim());
  const prefix = m?.[1] ?? '';
  if (/[@!:]/.test(prefix)) throw new Error(`units: command prefix ${prefix} not supported`);
  const argv = splitWords(m?.[2] ?? '', specifiers).map((w) => mapPath(w, pathMap));
  if (argv.length === 0 || !argv[0]?.startsWith('/'))
    throw new Error(`units: a command needs an absolute executable: ${line}`);
  return { argv, ignoreFailure: prefix.includes('-'), privileged: prefix.includes('+') };
}

function unitPath(value: string, key: string): string {
  if (!isAbsolute(value) || value.split('/').includes('..') || /[\s:]/.test(value))
    throw new Error(`units: ${key}: not an absolute path: ${value}`);
  return value;
}

/** BindReadOnlyPaths= entries as systemd reads them (rbind/norbind options only). */
function parseBinds(entries: string[], pathMap: Record<string, string>): UnitBind[] {
  return entries.map((entry) => {
    const optional = entry.startsWith('-');
    const [src = '', dst, options, extra] = (optional ? entry.slice(1) : entry).split(':');
    if (extra !== undefined || (options !== undefined && options !== 'rbind' && options !== 'norbind'))
      throw new Error(`units: BindReadOnlyPaths=${entry} not supported`);
    const source = unitPath(src, 'BindReadOnlyPaths');
    const dest = unitPath(dst === undefined || dst === '' ? src : dst, 'BindReadOnlyPaths');
    return { source: mapPath(source, pathMap), dest: mapPath(dest, pathMap), optional };
  });
}

/** CAP_NET_ADMIN -> net_admin (setpriv's names). */
function capName(cap: string): string {
  if (!/^CAP_[A-Z_]+$/.test(cap)) throw new Error(`units: not a capability: ${cap}`);
  return cap.slice(4).toLowerCase();
}

function mode(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-7]{3,4}$/.test(value)) throw new Error(`units: bad mode ${value}`);
  return Number.parseInt(value, 8);
}

/** The plan for one unit: what systemd would run, as whom, with what, in the world's paths. */
export function planUnit(text: string, opts: PlanOptions): UnitPlan {
  const svc = parseUnitLines(text).Service;
  if (!svc) throw new Error(`units: ${opts.name} has no [Service] section`);
  const one = (key: string): string | undefined => svc[key]?.at(-1);
  const words = (key: string): string[] => (svc[key] ?? []).flatMap((v) => splitWords(v));
  const start = svc.ExecStart ?? [];
  if (start.length !== 1) throw new Error(`units: ${opts.name} needs exactly one ExecStart=`);
  const main = parseCommand(start[0] ?? '', opts.pathMap, opts.specifiers);
  main.argv.push(...(opts.extraArgs ?? []));

  const env: Record<string, string> = {};
  for (const assignment of words('Environment')) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new Error(`units: bad Environment= entry ${assignment}`);
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }

  const restart = one('Restart') ?? 'no';
  if (restart !== 'no' && restart !== 'always' && restart !== 'on-failure')
    throw new Error(`units: Restart=${restart} not supported`);
  const restartSec = one('RestartSec') ?? '0.1';
  if (!/^[0-9]+(\.[0-9]+)?$/.test(restartSec)) throw new Error(`units: RestartSec=${restartSec}`);

  const directories: UnitDirectory[] = [];
  for (const [key, kind, base] of [
    ['RuntimeDirectory', 'runtime', '/run'],
    ['StateDirectory', 'state', '/var/lib'],
  ] as const) {
    const m = mode(one(`${key}Mode`), 0o755);
    for (const d of words(key)) {
      if (!/^[a-z0-9][a-z0-9._/-]*$/.test(d) || d.split('/').includes('..'))
        throw new Error(`units: bad ${key}=${d}`);
      directories.push({ kind, path: mapPath(`${base}/${d}`, opts.pathMap), mode: m });
    }
  }

  const bounding = svc.CapabilityBoundingSet ? words('CapabilityBoundingSet').map(capName) : null;
  return {
    name: opts.name,
    pre: (svc.ExecStartPre ?? []).map((l) => parseCommand(l, opts.pathMap)),
    main,
    credentials: {
      user: one('User'),
      group: one('Group'),
      supplementaryGroups: words('SupplementaryGroups'),
      ambientCaps: words('AmbientCapabilities').map(capName),
      boundingSet: bounding,
      noNewPrivileges: one('NoNewPrivileges') === 'yes' || one('NoNewPrivileges') === 'true',
    },
    env,
    restart,
    restartMs: Math.round(Number(restartSec) * 1000),
    directories,
    binds: parseBinds(words('BindReadOnlyPaths'), opts.pathMap),
  };
}

/**
 * setpriv's arguments for the unit's credentials (util-linux setpriv, exec'd: the PID stays the
 * command's). Groups as systemd sets them: the user's groups from /etc/group (--init-groups), or, with
 * SupplementaryGroups=, exactly the primary group plus those. Capabilities: the ambient set (also made
 * inheritable, as the kernel requires) and the bounding set.
 */
export function setprivArgs(c: UnitCredentials): string[] {
  const args: string[] = [];
  if (c.user !== undefined) {
    args.push(`--reuid=${c.user}`, `--regid=${c.group ?? c.user}`);
    if (c.supplementaryGroups.length > 0)
      args.push(`--groups=${[c.group ?? c.user, ...c.supplementaryGroups].join(',')}`);
    else args.push('--init-groups');
  } else if (c.group !== undefined) {
    args.push(`--regid=${c.group}`);
  }
  const caps = (list: string[]) => ['-all', ...list.map((x) => `+${x}`)].join(',');
  if (c.ambientCaps.length > 0) {
    args.push(`--inh-caps=${caps(c.ambientCaps)}`, `--ambient-caps=${caps(c.ambientCaps)}`);
  } else if (c.user !== undefined) {
    args.push('--inh-caps=-all');
  }
  if (c.boundingSet !== null) args.push(`--bounding-set=${caps(c.boundingSet)}`);
  if (c.noNewPrivileges) args.push('--no-new-privs');
  return args.length === 0 ? [] : ['setpriv', ...args, '--'];
}

/**
 * The argv one of the unit's commands runs as: privileged (`+`) as is (systemd applies neither the
 * credentials nor the namespacing to those), else under setpriv, and with BindReadOnlyPaths= inside a
 * mount namespace of its own (unshare, then unit-mounts, then setpriv: the mounts are made as root).
 */
export function commandArgv(plan: UnitPlan, cmd: UnitCommand): string[] {
  if (cmd.privileged) return [...cmd.argv];
  const run = [...setprivArgs(plan.credentials), ...cmd.argv];
  if (plan.binds.length === 0) return run;
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    UNIT_MOUNTS,
    ...plan.binds.flatMap((b) => [b.optional ? '--ro-optional' : '--ro', b.source, b.dest]),
    '--',
    ...run,
  ];
}

/**
 * The environment systemd gives the unit's processes: its PATH, RUNTIME_DIRECTORY/STATE_DIRECTORY, the
 * unit's Environment=, then the world's extras.
 */
export function unitEnvironment(plan: UnitPlan, extra: Record<string, string> = {}): Record<string, string> {
  const dirs = (kind: UnitDirectory['kind']) =>
    plan.directories
      .filter((d) => d.kind === kind)
      .map((d) => d.path)
      .join(':');
  const env: Record<string, string> = { PATH: SYSTEMD_PATH, LANG: 'C.UTF-8' };
  if (dirs('runtime')) env.RUNTIME_DIRECTORY = dirs('runtime');
  if (dirs('state')) env.STATE_DIRECTORY = dirs('state');
  return { ...env, ...plan.env, ...extra };
}

/**
 * The main command with its program replaced (the tests run the firmware from source under tap's
 * loader): everything up to and including the argument ending in `marker` becomes `program`; the
 * unit's own arguments after it stay.
 */
export function replaceProgram(cmd: UnitCommand, marker: string, program: string[]): UnitCommand {
  const at = cmd.argv.findIndex((a) => a.endsWith(marker));
  if (at < 0) throw new Error(`units: no ${marker} in ${cmd.argv.join(' ')}`);
  return { ...cmd, argv: [...program, ...cmd.argv.slice(at + 1)] };
}

/** Whether the unit restarts after its main process ended this way (Restart=). */
export function shouldRestart(
  restart: UnitPlan['restart'],
  code: number | null,
  signal: NodeJS.Signals | null,
): boolean {
  if (restart === 'always') return true;
  if (restart === 'on-failure') return code !== 0 || signal !== null;
  return false;
}

// ---- the adapter ----

/** uid and gid of a user from /etc/passwd, and of a group from /etc/group. */
function idOf(file: '/etc/passwd' | '/etc/group', name: string): { id: number; gid: number } {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { id: Number(f[2]), gid: Number(f[3] ?? f[2]) };
  }
  throw new Error(`units: no ${file === '/etc/passwd' ? 'user' : 'group'} ${name} on this machine`);
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else lchownSync(p, uid, gid);
  }
}

/**
 * Creates the unit's runtime and state directories with its owner and mode, as systemd does (a state
 * directory's contents are chowned too when its owner differs: systemd's recursive chown).
 */
export function createDirectories(plan: UnitPlan): void {
  const { user, group } = plan.credentials;
  const uid = user === undefined ? 0 : idOf('/etc/passwd', user).id;
  const gid =
    group !== undefined
      ? idOf('/etc/group', group).id
      : user !== undefined
        ? idOf('/etc/passwd', user).gid
        : 0;
  for (const d of plan.directories) {
    mkdirSync(d.path, { recursive: true });
    const st = statSync(d.path);
    if (st.uid !== uid || st.gid !== gid) {
      if (d.kind === 'state') chownTree(d.path, uid, gid);
      else chownSync(d.path, uid, gid);
    }
    chmodSync(d.path, d.mode);
  }
}

/** Starts one process of the unit (the world's tracked spawn): name, argv, environment. */
export type UnitSpawn = (
  name: string,
  argv: string[],
  env: Record<string, string>,
) => { pid: number; child: ChildProcess };

export interface RunningUnit {
  readonly plan: UnitPlan;
  /** The current main process (a restart replaces it). */
  main(): { pid: number; child: ChildProcess } | null;
  /** Resolves once the main process runs (after ExecStartPre=). */
  readonly started: Promise<void>;
  /** How many times the main process was started. */
  starts(): number;
  /** Stops restarting (the caller stops the processes themselves, by PID). */
  stop(): void;
}

function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Runs the unit: its directories, each ExecStartPre= in turn (a failure without `-` fails the start, as
 * systemd's does), then ExecStart=, restarted after RestartSec= as Restart= says until stop().
 */
export function startUnit(
  plan: UnitPlan,
  spawnOne: UnitSpawn,
  extraEnv: Record<string, string> = {},
): RunningUnit {
  let current: { pid: number; child: ChildProcess } | null = null;
  let stopped = false;
  let count = 0;
  const env = unitEnvironment(plan, extraEnv);
  const run = async (): Promise<void> => {
    createDirectories(plan);
    for (const [i, pre] of plan.pre.entries()) {
      const p = spawnOne(`${plan.name}-pre${i}`, commandArgv(plan, pre), env);
      const { code, signal } = await waitExit(p.child);
      if ((code !== 0 || signal !== null) && !pre.ignoreFailure)
        throw new Error(`units: ${plan.name}: ExecStartPre ${pre.argv[0]} failed (${code ?? signal})`);
    }
    if (stopped) return;
    count++;
    const proc = spawnOne(plan.name, commandArgv(plan, plan.main), env);
    current = proc;
    void waitExit(proc.child).then(({ code, signal }) => {
      if (current === proc) current = null;
      if (stopped || !shouldRestart(plan.restart, code, signal)) return;
      setTimeout(() => {
        if (!stopped) void run().catch(() => undefined);
      }, plan.restartMs).unref();
    });
  };
  const started = run();
  return {
    plan,
    main: () => current,
    started,
    starts: () => count,
    stop: () => {
      stopped = true;
    },
  };
}
