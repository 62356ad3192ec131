/**
 * What a built image says about itself for updates (firmware/update/release-files.ts reads it on the box):
 * /etc/onionbox/release.json with the image's version, its board string (the same as RAUC's
 * `compatible=`) and its build time, and /etc/onionbox/release-keys/ with the release public keys the
 * build was given. The keys come from files outside the repository (ONIONBOX_RELEASE_PUBKEY_FILE and,
 * for rotation, ONIONBOX_RELEASE_NEXT_PUBKEY_FILE); an image built without them carries no key, and its
 * box says "updates are off: this image has no release key" instead of trusting a key nobody holds.
 */

import { BOARD_PATTERN, VERSION_PATTERN } from '../firmware/update/manifest.js';
import { parsePublicKey } from '../firmware/update/minisign.js';

/** The board string of every image this recipe builds: RAUC's `compatible=` and release.json's. */
export const COMPATIBLE = 'onionbox-rpi-arm64';

export interface ReleaseFileInput {
  readonly version: string;
  /** SOURCE_DATE_EPOCH, in seconds. */
  readonly builtEpoch: number;
  /** The text of the current release public key (minisign format), if the build was given one. */
  readonly currentKey?: string | undefined;
  /** The next release public key, for rotation. */
  readonly nextKey?: string | undefined;
}

export interface ReleaseFile {
  /** Path under the root, without a leading slash. */
  readonly path: string;
  readonly text: string;
  readonly mode: number;
}

export class ReleaseFileError extends Error {}

/** The release files for the image's root; throws with the reason on a bad version or key. */
export function releaseFiles(input: ReleaseFileInput): ReleaseFile[] {
  if (!new RegExp(VERSION_PATTERN).test(input.version)) {
    throw new ReleaseFileError(`package.json's version "${input.version}" is not MAJOR.MINOR.PATCH`);
  }
  if (!new RegExp(BOARD_PATTERN).test(COMPATIBLE)) throw new ReleaseFileError('bad board string');
  if (!Number.isInteger(input.builtEpoch) || input.builtEpoch < 0) {
    throw new ReleaseFileError(`SOURCE_DATE_EPOCH "${input.builtEpoch}" is not a time in seconds`);
  }
  const built = new Date(input.builtEpoch * 1000).toISOString().replace('.000Z', 'Z');
  const files: ReleaseFile[] = [
    {
      path: 'etc/onionbox/release.json',
      text: `${JSON.stringify({ version: input.version, compatible: COMPATIBLE, built })}\n`,
      mode: 0o644,
    },
  ];
  const key = (name: string, text: string | undefined): void => {
    if (text === undefined) return;
    try {
      parsePublicKey(text);
    } catch (err) {
      throw new ReleaseFileError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    files.push({
      path: `etc/onionbox/release-keys/${name}`,
      text: text.endsWith('\n') ? text : `${text}\n`,
      mode: 0o644,
    });
  };
  if (input.currentKey === undefined && input.nextKey !== undefined) {
    throw new ReleaseFileError('a next release key without a current one');
  }
  key('current.pub', input.currentKey);
  key('next.pub', input.nextKey);
  return files;
}
