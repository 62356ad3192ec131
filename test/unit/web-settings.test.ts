import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  BRIDGE,
  BRIDGE_FAILING,
  type Client,
  claimed,
  GOOD_PASSWORD,
  type WebHarness,
  webHarness,
} from '../helpers/web.js';

const configText = (h: WebHarness) => readFileSync(join(h.dir, 'config.json'), 'utf8');

async function setup(t: Parameters<typeof webHarness>[0]): Promise<{ h: WebHarness; c: Client }> {
  const h = await webHarness(t);
  const c = await claimed(h);
  return { h, c };
}

t.test('settings page shows every section; networking points to the network page', async (t) => {
  const { c } = await setup(t);
  const res = await c.get('/settings');
  t.equal(res.statusCode, 200);
  for (const id of ['bridges', 'exits', 'clock', 'password', 'networking', 'diagnostics'])
    t.match(res.body, `id="${id}"`);
  const networking = res.body.slice(
    res.body.indexOf('id="networking"'),
    res.body.indexOf('id="diagnostics"'),
  );
  t.match(networking, /href="\/network"/);
  t.notMatch(networking, /<form|<input/, 'the forms are on the network page');
  t.match(res.body, /makes you stand out/, 'exit-country warning in plain words');
});

t.test(
  'bridges: valid lines are applied through the box; invalid ones change nothing and keep the input',
  async (t) => {
    const { h, c } = await setup(t);
    const before = configText(h);
    const bad = await c.post(
      '/settings/bridges',
      { useBridges: 'on', bridges: `${BRIDGE}\nbad\u0001line <script>` },
      '/settings',
    );
    t.equal(bad.statusCode, 400);
    t.match(bad.body, /id="bridges-error"[^>]*>Line 2/);
    t.ok(bad.body.includes('bad\u0001line &lt;script&gt;'), 'input kept, escaped');
    t.notMatch(bad.body, /<script>/);
    t.equal(configText(h), before, 'nothing written');
    t.same(h.box.tor.calls.applied, []);
    const empty = await c.post('/settings/bridges', { useBridges: 'on', bridges: '' }, '/settings');
    t.equal(empty.statusCode, 400);
    t.match(empty.body, /at least one bridge line|no bridge line/);
    const ok = await c.post(
      '/settings/bridges',
      { useBridges: 'on', bridges: `Bridge ${BRIDGE}\n` },
      '/settings',
    );
    t.equal(ok.statusCode, 303);
    t.equal(ok.headers.location, '/?done=tor-applied');
    t.same(h.box.config.get().tor.bridges, [BRIDGE]);
    t.equal(h.box.config.get().tor.useBridges, true);
    const status = await c.get('/?done=tor-applied');
    t.match(status.body, /Tor settings saved/);
    t.match(status.body, /Connecting to Tor: 0 %/, 'progress is shown after applying');
    t.match(
      status.body,
      /<noscript><meta http-equiv="refresh" content="5"><\/noscript>/,
      'JS-off refresh while connecting',
    );
    // Issue 21: the built-in snowflake bridge could never connect; the page no longer offers it, and a
    // form that still sends the old checkbox gets no bridge from it.
    const page = await c.get('/settings');
    t.notMatch(page.body, /builtinSnowflake|built-in snowflake/i, 'no built-in snowflake on offer');
    const snow = await c.post(
      '/settings/bridges',
      { useBridges: 'on', builtinSnowflake: 'on', bridges: '' },
      '/settings',
    );
    t.equal(snow.statusCode, 400);
    t.match(snow.body, /no bridge line/);
    t.same(h.box.config.get().tor.bridges, [BRIDGE], 'nothing changed');
    t.notOk('builtinSnowflake' in h.box.config.get().tor);
  },
);

t.test('when tor fails with new settings the box rolls back and the page says so, input kept', async (t) => {
  const { h, c } = await setup(t);
  h.box.tor.starts = (tor) =>
    tor.bridges.some((b) => b.includes('192.0.2.99')) ? 'no bridge reachable' : true;
  const res = await c.post('/settings/bridges', { useBridges: 'on', bridges: BRIDGE_FAILING }, '/settings');
  t.equal(res.statusCode, 409);
  t.match(res.body, /last working ones are back/);
  t.match(res.body, /no bridge reachable/);
  t.match(res.body, `${BRIDGE_FAILING}</textarea>`);
  t.same(h.box.config.get().tor.bridges, [], 'rolled back');
  t.equal(h.box.tor.calls.rolledBack, 1);
});

