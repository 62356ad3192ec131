import { readFileSync } from 'node:fs';
import t from 'tap';
import { describeError, Errors, isObxError, ObxError, obxError } from '../../firmware/errors.js';

t.test('every error code is documented in firmware/ERRORS.md and every documented code exists', async (t) => {
  const doc = readFileSync(new URL('../../firmware/ERRORS.md', import.meta.url), 'utf8');
  const documented = new Set(
    [...doc.matchAll(/^\| (OBX_ERR_[A-Z0-9_]+) \| (\d{3}) \|/gm)].map((m) => `${m[1]} ${m[2]}`),
  );
  const defined = new Set(Object.values(Errors).map((e) => `${e.code} ${e.statusCode}`));
  t.same(
    [...defined].filter((c) => !documented.has(c)),
    [],
    'defined but not documented (code and status)',
  );
  t.same(
    [...documented].filter((c) => !defined.has(c)),
    [],
    'documented but not defined',
  );
  t.ok(defined.size >= 5);
});

t.test('codes are unique and well formed', async (t) => {
  const codes = Object.values(Errors).map((e) => e.code);
  t.equal(new Set(codes).size, codes.length);
  for (const c of codes) t.match(c, /^OBX_ERR_[A-Z0-9_]+$/);
});

t.test('obxError carries code, status, detail and field details', async (t) => {
  const e = obxError('CONFIG_INVALID', '/tor/bridges/0 bad', { details: { '/tor/bridges/0': 'bad' } });
  t.ok(e instanceof ObxError);
  t.equal(e.code, 'OBX_ERR_CONFIG_INVALID');
  t.equal(e.statusCode, 400);
  t.equal(e.message, 'Configuration does not match the schema: /tor/bridges/0 bad');
  t.same(e.details, { '/tor/bridges/0': 'bad' });
  t.ok(Object.isFrozen(e.details));
  t.ok(isObxError(e, 'CONFIG_INVALID'));
  t.notOk(isObxError(e, 'CONFIG_NOT_JSON'));
  t.notOk(isObxError(new Error('x')));
  t.equal(
    describeError(e),
    'OBX_ERR_CONFIG_INVALID: Configuration does not match the schema: /tor/bridges/0 bad',
  );
  t.equal(describeError(new Error('plain')), 'plain');
  t.equal(describeError(42), '42');
  t.equal(obxError('INTERNAL').message, 'Internal error');
});
