/**
 * `npm run release -- --rootfs IMAGE`: the RAUC bundle of a root slot, built with Debian's rauc and a
 * throwaway certificate made here with openssl (codeSigning EKU, as a release certificate has), checked the
 * way the box's RAUC checks it (`rauc info --conf` with a system.conf whose keyring has
 * check-purpose=codesign); then the signed manifest for it, which the box's own code accepts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseManifest } from '../../firmware/update/manifest.js';
import { parsePublicKey, verifyMinisign } from '../../firmware/update/minisign.js';
import { raucInfo, renderRaucManifest } from '../../scripts/release/rauc-bundle.js';
import { bundleFileName, signRelease } from '../../scripts/release/sign-manifest.js';

const fixture = (name: string) => new URL(`../fixtures/update/${name}`, import.meta.url);
const keyText = readFileSync(fixture('test-current.key'), 'utf8');
const pub = parsePublicKey(readFileSync(fixture('test-current.pub'), 'utf8'));

function toolsSkip(): string | false {
  if (process.env.CI === 'true') return false;
  for (const tool of ['rauc', 'openssl', 'mksquashfs']) {
    if (spawnSync('sh', ['-c', 'command -v "$0"', tool]).status !== 0) {
      return `${tool} not installed (apt-get install rauc squashfs-tools openssl); runs under CI=true`;
    }
  }
  return false;
}

/** A throwaway signing certificate and key (never a release one), and a system.conf trusting it. */
function throwawayCa(dir: string, name: string): { cert: string; key: string; conf: string } {
  const cert = join(dir, `${name}.cert.pem`);
  const key = join(dir, `${name}.key.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '30',
      '-subj',
      `/CN=onionbox ${name} test release`,
      '-addext',
      'extendedKeyUsage=codeSigning',
      '-addext',
      'keyUsage=digitalSignature',
    ],
    { stdio: 'ignore' },
  );
  const conf = join(dir, `${name}.system.conf`);
  writeFileSync(
    conf,
    [
      '[system]',
      'compatible=onionbox-test',
      'bootloader=noop',
      '',
      '[keyring]',
      `path=${cert}`,
      'check-purpose=codesign',
      '',
      '[slot.rootfs.0]',
      `device=${join(dir, 'slot0')}`,
      'type=raw',
      'bootname=A',
      '',
      '[slot.rootfs.1]',
      `device=${join(dir, 'slot1')}`,
      'type=raw',
      'bootname=B',
      '',
    ].join('\n'),
  );
  return { cert, key, conf };
}

t.test('manifest.raucm: values allowlisted', async (t) => {
  t.equal(
    renderRaucManifest({ compatible: 'onionbox-rpi3', version: '1.2.0', image: 'rootfs.img' }),
    '[update]\ncompatible=onionbox-rpi3\nversion=1.2.0\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.img\n',
  );
  t.throws(
    () => renderRaucManifest({ compatible: 'x\n[hooks]', version: '1.2.0', image: 'a' }),
    /not a board/,
  );
  t.throws(() => renderRaucManifest({ compatible: 'x', version: '1.2', image: 'a' }), /not a version/);
  t.throws(() => renderRaucManifest({ compatible: 'x', version: '1.2.0', image: '../a' }), /not a file name/);
});

t.test(
  'a root slot becomes a CMS-signed bundle RAUC accepts, and a manifest the box accepts',
  { skip: toolsSkip() },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'obx-bundle-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const rootfs = join(dir, 'rootfs.ext4');
    writeFileSync(rootfs, randomBytes(1024 * 1024));
    const release = throwawayCa(dir, 'release');
    const signed = await signRelease(
      ['--rootfs', rootfs, '--board', 'onionbox-test', '--version', '1.2.0', '--out', dir],
      {
        ONIONBOX_RELEASE_KEY: keyText,
        ONIONBOX_RAUC_CERT_FILE: release.cert,
        ONIONBOX_RAUC_KEY_FILE: release.key,
      },
    );
    const bundle = join(dir, 'onionbox-test-1.2.0.raucb');
    t.equal(signed.manifestPath, `${bundle}.manifest.json`);
    const info = await raucInfo(bundle, release.conf);
    t.ok(info.ok, info.ok ? 'rauc info accepts it' : info.text);
    t.match(info.text, /Verified inline signature by 'CN = onionbox release test release'/);
    t.match(info.text, /Compatible:\s+'onionbox-test'/);
    t.match(info.text, /Version:\s+'1\.2\.0'/);
    t.match(info.text, /Bundle Format:\s+verity/);
    const bytes = readFileSync(signed.manifestPath);
    verifyMinisign(bytes, readFileSync(signed.signaturePath, 'utf8'), { keys: [pub] });
    const m = parseManifest(bytes);
    t.equal(m.bundle.sha256, createHash('sha256').update(readFileSync(bundle)).digest('hex'));
    t.equal(m.bundle.name, 'onionbox-test-1.2.0.raucb');

    // a box that trusts another certificate refuses it; so does one without check-purpose=codesign
    const foreign = throwawayCa(dir, 'foreign');
    const refused = await raucInfo(bundle, foreign.conf);
    t.notOk(refused.ok);
    t.match(refused.text, /signature verification failed/);
    writeFileSync(
      join(dir, 'no-purpose.conf'),
      readFileSync(release.conf, 'utf8').replace('check-purpose=codesign\n', ''),
    );
    const purpose = await raucInfo(bundle, join(dir, 'no-purpose.conf'));
    t.notOk(purpose.ok);
    t.match(purpose.text, /unsuitable certificate purpose/);
  },
);

t.test('the RAUC key comes from a file outside the checkout; both must be given', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'obx-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rootfs = join(dir, 'rootfs.ext4');
  writeFileSync(rootfs, 'x');
  const args = ['--rootfs', rootfs, '--board', 'onionbox-test', '--version', '1.2.0'];
  await t.rejects(signRelease(args, { ONIONBOX_RELEASE_KEY: keyText }), /no RAUC signing certificate/);
  await t.rejects(
    signRelease(
      [...args, '--cert', join(dir, 'c'), '--rauc-key', new URL(fixture('test-current.key')).pathname],
      {
        ONIONBOX_RELEASE_KEY: keyText,
      },
    ),
    /RAUC signing key .* inside the repository/,
  );
  await t.rejects(signRelease([...args, '--bundle', rootfs], { ONIONBOX_RELEASE_KEY: keyText }), /usage/);
});

t.test("the bundle's file name names onionbox once", async (t) => {
  t.equal(bundleFileName('onionbox-rpi-arm64', '0.1.1'), 'onionbox-rpi-arm64-0.1.1.raucb');
  t.equal(bundleFileName('rpi3', '1.0.0'), 'onionbox-rpi3-1.0.0.raucb');
});
