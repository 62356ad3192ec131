import { execFileSync } from 'node:child_process';

/** Debian's minisign on PATH (apt-get install minisign): the tests that run it skip without it. */
export function hasMinisign(): boolean {
  try {
    execFileSync('minisign', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
