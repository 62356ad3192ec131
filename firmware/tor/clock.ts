/**
 * The box's clock without clearnet NTP (a Pi has no RTC; tor needs a roughly right clock to accept a
 * consensus). Sources, in order of trust (see firmware/tor/README.md):
 *   1. the saved time: persisted periodically and at stop (SD-card-safe write), restored at boot — the
 *      clock never starts behind the last time the box knew;
 *   2. the owner's browser, during setup or when tor complains (BoxApi.setClock);
 *   3. tor's CLOCK_SKEW reports: acted on only when the source is the consensus (signed by the
 *      directory authorities) or when 3 different relays agree, and only forward by default.
 * The clock is never set from a single relay or from anything on the clearnet.
 *
 * Setting the system clock is the adapter's job (`setSystemTime`): `date -u -s @SECONDS` on the box (an
 * argument array, no shell), an offset in the simulator, which never touches the host clock.
 */
import { readFile } from 'node:fs/promises';
import { obxError } from '../errors.js';
import type { EventBus } from '../events.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { CLOCK_MAX_MS, CLOCK_MIN_MS } from '../lib/clock-range.js';
import { exec } from '../lib/exec.js';
import type { Log } from '../log.js';
import type { ClockSkew } from './supervisor.js';

/** Earliest plausible time: this firmware's build year. Nothing before it is believed. */
export const MIN_PLAUSIBLE_MS = CLOCK_MIN_MS;
/** Latest plausible time. */
export const MAX_PLAUSIBLE_MS = CLOCK_MAX_MS;

/** Checks a time from outside (owner, file); throws OBX_ERR_CLOCK_INVALID. */
export function validEpochMs(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value)) {
    throw obxError('CLOCK_INVALID', 'time must be an integer number of milliseconds since 1970');
  }
  if (value < MIN_PLAUSIBLE_MS || value > MAX_PLAUSIBLE_MS) {
    throw obxError('CLOCK_INVALID', `${new Date(value).toISOString()} is not a plausible time`);
  }
  return value;
}

export interface SkewDecision {
  /** Adjust the clock by this many ms (positive: forward), or 0 to leave it. */
  adjustMs: number;
  reason: string;
}

/** Pure policy for CLOCK_SKEW reports. `recent` holds other relays' reports from the last 10 minutes. */
export function decideSkew(
  report: ClockSkew,
  recent: readonly { source: string; skewSeconds: number }[],
  opts: { thresholdSeconds?: number; allowBackward?: boolean } = {},
): SkewDecision {
  const threshold = opts.thresholdSeconds ?? 120;
  if (Math.abs(report.skewSeconds) < threshold) return { adjustMs: 0, reason: 'skew below threshold' };
  // skew > 0: our clock is ahead of the source -> move back; skew < 0: we are behind -> move forward.
  const adjustMs = -report.skewSeconds * 1000;
  if (adjustMs < 0 && !opts.allowBackward)
    return { adjustMs: 0, reason: 'never moving the clock back on tor reports' };
  if (report.source === 'CONSENSUS')
    return { adjustMs, reason: 'consensus validity (signed by the authorities)' };
  if (report.source.startsWith('OR:') || report.source.startsWith('DIRSERV:')) {
    const agreeing = new Set(
      [...recent, report]
        .filter((r) => r.source !== 'CONSENSUS' && Math.sign(r.skewSeconds) === Math.sign(report.skewSeconds))
        .filter((r) => Math.abs(r.skewSeconds - report.skewSeconds) <= 300)
        .map((r) => r.source.replace(/:[0-9]+$/, '')),
    );
    if (agreeing.size >= 3) return { adjustMs, reason: `${agreeing.size} relays agree` };
    return { adjustMs: 0, reason: 'a single relay is not trusted with the clock' };
  }
  return { adjustMs: 0, reason: `unknown source ${report.source.slice(0, 40)}` };
}

/**
 * Sets the system clock: `date -u -s @SECONDS` (argument array, no shell). Needs root (CAP_SYS_TIME).
 * The one place the box's clock is set (the clock service and BoxApi.setClock both call it).
 */
export async function setSystemClock(epochMs: number): Promise<void> {
  const r = await exec('date', ['-u', '-s', `@${Math.floor(validEpochMs(epochMs) / 1000)}`], {
    timeoutMs: 5000,
  });
  if (!r.ok) throw obxError('CLOCK_INVALID', `date -s failed: ${r.error ?? `exit ${r.code}`}`);
}

