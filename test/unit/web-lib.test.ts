import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { newPasswordErrors } from '../../web/lib/forms/auth.js';
import { field, fieldErrors } from '../../web/lib/forms/fields.js';
import {
  checkBridges,
  checkClock,
  checkExits,
  formatClockInput,
  splitBridgeLines,
  splitCountries,
} from '../../web/lib/forms/settings.js';
import { allowedHosts, hostAllowed, hostOfHeader } from '../../web/lib/hosts.js';
import { hashPassword, passwordProblem, verifyPassword } from '../../web/lib/password.js';
import { SessionStore } from '../../web/lib/sessions.js';
import {
  describeCircuits,
  describeCounters,
  describeStatus,
  formatUptime,
} from '../../web/lib/status-presenters.js';
import { FailureThrottle } from '../../web/lib/throttle.js';
import { FAKE_CIRCUITS } from '../helpers/fake-tor.js';
import { BRIDGE } from '../helpers/web.js';

t.test('scrypt hashes verify, match the schema pattern, and reject tampering', async (t) => {
  const fast = { N: 1024, r: 8, p: 1 } as const;
  const h = await hashPassword('correct long passphrase', fast);
  t.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  t.ok(await verifyPassword('correct long passphrase', h));
  t.notOk(await verifyPassword('correct long passphrasE', h));
  t.notOk(await verifyPassword('x', null));
  t.notOk(await verifyPassword('x'.repeat(300), h), 'over-long input is not hashed');
  t.notOk(
    await verifyPassword('correct long passphrase', h.replace('$1024$', '$1000$')),
    'N not a power of 2',
  );
  t.notOk(
    await verifyPassword('correct long passphrase', h.replace('$1024$', `$${2 ** 24}$`)),
    'N too large',
  );
  t.notOk(
    await verifyPassword('correct long passphrase', 'scrypt$1024$8$1$c2FsdA==$aGFzaA=='),
    'short salt/hash',
  );
  t.notOk(await verifyPassword('a', 'plain'));
  t.not(await hashPassword('same', fast), await hashPassword('same', fast), 'salted');
});

t.test('password policy', async (t) => {
  t.match(passwordProblem('short'), /at least 12/);
  t.match(passwordProblem('x'.repeat(257)), /at most/);
  t.match(passwordProblem('Password1234'), /commonly used/);
  t.match(passwordProblem('abababababab'), /too few/);
  t.match(passwordProblem('abcdefghijklmn'), /commonly used|run/);
  t.match(passwordProblem('98765432109876'), /run/);
  t.equal(passwordProblem('violet tractor umbrella 42'), null);
});

t.test('failure throttle grows, caps, forgets and is bounded', async (t) => {
  let now = 1_000_000;
  const th = new FailureThrottle({
    now: () => now,
    freeFailures: 2,
    baseDelayMs: 1000,
    maxDelayMs: 8000,
    maxEntries: 3,
  });
  t.same(th.check('a'), { allowed: true });
  th.fail('a');
  t.same(th.check('a'), { allowed: true });
  th.fail('a');
  t.same(th.check('a'), { allowed: false, retryAfterMs: 1000 });
  now += 1000;
  t.same(th.check('a'), { allowed: true });
  th.fail('a');
  t.same(th.check('a'), { allowed: false, retryAfterMs: 2000 });
  t.same(
    [0, 1, 2, 3, 4, 5, 40].map((n) => th.delayFor(n)),
    [0, 0, 1000, 2000, 4000, 8000, 8000],
  );
  th.succeed('a');
  t.equal(th.failures('a'), 0);
  for (const k of ['b', 'c', 'd', 'e']) th.fail(k);
  t.equal(th.size, 3, 'oldest dropped');
  t.equal(th.failures('b'), 0);
  now += 2 * 3600_000;
  t.equal(th.failures('e'), 0, 'forgotten after an hour');
});

t.test('sessions expire when idle or old, are capped, and can be cleared', async (t) => {
  let now = 0;
  const s = new SessionStore({ now: () => now, idleMs: 100, maxAgeMs: 1000, maxSessions: 2 });
  const a = s.create();
  t.match(a, /^[A-Za-z0-9_-]{43}$/);
  t.ok(s.touch(a));
  now = 150;
  t.notOk(s.touch(a), 'idle');
  const b = s.create();
  for (let i = 0; i < 12; i++) {
    now += 90;
    t.equal(s.touch(b), now - 150 <= 1000);
  }
  const c = s.create();
  s.create();
  s.create();
  t.equal(s.size, 2);
  t.notOk(s.has(c));
  s.clear();
  t.equal(s.size, 0);
  t.notOk(s.touch(undefined));
  s.delete(null);
});

