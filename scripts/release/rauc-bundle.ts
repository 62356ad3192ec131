/**
 * The RAUC bundle of a release: one root slot image in RAUC's `verity` format, CMS-signed with the release's
 * X.509 certificate and key (RAUC's own check on the box is against /etc/rauc/keyring.pem). Built with
 * Debian's `rauc bundle` (and its mksquashfs), arguments as an array, never a shell.
 *
 * The signing certificate carries the codeSigning extended key usage: the box's /etc/rauc/system.conf needs
 * `check-purpose=codesign` in its [keyring] section, or RAUC refuses the bundle ("unsuitable certificate
 * purpose").
 *
 * The certificate and key are files outside the checkout (--cert/--rauc-key, or ONIONBOX_RAUC_CERT_FILE and
 * ONIONBOX_RAUC_KEY_FILE); tests make throwaway ones with openssl.
 */
import { execFile } from 'node:child_process';
import { copyFile, link, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BOARD_PATTERN, VERSION_PATTERN } from '../../firmware/update/manifest.js';

const execFileP = promisify(execFile);

export interface RaucManifestInput {
  readonly compatible: string;
  readonly version: string;
  /** The root slot image's file name inside the bundle. */
  readonly image: string;
  /** The slot class RAUC writes (the A/B layout's root slots: rootfs.0 and rootfs.1). */
  readonly slotClass?: string;
}

/** manifest.raucm: every value allowlist-checked (a newline would add keys of its own). */
export function renderRaucManifest(input: RaucManifestInput): string {
  const slot = input.slotClass ?? 'rootfs';
  if (!new RegExp(BOARD_PATTERN).test(input.compatible)) throw new Error(`not a board: ${input.compatible}`);
  if (!new RegExp(VERSION_PATTERN).test(input.version)) throw new Error(`not a version: ${input.version}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(input.image))
    throw new Error(`not a file name: ${input.image}`);
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(slot)) throw new Error(`not a slot class: ${slot}`);
  return [
    '[update]',
    `compatible=${input.compatible}`,
    `version=${input.version}`,
    '',
    '[bundle]',
    'format=verity',
    '',
    `[image.${slot}]`,
    `filename=${input.image}`,
    '',
  ].join('\n');
}

export interface BundleInput {
  /** The built image's root slot (a filesystem image). */
  readonly rootfs: string;
  readonly out: string;
  readonly compatible: string;
  readonly version: string;
  readonly cert: string;
  readonly key: string;
}

/** Builds the bundle at `out` (replacing nothing: RAUC refuses an existing file). */
export async function buildRaucBundle(input: BundleInput): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'onionbox-bundle-'));
  try {
    const image = 'rootfs.img';
    // a hard link when the image is on the same filesystem (root slots are large), else a copy
    await link(input.rootfs, join(dir, image)).catch(() => copyFile(input.rootfs, join(dir, image)));
    await writeFile(
      join(dir, 'manifest.raucm'),
      renderRaucManifest({ compatible: input.compatible, version: input.version, image }),
    );
    // xz in 1 MiB blocks, not mksquashfs's default gzip in 128 KiB: the bundle is what every box downloads
    // through tor (a 1 GB root
    // slot with 414 MB of files: 182 MB with gzip, 155 MB with xz; see BENCHMARKS.md)
    const squashfs = '--mksquashfs-args=-comp xz -b 1M';
    await execFileP(
      'rauc',
      ['bundle', `--cert=${input.cert}`, `--key=${input.key}`, squashfs, dir, input.out],
      {
        timeout: 30 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    ).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`rauc bundle failed: ${(err.stderr ?? err.message).trim()}`);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The box's check of a bundle, as its system.conf would run it: `rauc info --conf CONF BUNDLE`. */
export async function raucInfo(bundle: string, conf: string): Promise<{ ok: boolean; text: string }> {
  try {
    const { stdout, stderr } = await execFileP('rauc', ['info', `--conf=${conf}`, bundle], {
      timeout: 120_000,
    });
    return { ok: true, text: `${stderr}${stdout}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, text: `${e.stderr ?? ''}${e.stdout ?? ''}` || e.message };
  }
}
