/**
 * One long-running child process (dnsmasq, hostapd) under supervision, the part access-point.ts and
 * lan-dhcp.ts share:
 *
 *   launch()  spawns it (argument array, no shell) and resolves once a line of its output matches
 *             `ready`; rejects when it exits, fails to spawn or stays silent past `startTimeoutMs`
 *             (then it is ended). The last lines are kept for error messages.
 *   crash     an exit after it was ready (not one this module caused) restarts it after a backoff that
 *             doubles up to a cap and resets once a start succeeds.
 *   kill()    SIGTERM to exactly the PID it started, SIGKILL after 5 s; its exit is not a crash.
 *   stop()    no more restarts, then kill().
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { followLines, LastLines } from '../lib/child-lines.js';

export type ChildFailure = 'exited' | 'timeout' | 'spawn';

export interface SupervisedChildOptions {
  /** The command to run, asked again at every (re)start. */
  command: () => [string, string[]];
  /** Which output carries the readiness line (hostapd: both; dnsmasq --log-facility=-: stderr). */
  output: 'stderr' | 'both';
  ready: RegExp;
  startTimeoutMs: number;
  backoffMs: { initial: number; max: number };
  /** The error a failed start rejects with (`lines`: its last output lines). */
  failure: (kind: ChildFailure, detail: string, lines: readonly string[]) => Error;
  /** Longest kept line (default 200 characters). */
  maxLineLength?: number;
  onReady?: (pid: number | undefined) => void;
  /** It exited after it was ready: `why` in words, a restart follows. */
  onCrash?: (why: string) => void;
  onRestartFailed?: (err: unknown) => void;
}

const KEPT_LINES = 20;

export class SupervisedChild {
  readonly #opts: SupervisedChildOptions;
  #child: ChildProcess | null = null;
  /** Processes this module is ending itself (their exit is not a crash). */
  readonly #ending = new WeakSet<ChildProcess>();
  #stopping = false;
  #timer: NodeJS.Timeout | null = null;
  #backoff: number;
  #restarts = 0;
  #lines = new LastLines(KEPT_LINES);

  constructor(opts: SupervisedChildOptions) {
    this.#opts = opts;
    this.#backoff = opts.backoffMs.initial;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** The last output lines (at most 20). */
  get lines(): readonly string[] {
    return this.#lines.last();
  }

  /** Starts it (supervision on again after a stop()); resolves once it is ready. */
  launch(): Promise<void> {
    this.#stopping = false;
    return this.#launch();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.kill();
  }

  /** Ends the running process (if any) without a restart. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.#child = null;
      return;
    }
    this.#ending.add(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    if (this.#child === child) this.#child = null;
  }

  #launch(): Promise<void> {
    const [cmd, args] = this.#opts.command();
    this.#lines = new LastLines(KEPT_LINES);
    const child = spawn(cmd, args, {
      stdio: ['ignore', this.#opts.output === 'both' ? 'pipe' : 'ignore', 'pipe'],
    });
    this.#child = child;
    const max = this.#opts.maxLineLength ?? 200;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (kind: ChildFailure, detail: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(this.#opts.failure(kind, detail, this.#lines.last()));
      };
      const timer = setTimeout(() => {
        fail('timeout', `no ${this.#opts.ready} within ${this.#opts.startTimeoutMs} ms`);
        void this.kill();
      }, this.#opts.startTimeoutMs);
      followLines([child.stdout, child.stderr], (line) => {
        this.#lines.push(line.slice(0, max));
        if (!settled && this.#opts.ready.test(line)) {
          settled = true;
          clearTimeout(timer);
          this.#backoff = this.#opts.backoffMs.initial;
          this.#opts.onReady?.(child.pid);
          resolve();
        }
      });
      child.once('error', (err) => fail('spawn', err.message));
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = null;
        const why = `exited (${code ?? signal})`;
        if (!settled) return fail('exited', why);
        if (this.#stopping || this.#ending.has(child)) return;
        this.#opts.onCrash?.(why);
        this.#scheduleRestart();
      });
    });
  }

  #scheduleRestart(): void {
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMs.max);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#stopping) return;
      this.#restarts++;
      this.#launch().catch((err: unknown) => {
        this.#opts.onRestartFailed?.(err);
        if (!this.#stopping) this.#scheduleRestart();
      });
    }, delay);
  }
}