t.test('exit countries: valid and invalid', async (t) => {
  const { h, c } = await setup(t);
  const before = configText(h);
  const bad = await c.post('/settings/exits', { exitNodes: 'de xx1', excludeExitNodes: 'us' }, '/settings');
  t.equal(bad.statusCode, 400);
  t.match(bad.body, /id="exitNodes-error"[^>]*>&quot;xx1&quot; is not a two-letter country code/);
  t.match(bad.body, /value="de xx1"/);
  t.equal(configText(h), before);
  const ok = await c.post(
    '/settings/exits',
    { exitNodes: 'DE, NL', excludeExitNodes: 'us', strictNodes: 'on' },
    '/settings',
  );
  t.equal(ok.statusCode, 303);
  t.same(h.box.config.get().tor.exitNodes, ['de', 'nl']);
  t.same(h.box.config.get().tor.excludeExitNodes, ['us']);
  t.equal(h.box.config.get().tor.strictNodes, true);
  const page = await c.get('/settings');
  t.match(page.body, /value="de nl"/, 'saved values shown');
});

t.test('clock: browser time, typed time, and refusals', async (t) => {
  const { h, c } = await setup(t);
  const ms = Date.UTC(2026, 10, 29, 1, 30);
  t.equal((await c.post('/settings/clock', { epochMs: String(ms), clock: '' }, '/settings')).statusCode, 303);
  t.equal((await c.post('/settings/clock', { clock: '2026-11-29 01:31' }, '/settings')).statusCode, 303);
  t.same(h.box.clockSets, [ms, ms + 60_000]);
  const bad = await c.post('/settings/clock', { clock: 'next tuesday' }, '/settings');
  t.equal(bad.statusCode, 400);
  t.match(bad.body, /id="clock-error"/);
  t.match(bad.body, /value="next tuesday"/);
  const old = await c.post('/settings/clock', { epochMs: '86400000' }, '/settings');
  t.equal(old.statusCode, 400);
  t.match(old.body, /not plausible/);
  t.equal(h.box.clockSets.length, 2);
});

t.test('password change: checks the current password and the policy; ends other sessions', async (t) => {
  const { h, c } = await setup(t);
  const other = await (async () => {
    const o = new (c.constructor as typeof Client)(h.app, '10.42.0.77');
    await o.post('/login', { password: GOOD_PASSWORD }, '/login');
    return o;
  })();
  t.equal((await other.get('/')).statusCode, 200);
  const hash = h.box.config.get().web.passwordHash;
  const wrong = await c.post(
    '/settings/password',
    { current: 'wrong current pw', password: 'new long passphrase 9', confirm: 'new long passphrase 9' },
    '/settings',
  );
  t.equal(wrong.statusCode, 400);
  t.match(wrong.body, /id="current-error"/);
  const weak = await c.post(
    '/settings/password',
    { current: GOOD_PASSWORD, password: 'short', confirm: 'short' },
    '/settings',
  );
  t.match(weak.body, /id="password-error"/);
  const differ = await c.post(
    '/settings/password',
    { current: GOOD_PASSWORD, password: 'new long passphrase 9', confirm: 'new long passphrase 8' },
    '/settings',
  );
  t.match(differ.body, /id="confirm-error"/);
  t.equal(h.box.config.get().web.passwordHash, hash, 'unchanged after errors');
  const ok = await c.post(
    '/settings/password',
    { current: GOOD_PASSWORD, password: 'new long passphrase 9', confirm: 'new long passphrase 9' },
    '/settings',
  );
  t.equal(ok.statusCode, 303);
  t.not(h.box.config.get().web.passwordHash, hash);
  t.equal((await c.get('/settings')).statusCode, 200, 'this browser stays logged in');
  t.equal((await other.get('/')).statusCode, 303, 'the other browser is logged out');
});

