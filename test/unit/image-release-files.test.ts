import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { loadReleaseFiles } from '../../firmware/update/release-files.js';
import { COMPATIBLE, releaseFiles } from '../../images/release-files.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/update/${name}`, import.meta.url), 'utf8');

t.test('release.json says the version, the board RAUC checks and the build time', (t) => {
  const files = releaseFiles({ version: '1.4.2', builtEpoch: 1_796_601_600 });
  t.same(
    files.map((f) => f.path),
    ['etc/onionbox/release.json'],
    'no key given: no key file',
  );
  t.same(JSON.parse(files[0]!.text), {
    version: '1.4.2',
    compatible: COMPATIBLE,
    built: '2026-12-07T00:00:00Z',
  });
  const system = readFileSync(new URL('../../images/rauc/system.conf', import.meta.url), 'utf8');
  t.match(system, new RegExp(`^compatible=${COMPATIBLE}$`, 'm'), "RAUC's system.conf names the same board");
  t.end();
});

t.test('keys are checked before they reach the image', (t) => {
  const files = releaseFiles({
    version: '1.0.0',
    builtEpoch: 0,
    currentKey: fixture('test-current.pub'),
    nextKey: fixture('test-next.pub'),
  });
  t.same(
    files.map((f) => [f.path, f.mode]),
    [
      ['etc/onionbox/release.json', 0o644],
      ['etc/onionbox/release-keys/current.pub', 0o644],
      ['etc/onionbox/release-keys/next.pub', 0o644],
    ],
  );
  t.throws(
    () =>
      releaseFiles({ version: '1.0.0', builtEpoch: 0, currentKey: 'untrusted comment: x\nnot base64!\n' }),
    { message: /^current\.pub: .*not base64/ },
  );
  t.throws(() => releaseFiles({ version: '1.0.0', builtEpoch: 0, nextKey: fixture('test-next.pub') }), {
    message: /next release key without a current one/,
  });
  t.throws(() => releaseFiles({ version: '1.0', builtEpoch: 0 }), { message: /MAJOR.MINOR.PATCH/ });
  t.throws(() => releaseFiles({ version: '1.0.0', builtEpoch: Number.NaN }), {
    message: /SOURCE_DATE_EPOCH/,
  });
  t.end();
});

t.test("what the build writes is what the box's updater reads", async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'obx-release-files-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const write = (files: ReturnType<typeof releaseFiles>) => {
    for (const f of files) {
      mkdirSync(dirname(join(root, f.path)), { recursive: true });
      writeFileSync(join(root, f.path), f.text, { mode: f.mode });
    }
  };
  write(releaseFiles({ version: '2.0.1', builtEpoch: 1_796_601_600 }));
  const keyless = await loadReleaseFiles(join(root, 'etc/onionbox'));
  t.equal(keyless.image.version, '2.0.1');
  t.equal(keyless.image.compatible, COMPATIBLE);
  t.equal(keyless.trust, null, 'without a key the box trusts nothing');
  t.ok(keyless.problem, `and says why: ${keyless.problem}`);
  write(
    releaseFiles({ version: '2.0.1', builtEpoch: 1_796_601_600, currentKey: fixture('test-current.pub') }),
  );
  const keyed = await loadReleaseFiles(join(root, 'etc/onionbox'));
  t.equal(keyed.problem, null);
  t.ok(keyed.trust, 'the key the build was given is trusted');
});