t.test('Host header parsing and allowlist', async (t) => {
  t.equal(hostOfHeader('10.42.0.1'), '10.42.0.1');
  t.equal(hostOfHeader('OnionBox.LAN.:8080'), 'onionbox.lan');
  t.equal(hostOfHeader('[::1]:80'), '[::1]');
  for (const bad of [
    undefined,
    '',
    'a b',
    'x:1:2',
    'evil.com:80x',
    '[::1',
    '[::1]x',
    'h\r\nX: y',
    'a'.repeat(300),
    ':80',
  ]) {
    t.equal(hostOfHeader(bad), null, String(bad));
  }
  const prod = allowedHosts({ lanAddress: '10.42.0.1', hostname: 'onionbox.lan', simulate: false });
  t.ok(hostAllowed('10.42.0.1:80', prod));
  t.ok(hostAllowed('onionbox.lan', prod));
  t.notOk(hostAllowed('127.0.0.1', prod), 'loopback only in the simulator');
  t.notOk(hostAllowed('attacker.example', prod));
  t.notOk(hostAllowed('onionbox.lan.attacker.example', prod));
  const sim = allowedHosts({
    lanAddress: '10.42.0.1',
    hostname: 'onionbox.lan',
    simulate: true,
    extra: ['Box.Test'],
  });
  t.ok(hostAllowed('localhost:8080', sim));
  t.ok(hostAllowed('box.test', sim));
});

t.test('bridge form: lines split, validated by the store schema, field-level messages', async (t) => {
  const cfg = defaultConfig();
  t.same(splitBridgeLines('Bridge obfs4 192.0.2.1:443 AB\r\n\n# note\n  snowflake 192.0.2.3:80 CD  '), [
    'obfs4 192.0.2.1:443 AB',
    'snowflake 192.0.2.3:80 CD',
  ]);
  const ok = checkBridges(cfg, {
    useBridges: true,
    bridges: BRIDGE,
  });
  t.ok(ok.ok);
  if (ok.ok) t.same(ok.value.bridges, [BRIDGE]);
  const ctl = checkBridges(cfg, {
    useBridges: true,
    bridges: `${BRIDGE}\nbad\u0007line`,
  });
  t.notOk(ctl.ok);
  if (!ctl.ok) t.match(ctl.errors.bridges, /Line 2/);
  const none = checkBridges(cfg, { useBridges: true, bridges: '' });
  t.notOk(none.ok);
  if (!none.ok) t.match(none.errors.bridges, /at least one|no bridge line/);
  const many = checkBridges(cfg, {
    useBridges: true,
    bridges: Array(33).fill('obfs4 x').join('\n'),
  });
  t.notOk(many.ok);
  if (!many.ok) t.match(many.errors.bridges, /32/);
  const huge = checkBridges(cfg, { useBridges: true, bridges: 'x'.repeat(50_000) });
  t.notOk(huge.ok);
  const legacy = checkBridges(cfg, { useBridges: true, bridges: '' });
  t.notOk(legacy.ok, 'no built-in bridge stands in for missing lines (issue 21)');
});

t.test('exit countries form', async (t) => {
  const cfg = defaultConfig();
  t.same(splitCountries('DE, nl;{ch}  '), ['de', 'nl', 'ch']);
  const ok = checkExits(cfg, { exitNodes: 'de nl', excludeExitNodes: 'us', strictNodes: true });
  t.ok(ok.ok);
  if (ok.ok)
    t.same(
      [ok.value.exitNodes, ok.value.excludeExitNodes, ok.value.strictNodes],
      [['de', 'nl'], ['us'], true],
    );
  const bad = checkExits(cfg, { exitNodes: 'de germany', excludeExitNodes: '', strictNodes: false });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.errors.exitNodes, /"germany" is not a two-letter country code/);
  const dup = checkExits(cfg, { exitNodes: 'de de', excludeExitNodes: '', strictNodes: false });
  if (!dup.ok) t.match(dup.errors.exitNodes, /twice/);
  else t.fail('duplicates accepted');
  const both = checkExits(cfg, { exitNodes: 'de', excludeExitNodes: 'de', strictNodes: false });
  if (!both.ok) t.match(both.errors.excludeExitNodes, /both|also in/);
  else t.fail('overlap accepted');
  t.notOk(checkExits(cfg, { exitNodes: 'x'.repeat(3000), excludeExitNodes: '', strictNodes: false }).ok);
});

