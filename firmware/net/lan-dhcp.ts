/**
 * The LAN's DHCP server: dnsmasq (Debian's dnsmasq-base, /usr/sbin/dnsmasq) with DHCP only (`port=0`),
 * as a Service. start() renders the config from validated settings, checks it with
 * `dnsmasq --test --conf-file=FILE` before it replaces the live file (atomically: candidate file,
 * rename, fsync of the directory), then runs `dnsmasq --keep-in-foreground` and supervises it: a crash
 * restarts it with backoff, stop() ends exactly the PID it started. update() swaps in new settings the
 * same way and restarts dnsmasq (it does not re-read its main config on SIGHUP); if the new config does
 * not start, the previous one is put back. leases() reads the lease file for the page.
 *
 * Daemon wiring: `createLanDhcp({ settings: { interface, lanAddr: 'A.B.C.D/N', leaseFile, wan },
 * confPath: STATE_DIR/dnsmasq.conf, log })`, started after the firewall's lockdown is loaded (the LAN
 * may reach DHCP in every mode) and stopped on shutdown.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFile, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile, fsyncDirectory } from '../lib/atomic-write.js';
import type { Service } from '../service.js';
import { type Lease, parseLeases } from './parse.js';
import { type LanDhcp as LanDhcpParams, renderDnsmasq, validateLanDhcp } from './render.js';

export const DNSMASQ_BINARY = '/usr/sbin/dnsmasq';

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LanDhcpOptions {
  /** { interface, lanAddr: 'A.B.C.D/N', leaseFile?, leaseSeconds?, wan?: { address, prefix } } */
  settings: unknown;
  /** The live dnsmasq.conf (its directory must exist). The last good copy is kept as `<file>.good`. */
  confPath: string;
  dnsmasq?: string;
  /** Run dnsmasq inside this network namespace (`ip netns exec`; tests and the simulator). */
  netns?: string;
  log?: Logger;
  /** Restart backoff after a crash (ms): first delay and cap. Default 500 ms doubling to 30 s. */
  backoffMs?: { initial: number; max: number };
  /** How long start() waits for dnsmasq to bind its DHCP socket (default 10 s). */
  startTimeoutMs?: number;
}

export interface LanDhcpStatus {
  readonly running: boolean;
  readonly pid: number | null;
  readonly restarts: number;
  readonly lastError: string | null;
  readonly interface: string | null;
  readonly range: { start: string; end: string } | null;
}

const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function command(opts: LanDhcpOptions, args: string[]): [string, string[]] {
  const bin = opts.dnsmasq ?? DNSMASQ_BINARY;
  if (opts.netns === undefined) return [bin, args];
  if (!NETNS.test(opts.netns)) throw obxError('NET_VALUE_INVALID', 'netns must be a namespace name');
  return ['ip', ['netns', 'exec', opts.netns, bin, ...args]];
}

/** `dnsmasq --test --conf-file=FILE`: resolves with dnsmasq's complaint, or null when the file is good. */
export function checkDnsmasqConfig(opts: LanDhcpOptions, file: string): Promise<string | null> {
  const [cmd, args] = command(opts, ['--test', `--conf-file=${file}`]);
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      const text = `${stdout}${stderr}`.trim();
      resolve(err || !/syntax check OK/.test(text) ? text.slice(0, 300) || String(err) : null);
    });
  });
}

export class LanDhcp implements Service {
  readonly name = 'lan-dhcp';
  #opts: LanDhcpOptions;
  #params: LanDhcpParams | null = null;
  #child: ChildProcess | null = null;
  #stopping = false;
  #restarts = 0;
  #lastError: string | null = null;
  #backoff: number;
  #timer: NodeJS.Timeout | null = null;
  #lines: string[] = [];
  /** Processes this service is ending itself (their exit is not a crash). */
  #ending = new WeakSet<ChildProcess>();

  constructor(opts: LanDhcpOptions) {
    this.#opts = opts;
    this.#backoff = opts.backoffMs?.initial ?? 500;
  }

  async start(): Promise<void> {
    this.#stopping = false;
    this.#params = await this.#install(this.#opts.settings);
    await this.#launch();
    await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#kill();
  }

