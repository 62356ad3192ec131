/**
 * Abuse tests: random and malformed bodies, bad Content-Types, huge bodies, path traversal, 1000 login
 * attempts. Properties: no 5xx, bad input changes nothing, no secret in any response or log line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { claimed, csrfFrom, GOOD_PASSWORD, HOST, type WebHarness, webHarness } from '../helpers/web.js';

const POST_ROUTES = [
  '/claim',
  '/login',
  '/logout',
  '/kill',
  '/newnym',
  '/settings/bridges',
  '/settings/exits',
  '/settings/clock',
  '/settings/password',
  '/sim/switch',
  '/sim/button',
];
const FIELD_NAMES = [
  '_csrf',
  'password',
  'confirm',
  'current',
  'code',
  'engage',
  'engaged',
  'useBridges',
  'builtinSnowflake',
  'bridges',
  'exitNodes',
  'excludeExitNodes',
  'strictNodes',
  'clock',
  'epochMs',
  '__proto__',
  'constructor',
];

function snapshot(h: WebHarness) {
  return JSON.stringify({
    file: readFileSync(join(h.dir, 'config.json'), 'utf8'),
    calls: { tor: h.box.tor.calls, clock: h.box.clockSets, firewall: h.box.firewall.modes },
    hw: h.box.hardwareSwitch,
    pressed: h.box.buttonPressedAt,
  });
}

function secretsOf(h: WebHarness): string[] {
  const web = h.box.config.get().web;
  return [GOOD_PASSWORD, web.sessionKey ?? '', web.passwordHash ?? ''].filter((s) => s !== '');
}

function assertNoSecrets(
  t: { notOk: (v: unknown, m: string) => void },
  h: WebHarness,
  text: string,
  what: string,
) {
  for (const s of secretsOf(h)) t.notOk(text.includes(s), `${what}: no secret`);
}

t.test('random form bodies on every POST route: no 5xx; refused input changes nothing', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  const token = csrfFrom((await c.get('/settings')).body);
  const value = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.constantFrom('on', '1', '0', token, ''),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...POST_ROUTES),
      fc.dictionary(fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.string({ maxLength: 8 })), value, {
        maxKeys: 6,
      }),
      fc.boolean(),
      async (url, form, withToken) => {
        if (url === '/logout' || url === '/settings/password') return; // session-ending routes are covered elsewhere
        const body = { ...form };
        if (withToken) body._csrf = token;
        else delete body._csrf;
        const before = snapshot(h);
        const res = await h.app.inject({
          method: 'POST',
          url,
          remoteAddress: '10.42.0.9',
          headers: {
            host: HOST,
            cookie: c.cookieHeader(),
            'content-type': 'application/x-www-form-urlencoded',
          },
          payload: new URLSearchParams(body).toString(),
        });
        if (res.statusCode >= 500) throw new Error(`${url} ${res.statusCode}: ${res.body.slice(0, 300)}`);
        if (res.statusCode >= 400 && snapshot(h) !== before)
          throw new Error(`${url} changed state on ${res.statusCode}`);
        if (!withToken && res.statusCode !== 403 && res.statusCode !== 404)
          throw new Error(`${url} without token: ${res.statusCode}`);
        for (const s of secretsOf(h)) if (res.body.includes(s)) throw new Error(`${url} leaked a secret`);
      },
    ),
    { numRuns: 300, seed: 20261129 },
  );
  t.pass('300 random forms');
});

t.test('malformed raw bodies and bad Content-Types: clear 4xx, no state change', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  const before = snapshot(h);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...POST_ROUTES),
      fc.oneof(
        fc.constantFrom(
          'application/x-www-form-urlencoded',
          'application/json',
          'text/plain',
          'multipart/form-data',
          '',
        ),
        fc.string({ maxLength: 30 }).filter((s) => /^[\x21-\x7e]*$/.test(s)),
      ),
      fc.uint8Array({ maxLength: 2000 }),
      async (url, type, bytes) => {
        const headers: Record<string, string> = { host: HOST, cookie: c.cookieHeader() };
        if (type !== '') headers['content-type'] = type;
        const res = await h.app.inject({ method: 'POST', url, headers, payload: Buffer.from(bytes) });
        if (res.statusCode >= 500 || res.statusCode < 400)
          throw new Error(`${url} [${type}] -> ${res.statusCode}`);
      },
    ),
    { numRuns: 300, seed: 7 },
  );
  t.equal(snapshot(h), before);
  const huge = await h.app.inject({
    method: 'POST',
    url: '/settings/bridges',
    headers: { host: HOST, cookie: c.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
    payload: Buffer.alloc(10 * 1024 * 1024, 'a'),
  });
  t.equal(huge.statusCode, 413);
  const weirdMethods = await Promise.all(
    ['PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((method) =>
      h.app.inject({
        method: method as 'PUT',
        url: '/settings',
        headers: { host: HOST, cookie: c.cookieHeader() },
      }),
    ),
  );
  for (const r of weirdMethods) t.ok(r.statusCode >= 400 && r.statusCode < 500);
  t.equal(snapshot(h), before);
});

t.test('random paths under /static never escape the shipped directory', async (t) => {
  const h = await webHarness(t);
  const seg = fc.oneof(
    fc.constantFrom(
      '..',
      '%2e%2e',
      '%2E%2E',
      '..%2f',
      '..%5c',
      '.',
      '%00',
      'style.css',
      'app.js',
      'app.ts',
      'package.json',
      'etc',
      'passwd',
      '.git',
      '%252e%252e',
    ),
    fc.string({ maxLength: 6 }).map(encodeURIComponent),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(seg, { minLength: 1, maxLength: 6 }), async (segs) => {
      const url = `/static/${segs.join('/')}`;
      const res = await h.app.inject({ method: 'GET', url, headers: { host: HOST } });
      if (res.statusCode >= 500) throw new Error(`${url} -> ${res.statusCode}`);
      if (/buildWebApp|"name": "onionbox"|root:x:0|\[core\]/.test(res.body))
        throw new Error(`${url} leaked a file`);
      if (
        res.statusCode === 200 &&
        !/^text\/(css|javascript)|^application\/javascript/.test(String(res.headers['content-type']))
      ) {
        throw new Error(`${url} served ${res.headers['content-type']}`);
      }
    }),
    { numRuns: 400, seed: 99 },
  );
  t.pass('400 random paths');
});

t.test(
  '1000 login attempts: no crash, no state change, throttled, no secret in responses or logs',
  async (t) => {
    const now = Date.UTC(2026, 10, 29, 1);
    const h = await webHarness(t, { now: () => now });
    await claimed(h);
    const before = snapshot(h);
    const token = csrfFrom(
      (await h.app.inject({ method: 'GET', url: '/login', headers: { host: HOST } })).body,
    );
    // the CSRF cookie that goes with that token
    const page = await h.app.inject({ method: 'GET', url: '/login', headers: { host: HOST } });
    const csrfCookie = page.cookies.find((x) => x.name === 'obx_csrf');
    const pageToken = csrfFrom(page.body);
    t.ok(csrfCookie && token);
    const counts = new Map<number, number>();
    let leaks = 0;
    let sessions = 0;
    const guesses = fc.sample(fc.string({ minLength: 0, maxLength: 300 }), { numRuns: 1000, seed: 42 });
    for (let i = 0; i < 1000; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/login',
        remoteAddress: `10.42.0.${100 + (i % 20)}`,
        headers: {
          host: HOST,
          cookie: `obx_csrf=${csrfCookie?.value}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({ password: guesses[i] ?? '', _csrf: pageToken }).toString(),
      });
      counts.set(res.statusCode, (counts.get(res.statusCode) ?? 0) + 1);
      const text = res.body + JSON.stringify(res.headers);
      if (secretsOf(h).some((s) => text.includes(s))) leaks += 1;
      if (String(res.headers['set-cookie'] ?? '').includes('obx_sid')) sessions += 1;
    }
    t.equal(leaks, 0, 'no secret in any response');
    t.equal(sessions, 0, 'no session created');
    t.same([...counts.keys()].sort(), [401, 429], 'only wrong-password and throttled answers');
    t.equal(counts.get(401), 60, 'three checked guesses per address, then the growing wait');
    t.equal(counts.get(429), 940);
    t.equal(snapshot(h), before, 'config and box untouched');
    const logs = h.logs();
    t.ok(logs.includes('login failed'), 'failures are logged');
    assertNoSecrets(t, h, logs, 'logs');
    t.notOk(
      logs.includes(guesses.find((g) => g.length > 20) ?? '\u0000'),
      'guessed passwords are not logged',
    );
  },
);
