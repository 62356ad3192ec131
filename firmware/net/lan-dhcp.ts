/**
 * The LAN's DHCP server: dnsmasq (Debian's dnsmasq-base, /usr/sbin/dnsmasq) with DHCP only (`port=0`),
 * as a Service. start() renders the config from validated settings, checks it with
 * `dnsmasq --test --conf-file=FILE` before it replaces the live file (atomically: candidate file,
 * rename, fsync of the directory), then runs `dnsmasq --keep-in-foreground` and supervises it
 * (supervised-child.ts): a crash restarts it with backoff, stop() ends exactly the PID it started. update() swaps in new settings the
 * same way and restarts dnsmasq (it does not re-read its main config on SIGHUP); if the new config does
 * not start, the previous one is put back. leases() reads the lease file for the page.
 *
 * Daemon wiring: `createLanDhcp({ settings: { interface, lanAddr: 'A.B.C.D/N', leaseFile, wan },
 * confPath: STATE_DIR/dnsmasq.conf, log })`, started after the firewall's lockdown is loaded (the LAN
 * may reach DHCP in every mode) and stopped on shutdown.
 */
import { copyFile, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile, fsyncDirectory } from '../lib/atomic-write.js';
import { exec } from '../lib/exec.js';
import type { Service } from '../lib/service.js';
import type { Log } from '../log.js';
import { type Lease, parseLeases } from './parse.js';
import { type LanDhcp as LanDhcpParams, renderDnsmasq, validateLanDhcp } from './render.js';
import { SupervisedChild } from './supervised-child.js';

export const DNSMASQ_BINARY = '/usr/sbin/dnsmasq';

/** The firmware's one logger interface (firmware/log.ts). */
type Logger = Log;

export interface LanDhcpOptions {
  /** { interface, lanAddr: 'A.B.C.D/N', leaseFile?, leaseSeconds?, wan?: { address, prefix } } */
  settings: unknown;
  /** The live dnsmasq.conf (its directory must exist). The last good copy is kept as `<file>.good`. */
  confPath: string;
  /** The dnsmasq binary (default /usr/sbin/dnsmasq). */
  dnsmasq?: string;
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

function command(opts: LanDhcpOptions, args: string[]): [string, string[]] {
  return [opts.dnsmasq ?? DNSMASQ_BINARY, args];
}

/** `dnsmasq --test --conf-file=FILE`: resolves with dnsmasq's complaint, or null when the file is good. */
export async function checkDnsmasqConfig(opts: LanDhcpOptions, file: string): Promise<string | null> {
  const [cmd, args] = command(opts, ['--test', `--conf-file=${file}`]);
  const r = await exec(cmd, args, { timeoutMs: 15_000 });
  const text = `${r.stdout}${r.stderr}`.trim();
  return !r.ok || !/syntax check OK/.test(text) ? text.slice(0, 300) || `Error: ${r.error}` : null;
}

export class LanDhcp implements Service {
  readonly name = 'lan-dhcp';
  #opts: LanDhcpOptions;
  #params: LanDhcpParams | null = null;
  #lastError: string | null = null;
  readonly #child: SupervisedChild;

  constructor(opts: LanDhcpOptions) {
    this.#opts = opts;
    this.#child = new SupervisedChild({
      command: () =>
        command(opts, [
          '--keep-in-foreground',
          `--conf-file=${opts.confPath}`,
          '--pid-file=',
          '--log-facility=-',
        ]),
      output: 'stderr',
      ready: /DHCP, sockets bound|DHCP, IP range/,
      startTimeoutMs: opts.startTimeoutMs ?? 10_000,
      backoffMs: opts.backoffMs ?? { initial: 500, max: 30_000 },
      maxLineLength: 1000,
      failure: (kind, detail, lines) => {
        const last = lines.slice(-3).join(' | ');
        const why =
          kind === 'timeout' ? `dnsmasq did not bind its DHCP socket: ${last}` : `dnsmasq ${detail}: ${last}`;
        this.#lastError = why;
        return obxError('NET_DHCP_FAILED', why);
      },
      onReady: (pid) => this.#opts.log?.info({ pid }, 'dnsmasq serving DHCP on the LAN'),
      onCrash: (why) => {
        this.#lastError = `dnsmasq ${why}: ${this.#child.lines.slice(-3).join(' | ')}`;
        this.#opts.log?.error({}, `${this.#lastError}; restarting`);
      },
      onRestartFailed: (err) => this.#opts.log?.error({ err: describeError(err) }, 'dnsmasq restart failed'),
    });
  }

  async start(): Promise<void> {
    this.#params = await this.#install(this.#opts.settings);
    await this.#child.launch();
    await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`);
  }

  async stop(): Promise<void> {
    await this.#child.stop();
  }

  /**
   * New settings: validated, rendered, checked by `dnsmasq --test`, swapped in, dnsmasq restarted. On
   * any failure the previous config is back in place and running; nothing changed.
   */
  async update(settings: unknown): Promise<void> {
    const previous = this.#params;
    const params = await this.#install(settings);
    await this.#child.kill();
    try {
      await this.#child.launch();
    } catch (err) {
      this.#opts.log?.warn(
        { err: describeError(err) },
        'new DHCP config did not start; restoring the last good one',
      );
      await rename(`${this.#opts.confPath}.good`, this.#opts.confPath).catch(() => undefined);
      await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`).catch(() => undefined);
      this.#params = previous;
      await this.#child.launch().catch(() => undefined);
      throw err;
    }
    this.#params = params;
    this.#opts.settings = settings;
    await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`);
  }

  status(): LanDhcpStatus {
    const p = this.#params;
    return Object.freeze({
      running: this.#child.running,
      pid: this.#child.pid,
      restarts: this.#child.restarts,
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
}

/** The entry point the daemon composes (see the header). */
export function createLanDhcp(opts: LanDhcpOptions): LanDhcp {
  return new LanDhcp(opts);
}
