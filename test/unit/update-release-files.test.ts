/**
 * The image's release files (firmware/update/release-files.ts): a good directory gives the image's
 * version, board, build date and keys; anything missing or malformed turns updates off with the reason in
 * words and never throws (the daemon starts either way).
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadReleaseFiles } from '../../firmware/update/release-files.js';
import { tmpDir } from '../helpers/tmp.js';

const FIXTURES = new URL('../fixtures/update/', import.meta.url).pathname;
const RELEASE = { version: '1.2.0', compatible: 'onionbox-rpi3', built: '2026-12-07T00:00:00Z' };

/** A release directory: release.json (text or object) and the named keys from the fixtures. */
function releaseDir(
  t: Test,
  release: unknown,
  keys: Partial<Record<'current.pub' | 'next.pub', string>> = { 'current.pub': 'test-current.pub' },
  revoked?: string,
): string {
  const dir = tmpDir(t, 'onionbox-release-');
  if (release !== undefined) {
    writeFileSync(join(dir, 'release.json'), typeof release === 'string' ? release : JSON.stringify(release));
  }
  mkdirSync(join(dir, 'release-keys'));
  for (const [name, fixture] of Object.entries(keys)) {
    copyFileSync(join(FIXTURES, fixture), join(dir, 'release-keys', name));
  }
  if (revoked !== undefined) writeFileSync(join(dir, 'release-keys', 'revoked'), revoked);
  return dir;
}

t.test('a complete release directory: the image, both keys, the revoked ids', async (t) => {
  const dir = releaseDir(
    t,
    RELEASE,
    { 'current.pub': 'test-current.pub', 'next.pub': 'test-next.pub' },
    '# retired 2026\nAABBCCDDEEFF0011  # old key\nnot-an-id\n\n',
  );
  const r = await loadReleaseFiles(dir);
  t.equal(r.problem, null);
  t.same(r.image, {
    version: '1.2.0',
    compatible: 'onionbox-rpi3',
    built: new Date('2026-12-07T00:00:00Z'),
  });
  t.equal(r.trust?.keys.length, 2);
  t.same(r.trust?.revoked, ['AABBCCDDEEFF0011'], 'comments and malformed lines are ignored');
  t.ok(Object.isFrozen(r.image) && Object.isFrozen(r.trust));
});

t.test('no build date: the image has none (no age warning), updates still on', async (t) => {
  const { built: _built, ...noDate } = RELEASE;
  const r = await loadReleaseFiles(releaseDir(t, noDate));
  t.equal(r.problem, null);
  t.equal(r.image.built, null);
  t.same(r.trust?.revoked, [], 'no revoked file: none revoked');
});

t.test('a missing or malformed release.json: updates off, the image unknown, the reason', async (t) => {
  const missing = await loadReleaseFiles(releaseDir(t, undefined));
  t.match(missing.problem, /this image has no .*release\.json/);
  t.same(missing.image, { version: '0.0.0', compatible: 'unknown', built: null });
  t.equal(missing.trust, null);

  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '{"version": ', /release\.json: /],
    ['a bad version', { ...RELEASE, version: '1.2' }, /does not match its schema/],
    ['a board with a slash', { ...RELEASE, compatible: '../rpi' }, /does not match its schema/],
    ['a date that is no date', { ...RELEASE, built: 'yesterday' }, /does not match its schema/],
    ['an unknown field', { ...RELEASE, channel: 'beta' }, /does not match its schema/],
  ];
  for (const [what, doc, reason] of cases) {
    const r = await loadReleaseFiles(releaseDir(t, doc));
    t.match(r.problem, reason, what);
    t.equal(r.trust, null, `${what}: no trust`);
    t.equal(r.image.version, '0.0.0', `${what}: the image stays unknown`);
  }
});

t.test('keys: none, or one that does not parse, turn updates off; the image is still known', async (t) => {
  const none = await loadReleaseFiles(releaseDir(t, RELEASE, {}));
  t.equal(none.problem, 'this image holds no release key');
  t.equal(none.trust, null);
  t.equal(none.image.version, '1.2.0', 'the version is known for the status page');

  const only = await loadReleaseFiles(releaseDir(t, RELEASE, { 'next.pub': 'test-next.pub' }));
  t.equal(only.problem, null, 'the next key alone is a key');
  t.equal(only.trust?.keys.length, 1);

  const dir = releaseDir(t, RELEASE);
  writeFileSync(join(dir, 'release-keys', 'current.pub'), 'untrusted comment: x\nnot base64 at all\n');
  const broken = await loadReleaseFiles(dir);
  t.match(broken.problem, /^release keys: /);
  t.equal(broken.trust, null);
});

t.test('a file that exists but cannot be read is a reason, not a crash', async (t) => {
  // a directory where the file should be (EISDIR), for root and every other user alike
  const dir = releaseDir(t, RELEASE);
  mkdirSync(join(dir, 'release-keys', 'revoked'));
  t.match((await loadReleaseFiles(dir)).problem, /^release keys: /);
  const dir2 = tmpDir(t, 'onionbox-release-');
  mkdirSync(join(dir2, 'release.json'));
  t.match((await loadReleaseFiles(dir2)).problem, /^release\.json: /);
});
