/**
 * When the updater acts, as pure functions of the time (callers pass it; box time is UTC on the image):
 * one check a day at a minute drawn once per box (so a fleet of boxes does not ask the servers at the same
 * moment), the night window in which "install and restart at night" installs, and how a saved update state
 * is resumed after onionboxd or the whole box restarted.
 */
import { type UpdateState, updateStep } from './machine.js';

export const MINUTES_PER_DAY = 24 * 60;
const MINUTE_MS = 60_000;
const DAY_MS = MINUTES_PER_DAY * MINUTE_MS;

/** The night window for "install and restart at night": from 02:00 to 05:00 box time (UTC). */
export const NIGHT_START_MINUTE = 2 * 60;
export const NIGHT_END_MINUTE = 5 * 60;

/** The box's own check minute (0-1439), drawn once from `random` (a [0, 1) source) and then kept. */
export function drawCheckMinute(random: () => number): number {
  const r = random();
  const minute = Math.floor((Number.isFinite(r) ? Math.min(Math.max(r, 0), 0.999999) : 0) * MINUTES_PER_DAY);
  return minute;
}

function minuteOfDay(now: Date): number {
  return Math.floor((now.getTime() % DAY_MS) / MINUTE_MS);
}

function startOfDay(now: Date): number {
  return now.getTime() - (now.getTime() % DAY_MS);
}

/** The next moment, strictly after `now`, at `minute` of a day. */
export function nextDailyAt(now: Date, minute: number): Date {
  const today = startOfDay(now) + minute * MINUTE_MS;
  return new Date(today > now.getTime() ? today : today + DAY_MS);
}

/**
 * When the next daily check is due: at the box's minute, but at once if the last check is more than a day
 * old (a box that was off, or never checked).
 */
export function nextCheckAt(now: Date, minute: number, lastCheck: Date | null): Date {
  if (lastCheck === null || now.getTime() - lastCheck.getTime() >= DAY_MS) return now;
  return nextDailyAt(now, minute);
}

export function isNight(now: Date): boolean {
  const m = minuteOfDay(now);
  return m >= NIGHT_START_MINUTE && m < NIGHT_END_MINUTE;
}

/** When "install and restart at night" installs: now if it is night, else at the box's minute of the next night. */
export function nextInstallAt(now: Date, minute: number): Date {
  if (isNight(now)) return now;
  const offset = NIGHT_START_MINUTE + (minute % (NIGHT_END_MINUTE - NIGHT_START_MINUTE));
  return nextDailyAt(now, offset);
}

/**
 * The saved state after a restart of onionboxd or of the box. `bootId` is the kernel's boot id now;
 * `installBootId` the one saved when RAUC finished writing (null if none). Work that a restart cut goes
 * back to where it can be done again from files on disk; a trial boot is judged by which version runs:
 *   checking                       -> idle (the check is asked again at its time)
 *   downloading, verifying         -> available (the `.part` file resumes)
 *   installing                     -> ready (RAUC marks the slot bad before writing: installing again is safe)
 *   trial-boot, same boot          -> trial-boot (written, the restart did not happen yet)
 *   trial-boot, new boot, new version running -> trial-boot (the box waits for routing to keep it)
 *   trial-boot, new boot, old version running -> fell-back (the boot counter or a mark-bad brought it back)
 */
export function resumeUpdateState(
  saved: UpdateState,
  runningVersion: string,
  bootId: string,
  installBootId: string | null,
): UpdateState {
  const s = Object.freeze({ ...saved, progress: null });
  switch (saved.phase) {
    case 'checking':
      return Object.freeze({ ...s, phase: 'idle', target: null, result: 'the check was cut by a restart' });
    case 'downloading':
    case 'verifying':
      return Object.freeze({ ...s, phase: 'available' });
    case 'installing':
      return Object.freeze({ ...s, phase: 'ready' });
    case 'trial-boot': {
      if (installBootId === null || installBootId === bootId) return s;
      if (saved.target === runningVersion) return s;
      return updateStep(s, { type: 'trial-failed', reason: 'did not reach Tor on its trial boot' });
    }
    default:
      // idle, available, ready, good, fell-back: the image says which version runs
      return saved.phase === 'good' || saved.phase === 'fell-back' || saved.phase === 'idle'
        ? Object.freeze({ ...s, running: runningVersion })
        : s;
  }
}
