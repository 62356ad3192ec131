/**
 * The updater's status in words, for the page, the CLI, `onionbox status` and the OLED: pure functions of
 * the status and the time.
 */
import type { UpdateStatus } from './service.js';

/** An image older than this many months raises a warning (page and OLED). */
export const IMAGE_AGE_WARN_MONTHS = 6;
const DAY_MS = 24 * 60 * 60 * 1000;

/** "3 days", "5 months": how long ago, in the largest whole unit. */
export function ageInWords(from: Date, now: Date): string {
  const days = Math.max(0, Math.floor((now.getTime() - from.getTime()) / DAY_MS));
  if (days < 1) return 'less than a day';
  if (days < 60) return `${days} day${days === 1 ? '' : 's'}`;
  const months = Math.floor(days / 30.44);
  if (months < 24) return `${months} months`;
  return `${Math.floor(days / 365.25)} years`;
}

/** The warning for an old image, or null. */
export function imageAgeWarning(
  built: Date | null,
  now: Date,
  months = IMAGE_AGE_WARN_MONTHS,
): string | null {
  if (built === null) return null;
  if (now.getTime() - built.getTime() < months * 30.44 * DAY_MS) return null;
  return `This box's software is ${ageInWords(built, now)} old: it may lack security fixes. Check for an update.`;
}

/** tor's STATUS_GENERAL DANGEROUS_VERSION, in words. */
export function dangerousVersionWarning(version: string | null): string {
  return `The Tor network no longer recommends this box's tor${version ? ` (${version})` : ''}: update the box soon.`;
}

export function bytesInWords(n: number): string {
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** What the updater is doing, in one sentence. */
export function phaseInWords(s: UpdateStatus): string {
  if (!s.enabled) return `Updates are off: ${s.disabledReason}.`;
  switch (s.phase) {
    case 'idle':
      return s.result ? `Up to date as far as the box knows (${s.result}).` : 'No update check yet.';
    case 'checking':
      return 'Checking for an update through Tor...';
    case 'available':
      return s.policy === 'ask'
        ? `Version ${s.target} is available: install it when you are ready.`
        : `Version ${s.target} is available: it downloads now and installs at night.`;
    case 'downloading': {
      const p = s.progress;
      return p && p.total > 0
        ? `Downloading version ${s.target} through Tor: ${bytesInWords(p.done)} of ${bytesInWords(p.total)} (${Math.floor((100 * p.done) / p.total)}%).`
        : `Downloading version ${s.target} through Tor...`;
    }
    case 'verifying':
      return `Checking the downloaded version ${s.target}...`;
    case 'ready':
      return s.policy === 'ask'
        ? `Version ${s.target} is downloaded and verified: install it when you are ready (the box restarts, about 3 minutes without internet).`
        : `Version ${s.target} is downloaded and verified: it installs tonight between 02:00 and 05:00 and the box restarts.`;
    case 'installing':
      return `Installing version ${s.target} to the other slot; the box restarts when it is written.`;
    case 'trial-boot':
      return s.running === s.target
        ? `Running version ${s.target} on trial: it is kept once the box reaches Tor.`
        : `Version ${s.target} is written; the box restarts into it.`;
    case 'good':
      return s.result ?? `Version ${s.running} reached Tor and is kept.`;
    case 'fell-back':
      return s.result ?? `The update did not work; the box went back to version ${s.running}.`;
  }
}

/** One line for `onionbox status`. */
export function updateSummary(s: UpdateStatus): string {
  return `${s.phase} (running ${s.running}${s.target ? `, target ${s.target}` : ''})${s.enabled ? '' : `: off, ${s.disabledReason}`}`;
}

/** `onionbox update status`: the status as lines. */
export function formatUpdateStatus(s: UpdateStatus, now: Date): string {
  const lines = [
    `running    ${s.running} for ${s.compatible}${s.built ? `, built ${s.built.slice(0, 10)} (${ageInWords(new Date(s.built), now)} ago)` : ''}`,
    `state      ${s.phase}: ${phaseInWords(s)}`,
    `policy     ${s.policy === 'night' ? 'install and restart at night' : 'ask me first'}`,
    `last check ${s.lastCheck ? `${s.lastCheck.at}: ${s.lastCheck.result}` : 'never'}`,
  ];
  if (s.nextCheck) lines.push(`next check ${s.nextCheck}`);
  if (s.available) {
    lines.push(
      `available  ${s.available.version} (released ${s.available.released.slice(0, 10)}, ${bytesInWords(s.available.size)}, from ${s.available.source})`,
    );
    for (const l of s.available.notes.split('\n')) lines.push(`           ${l}`);
  }
  if (s.failed.length > 0) lines.push(`not retried ${s.failed.join(', ')}`);
  const old = s.built ? imageAgeWarning(new Date(s.built), now) : null;
  if (old) lines.push(`warning    ${old}`);
  return `${lines.join('\n')}\n`;
}