t.test(
  'diagnostics download is text, an attachment, and never carries the session key or hash',
  async (t) => {
    const { h, c } = await setup(t);
    const web = h.box.config.get().web;
    h.box.extraDiagnostics = `leaky line key=${web.sessionKey} hash=${web.passwordHash}`;
    const res = await c.get('/settings/diagnostics.txt');
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /^text\/plain/);
    t.match(res.headers['content-disposition'], /^attachment; filename="onionbox-diagnostics-/);
    t.match(res.body, /state connecting, firewall connecting/);
    t.notMatch(res.body, web.sessionKey ?? 'x');
    t.notMatch(res.body, web.passwordHash ?? 'x');
    t.match(res.body, /key=\[redacted\] hash=\[redacted\]/);
  },
);

t.test("diagnostics never name a bridge: configured, or only in tor's warnings (issue 23)", async (t) => {
  const { h, c } = await setup(t);
  await h.box.config.update((cfg) => ({ ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [BRIDGE] } }));
  const [, address, fingerprint, cert] = /^obfs4 (\S+) (\S+) cert=(\S+)/.exec(BRIDGE) ?? [];
  h.box.tor.warnings.push(
    `Problem bootstrapping. Stuck at 10%: Connected to a relay. (count 3; host ${fingerprint} at ${address})`,
    'Proxy Client: unable to connect with 203.0.113.5:9001 ID=<none> RSA_ID=$FEDCBA9876543210FEDCBA9876543210FEDCBA98',
  );
  h.box.setBootstrap(10, 'Connected to a relay');
  h.box.extraDiagnostics = `bridge line: ${BRIDGE}`;
  const res = await c.get('/settings/diagnostics.txt');
  t.equal(res.statusCode, 200);
  t.match(res.body, /tor warning: Problem bootstrapping/, 'the warnings are there');
  for (const secret of [
    address,
    fingerprint,
    cert,
    '192.0.2.1',
    '203.0.113.5',
    'FEDCBA9876543210FEDCBA9876543210FEDCBA98',
  ])
    t.notOk(res.body.includes(secret ?? 'x'), `no ${secret}`);
  // The status page shows the same warnings, redacted the same way (issue 23), and so does every status
  // the box hands out (the page process's Mirror, the live stream).
  const status = await c.get('/');
  t.match(status.body, /Recent warnings/);
  t.match(status.body, /Problem bootstrapping/);
  const everywhere = `${status.body}\n${JSON.stringify(h.box.controller.status())}`;
  for (const secret of [address, fingerprint, '203.0.113.5', 'FEDCBA9876543210FEDCBA9876543210FEDCBA98'])
    t.notOk(everywhere.includes(secret ?? 'x'), `status: no ${secret}`);
});

t.test('status page: kill switch (software vs hardware), new identity, circuits and counters', async (t) => {
  const { h, c } = await setup(t);
  h.box.setBootstrap(100, 'Done');
  const page = await c.get('/');
  t.match(page.body, /Protected: your devices reach the internet only through Tor/);
  t.match(page.body, /guardian \(DE\) → middleman \(SE\) → exitus \(NL\)/);
  t.match(page.body, /UDP packets \(other than DNS\)<\/td><td>40/);
  t.notMatch(page.body, /http-equiv="refresh"/, 'no refresh once settled');
  const kill = await c.post('/kill', { engage: '1' }, '/');
  t.equal(kill.headers.location, '/?done=kill-on');
  t.equal(h.box.config.get().softKill, true);
  const killed = await c.get('/');
  t.match(killed.body, /Cut off from this page/);
  t.match(killed.body, /From this page<\/dt><dd data-live="softwareSwitch">On/);
  t.match(killed.body, /Switch on the box<\/dt><dd data-live="hardwareSwitch">Off/);
  h.box.sim?.setSwitch(true);
  const hw = await c.get('/');
  t.match(hw.body, /Cut off by the switch on the box/);
  t.match(hw.body, /Switch on the box<\/dt><dd data-live="hardwareSwitch">On/);
  t.equal((await c.post('/kill', { engage: '0' }, '/')).headers.location, '/?done=kill-off');
  t.equal((await c.post('/kill', { engage: 'maybe' }, '/')).statusCode, 400);
  t.equal(h.box.config.get().softKill, false, 'the page released its kill switch');
  t.equal((await c.post('/newnym', {}, '/')).headers.location, '/?done=newnym');
  t.equal(h.box.tor.calls.newIdentity, 1);
  t.match((await c.get('/?done=newnym')).body, /new circuits/);
  t.notMatch((await c.get('/?done=<b>x</b>')).body, /<b>x<\/b>/, 'unknown flash keys are ignored');
});
