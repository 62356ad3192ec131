/**
 * Signing in minisign's format with node:crypto (Ed25519, BLAKE2b-512 for the prehashed "ED" algorithm):
 * the release side of firmware/update/minisign.ts. Reads minisign's unencrypted secret key files
 * (`minisign -G -W`); an encrypted key is refused with a hint (decrypt a copy with `minisign -C -W`).
 *
 * Secret key layout (base64 after the comment line): "Ed" || kdf ("\0\0" unencrypted, "Sc" scrypt) ||
 * checksum algorithm "B2" || salt (32) || opslimit (8) || memlimit (8) || key id (8) || Ed25519 secret key
 * (seed 32 || public key 32) || checksum (32).
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { blake2b512, keyIdHex } from '../../firmware/update/minisign.js';

export interface MinisignSecretKey {
  readonly keyId: string;
  readonly keyIdBytes: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
}

export function parseSecretKey(text: string): MinisignSecretKey {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.length > 0);
  const b64 = lines.find((l) => !l.startsWith('untrusted comment: '));
  if (b64 === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('not a minisign secret key');
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 158 || raw.subarray(0, 2).toString('latin1') !== 'Ed') {
    throw new Error('not a minisign Ed25519 secret key');
  }
  const kdf = raw.subarray(2, 4);
  if (kdf[0] !== 0 || kdf[1] !== 0) {
    throw new Error(
      'the secret key is password-protected: decrypt a copy outside the repository with `minisign -C -W`',
    );
  }
  const keyIdBytes = raw.subarray(54, 62);
  const seed = raw.subarray(62, 94);
  const publicKey = raw.subarray(94, 126);
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: publicKey.toString('base64url') },
    format: 'jwk',
  });
  const derived = createPublicKey(privateKey).export({ format: 'jwk' }).x;
  if (derived !== publicKey.toString('base64url')) {
    throw new Error('the secret key is corrupt (its public half does not match its seed)');
  }
  return Object.freeze({ keyId: keyIdHex(keyIdBytes), keyIdBytes, privateKey, publicKey });
}

/** The public key file for a secret key, as `minisign -R` writes it. */
export function publicKeyText(key: MinisignSecretKey): string {
  const raw = Buffer.concat([Buffer.from('Ed', 'latin1'), key.keyIdBytes, key.publicKey]);
  return `untrusted comment: minisign public key ${key.keyId}\n${raw.toString('base64')}\n`;
}

export interface SignOptions {
  readonly trustedComment: string;
  readonly untrustedComment?: string;
  /** "ED" (prehashed, minisign's default since 0.10) unless false. */
  readonly prehash?: boolean;
}

/** A minisign signature file's text for `file`. */
export function signMinisign(file: Uint8Array, key: MinisignSecretKey, options: SignOptions): string {
  for (const c of [options.trustedComment, options.untrustedComment ?? '']) {
    if (/[\r\n]/.test(c)) throw new Error('a minisign comment is one line');
  }
  const prehash = options.prehash ?? true;
  const signature = sign(null, prehash ? blake2b512(file) : file, key.privateKey);
  const head = Buffer.concat([Buffer.from(prehash ? 'ED' : 'Ed', 'latin1'), key.keyIdBytes, signature]);
  const global = sign(
    null,
    Buffer.concat([signature, Buffer.from(options.trustedComment, 'utf8')]),
    key.privateKey,
  );
  return [
    `untrusted comment: ${options.untrustedComment ?? 'signature from onionbox release key'}`,
    head.toString('base64'),
    `trusted comment: ${options.trustedComment}`,
    global.toString('base64'),
    '',
  ].join('\n');
}
