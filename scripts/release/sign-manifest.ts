/**
 * `npm run release -- --rootfs IMAGE --board BOARD [...]`: builds the RAUC bundle of a built image's root
 * slot (./rauc-bundle.ts: verity format, CMS-signed with the release certificate and key from
 * --cert/--rauc-key or ONIONBOX_RAUC_CERT_FILE/ONIONBOX_RAUC_KEY_FILE) as
 * `BOARD-VERSION.raucb` in --out (`onionbox-BOARD-VERSION.raucb` when the board string does not name
 * onionbox already: `onionbox-rpi-arm64-0.1.1.raucb`, not `onionbox-onionbox-...`), then signs its update
 * manifest.
 * `npm run release -- --bundle FILE --board BOARD [...]`: only the manifest, for a bundle built before.
 * The manifest is FILE.manifest.json beside the bundle (or in --out) with its minisign signature
 * (.minisig), in minisign's format (`minisign -V -p KEY.pub -m manifest.json` accepts it).
 *
 * The Ed25519 secret key is an unencrypted minisign key (`minisign -G -W`, or a decrypted copy of the
 * release key made with `minisign -C -W` on the release machine), read from ONIONBOX_RELEASE_KEY (its
 * text) or from --key FILE / ONIONBOX_RELEASE_KEY_FILE: never from the repository, and a key file inside
 * this checkout is refused.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { problemSummary } from '../../firmware/lib/schema-problems.js';
import { type Manifest, manifestProblems } from '../../firmware/update/manifest.js';
import { parseSecretKey, signMinisign } from './minisign-sign.js';
import { buildRaucBundle } from './rauc-bundle.js';

const REPO = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const DAY_MS = 24 * 60 * 60 * 1000;

export interface ManifestInput {
  readonly version: string;
  readonly compatible: string;
  readonly bundleName: string;
  readonly size: number;
  readonly sha256: string;
  readonly released: Date;
  readonly expiresDays: number;
  readonly notes: string;
  readonly minVersion: string;
}

/** The manifest document, checked against the same schema the box checks it with. */
export function buildManifest(input: ManifestInput): Manifest {
  const released = new Date(Math.floor(input.released.getTime() / 1000) * 1000);
  const manifest: Manifest = {
    format: 1,
    version: input.version,
    compatible: input.compatible,
    bundle: { name: input.bundleName, size: input.size, sha256: input.sha256 },
    released: released.toISOString().replace('.000Z', 'Z'),
    expires: new Date(released.getTime() + input.expiresDays * DAY_MS).toISOString().replace('.000Z', 'Z'),
    notes: input.notes,
    minVersion: input.minVersion,
  };
  const problems = manifestProblems(manifest);
  if (Object.keys(problems).length > 0) {
    throw new Error(`the manifest would be refused: ${problemSummary(problems)}`);
  }
  return manifest;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readKey(keyFile: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (env.ONIONBOX_RELEASE_KEY) return env.ONIONBOX_RELEASE_KEY;
  const file = keyFile ?? env.ONIONBOX_RELEASE_KEY_FILE;
  if (!file) {
    throw new Error(
      'no release key: set ONIONBOX_RELEASE_KEY or ONIONBOX_RELEASE_KEY_FILE, or pass --key FILE',
    );
  }
  return await readFile(await outsideCheckout(file, 'the release key'), 'utf8');
}

/** The real path of a key file, refused when it lies inside this checkout. */
async function outsideCheckout(file: string, what: string): Promise<string> {
  const real = await realpath(file);
  const rel = relative(await realpath(REPO), real);
  if (!rel.startsWith('..') && !rel.startsWith('/')) {
    throw new Error(`${what} ${file} is inside the repository: keep it outside the checkout`);
  }
  return real;
}

export interface SignedFiles {
  readonly manifestPath: string;
  readonly signaturePath: string;
  readonly manifest: Manifest;
}

export async function signRelease(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<SignedFiles> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      bundle: { type: 'string' },
      board: { type: 'string' },
      out: { type: 'string' },
      version: { type: 'string' },
      'min-version': { type: 'string' },
      'expires-days': { type: 'string', default: '90' },
      notes: { type: 'string' },
      key: { type: 'string' },
      rootfs: { type: 'string' },
      cert: { type: 'string' },
      'rauc-key': { type: 'string' },
    },
    strict: true,
  });
  if ((!values.bundle && !values.rootfs) || (values.bundle && values.rootfs) || !values.board) {
    throw new Error(
      'usage: npm run release -- (--rootfs IMAGE [--cert FILE] [--rauc-key FILE] | --bundle FILE) --board BOARD ' +
        '[--version X.Y.Z] [--min-version X.Y.Z] [--expires-days N] [--notes FILE] [--out DIR] [--key FILE]',
    );
  }
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version?: unknown };
  const version = values.version ?? String(pkg.version);
  if (values.rootfs) {
    const cert = values.cert ?? env.ONIONBOX_RAUC_CERT_FILE;
    const raucKey = values['rauc-key'] ?? env.ONIONBOX_RAUC_KEY_FILE;
    if (!cert || !raucKey) {
      throw new Error(
        'no RAUC signing certificate and key: pass --cert FILE --rauc-key FILE or set ONIONBOX_RAUC_CERT_FILE and ONIONBOX_RAUC_KEY_FILE',
      );
    }
    await outsideCheckout(raucKey, 'the RAUC signing key');
    const out = values.out ?? dirname(values.rootfs);
    values.bundle = join(out, bundleFileName(values.board, version));
    await buildRaucBundle({
      rootfs: values.rootfs,
      out: values.bundle,
      compatible: values.board,
      version,
      cert,
      key: await realpath(raucKey),
    });
  }
  if (!values.bundle) throw new Error('no bundle');
  const epoch = env.SOURCE_DATE_EPOCH;
  const manifest = buildManifest({
    version,
    compatible: values.board,
    bundleName: basename(values.bundle),
    size: (await stat(values.bundle)).size,
    sha256: await sha256File(values.bundle),
    released: epoch ? new Date(Number(epoch) * 1000) : new Date(),
    expiresDays: Number(values['expires-days']),
    notes: values.notes ? (await readFile(values.notes, 'utf8')).trim() : '',
    minVersion: values['min-version'] ?? '0.0.0',
  });
  const key = parseSecretKey(await readKey(values.key, env));
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const out = values.out ?? dirname(values.bundle);
  const manifestPath = join(out, `${basename(values.bundle)}.manifest.json`);
  const signaturePath = `${manifestPath}.minisig`;
  const signature = signMinisign(bytes, key, {
    trustedComment: `onionbox ${manifest.version} ${manifest.compatible} released ${manifest.released}`,
    untrustedComment: `onionbox release manifest, key ${key.keyId}`,
  });
  await writeFile(manifestPath, bytes);
  await writeFile(signaturePath, signature);
  return { manifestPath, signaturePath, manifest };
}

if (process.argv[1] && resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  try {
    const signed = await signRelease(process.argv.slice(2), process.env);
    process.stdout.write(`${signed.manifestPath}\n${signed.signaturePath}\n`);
  } catch (err) {
    process.stderr.write(`release: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

/** The bundle's file name: the board string (which names onionbox, or gets the word in front) and the version. */
export function bundleFileName(board: string, version: string): string {
  return `${board.startsWith('onionbox') ? board : `onionbox-${board}`}-${version}.raucb`;
}
