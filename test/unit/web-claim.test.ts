import t from 'tap';
import { Client, csrfFrom, GOOD_PASSWORD, webHarness } from '../helpers/web.js';

t.test('a fresh box sends every page to the claim page and changes nothing before the claim', async (t) => {
  const h = await webHarness(t);
  const c = new Client(h.app);
  for (const url of ['/', '/settings', '/settings/diagnostics.txt', '/login']) {
    const res = await c.get(url);
    t.equal(res.statusCode, 303, url);
    t.equal(res.headers.location, '/claim', url);
  }
  const claim = await c.get('/claim');
  t.equal(claim.statusCode, 200);
  t.match(claim.body, /has not been claimed yet/);
  t.match(claim.body, /K7P2QX|code shown on the box/);
  t.notMatch(claim.body, /K7P2QX/, 'the one-time code is only on the OLED, never on the page');
  const token = csrfFrom(claim.body);
  const kill = await c.post('/kill', { engage: '1', _csrf: token });
  t.equal(kill.statusCode, 409);
  t.match(kill.body, /OBX_ERR_WEB_NOT_CLAIMED/);
  const bridges = await c.post('/settings/bridges', { useBridges: 'on', bridges: '', _csrf: token });
  t.equal(bridges.statusCode, 409);
  t.equal(h.box.config.get().softKill, false);
  t.same(h.box.tor.calls.applied, []);
});

t.test('claim without presence is refused with a field error; input kept; nothing stored', async (t) => {
  const h = await webHarness(t);
  const c = new Client(h.app);
  const res = await c.post(
    '/claim',
    { code: 'WRONG1', password: GOOD_PASSWORD, confirm: GOOD_PASSWORD },
    '/claim',
  );
  t.equal(res.statusCode, 400);
  t.match(res.body, /id="code-error"/);
  t.match(res.body, /value="WRONG1"/, 'typed code kept');
  t.notMatch(res.body, new RegExp(GOOD_PASSWORD), 'passwords are never echoed back');
  t.equal(h.box.config.get().web.passwordHash, null);
});

t.test('claim with the OLED code and a good password stores a scrypt hash and logs in', async (t) => {
  const h = await webHarness(t);
  const c = new Client(h.app);
  const res = await c.post(
    '/claim',
    { code: 'k7p2-qx', password: GOOD_PASSWORD, confirm: GOOD_PASSWORD },
    '/claim',
  );
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, '/?done=claimed');
  const hash = h.box.config.get().web.passwordHash;
  t.match(hash, /^scrypt\$16384\$8\$5\$/);
  t.notMatch(hash, /violet/);
  const status = await c.get(res.headers.location as string);
  t.equal(status.statusCode, 200);
  t.match(status.body, /The box is yours/);
  t.match(status.body, /Connecting to Tor/);
  const again = await c.get('/claim');
  t.equal(again.statusCode, 303, 'claim page is gone once claimed');
});

t.test(
  'claim after pressing the button needs no code; weak and mismatched passwords are refused',
  async (t) => {
    const h = await webHarness(t);
    const c = new Client(h.app);
    await c.post('/claim/start', {}, '/claim');
    h.box.pressWhenShown();
    const page = await c.get('/claim');
    t.match(page.body, /button on the box was pressed for this browser/);
    for (const [pw, confirm, field, msg] of [
      ['short', 'short', 'password', /at least 12/],
      ['password1234', 'password1234', 'password', /commonly used/],
      ['aaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaaa', 'password', /too few different/],
      ['1234567890123', '1234567890123', 'password', /commonly used|run/],
      [GOOD_PASSWORD, `${GOOD_PASSWORD}x`, 'confirm', /differ/],
    ] as const) {
      const res = await c.post('/claim', { password: pw, confirm }, '/claim');
      t.equal(res.statusCode, 400, pw);
      t.match(res.body, new RegExp(`id="${field}-error"[^>]*>[^<]*`), pw);
      t.match(res.body, msg, pw);
    }
    t.equal(h.box.config.get().web.passwordHash, null);
    const ok = await c.post('/claim', { password: GOOD_PASSWORD, confirm: GOOD_PASSWORD }, '/claim');
    t.equal(ok.statusCode, 303);
  },
);

t.test('a second claim is refused once the box is claimed', async (t) => {
  const h = await webHarness(t);
  const a = new Client(h.app);
  const b = new Client(h.app, '10.42.0.99');
  await a.post('/claim/start', {}, '/claim');
  h.box.pressWhenShown();
  const tokenB = csrfFrom((await b.get('/claim')).body);
  t.equal(
    (await a.post('/claim', { password: GOOD_PASSWORD, confirm: GOOD_PASSWORD }, '/claim')).statusCode,
    303,
  );
  const hash = h.box.config.get().web.passwordHash;
  const res = await b.post('/claim', {
    password: 'another long passphrase',
    confirm: 'another long passphrase',
    _csrf: tokenB,
  });
  t.equal(res.statusCode, 409);
  t.match(res.body, /OBX_ERR_WEB_ALREADY_CLAIMED/);
  t.equal(h.box.config.get().web.passwordHash, hash);
});

t.test('guessing the OLED code is throttled per address', async (t) => {
  const h = await webHarness(t);
  const c = new Client(h.app);
  const token = csrfFrom((await c.get('/claim')).body);
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await c.post('/claim', {
      code: `AAAA${i}0`,
      password: GOOD_PASSWORD,
      confirm: GOOD_PASSWORD,
      _csrf: token,
    });
    codes.push(res.statusCode);
  }
  t.same(codes.slice(0, 5), [400, 400, 400, 400, 400], 'five free failures');
  t.same(codes.slice(5), [429, 429, 429], 'then the address must wait');
  // even the right code is not checked while throttled
  const right = await c.post('/claim', {
    code: 'K7P2QX',
    password: GOOD_PASSWORD,
    confirm: GOOD_PASSWORD,
    _csrf: token,
  });
  t.equal(right.statusCode, 429);
  t.ok(Number(right.headers['retry-after']) >= 1);
  t.equal(h.box.config.get().web.passwordHash, null);
});
