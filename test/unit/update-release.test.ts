import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseManifest } from '../../firmware/update/manifest.js';
import { parsePublicKey, verifyMinisign } from '../../firmware/update/minisign.js';
import { buildManifest, signRelease } from '../../scripts/release/sign-manifest.js';
import { minisignSkipReason } from '../helpers/minisign.js';

const fixture = (name: string) => new URL(`../fixtures/update/${name}`, import.meta.url);
const keyText = readFileSync(fixture('test-current.key'), 'utf8');
const pub = parsePublicKey(readFileSync(fixture('test-current.pub'), 'utf8'));

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'obx-release-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bundle = join(dir, 'onionbox-1.2.0.raucb');
  const data = Buffer.alloc(100_000, 7);
  writeFileSync(bundle, data);
  writeFileSync(join(dir, 'notes.txt'), 'tor 0.4.9.3\nOpenSSL fix\n');
  return { dir, bundle, data };
}

t.test('signs a manifest the box verifies and parses, and minisign accepts', async (t) => {
  const { dir, bundle, data } = setup(t);
  const signed = await signRelease(
    ['--bundle', bundle, '--board', 'onionbox-rpi3', '--version', '1.2.0', '--min-version', '1.0.0'].concat([
      '--notes',
      join(dir, 'notes.txt'),
    ]),
    { ONIONBOX_RELEASE_KEY: keyText, SOURCE_DATE_EPOCH: '1796601600' },
  );
  const bytes = readFileSync(signed.manifestPath);
  const v = verifyMinisign(bytes, readFileSync(signed.signaturePath, 'utf8'), { keys: [pub] });
  t.equal(v.algorithm, 'ED');
  t.match(v.trustedComment, /^onionbox 1\.2\.0 onionbox-rpi3 released 2026-12-07T00:00:00Z$/);
  const m = parseManifest(bytes);
  t.same(m, {
    format: 1,
    version: '1.2.0',
    compatible: 'onionbox-rpi3',
    bundle: {
      name: 'onionbox-1.2.0.raucb',
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    },
    released: '2026-12-07T00:00:00Z',
    expires: '2027-03-07T00:00:00Z',
    notes: 'tor 0.4.9.3\nOpenSSL fix',
    minVersion: '1.0.0',
  });
  t.equal(signed.manifestPath, `${bundle}.manifest.json`);
  if (minisignSkipReason() === false) {
    writeFileSync(join(dir, 'k.pub'), readFileSync(fixture('test-current.pub')));
    const out = execFileSync(
      'minisign',
      ['-V', '-p', join(dir, 'k.pub'), '-m', signed.manifestPath, '-x', signed.signaturePath],
      { encoding: 'utf8' },
    );
    t.match(out, /Signature and comment signature verified/);
  }
});

t.test(
  'keys come from the environment or a file outside the repository, never from the checkout',
  async (t) => {
    const { dir, bundle } = setup(t);
    const args = ['--bundle', bundle, '--board', 'onionbox-rpi3', '--version', '1.2.0'];
    await t.rejects(signRelease(args, {}), /no release key/);
    await t.rejects(
      signRelease([...args, '--key', new URL(fixture('test-current.key')).pathname], {}),
      /inside the repository/,
    );
    writeFileSync(join(dir, 'release.key'), keyText);
    const signed = await signRelease(args, { ONIONBOX_RELEASE_KEY_FILE: join(dir, 'release.key') });
    t.ok(
      verifyMinisign(readFileSync(signed.manifestPath), readFileSync(signed.signaturePath, 'utf8'), {
        keys: [pub],
      }),
    );
    await t.rejects(signRelease(['--bundle', bundle], { ONIONBOX_RELEASE_KEY: keyText }), /usage/);
    await t.rejects(
      signRelease([...args, '--board', 'Bad Board'], { ONIONBOX_RELEASE_KEY: keyText }),
      /would be refused/,
    );
  },
);

t.test('buildManifest refuses what the box would refuse', async (t) => {
  const input = {
    version: '1.2.0',
    compatible: 'onionbox-rpi3',
    bundleName: 'b.raucb',
    size: 10,
    sha256: 'a'.repeat(64),
    released: new Date('2026-12-07T00:00:00.123Z'),
    expiresDays: 30,
    notes: '',
    minVersion: '1.0.0',
  };
  t.equal(buildManifest(input).released, '2026-12-07T00:00:00Z');
  t.throws(() => buildManifest({ ...input, expiresDays: 0 }), /expires/);
  t.throws(() => buildManifest({ ...input, minVersion: '1.2.0' }), /minVersion/);
  t.throws(() => buildManifest({ ...input, version: '1.2' }), /version/);
});
