import { request } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import { Client, claimed, csrfFrom, HOST, webHarness } from '../helpers/web.js';

t.test('security headers and a strict CSP on every page; no inline script anywhere', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  for (const url of ['/', '/settings', '/sim', '/nope', '/static/style.css']) {
    const res = await c.get(url);
    const csp = String(res.headers['content-security-policy']);
    t.match(csp, /default-src 'none'/, url);
    t.match(csp, /script-src 'self'(;|$)/, url);
    t.notMatch(csp, /unsafe-inline|unsafe-eval|upgrade-insecure-requests/, url);
    t.match(csp, /frame-ancestors 'none'/, url);
    t.match(csp, /form-action 'self'/, url);
    t.equal(res.headers['x-content-type-options'], 'nosniff', url);
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url);
    t.equal(res.headers['referrer-policy'], 'no-referrer', url);
    t.notOk(res.headers['strict-transport-security'], 'no HSTS on plain HTTP');
    if (url !== '/static/style.css') {
      t.equal(res.headers['cache-control'], 'no-store', url);
      t.notMatch(
        res.body,
        /<script>|<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+=|style=/i,
        `${url}: no inline script or style`,
      );
    }
  }
});

t.test('Host header allowlist (DNS rebinding): foreign names get 421 and nothing runs', async (t) => {
  const h = await webHarness(t, { simulate: false });
  const c = await claimed(h);
  for (const host of [
    'attacker.example',
    'onionbox.lan.attacker.example',
    '127.0.0.1',
    'localhost:8080',
    '10.42.0.1.nip.io',
  ]) {
    const res = await c.get('/', { host });
    t.equal(res.statusCode, 421, host);
    t.match(res.body, /OBX_ERR_WEB_HOST_NOT_ALLOWED/, host);
    t.notMatch(res.body, /Protected|Connecting/, 'no status leaked');
  }
  const token = csrfFrom((await c.get('/')).body);
  const res = await h.app.inject({
    method: 'POST',
    url: '/kill',
    headers: {
      host: 'attacker.example',
      cookie: c.cookieHeader(),
      'content-type': 'application/x-www-form-urlencoded',
    },
    payload: `engage=1&_csrf=${encodeURIComponent(token)}`,
  });
  t.equal(res.statusCode, 421);
  t.equal(h.box.config.get().softKill, false);
  t.equal((await c.get('/', { host: 'onionbox.lan' })).statusCode, 200);
  t.equal((await c.get('/', { host: `${HOST}:80` })).statusCode, 200);
  t.equal((await c.get('/sim')).statusCode, 404, 'no simulator panel outside --simulate');
});

t.test('CSRF: missing, wrong, or other-browser tokens are refused and change nothing', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  const attacker = new Client(h.app, '10.42.0.200');
  const foreignToken = csrfFrom((await attacker.get('/login')).body);
  const forms: Record<string, string>[] = [{}, { _csrf: 'nope' }, { _csrf: foreignToken }];
  for (const form of forms) {
    const res = await c.post('/kill', { engage: '1', ...form });
    t.equal(res.statusCode, 403, JSON.stringify(form));
    t.match(res.body, /OBX_ERR_WEB_CSRF/);
    t.match(res.body, /Nothing was changed/);
  }
  const viaHeader = await c.post('/newnym', {}, undefined, { 'x-csrf-token': 'bogus' });
  t.equal(viaHeader.statusCode, 403);
  const noCookie = await h.app.inject({
    method: 'POST',
    url: '/login',
    headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded' },
    payload: `password=x&_csrf=${encodeURIComponent(foreignToken)}`,
  });
  t.equal(noCookie.statusCode, 403);
  t.equal(h.box.config.get().softKill, false);
  t.equal(h.box.tor.calls.newIdentity, 0);
  t.equal((await c.post('/kill', { engage: '1' }, '/')).statusCode, 303, 'with the page token it works');
});

t.test('only urlencoded forms are accepted; bodies are size-limited', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  const token = csrfFrom((await c.get('/')).body);
  for (const type of [
    'application/json',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/xml',
  ]) {
    const res = await h.app.inject({
      method: 'POST',
      url: '/kill',
      headers: { host: HOST, cookie: c.cookieHeader(), 'content-type': type },
      payload: JSON.stringify({ engage: '1', _csrf: token }),
    });
    t.equal(res.statusCode, 415, type);
    t.match(res.body, /OBX_ERR_WEB_BAD_CONTENT_TYPE/);
  }
  const huge = await c.post('/settings/bridges', { bridges: 'x'.repeat(200_000), _csrf: token });
  t.equal(huge.statusCode, 413);
  t.match(huge.body, /OBX_ERR_WEB_BODY_TOO_LARGE/);
  t.equal(h.box.config.get().softKill, false);
  t.same(h.box.tor.calls.applied, []);
});

t.test('static files: only the shipped ones, no traversal, no dotfiles, no listing', async (t) => {
  const h = await webHarness(t);
  const c = new Client(h.app);
  const css = await c.get('/static/style.css');
  t.equal(css.statusCode, 200);
  t.match(css.headers['content-type'], /text\/css/);
  t.equal((await c.get('/static/app.js')).statusCode, 200);
  for (const url of [
    '/static/../app.ts',
    '/static/..%2fapp.ts',
    '/static/%2e%2e/%2e%2e/package.json',
    '/static/....//....//etc/passwd',
    '/static/%2e%2e%5c%2e%2e%5cpackage.json',
    '/static/',
    '/static/.hidden',
    '/static/style.css%00.js',
    '/../../etc/passwd',
  ]) {
    const res = await c.get(url);
    t.ok([400, 403, 404].includes(res.statusCode), `${url} -> ${res.statusCode}`);
    t.notMatch(res.body, /root:|"name": "onionbox"|buildWebApp/, url);
  }
});

t.test('header injection: CR/LF in request headers never reaches a response header', async (t) => {
  const h = await webHarness(t);
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (h.app.server.address() as { port: number }).port;
  const raw = (lines: string) =>
    new Promise<string>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.end(lines));
      let out = '';
      sock.on('data', (d: Buffer) => {
        out += d.toString();
      });
      sock.on('close', () => resolve(out));
      sock.on('error', () => resolve(out));
    });
  const res = await raw(
    'GET /claim?x=%0d%0aSet-Cookie:%20pwn=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rSet-Cookie: pwn=2\r\n\r\n',
  );
  t.notMatch(res, /pwn=/);
  const res2 = await raw('GET /claim HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example\r\n\r\n');
  t.notMatch(res2, /200 OK/, 'duplicate Host headers are refused');
  // a normal request on the same server still works
  const ok = await new Promise<number>((resolve) => {
    request({ host: '127.0.0.1', port, path: '/claim', headers: { host: `127.0.0.1:${port}` } }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    }).end();
  });
  t.equal(ok, 200);
});
