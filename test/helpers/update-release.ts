/**
 * Releases for update tests: a bundle of random bytes, its manifest (built by the release script's own
 * buildManifest) signed with the throwaway test keys in test/fixtures/update (never a release key), and a
 * loopback HTTP server that serves a release directory the way a release server does
 * (`<board>.manifest.json`, `.minisig`, the bundle, HTTP Range).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { parsePublicKey, type TrustedKeys } from '../../firmware/update/minisign.js';
import type { Connect } from '../../firmware/update/socks5.js';
import { parseSecretKey, signMinisign } from '../../scripts/release/minisign-sign.js';
import { buildManifest, type ManifestInput } from '../../scripts/release/sign-manifest.js';
import { serveReleaseFile } from '../../scripts/sim/release-handler.js';

const FIXTURES = new URL('../fixtures/update/', import.meta.url).pathname;

export type TestKey = 'current' | 'next' | 'foreign';

export function testTrust(): TrustedKeys {
  return {
    keys: [
      parsePublicKey(readFileSync(join(FIXTURES, 'test-current.pub'), 'utf8')),
      parsePublicKey(readFileSync(join(FIXTURES, 'test-next.pub'), 'utf8')),
    ],
    revoked: [],
  };
}

export interface TestRelease {
  readonly bundle: Buffer;
  readonly manifestText: string;
  readonly signature: string;
  readonly version: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** A release of `size` random bytes; `overrides` change the manifest's fields (board, dates, size, hash). */
export function makeRelease(
  version: string,
  options: {
    key?: TestKey;
    size?: number;
    board?: string;
    released?: Date;
    expiresDays?: number;
    manifest?: Partial<ManifestInput>;
    notes?: string;
  } = {},
): TestRelease {
  const bundle = randomBytes(options.size ?? 64 * 1024);
  const input: ManifestInput = {
    version,
    compatible: options.board ?? 'onionbox-test',
    bundleName: `onionbox-${version}.raucb`,
    size: bundle.length,
    sha256: createHash('sha256').update(bundle).digest('hex'),
    released: options.released ?? new Date(Date.now() - DAY_MS),
    expiresDays: options.expiresDays ?? 30,
    notes: options.notes ?? `Release ${version}: fixes.`,
    minVersion: '0.0.1',
    ...options.manifest,
  };
  const manifestText = `${JSON.stringify(buildManifest(input), null, 2)}\n`;
  const key = parseSecretKey(readFileSync(join(FIXTURES, `test-${options.key ?? 'current'}.key`), 'utf8'));
  const signature = signMinisign(Buffer.from(manifestText), key, {
    trustedComment: `onionbox ${version}`,
    prehash: true,
  });
  return { bundle, manifestText, signature, version };
}

/** Writes a release into `dir` as a release server holds it. */
export function publish(dir: string, release: TestRelease, board = 'onionbox-test'): void {
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(release.manifestText) as { bundle: { name: string } };
  writeFileSync(join(dir, `${board}.manifest.json`), release.manifestText);
  writeFileSync(join(dir, `${board}.manifest.json.minisig`), release.signature);
  writeFileSync(join(dir, manifest.bundle.name), release.bundle);
}

export type FileHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ReleaseServer {
  readonly port: number;
  readonly base: string;
  /** Every request's path, in order. */
  readonly paths: string[];
  close(): Promise<void>;
}

/**
 * Serves `dir` on loopback (GET, Range honoured). `intercept` may answer a request itself (return true):
 * the endless or stalling server of the negative tests.
 */
export async function serveRelease(dir: string, intercept?: FileHandler): Promise<ReleaseServer> {
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    if (intercept?.(req, res)) return;
    serveReleaseFile(dir, req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    base: `http://127.0.0.1:${port}/`,
    paths,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The tests' Connect: plain loopback to the URL's port (whatever its host: an onion name included). */
export const loopbackConnect: Connect = (url) =>
  new Promise((resolve, reject) => {
    const s = connect(Number(url.port), '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