t.test('problem paths name form fields: one mapping for every page area', async (t) => {
  const problems = {
    '/tor/bridges/3': 'bad line',
    '/tor/bridges': 'too many',
    '/tor/exitNodes': 'unique',
    '/web/port': 'out of range',
  };
  t.same(fieldErrors(problems, { section: 'tor' }), {
    bridges: 'bad line',
    exitNodes: 'unique',
    form: 'out of range',
  });
  const seen: unknown[] = [];
  const explain = (m: string, at: unknown) => {
    seen.push(at);
    return m;
  };
  fieldErrors(problems, { section: 'tor', explain });
  t.same(seen, [{ name: 'bridges', index: 3 }, { name: 'exitNodes' }, { name: 'form' }]);
  t.same(fieldErrors({ ssid: 'too long', '/network/accessPoint/passphrase': 'too short' }), {
    ssid: 'too long',
    passphrase: 'too short',
  });
});

t.test('a new password and its confirmation: one check for the claim and the change', async (t) => {
  const good = 'lantern quietly under seven maples';
  t.same(newPasswordErrors(good, good), {});
  t.ok(newPasswordErrors('short', 'short').password);
  t.same(newPasswordErrors(good, `${good}!`), { confirm: 'The two passwords differ.' });
  t.same(newPasswordErrors(good, `${good}!`, 'old one'), { confirm: 'The two new passwords differ.' });
  t.same(newPasswordErrors(good, good, good), {
    password: 'The new password is the same as the current one.',
  });
  t.same(newPasswordErrors(good, good, 'old one'), {});
});

t.test('clock form', async (t) => {
  const ms = Date.UTC(2026, 10, 29, 1, 2);
  t.same(checkClock({ epochMs: String(ms) }), { ok: true, value: ms });
  t.same(checkClock({ clock: '2026-11-29 01:02' }), { ok: true, value: ms });
  t.same(checkClock({ clock: '2026-11-29T01:02:00' }), { ok: true, value: ms });
  t.equal(formatClockInput(ms), '2026-11-29 01:02');
  for (const bad of [
    { clock: 'yesterday' },
    { clock: '2026-02-30 10:00' },
    { clock: '2026-01-01 25:00' },
    { clock: '1999-01-01 00:00' },
    { epochMs: '5' },
    {},
  ]) {
    t.notOk(checkClock(bad).ok, JSON.stringify(bad));
  }
  t.equal(field({ a: ['x', 'y'] }, 'a'), undefined, 'repeated fields are not strings');
  t.equal(field('nope', 'a'), undefined);
});

t.test('status in household words', async (t) => {
  const base = {
    state: 'connecting' as const,
    explanation: 'e',
    firewallMode: 'connecting' as const,
    tor: { phase: 'x', progress: 45.4, summary: 'Loading', ready: false, lastWarnings: ['w1'] },
    killSwitch: { hardware: false, software: false },
    uptimeSeconds: 3700,
    claimed: true,
    simulate: true,
    at: 0,
  };
  const v = describeStatus(base);
  t.equal(v.headline, 'Connecting to Tor: 45 %');
  t.equal(v.progress, 45);
  t.ok(v.transient);
  t.equal(v.uptime, '1 hour, 1 minute');
  t.equal(describeStatus({ ...base, state: 'routing' }).tone, 'ok');
  t.equal(describeStatus({ ...base, state: 'routing' }).progress, null);
  t.match(
    describeStatus({ ...base, state: 'killed', killSwitch: { hardware: true, software: false } }).headline,
    /switch on the box/,
  );
  t.match(
    describeStatus({ ...base, state: 'killed', killSwitch: { hardware: false, software: true } }).headline,
    /from this page/,
  );
  t.match(describeStatus({ ...base, state: 'tor-down' }).headline, /not running/);
  t.match(describeStatus({ ...base, state: 'error' }).headline, /wrong/);
  t.equal(describeStatus({ ...base, state: 'booting' }).headline, 'Starting up');
  t.same([5, 60, 7200, 90_000, 172_800].map(formatUptime), [
    '5 seconds',
    '1 minute',
    '2 hours, 0 minutes',
    '1 day, 1 hour',
    '2 days, 0 hours',
  ]);
  const circuits = describeCircuits(FAKE_CIRCUITS);
  t.equal(circuits.length, 1, 'only built circuits');
  t.equal(circuits[0]?.path, 'guardian (DE) → middleman (SE) → exitus (NL)');
  t.same(describeCounters({ udp: { packets: 3, bytes: 1 }, weird: { packets: 1, bytes: 1 } }), [
    { label: 'UDP packets (other than DNS)', packets: 3 },
    { label: 'weird', packets: 1 },
  ]);
});
