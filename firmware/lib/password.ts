/**
 * Owner passwords: scrypt from node:crypto, stored as `scrypt$N$r$p$salt_b64$hash_b64` (the pattern the
 * config schema allows), compared in constant time. The policy is a length floor plus a short list of
 * common passwords shipped on the box (firmware/lib/common-passwords.ts).
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { COMMON_PASSWORDS } from './common-passwords.js';

export const MIN_PASSWORD_LENGTH = 12;
/** Long enough for any passphrase, short enough that hashing it is cheap. */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * New hashes: N=2^14, r=8 (16 MiB, what a Pi Zero 2 W spares) and p=5, five times the work of p=1 at the
 * same memory. The parameters are stored in each hash, so hashes written with other ones still verify.
 */
export const SCRYPT_PARAMS = Object.freeze({ N: 2 ** 14, r: 8, p: 5 });
const DEFAULT_PARAMS = SCRYPT_PARAMS;
const KEY_LENGTH = 32;
const HASH_RE = /^scrypt\$([0-9]+)\$([0-9]+)\$([0-9]+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(
  password: string,
  params: { N: number; r: number; p: number } = DEFAULT_PARAMS,
): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_LENGTH, { ...params, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** False for a wrong password and for any stored value that is not a sane scrypt hash. Never throws. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  if (stored === null || password.length > MAX_PASSWORD_LENGTH) return false;
  const m = HASH_RE.exec(stored);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Refuse parameters that would let a tampered file burn the CPU or memory.
  if (!(N >= 2 && N <= 2 ** 20 && (N & (N - 1)) === 0 && r >= 1 && r <= 32 && p >= 1 && p <= 16))
    return false;
  const salt = Buffer.from(m[4] ?? '', 'base64');
  const expected = Buffer.from(m[5] ?? '', 'base64');
  if (salt.length < 8 || expected.length < 16) return false;
  try {
    const key = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: 256 * 1024 * 1024 });
    return timingSafeEqual(key, expected);
  } catch {
    return false;
  }
}

/** Why a new password is not acceptable, in words for the owner; null when it is fine. */
export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `Use at least ${MIN_PASSWORD_LENGTH} characters (a few unrelated words work well).`;
  }
  if (password.length > MAX_PASSWORD_LENGTH) return `Use at most ${MAX_PASSWORD_LENGTH} characters.`;
  const lower = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lower))
    return 'This password is on the list of commonly used ones; choose another.';
  if (new Set(lower).size <= 3) return 'This password repeats too few different characters; choose another.';
  if (isRun(lower)) return 'This password is a simple keyboard or number run; choose another.';
  return null;
}

const RUNS = ['0123456789012345678901234567890', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiopasdfghjklzxcvbnm'];
function isRun(s: string): boolean {
  return RUNS.some((run) => run.includes(s) || [...run].reverse().join('').includes(s));
}
