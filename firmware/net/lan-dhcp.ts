/**
 * The LAN's DHCP server: dnsmasq (Debian's dnsmasq-base, /usr/sbin/dnsmasq) with DHCP only (`port=0`),
 * as a Service. dnsmasq runs as a systemd unit of its own under its own user (onionbox-dnsmasq.service):
 * onionboxd neither starts nor stops it (unit-child.ts). start() renders the config from validated
 * settings, checks it with `dnsmasq --test --conf-file=FILE` before it replaces the live file (atomically:
 * candidate file, rename, fsync of the directory); the rename is what has systemd restart dnsmasq with it
 * (onionbox-dnsmasq.path), and start() resolves once dnsmasq's PID file names a new running process.
 * A crash is systemd's to restart (Restart=always). update() swaps in new settings the same way; if the
 * new config does not start, the previous one is put back (which restarts dnsmasq again). leases() reads
 * the lease file for the page (dnsmasq's runtime directory, readable through onionboxd's group
 * onionbox-dhcp).
 *
 * Daemon wiring: `createLanDhcp({ settings: { interface, lanAddr: 'A.B.C.D/N', leaseFile, pidFile, wan },
 * confPath: STATE_DIR/dnsmasq.conf, log })`, started after the firewall's lockdown is loaded (the LAN
 * may reach DHCP in every mode). stop() ends nothing: dnsmasq's unit stops with onionboxd's (PartOf=).
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
import { pidRuns, UnitChild } from './unit-child.js';

export const DNSMASQ_BINARY = '/usr/sbin/dnsmasq';

/** The firmware's one logger interface (firmware/log.ts). */
type Logger = Log;

export interface LanDhcpOptions {
  /** { interface, lanAddr: 'A.B.C.D/N', leaseFile?, pidFile?, leaseSeconds?, wan?: { address, prefix } } */
  settings: unknown;
  /**
   * The live dnsmasq.conf, the file onionbox-dnsmasq.service loads (its directory must exist). The last
   * good copy is kept as `<file>.good`.
   */
  confPath: string;
  /** The dnsmasq binary that checks a config (`--test`; default /usr/sbin/dnsmasq). */
  dnsmasq?: string;
  log?: Logger;
  /** How long start() waits for the restarted dnsmasq to bind its DHCP socket (default 15 s). */
  startTimeoutMs?: number;
}

export interface LanDhcpStatus {
  readonly running: boolean;
  readonly pid: number | null;
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
  #child: UnitChild | null = null;
  #childPidFile: string | null = null;
  #pid: number | null = null;

  constructor(opts: LanDhcpOptions) {
    this.#opts = opts;
  }

  async start(): Promise<void> {
    const params = validateLanDhcp(this.#opts.settings);
    const before = await this.#unit(params).pid();
    this.#params = await this.#install(this.#opts.settings);
    await this.#started(before);
    await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`);
  }

  /** dnsmasq's unit stops with onionboxd's (PartOf=): nothing of it is onionboxd's to end. */
  async stop(): Promise<void> {}

  /**
   * New settings: validated, rendered, checked by `dnsmasq --test`, swapped in (dnsmasq restarts with
   * them). On any failure the previous config is back in place and running; nothing changed.
   */
  async update(settings: unknown): Promise<void> {
    const previous = this.#params;
    const before = previous ? await this.#unit(previous).pid() : null;
    const params = await this.#install(settings);
    try {
      await this.#started(before);
    } catch (err) {
      this.#opts.log?.warn(
        { err: describeError(err) },
        'new DHCP config did not start; restoring the last good one',
      );
      const failed = await this.#unit(params).pid();
      await rename(`${this.#opts.confPath}.good`, this.#opts.confPath).catch(() => undefined);
      await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`).catch(() => undefined);
      this.#params = previous;
      await this.#started(failed).catch(() => undefined);
      throw err;
    }
    this.#opts.settings = settings;
    await copyFile(this.#opts.confPath, `${this.#opts.confPath}.good`);
  }

  status(): LanDhcpStatus {
    const p = this.#params;
    return Object.freeze({
      running: this.#pid !== null && pidRuns(this.#pid),
      pid: this.#pid,
      lastError: this.#lastError,
      interface: p?.interface ?? null,
      range: p ? { start: p.rangeStart, end: p.rangeEnd } : null,
    });
  }

  /** The PID file of these settings (its path is in the rendered config). */
  #unit(params: LanDhcpParams): UnitChild {
    if (this.#child === null || this.#childPidFile !== params.pidFile) {
      this.#childPidFile = params.pidFile;
      this.#child = new UnitChild({
        pidFile: params.pidFile,
        startTimeoutMs: this.#opts.startTimeoutMs ?? 15_000,
        settleMs: 200,
      });
    }
    return this.#child;
  }

  /** Waits for a dnsmasq other than `before` (the restart the new config file caused). */
  async #started(before: number | null): Promise<void> {
    const params = this.#params;
    if (!params) throw obxError('NET_DHCP_FAILED', 'no DHCP settings installed');
    try {
      this.#pid = await this.#unit(params).waitForStart(before);
    } catch (err) {
      const why = `dnsmasq did not start with the new configuration (${describeError(err)}); its log: journalctl -u onionbox-dnsmasq`;
      this.#lastError = why;
      throw obxError('NET_DHCP_FAILED', why);
    }
    this.#lastError = null;
    this.#opts.log?.info({ pid: this.#pid }, 'dnsmasq serving DHCP on the LAN');
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
