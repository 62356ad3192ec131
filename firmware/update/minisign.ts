/**
 * minisign signatures (https://jedisct1.github.io/minisign/) verified with node:crypto alone: Ed25519, and
 * BLAKE2b-512 for the prehashed algorithm (OpenSSL's 'blake2b512').
 *
 * Public key: "untrusted comment: ..." then base64("Ed" || key id (8) || Ed25519 public key (32)).
 * Signature: "untrusted comment: ...", base64(algorithm (2) || key id (8) || signature (64)),
 * "trusted comment: ...", base64(global signature (64)). Algorithm "Ed" signs the file itself (legacy),
 * "ED" signs BLAKE2b-512(file). The global signature signs signature || trusted comment, so the trusted
 * comment cannot be changed without the secret key.
 *
 * A box trusts the image's current release key and its next one (rotation); key ids on the revoked list
 * are refused even when their key is still listed.
 */
import { createHash, createPublicKey, getHashes, type KeyObject, verify } from 'node:crypto';
import { obxError } from '../errors.js';

export type SignatureAlgorithm = 'Ed' | 'ED';

export interface MinisignPublicKey {
  /** Key id as minisign prints it: 16 upper-case hex digits (the 8 bytes read little-endian). */
  readonly keyId: string;
  readonly key: KeyObject;
}

export interface MinisignSignature {
  readonly algorithm: SignatureAlgorithm;
  readonly keyId: string;
  readonly signature: Buffer;
  readonly untrustedComment: string;
  readonly trustedComment: string;
  readonly globalSignature: Buffer;
}

export interface TrustedKeys {
  /** The image's current release key, then its next one. */
  readonly keys: readonly MinisignPublicKey[];
  /** Key ids (minisign's hex) never to accept again. */
  readonly revoked?: readonly string[];
}

export interface Verified {
  readonly keyId: string;
  readonly algorithm: SignatureAlgorithm;
  readonly trustedComment: string;
}

/** Signature files are a few hundred bytes; comments are one line each. */
export const SIGNATURE_MAX_BYTES = 8192;
const UNTRUSTED_PREFIX = 'untrusted comment: ';
const TRUSTED_PREFIX = 'trusted comment: ';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** minisign's display of a key id: the 8 bytes as a little-endian 64-bit number, in upper-case hex. */
export function keyIdHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).reverse().toString('hex').toUpperCase();
}

function decodeBase64(text: string, length: number, what: string): Buffer {
  if (!BASE64.test(text)) throw obxError('UPDATE_SIGNATURE_INVALID', `${what} is not base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length) throw obxError('UPDATE_SIGNATURE_INVALID', `${what} has the wrong length`);
  return bytes;
}

/** Reads a public key file's text, or the bare base64 line (`minisign -P`). */
export function parsePublicKey(text: string): MinisignPublicKey {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.length > 0);
  const start = lines[0]?.startsWith(UNTRUSTED_PREFIX) ? 1 : 0;
  if (lines.length !== start + 1) throw obxError('UPDATE_SIGNATURE_INVALID', 'not a minisign public key');
  const raw = decodeBase64(lines[start]!, 42, 'public key');
  if (raw.subarray(0, 2).toString('latin1') !== 'Ed') {
    throw obxError('UPDATE_SIGNATURE_INVALID', 'public key is not Ed25519');
  }
  const key = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, raw.subarray(10)]),
    format: 'der',
    type: 'spki',
  });
  return Object.freeze({ keyId: keyIdHex(raw.subarray(2, 10)), key });
}

export function parseSignature(text: string): MinisignSignature {
  if (Buffer.byteLength(text) > SIGNATURE_MAX_BYTES) {
    throw obxError('UPDATE_SIGNATURE_INVALID', 'signature file too long');
  }
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const [untrusted, sigLine, trusted, globalLine] = lines;
  if (
    lines.length !== 4 ||
    !untrusted?.startsWith(UNTRUSTED_PREFIX) ||
    sigLine === undefined ||
    !trusted?.startsWith(TRUSTED_PREFIX) ||
    globalLine === undefined
  ) {
    throw obxError('UPDATE_SIGNATURE_INVALID', 'not a minisign signature');
  }
  const raw = decodeBase64(sigLine, 74, 'signature');
  const algorithm = raw.subarray(0, 2).toString('latin1');
  if (algorithm !== 'Ed' && algorithm !== 'ED') {
    throw obxError('UPDATE_SIGNATURE_INVALID', 'unknown signature algorithm');
  }
  return Object.freeze({
    algorithm,
    keyId: keyIdHex(raw.subarray(2, 10)),
    signature: raw.subarray(10),
    untrustedComment: untrusted.slice(UNTRUSTED_PREFIX.length),
    trustedComment: trusted.slice(TRUSTED_PREFIX.length),
    globalSignature: decodeBase64(globalLine, 64, 'global signature'),
  });
}

/** BLAKE2b-512, as minisign's prehashed ("ED") algorithm uses it. */
export function blake2b512(data: Uint8Array): Buffer {
  if (!getHashes().includes('blake2b512')) {
    throw obxError('INTERNAL', "this Node's OpenSSL has no blake2b512");
  }
  return createHash('blake2b512').update(data).digest();
}

/**
 * Verifies `file` against a minisign signature file's text with one of the trusted keys. Returns the key
 * id and the trusted comment; throws OBX_ERR_UPDATE_KEY_REVOKED, OBX_ERR_UPDATE_KEY_UNKNOWN or
 * OBX_ERR_UPDATE_SIGNATURE_INVALID. Nothing of the file may be used before this returns.
 */
export function verifyMinisign(file: Uint8Array, signatureText: string, trust: TrustedKeys): Verified {
  const sig = parseSignature(signatureText);
  if (trust.revoked?.some((id) => id.toUpperCase() === sig.keyId)) {
    throw obxError('UPDATE_KEY_REVOKED', sig.keyId);
  }
  const key = trust.keys.find((k) => k.keyId === sig.keyId);
  if (!key) throw obxError('UPDATE_KEY_UNKNOWN', sig.keyId);
  const message = sig.algorithm === 'ED' ? blake2b512(file) : file;
  if (!verify(null, message, key.key, sig.signature)) {
    throw obxError('UPDATE_SIGNATURE_INVALID', 'the file does not match its signature');
  }
  const global = Buffer.concat([sig.signature, Buffer.from(sig.trustedComment, 'utf8')]);
  if (!verify(null, global, key.key, sig.globalSignature)) {
    throw obxError('UPDATE_SIGNATURE_INVALID', 'the trusted comment does not match its signature');
  }
  return Object.freeze({ keyId: sig.keyId, algorithm: sig.algorithm, trustedComment: sig.trustedComment });
}
