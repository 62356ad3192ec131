/**
 * Pure helpers of the emulated-image update test (images/update-test.ts): which of the box's update
 * checks must have passed, the slots U-Boot booted, and the longest cut a LAN device saw.
 */
import type { SelftestLine } from './boot-report.js';

/** The versions of the test: the image's own, the good release, the release whose onionboxd never starts. */
export interface UpdateVersions {
  v1: string;
  v2: string;
  v3: string;
}

/** The update part's checks (images/system/onionbox-selftest, update_checks) the run needs, in order. */
export function requiredUpdateChecks(v: UpdateVersions): string[] {
  return [
    `update-routing-${v.v1}`,
    `update-found-${v.v2}`,
    `update-downloaded-${v.v2}`,
    `update-installed-${v.v2}`,
    `update-routing-${v.v2}`,
    'update-kept',
    `update-found-${v.v3}`,
    `update-downloaded-${v.v3}`,
    `update-installed-${v.v3}`,
    'update-trial-bad',
    'update-fell-back',
    'update-settings-kept',
    'update-not-retried',
  ];
}

/**
 * The box's lines once each (the same line may reach the console twice), in order. A check that appears
 * in several boots (update-boot, update-routing-V2) is kept every time it says something new.
 */
export function uniqueChecks(checks: readonly SelftestLine[]): SelftestLine[] {
  const seen = new Set<string>();
  const out: SelftestLine[] = [];
  for (const c of checks) {
    const key = `${c.check} ${c.pass} ${c.t} ${c.detail}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(c);
  }
  return out;
}

/** What is missing or failed among the required checks: an empty list when the run proved them all. */
export function missingOrFailed(checks: readonly SelftestLine[], required: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of required) {
    const mine = checks.filter((c) => c.check === name);
    if (mine.length === 0) out.push(`${name}: never reported`);
    else if (mine.some((c) => !c.pass)) out.push(`${name}: FAIL`);
  }
  for (const c of checks) {
    if (!c.pass && !required.includes(c.check)) out.push(`${c.check}: FAIL`);
  }
  return out;
}

/** The slots U-Boot's boot script booted, in order (its "Onionbox: booting slot X" console lines). */
export function bootedSlots(serial: string): string[] {
  return [...serial.matchAll(/Onionbox: booting slot ([AB]) /g)].map((m) => m[1] ?? '?');
}

/** One LAN fetch through the box: when it started (seconds) and whether it answered. */
export interface FetchSample {
  t: number;
  ok: boolean;
}

/**
 * The longest time between two answered fetches with only failed ones between them (from the last
 * answer before the cut to the first after it), or null when no cut was closed by an answer.
 */
export function longestCut(samples: readonly FetchSample[]): { from: number; to: number } | null {
  let best: { from: number; to: number } | null = null;
  let lastOk: number | null = null;
  let failedSince = false;
  for (const s of samples) {
    if (!s.ok) {
      if (lastOk !== null) failedSince = true;
      continue;
    }
    if (lastOk !== null && failedSince && (best === null || s.t - lastOk > best.to - best.from)) {
      best = { from: lastOk, to: s.t };
    }
    lastOk = s.t;
    failedSince = false;
  }
  return best;
}
