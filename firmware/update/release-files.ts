/**
 * What the image says about itself for updates, read once at start from its release directory
 * (`/etc/onionbox` on the box; the simulator passes its own with `--release-dir`):
 *
 *   release.json               {"version": "1.2.0", "compatible": "onionbox-rpi3", "built": "2026-12-07T00:00:00Z"}
 *   release-keys/current.pub   the release key (minisign public key file)
 *   release-keys/next.pub      the next release key, for rotation (optional)
 *   release-keys/revoked       key ids never to accept again, one per line (optional)
 *
 * A missing or malformed file turns updates off with the reason in words; it never stops the daemon.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { describeError } from '../errors.js';
import { BOARD_PATTERN, VERSION_PATTERN } from './manifest.js';
import { type MinisignPublicKey, parsePublicKey, type TrustedKeys } from './minisign.js';
import type { ImageInfo } from './service.js';

export const DEFAULT_RELEASE_DIR = '/etc/onionbox';

const ReleaseSchema = Type.Object(
  {
    version: Type.String({ pattern: VERSION_PATTERN }),
    compatible: Type.String({ pattern: BOARD_PATTERN }),
    built: Type.Optional(
      Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{3})?Z$' }),
    ),
  },
  { additionalProperties: false },
);
const compiled = TypeCompiler.Compile(ReleaseSchema);

export interface ReleaseFiles {
  readonly image: ImageInfo;
  /** null when the image holds no usable release key. */
  readonly trust: TrustedKeys | null;
  /** Why updates are off, when a file is missing or malformed. */
  readonly problem: string | null;
}

/** The image as a box without a release file is: version 0.0.0, no board, updates off. */
const UNKNOWN: ImageInfo = Object.freeze({ version: '0.0.0', compatible: 'unknown', built: null });

async function optional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function loadReleaseFiles(dir: string = DEFAULT_RELEASE_DIR): Promise<ReleaseFiles> {
  let image: ImageInfo = UNKNOWN;
  try {
    const text = await optional(join(dir, 'release.json'));
    if (text === null)
      return { image, trust: null, problem: `this image has no ${join(dir, 'release.json')}` };
    const doc: unknown = JSON.parse(text);
    if (!compiled.Check(doc))
      return { image, trust: null, problem: 'release.json does not match its schema' };
    image = Object.freeze({
      version: doc.version,
      compatible: doc.compatible,
      built: doc.built === undefined ? null : new Date(doc.built),
    });
  } catch (err) {
    return { image, trust: null, problem: `release.json: ${describeError(err)}` };
  }
  const keys: MinisignPublicKey[] = [];
  const keyDir = join(dir, 'release-keys');
  try {
    for (const name of ['current.pub', 'next.pub']) {
      const text = await optional(join(keyDir, name));
      if (text !== null) keys.push(parsePublicKey(text));
    }
    const revoked = ((await optional(join(keyDir, 'revoked'))) ?? '')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => /^[0-9A-Fa-f]{16}$/.test(l));
    if (keys.length === 0) return { image, trust: null, problem: 'this image holds no release key' };
    return { image, trust: Object.freeze({ keys, revoked }), problem: null };
  } catch (err) {
    return { image, trust: null, problem: `release keys: ${describeError(err)}` };
  }
}