  /**
   * New settings: validated, rendered, checked by `dnsmasq --test`, swapped in, dnsmasq restarted. On
   * any failure the previous config is back in place and running; nothing changed.
   */
  async update(settings: unknown): Promise<void> {
    const previous = this.#params;
    const params = await this.#install(settings);
    await this.#kill();
    try {
      await this.#launch();
    } catch (err) {
      this.#opts.log?.warn(
        { err: describeError(err) },
        'new DHCP config did not start; restoring the last good one',
      );
      await rename(`${this.#opts.confPath}.good`, this.#opts.confPath).catch(() => undefined);
      await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`).catch(() => undefined);
      this.#params = previous;
      await this.#launch().catch(() => undefined);
      throw err;
    }
    this.#params = params;
    this.#opts.settings = settings;
    await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`);
  }

  status(): LanDhcpStatus {
    const p = this.#params;
    return Object.freeze({
      running: this.#child !== null && this.#child.exitCode === null,
      pid: this.#child?.pid ?? null,
      restarts: this.#restarts,
      lastError: this.#lastError,
      interface: p?.interface ?? null,
      range: p ? { start: p.rangeStart, end: p.rangeEnd } : null,
    });
  }

  /** The current leases (empty when the file does not exist yet). */
  async leases(): Promise<Lease[]> {
    if (!this.#params) return [];
    try {
      return parseLeases(await readFile(this.#params.leaseFile, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Render, check with --test, then atomically replace the live config. */
  async #install(settings: unknown): Promise<LanDhcpParams> {
    const params = validateLanDhcp(settings);
    const text = renderDnsmasq(settings);
    const live = this.#opts.confPath;
    const candidate = join(dirname(live), `.${basename(live)}.candidate`);
    await atomicWriteFile(candidate, text, 0o644);
    const problem = await checkDnsmasqConfig(this.#opts, candidate);
    if (problem !== null) {
      await unlink(candidate).catch(() => undefined);
      throw obxError('NET_DHCP_CONFIG_REJECTED', problem);
    }
    await rename(candidate, live);
    await fsyncDirectory(dirname(live));
    return params;
  }

  #launch(): Promise<void> {
    const [cmd, args] = command(this.#opts, [
      '--keep-in-foreground',
      `--conf-file=${this.#opts.confPath}`,
      '--pid-file=',
      '--log-facility=-',
    ]);
    this.#lines = [];
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    return new Promise((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (ready) return;
        reject(
          obxError(
            'NET_DHCP_FAILED',
            `dnsmasq did not bind its DHCP socket: ${this.#lines.slice(-3).join(' | ')}`,
          ),
        );
        void this.#kill();
      }, this.#opts.startTimeoutMs ?? 10_000);
      let buf = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) {
          this.#lines.push(line);
          if (this.#lines.length > 20) this.#lines.shift();
          if (!ready && /DHCP, sockets bound|DHCP, IP range/.test(line)) {
            ready = true;
            clearTimeout(timer);
            this.#backoff = this.#opts.backoffMs?.initial ?? 500;
            this.#opts.log?.info({ pid: child.pid }, 'dnsmasq serving DHCP on the LAN');
            resolve();
          }
        }
      });
      child.once('error', (err) => {
        this.#lastError = err.message;
      });
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = null;
        const why = `dnsmasq exited (${code ?? signal}): ${this.#lines.slice(-3).join(' | ')}`;
        if (!ready) {
          clearTimeout(timer);
          this.#lastError = why;
          reject(obxError('NET_DHCP_FAILED', why));
          return;
        }
        if (this.#stopping || this.#ending.has(child)) return;
        this.#lastError = why;
        this.#opts.log?.error({}, `${why}; restarting`);
        this.#scheduleRestart();
      });
    });
  }

  #scheduleRestart(): void {
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMs?.max ?? 30_000);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#stopping) return;
      this.#restarts++;
      this.#launch().catch((err) => {
        this.#opts.log?.error({ err: describeError(err) }, 'dnsmasq restart failed');
        if (!this.#stopping) this.#scheduleRestart();
      });
    }, delay);
  }

  /** SIGTERM to the PID we started, SIGKILL after 5 s. */
  async #kill(): Promise<void> {
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
}

/** The entry point the daemon composes (see the header). */
export function createLanDhcp(opts: LanDhcpOptions): LanDhcp {
  return new LanDhcp(opts);
}
