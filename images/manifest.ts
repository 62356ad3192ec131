/**
 * The Raspberry Pi Imager manifest (onionbox.json, a "custom repository") generated from the built image:
 * sizes and sha256 of the compressed download and of the extracted image. Pure apart from sha256File.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { IMAGER_DEVICES } from './recipe.js';
import { ImageRecipeError } from './render.js';

export interface ImagerInput {
  version: string;
  /** where the .img.xz is published (https) */
  url: string;
  icon: string;
  /** YYYY-MM-DD */
  releaseDate: string;
  extractSize: number;
  extractSha256: string;
  downloadSize: number;
  downloadSha256: string;
}

export interface ImagerOsEntry {
  name: string;
  description: string;
  icon: string;
  url: string;
  extract_size: number;
  extract_sha256: string;
  image_download_size: number;
  image_download_sha256: string;
  release_date: string;
  devices: string[];
  /** "none": Imager offers no OS customisation (user, Wi-Fi, SSH): the box makes its own at first boot */
  init_format: 'none';
}

export interface ImagerManifest {
  os_list: ImagerOsEntry[];
}

const SHA256 = /^[0-9a-f]{64}$/;
const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$/;
const DATE = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$/;
const URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/[A-Za-z0-9._~%/+-]*$/;

function size(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new ImageRecipeError(`${what} must be a positive byte count`);
  return n;
}

function match(v: string, re: RegExp, what: string): string {
  if (!re.test(v)) throw new ImageRecipeError(`${what} "${v}" is not valid`);
  return v;
}

export function imagerManifest(i: ImagerInput): ImagerManifest {
  if (i.downloadSize > i.extractSize) {
    throw new ImageRecipeError('the download is larger than the extracted image: is it compressed?');
  }
  return {
    os_list: [
      {
        name: `Onionbox ${match(i.version, VERSION, 'version')}`,
        description:
          'Tor router box: every device behind it reaches the internet only through tor, or not at all. ' +
          'Raspberry Pi 3, 4, 400 and Zero 2 W (64-bit).',
        icon: match(i.icon, URL_RE, 'icon URL'),
        url: match(i.url, URL_RE, 'image URL'),
        extract_size: size(i.extractSize, 'extract_size'),
        extract_sha256: match(i.extractSha256, SHA256, 'extract_sha256'),
        image_download_size: size(i.downloadSize, 'image_download_size'),
        image_download_sha256: match(i.downloadSha256, SHA256, 'image_download_sha256'),
        release_date: match(i.releaseDate, DATE, 'release date'),
        devices: [...IMAGER_DEVICES],
        init_format: 'none',
      },
    ],
  };
}

/** The release date for SOURCE_DATE_EPOCH (seconds), in UTC. */
export function releaseDateOf(epochSeconds: number): string {
  if (!Number.isSafeInteger(epochSeconds) || epochSeconds < 0) {
    throw new ImageRecipeError('SOURCE_DATE_EPOCH must be a non-negative integer');
  }
  return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
}

/** Size and sha256 of a file, streamed (images are hundreds of MB). */
export async function sha256File(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve());
  });
  return { size: (await stat(path)).size, sha256: hash.digest('hex') };
}
