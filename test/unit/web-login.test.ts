import t from 'tap';
import { Client, claimed, csrfFrom, GOOD_PASSWORD, webHarness } from '../helpers/web.js';

t.test('login, wrong password, logout', async (t) => {
  const h = await webHarness(t);
  await claimed(h);
  const c = new Client(h.app, '10.42.0.50');
  t.equal((await c.get('/')).headers.location, '/login');
  const wrong = await c.post('/login', { password: 'not the password at all' }, '/login');
  t.equal(wrong.statusCode, 401);
  t.match(wrong.body, /id="password-error"[^>]*>Wrong password/);
  t.notOk(c.cookies.has('obx_sid'));
  t.equal((await c.get('/')).statusCode, 303);
  const ok = await c.post('/login', { password: GOOD_PASSWORD }, '/login');
  t.equal(ok.statusCode, 303);
  const cookie = ok.headers['set-cookie'];
  const sid = (Array.isArray(cookie) ? cookie : [cookie]).find((x) => x?.startsWith('obx_sid='));
  t.match(sid, /HttpOnly/);
  t.match(sid, /SameSite=Strict/);
  t.match(sid, /Path=\//);
  const home = await c.get('/');
  t.equal(home.statusCode, 200);
  t.match(home.body, /Log out/);
  t.equal((await c.get('/login')).headers.location, '/', 'logged-in owners skip the login page');
  const out = await c.post('/logout', {}, '/');
  t.equal(out.headers.location, '/login?done=logout');
  t.match((await c.get('/login?done=logout')).body, /Logged out/);
  t.equal((await c.get('/')).statusCode, 303, 'session ended');
});

t.test('a forged or stolen-then-ended session cookie does not log in', async (t) => {
  const h = await webHarness(t);
  const owner = await claimed(h);
  const forged = new Client(h.app);
  forged.cookies.set('obx_sid', 'AAAA.forged');
  t.equal((await forged.get('/')).statusCode, 303);
  const copy = new Client(h.app);
  copy.cookies.set('obx_sid', owner.cookies.get('obx_sid') ?? '');
  t.equal((await copy.get('/')).statusCode, 200, 'a valid cookie works');
  await owner.post('/logout', {}, '/');
  t.equal((await copy.get('/')).statusCode, 303, 'ended server-side, not just in one browser');
  const unsigned = new Client(h.app);
  unsigned.cookies.set('obx_sid', (owner.cookies.get('obx_sid') ?? 'x').split('.')[0] ?? '');
  t.equal((await unsigned.get('/')).statusCode, 303, 'unsigned ids are refused');
});

t.test(
  'failed logins are throttled per address with a growing wait; other addresses unaffected',
  async (t) => {
    let now = Date.UTC(2026, 10, 29);
    const h = await webHarness(t, { now: () => now });
    await claimed(h);
    const c = new Client(h.app, '10.42.0.66');
    const token = csrfFrom((await c.get('/login')).body);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++)
      codes.push((await c.post('/login', { password: `guess number ${i}xx`, _csrf: token })).statusCode);
    t.same(codes, [401, 401, 401, 429, 429]);
    const right = await c.post('/login', { password: GOOD_PASSWORD, _csrf: token });
    t.equal(right.statusCode, 429, 'even the right password waits');
    t.equal(right.headers['retry-after'], '1');
    t.match(right.body, /OBX_ERR_WEB_THROTTLED/);
    const other = new Client(h.app, '10.42.0.67');
    t.equal((await other.post('/login', { password: GOOD_PASSWORD }, '/login')).statusCode, 303);
    now += 1000;
    t.equal((await c.post('/login', { password: 'still wrong guess', _csrf: token })).statusCode, 401);
    const again = await c.post('/login', { password: GOOD_PASSWORD, _csrf: token });
    t.equal(again.statusCode, 429);
    t.equal(again.headers['retry-after'], '2', 'the wait doubled');
    now += 2000;
    t.equal((await c.post('/login', { password: GOOD_PASSWORD, _csrf: token })).statusCode, 303);
  },
);

t.test(
  'a reset (password cleared by the claim button) ends old sessions, also after a new claim',
  async (t) => {
    const h = await webHarness(t);
    const old = await claimed(h);
    t.equal((await old.get('/')).statusCode, 200);
    await h.box.config.update((c) => ({ ...c, web: { ...c.web, passwordHash: null } }));
    const res = await old.get('/');
    t.equal(res.headers.location, '/claim', 'the box is unclaimed again');
    await claimed(h, 'a second owner passphrase');
    t.equal((await old.get('/')).statusCode, 303, 'the old session does not come back');
  },
);

t.test('rotating the session key in the config store invalidates signed cookies at once', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  t.equal((await c.get('/')).statusCode, 200);
  await h.box.config.update((cfg) => ({ ...cfg, web: { ...cfg.web, sessionKey: 'ab'.repeat(32) } }));
  t.equal((await c.get('/')).statusCode, 303, 'the old signature no longer verifies');
});
