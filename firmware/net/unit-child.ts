/**
 * A helper daemon that runs as a systemd unit of its own (dnsmasq: onionbox-dnsmasq.service, hostapd:
 * onionbox-hostapd.service, firmware/system/systemd/), seen from onionboxd. onionboxd may not start, stop
 * or signal it (another user, no capabilities for that, no polkit): it writes the helper's configuration
 * file, and the unit's .path unit has systemd restart the service for every new file. What onionboxd
 * reads back is the PID file the helper writes once it runs (dnsmasq: after its DHCP socket is bound;
 * hostapd -B: after its driver is set up), in a runtime directory whose group onionboxd belongs to.
 *
 *   pid()            the PID file's process when it runs, else null
 *   waitForStart(p)  resolves with the first running PID other than `p` (the one before the new file)
 *                    that is still running `settleMs` later; rejects with UnitStartTimeout after
 *                    `startTimeoutMs`
 *
 * A PID runs when signal 0 reaches it or is refused with EPERM (it runs under its own user). A PID reused
 * by another process after a crash could pass for the helper until systemd restarts it; the restart
 * writes the file again.
 */
import { readFile } from 'node:fs/promises';

export interface UnitChildOptions {
  /** The PID file the helper writes (its unit's runtime directory). */
  pidFile: string;
  /** How long a restart may take before it counts as failed. */
  startTimeoutMs: number;
  /** How long a new PID must keep running before it counts as started (a config refused late). */
  settleMs: number;
  /** How often the PID file is read while waiting (default 100 ms). */
  pollMs?: number;
}

/** A restart that did not produce a running helper in time. */
export class UnitStartTimeout extends Error {
  override readonly name = 'UnitStartTimeout';
}

/** True when the process exists, whoever's it is (kill 0: success or EPERM). */
export function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A PID file's number (one decimal line), or null when it is missing or holds anything else. */
export function parsePidFile(text: string): number | null {
  const m = /^\s*([1-9][0-9]{0,9})\s*$/.exec(text);
  const pid = m?.[1] === undefined ? Number.NaN : Number(m[1]);
  return Number.isSafeInteger(pid) && pid <= 4_194_304 ? pid : null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class UnitChild {
  readonly #opts: UnitChildOptions;

  constructor(opts: UnitChildOptions) {
    this.#opts = opts;
  }

  /** The running helper's PID (from its PID file), or null. */
  async pid(): Promise<number | null> {
    let text: string;
    try {
      text = await readFile(this.#opts.pidFile, 'utf8');
    } catch {
      return null;
    }
    const pid = parsePidFile(text);
    return pid !== null && pidRuns(pid) ? pid : null;
  }

  /** The first running PID other than `previous` that still runs `settleMs` later. */
  async waitForStart(previous: number | null): Promise<number> {
    const { startTimeoutMs, settleMs, pollMs = 100 } = this.#opts;
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      const pid = await this.pid();
      if (pid !== null && pid !== previous) {
        if (settleMs > 0) await sleep(settleMs);
        if ((await this.pid()) === pid) return pid;
      }
      await sleep(pollMs);
    }
    throw new UnitStartTimeout(`no new running process in ${this.#opts.pidFile} within ${startTimeoutMs} ms`);
  }
}
