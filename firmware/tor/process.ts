/**
 * The tor process itself: its environment, its user and data directory, spawning it and following its
 * output and exit. No control port, no readiness (supervisor.ts and readiness.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat } from 'node:fs/promises';
import { obxError } from '../errors.js';
import { followLines, LastLines } from '../lib/child-lines.js';
import { clipText } from '../lib/clip.js';

/**
 * tor's environment: onionboxd's without systemd's notify socket and watchdog variables (tor would
 * otherwise report readiness or pet the watchdog on onionboxd's behalf) and without LISTEN_* sockets.
 */
export function torEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (k === 'NOTIFY_SOCKET' || k.startsWith('WATCHDOG_') || k.startsWith('LISTEN_')) continue;
    out[k] = v;
  }
  return out;
}

/** uid/gid of a system user from /etc/passwd (no shell, no `id`): the one way tor's uid is found. */
export async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && /^[0-9]+$/.test(f[2] ?? '') && /^[0-9]+$/.test(f[3] ?? '')) {
      return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  }
  throw obxError('TOR_START_FAILED', `no system user "${name}" for tor`);
}

/**
 * Creates tor's data directory (mode 0700). With `User`, tor drops privileges before it touches its
 * DataDirectory: it must belong to that user (what Debian's tor unit does for /var/lib/tor). Ownership
 * and mode are changed only when they differ (Debian's tor package creates /var/lib/tor this way):
 * onionboxd on the box then needs no CAP_CHOWN/CAP_FOWNER.
 */
export async function prepareDataDir(dataDir: string, user: string | undefined): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user === undefined) return;
  const ids = await systemUser(user);
  const st = await stat(dataDir);
  if (st.uid !== ids.uid || st.gid !== ids.gid) await chown(dataDir, ids.uid, ids.gid);
  if ((st.mode & 0o777) !== 0o700) await chmod(dataDir, 0o700);
}

const MAX_LOG_LINES = 40;

/** One run of tor: spawned on construction of start(), its last log lines kept, killed on stop. */
export class TorProcess {
  readonly child: ChildProcess;
  readonly #logLines = new LastLines(MAX_LOG_LINES);
  /** Rejects when tor exits or cannot be spawned (used to race its start-up). */
  readonly exited: Promise<never>;

  constructor(torBinary: string, torrcPath: string, onLine: (line: string) => void) {
    this.child = spawn(
      torBinary,
      ['--defaults-torrc', '/dev/null', '-f', torrcPath, '--ignore-missing-torrc'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: torEnvironment(process.env),
      },
    );
    // tor's stdout and stderr, each split into lines on its own; printable ASCII, cut at a word (…).
    followLines([this.child.stdout, this.child.stderr], (line) => {
      const clean = clipText(line.replace(/[^\x20-\x7e]/g, ''), 300);
      if (!clean) return;
      this.#logLines.push(clean);
      onLine(clean);
    });
    this.exited = new Promise<never>((_, reject) => {
      this.child.once('exit', (code, signal) => {
        reject(
          obxError(
            'TOR_START_FAILED',
            `tor exited (${code ?? signal}) during start-up: ${this.lastLines(5).join(' | ')}`,
          ),
        );
      });
      this.child.once('error', (err) => reject(obxError('TOR_START_FAILED', err.message, { cause: err })));
    });
    this.exited.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  lastLines(n: number): string[] {
    return this.#logLines.last(n);
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.child.once('exit', listener);
  }

  /** SIGTERM, SIGKILL after 5 s; resolves once tor is gone. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}
