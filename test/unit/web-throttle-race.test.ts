/**
 * The login throttle counts an attempt before the (slow) password check: parallel wrong passwords from
 * one address cannot all be checked while the first is still hashing (issue 13).
 */
import t from 'tap';
import { Client, claimed, csrfFrom, webHarness } from '../helpers/web.js';

const PARALLEL = 20;
/** The throttle's free failures: at most this many parallel attempts reach the password check. */
const FREE = 3;

t.test('20 parallel wrong logins: at most 3 checked the password, the rest refused', async (t) => {
  const h = await webHarness(t);
  await claimed(h);
  const c = new Client(h.app, '10.42.0.50');
  const token = csrfFrom((await c.get('/login')).body);
  const answers = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) =>
      c.post('/login', { password: `wrong guess ${i}`, _csrf: token }),
    ),
  );
  const codes = answers.map((r) => r.statusCode);
  const checked = codes.filter((s) => s === 401).length;
  t.ok(checked <= FREE, `${checked} answers checked the password`);
  t.equal(codes.filter((s) => s === 429).length, PARALLEL - checked, 'every other answer is 429');
});

t.test('20 parallel wrong current passwords at the password change: at most 3 checked', async (t) => {
  const h = await webHarness(t);
  const owner = await claimed(h);
  const token = csrfFrom((await owner.get('/settings')).body);
  const hash = h.box.config.get().web.passwordHash;
  const answers = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) =>
      owner.post('/settings/password', {
        current: `wrong guess ${i}`,
        password: 'a brand new passphrase',
        confirm: 'a brand new passphrase',
        _csrf: token,
      }),
    ),
  );
  const checked = answers.filter((r) => /That is not the current password/.test(r.body)).length;
  t.ok(checked <= FREE, `${checked} answers checked the password`);
  t.equal(answers.filter((r) => r.statusCode === 429).length, PARALLEL - checked);
  t.equal(h.box.config.get().web.passwordHash, hash, 'unchanged');
});
