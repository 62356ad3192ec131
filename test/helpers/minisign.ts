import { execFileSync } from 'node:child_process';

/** Debian's minisign on PATH (apt-get install minisign; scripts/setup installs it). */
export function hasMinisign(): boolean {
  try {
    execFileSync('minisign', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a test that runs Debian's minisign may skip: never under CI=true (there a missing minisign is a
 * failure, not a skip); elsewhere when it is not installed.
 */
export function minisignSkipReason(): string | false {
  if (process.env.CI === 'true' || hasMinisign()) return false;
  return 'minisign not installed (apt-get install minisign); runs under CI=true';
}
