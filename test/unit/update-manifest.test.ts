import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import {
  assertAcceptable,
  compareVersions,
  DEFAULT_MAX_BUNDLE_BYTES,
  decide,
  type Manifest,
  NOTES_MAX_LENGTH,
  parseManifest,
  REFUSAL_ERRORS,
} from '../../firmware/update/manifest.js';

const good: Manifest = {
  format: 1,
  version: '1.2.0',
  compatible: 'onionbox-rpi3',
  bundle: { name: 'onionbox-1.2.0.raucb', size: 300_000_000, sha256: 'a'.repeat(64) },
  released: '2026-12-01T00:00:00Z',
  expires: '2027-03-01T00:00:00Z',
  notes: 'tor 0.4.9.3\nOpenSSL security fix',
  minVersion: '1.0.0',
};
const running = { version: '1.1.3', compatible: 'onionbox-rpi3' };
const now = new Date('2026-12-07T06:00:00Z');
const json = (m: unknown) => JSON.stringify(m);

t.test('a valid manifest parses and is frozen', async (t) => {
  const m = parseManifest(json(good));
  t.same(m, good);
  t.ok(Object.isFrozen(m));
  t.ok(Object.isFrozen(m.bundle));
  t.same(parseManifest(Buffer.from(json(good))), good);
});

t.test('the grammar refuses bad manifests with OBX_ERR_UPDATE_MANIFEST_INVALID', async (t) => {
  const bad: [string, unknown][] = [
    ['not JSON', '{'],
    ['array', '[]'],
    ['unknown field', json({ ...good, extra: 1 })],
    ['missing notes', json({ ...good, notes: undefined })],
    ['format 2', json({ ...good, format: 2 })],
    ['prerelease version', json({ ...good, version: '1.2.0-rc1' })],
    ['leading zero', json({ ...good, version: '1.02.0' })],
    ['two parts', json({ ...good, version: '1.2' })],
    ['v prefix', json({ ...good, version: 'v1.2.0' })],
    ['board with space', json({ ...good, compatible: 'onionbox rpi3' })],
    ['board upper case', json({ ...good, compatible: 'Onionbox' })],
    ['size 0', json({ ...good, bundle: { ...good.bundle, size: 0 } })],
    ['size fraction', json({ ...good, bundle: { ...good.bundle, size: 1.5 } })],
    ['sha upper case', json({ ...good, bundle: { ...good.bundle, sha256: 'A'.repeat(64) } })],
    ['sha short', json({ ...good, bundle: { ...good.bundle, sha256: 'a'.repeat(63) } })],
    ['bundle name with slash', json({ ...good, bundle: { ...good.bundle, name: '../x' } })],
    ['date without zone', json({ ...good, released: '2026-12-01T00:00:00' })],
    ['impossible date', json({ ...good, released: '2026-13-45T00:00:00Z' })],
    ['expiry before release', json({ ...good, expires: '2026-11-30T00:00:00Z' })],
    ['notes too long', json({ ...good, notes: 'x'.repeat(NOTES_MAX_LENGTH + 1) })],
    ['notes with escape', json({ ...good, notes: 'red \u001b[31m' })],
    ['notes with NUL', json({ ...good, notes: 'a\u0000b' })],
    ['minVersion not below version', json({ ...good, minVersion: '1.2.0' })],
    ['huge', json({ ...good, notes: 'x'.repeat(20000) })],
  ];
  for (const [name, text] of bad) {
    t.throws(() => parseManifest(text as string), { code: 'OBX_ERR_UPDATE_MANIFEST_INVALID' }, name);
  }
  try {
    parseManifest(json({ ...good, expires: '2026-11-30T00:00:00Z' }));
  } catch (err) {
    t.ok(isObxError(err, 'UPDATE_MANIFEST_INVALID'));
    if (isObxError(err)) t.same(Object.keys(err.details), ['/expires']);
  }
  t.same(parseManifest(json({ ...good, notes: '' })).notes, '', 'empty notes are allowed');
  t.equal(parseManifest(json({ ...good, notes: 'tab\tand é ü' })).notes, 'tab\tand é ü');
});

t.test('versions order numerically, not as text', async (t) => {
  const order = ['0.0.0', '0.0.1', '0.1.0', '0.9.0', '0.10.0', '1.0.0', '1.0.9', '1.0.10', '2.0.0', '10.0.0'];
  for (let i = 0; i < order.length; i++) {
    for (let j = 0; j < order.length; j++) {
      t.equal(
        Math.sign(compareVersions(order[i]!, order[j]!)),
        Math.sign(i - j),
        `${order[i]} vs ${order[j]}`,
      );
    }
  }
  t.throws(() => compareVersions('1.0', '1.0.0'), { code: 'OBX_ERR_UPDATE_MANIFEST_INVALID' });
});

t.test('decide: accept, and one named refusal per rule', async (t) => {
  t.same(decide(good, running, now, []), { accept: true });
  const cases: [string, Manifest, typeof running, Date, string[], string][] = [
    ['same version (replay)', { ...good, version: '1.1.3' }, running, now, [], 'not-newer'],
    [
      'older version (downgrade)',
      { ...good, version: '1.1.2', minVersion: '1.0.0' },
      running,
      now,
      [],
      'not-newer',
    ],
    ['older major', { ...good, version: '0.9.9', minVersion: '0.1.0' }, running, now, [], 'not-newer'],
    ['wrong board', { ...good, compatible: 'onionbox-rpi4' }, running, now, [], 'wrong-board'],
    ['expired', good, running, new Date('2027-03-01T00:00:00Z'), [], 'expired'],
    ['below minimum', { ...good, minVersion: '1.1.4' }, running, now, [], 'below-minimum'],
    ['failed before', good, running, now, ['1.2.0'], 'failed-before'],
    [
      'too large',
      { ...good, bundle: { ...good.bundle, size: DEFAULT_MAX_BUNDLE_BYTES + 1 } },
      running,
      now,
      [],
      'too-large',
    ],
  ];
  for (const [name, m, r, when, failed, refusal] of cases) {
    const d = decide(m, r, when, failed);
    t.equal(d.accept, false, name);
    if (!d.accept) {
      t.equal(d.refusal, refusal, name);
      t.ok(d.reason.length > 0);
    }
    t.throws(() => assertAcceptable(m, r, when, failed), {
      code: `OBX_ERR_${REFUSAL_ERRORS[refusal as 'expired']}`,
    });
  }
  t.same(decide(good, running, new Date('2027-02-28T23:59:59Z'), []), { accept: true }, 'just before expiry');
  t.same(decide(good, { ...running, version: '1.0.0' }, now, []), { accept: true }, 'exactly the minimum');
  t.same(decide(good, running, now, ['1.1.9', '1.2.1']), { accept: true }, 'other failed versions');
  t.equal(decide(good, running, now, [], { maxBundleBytes: 1000 }).accept, false, 'custom cap');
  t.doesNotThrow(() => assertAcceptable(good, running, now, []));
});

t.test('decide: refusals come in a fixed order', async (t) => {
  const all: Manifest = {
    ...good,
    compatible: 'other',
    version: '1.0.0',
    minVersion: '0.1.0',
    expires: '2026-12-02T00:00:00Z',
  };
  const d = decide(all, running, now, ['1.0.0']);
  t.equal(d.accept ? '' : d.refusal, 'wrong-board');
  const d2 = decide({ ...all, compatible: good.compatible }, running, now, ['1.0.0']);
  t.equal(d2.accept ? '' : d2.refusal, 'not-newer', 'a replay of a failed old version is still not-newer');
});