/** What the clock service logs with: part of the one Log (firmware/log.ts). */
export type ClockLogger = Pick<Log, 'info' | 'warn'>;

export interface ClockServiceOptions {
  /** File holding the last known time (in the state directory). */
  file: string;
  bus?: EventBus | undefined;
  log?: ClockLogger | undefined;
  /** Adapter that sets the clock; the simulator passes one that only records an offset. */
  setSystemTime: (epochMs: number) => Promise<void>;
  /** The clock as seen by the firmware (default Date.now). */
  now?: () => number;
  /** How often the time is saved (default 10 minutes). */
  saveEveryMs?: number;
}

export class ClockService {
  readonly #opts: ClockServiceOptions;
  #timer: NodeJS.Timeout | null = null;
  #recent: { source: string; skewSeconds: number; at: number }[] = [];
  #unsubscribe: (() => void) | null = null;

  constructor(opts: ClockServiceOptions) {
    this.#opts = opts;
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  /** Restores the saved time if the clock is behind it, subscribes to CLOCK_SKEW, starts saving. */
  async start(): Promise<void> {
    await this.restore();
    this.#unsubscribe =
      this.#opts.bus?.on('tor:clock-skew', 'clock', (skew) => this.onClockSkew(skew).then(() => undefined)) ??
      null;
    this.#timer = setInterval(
      () => void this.save().catch(() => undefined),
      this.#opts.saveEveryMs ?? 600_000,
    );
    this.#timer.unref();
    await this.save();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.save().catch(() => undefined);
  }

  /** The saved time, or null when there is none (or it is unreadable). */
  async saved(): Promise<number | null> {
    try {
      const doc = JSON.parse(await readFile(this.#opts.file, 'utf8')) as { savedAt?: unknown };
      return validEpochMs(doc.savedAt);
    } catch {
      return null;
    }
  }

  async save(): Promise<void> {
    const now = this.#now();
    if (now < MIN_PLAUSIBLE_MS) return; // never persist a clock we know is wrong
    const previous = await this.saved();
    if (previous !== null && previous > now) return; // keep the later time
    await atomicWriteFile(this.#opts.file, `${JSON.stringify({ savedAt: now })}\n`, 0o600);
  }

  /** At boot: a clock behind the last saved time is moved forward to it. Returns whether it was set. */
  async restore(): Promise<boolean> {
    const saved = await this.saved();
    if (saved === null || saved <= this.#now()) return false;
    await this.#opts.setSystemTime(saved);
    this.#opts.log?.info({ to: new Date(saved).toISOString() }, 'clock restored from the saved time');
    this.#opts.bus?.emit('clock:set', { by: 'saved', at: saved });
    return true;
  }

  /** The owner's browser time (ms since epoch). Validated; rejects absurd values with OBX_ERR_CLOCK_INVALID. */
  async setFromOwner(epochMs: unknown): Promise<void> {
    const t = validEpochMs(epochMs);
    await this.#opts.setSystemTime(t);
    this.#opts.log?.info({ to: new Date(t).toISOString() }, 'clock set by the owner');
    await atomicWriteFile(this.#opts.file, `${JSON.stringify({ savedAt: t })}\n`, 0o600);
    this.#opts.bus?.emit('clock:set', { by: 'owner', at: t });
  }

  /** Acts on one CLOCK_SKEW report per decideSkew(); returns the decision. */
  async onClockSkew(report: ClockSkew): Promise<SkewDecision> {
    const now = this.#now();
    this.#recent = this.#recent.filter((r) => now - r.at < 600_000).slice(-20);
    const decision = decideSkew(report, this.#recent);
    this.#recent.push({ source: report.source, skewSeconds: report.skewSeconds, at: now });
    if (decision.adjustMs !== 0) {
      const target = now + decision.adjustMs;
      try {
        await this.#opts.setSystemTime(validEpochMs(Math.round(target)));
        this.#recent = [];
        this.#opts.log?.warn(
          { adjustMs: decision.adjustMs, reason: decision.reason },
          'clock adjusted from tor',
        );
        this.#opts.bus?.emit('clock:set', { by: 'tor', at: Math.round(target) });
      } catch (err) {
        this.#opts.log?.warn({ err: (err as Error).message }, 'clock adjustment refused');
        return { adjustMs: 0, reason: (err as Error).message };
      }
    }
    return decision;
  }
}
