/**
 * Refreshing the built-in bridge lines over tor (issue 21): the pure parts (the answer checked line by
 * line, the stored file's schema, the schedule, what the assist uses, the status words) and the adapter
 * with an injected fetch and clock (the stored file written atomically, a corrupt one ignored).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { BUILTIN_BRIDGES } from '../../firmware/tor/builtin-bridges.js';
import {
  BUILTIN_FILE,
  builtinCounts,
  builtinFromAnswer,
  builtinLinesForAssist,
  builtinPageWords,
  builtinSummary,
  parseStoredBuiltin,
  REFRESH_INTERVAL_MS,
  RETRY_FIRST_MS,
  RETRY_MAX_MS,
  type RefreshState,
  refreshDecision,
  retryDelay,
  serializeBuiltin,
} from '../../firmware/tor/builtin-refresh.js';
import { BuiltinRefresher, moatBuiltinFetch } from '../../firmware/tor/builtin-refresher.js';
import { tmpDir } from '../helpers/tmp.js';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const OBFS4 = `obfs4 198.18.0.17:4430 ${FP} cert=AAAABBBBCCCC iat-mode=0`;
const OBFS4_B = `obfs4 198.18.0.19:443 ${FP} cert=DDDDEEEE iat-mode=1`;
const SNOW = `snowflake 192.0.2.3:80 ${FP} fingerprint=${FP} url=https://broker.example/ fronts=a.example`;
const T0 = new Date('2026-12-07T10:00:00.000Z');
const quiet = pino({ level: 'silent' });

t.test('an answer: every line through the grammar, bad ones dropped and counted', async (t) => {
  const text = JSON.stringify({
    obfs4: [OBFS4, 'obfs4 not-a-line', OBFS4_B, SNOW],
    snowflake: [SNOW],
    meek_lite: ['meek_lite 192.0.2.2:2 url=https://x.example/ front=y.example'],
  });
  const { stored, dropped } = builtinFromAnswer(text, T0);
  t.same(stored.lines, { obfs4: [OBFS4, OBFS4_B], snowflake: [SNOW] }, 'good lines kept, per transport');
  t.equal(stored.refreshedAt.toISOString(), T0.toISOString());
  t.equal(dropped.length, 2, 'the bad line and the snowflake line under obfs4');
  t.match(dropped.join('\n'), /obfs4\/1/);
  t.match(dropped.join('\n'), /a snowflake line in a obfs4 setting/);
});

t.test('an answer that is not an answer changes nothing: a clear error', async (t) => {
  for (const [why, text] of [
    ['not JSON', '<html>'],
    ['settings', JSON.stringify({ settings: [] })],
    ['errors', JSON.stringify({ errors: [{ code: 404 }] })],
    ['a list', JSON.stringify([OBFS4])],
    ['no usable obfs4 line', JSON.stringify({ obfs4: ['obfs4 broken'], snowflake: [SNOW] })],
    ['no obfs4 at all', JSON.stringify({ snowflake: [SNOW] })],
  ] as const) {
    t.throws(() => builtinFromAnswer(text, T0), { code: 'OBX_ERR_TOR_BUILTIN_REFRESH_FAILED' }, why);
  }
});

t.test('the stored file: round trip; corrupt or hand-edited files refused', async (t) => {
  const s = { refreshedAt: T0, lines: { obfs4: [OBFS4], snowflake: [SNOW] } };
  t.same(parseStoredBuiltin(serializeBuiltin(s)), s, 'round trip');
  const good = JSON.parse(serializeBuiltin(s)) as Record<string, unknown>;
  for (const [why, doc] of [
    ['truncated', serializeBuiltin(s).slice(0, 40)],
    ['unknown version', JSON.stringify({ ...good, version: 2 })],
    ['extra key', JSON.stringify({ ...good, owner: true })],
    ['bad date', JSON.stringify({ ...good, refreshedAt: 'yesterday' })],
    ['bad line', JSON.stringify({ ...good, lines: { obfs4: ['obfs4 1.2.3.4:1 nope'] } })],
    ['wrong transport', JSON.stringify({ ...good, lines: { obfs4: [OBFS4], snowflake: [OBFS4] } })],
    ['no obfs4', JSON.stringify({ ...good, lines: { snowflake: [SNOW] } })],
    ['transport not kept', JSON.stringify({ ...good, lines: { obfs4: [OBFS4], meek_lite: [OBFS4] } })],
  ] as const) {
    t.throws(() => parseStoredBuiltin(doc), { code: 'OBX_ERR_TOR_BUILTIN_STORE_INVALID' }, why);
  }
});

t.test('the schedule: after each boot once routing, then daily, backoff after failures', async (t) => {
  const base: RefreshState = {
    routing: true,
    lastSuccess: null,
    lastAttempt: null,
    failures: 0,
    doneThisBoot: false,
  };
  const later = (ms: number) => new Date(T0.getTime() + ms);
  t.same(refreshDecision({ ...base, routing: false }, T0), { due: false, at: null }, 'never before routing');
  t.same(refreshDecision(base, T0), { due: true }, 'first routing of a boot, nothing stored');
  t.same(
    refreshDecision({ ...base, lastSuccess: later(-60_000) }, T0),
    { due: true },
    'after each boot, even with fresh stored lines',
  );
  const done = { ...base, lastSuccess: T0, lastAttempt: T0, doneThisBoot: true };
  t.same(refreshDecision(done, later(60_000)), { due: false, at: later(REFRESH_INTERVAL_MS) }, 'a day later');
  t.same(refreshDecision(done, later(REFRESH_INTERVAL_MS)), { due: true }, 'due after a day');
  t.same(
    refreshDecision({ ...done, routing: false }, later(REFRESH_INTERVAL_MS)),
    { due: false, at: null },
    'not while tor does not route',
  );
  const failed = { ...base, lastAttempt: T0, failures: 1 };
  t.same(refreshDecision(failed, later(1000)), { due: false, at: later(RETRY_FIRST_MS) }, 'first retry');
  t.same(refreshDecision(failed, later(RETRY_FIRST_MS)), { due: true });
  t.same(
    refreshDecision({ ...failed, failures: 3 }, later(1000)),
    { due: false, at: later(4 * RETRY_FIRST_MS) },
    'doubling',
  );
  t.equal(retryDelay(0), 0);
  t.equal(retryDelay(50), RETRY_MAX_MS, 'capped');
  // the stored date lies ahead (the clock was wrong when it was written): a day from this boot's attempt
  const ahead = { ...done, lastSuccess: later(10 * REFRESH_INTERVAL_MS), lastAttempt: T0 };
  t.same(refreshDecision(ahead, later(1000)), { due: false, at: later(REFRESH_INTERVAL_MS) });
});

t.test("what the assist uses: the test network's lines, else the stored, else the release's", async (t) => {
  const stored = { refreshedAt: T0, lines: { obfs4: [OBFS4_B], snowflake: [SNOW] } };
  t.same(builtinLinesForAssist([OBFS4], stored), [OBFS4], "a test network's own lines win");
  t.same(builtinLinesForAssist(undefined, stored), [OBFS4_B, SNOW], 'the refreshed lines');
  t.equal(builtinLinesForAssist(undefined, null), undefined, "none stored: the release's");
});

t.test('the status words: when refreshed, how many per transport', async (t) => {
  t.same(builtinCounts(null), {
    obfs4: BUILTIN_BRIDGES.obfs4.length,
    snowflake: BUILTIN_BRIDGES.snowflake.length,
  });
  t.match(builtinSummary(null), /^the release's \(obfs4 \d+, snowflake 2\), not refreshed over Tor yet$/);
  const stored = { refreshedAt: T0, lines: { obfs4: [OBFS4, OBFS4_B] } };
  t.equal(builtinSummary(stored), 'refreshed over Tor 2026-12-07T10:00:00.000Z (obfs4 2)');
  t.match(builtinSummary(stored, 'OBX_ERR_X: y'), /; last refresh failed: OBX_ERR_X: y$/);
  // the settings page's sentence: minutes, the count first, no error code
  t.match(
    builtinPageWords(null),
    /^Built-in bridges in use: the ones this software came with \(\d+ obfs4, 2 snowflake\); not refreshed through Tor yet\.$/,
  );
  t.equal(
    builtinPageWords(stored),
    'Built-in bridges in use: refreshed through Tor on 2026-12-07 10:00 UTC (2 obfs4).',
  );
  const failed = builtinPageWords(stored, 'OBX_ERR_X: y');
  t.match(failed, /\(2 obfs4\)\. The last refresh did not work; the box tries again later\.$/);
  t.notMatch(failed, /OBX_ERR/, 'no error code for a household');
});

t.test('the adapter: waits for routing, stores atomically, keeps the lines on failure', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, BUILTIN_FILE);
  let now = T0;
  let routing = false;
  let answer: () => Promise<string> = async () => JSON.stringify({ obfs4: [OBFS4_B, 'obfs4 bad'] });
  let fetches = 0;
  const events: string[] = [];
  const r = new BuiltinRefresher({
    file,
    fetch: () => {
      fetches += 1;
      return answer();
    },
    routing: () => routing,
    now: () => now,
    changed: (l) => events.push(l),
    statusChanged: () => words.push(r.status().pageWords),
    log: quiet,
  });
  const words: string[] = [];
  t.teardown(() => r.stop());
  await r.start();
  t.equal(fetches, 0, 'nothing fetched before routing');
  t.match(words, [/the ones this software came with/], 'the page hears the source at start');
  t.equal(r.status().source, 'release');
  routing = true;
  await r.refresh();
  t.equal(fetches, 1);
  t.same(parseStoredBuiltin(readFileSync(file, 'utf8')).lines, { obfs4: [OBFS4_B] }, 'stored');
  t.equal((await import('node:fs')).statSync(file).mode & 0o777, 0o600);
  t.same(readdirSync(dir), [BUILTIN_FILE], 'no temporary file left');
  t.same(r.status().counts, { obfs4: 1 });
  t.equal(r.status().refreshedAt, T0.toISOString());
  t.match(events[0], /refreshed over tor: refreshed over Tor 2026-12-07T10:00:00.000Z \(obfs4 1\)/);

  // a failure keeps what is stored and says why
  now = new Date(T0.getTime() + REFRESH_INTERVAL_MS);
  answer = async () => JSON.stringify({ settings: [] });
  await r.refresh();
  t.same(r.current()?.lines, { obfs4: [OBFS4_B] }, 'the stored lines stay');
  t.same(parseStoredBuiltin(readFileSync(file, 'utf8')).lines, { obfs4: [OBFS4_B] }, 'the file too');
  t.match(r.status().lastError, /OBX_ERR_TOR_BUILTIN_REFRESH_FAILED/);
  t.match(r.status().summary, /last refresh failed/);
  t.match(
    words,
    [/came with/, /refreshed through Tor on 2026-12-07 10:00 UTC \(1 obfs4\)\.$/, /did not work/],
    'and after each refresh, worked or not',
  );
  await r.stop();

  // the next boot reads the stored file
  const next = new BuiltinRefresher({ file, fetch: answer, routing: () => false, log: quiet });
  await next.start();
  t.same(next.current()?.lines, { obfs4: [OBFS4_B] }, 'read back at start');
  await next.stop();
});

t.test('no Moat to ask (a test network without one): nothing fetched, the stored lines used', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, BUILTIN_FILE);
  writeFileSync(file, serializeBuiltin(builtinFromAnswer(JSON.stringify({ obfs4: [OBFS4_B] }), T0).stored));
  const logged: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void logged.push(s) });
  const r = new BuiltinRefresher({ file, fetch: null, routing: () => true, log });
  t.teardown(() => r.stop());
  await r.start();
  r.poke();
  t.same(r.current()?.lines, { obfs4: [OBFS4_B] }, 'the stored lines are used');
  t.equal(r.status().nextAt, null, 'no refresh planned');
  t.equal(logged.filter((l) => /no Moat to ask/.test(l)).length, 1, 'said once, at start');
  await r.refresh();
  t.match(
    r.status().lastError,
    /OBX_ERR_TOR_BUILTIN_REFRESH_FAILED.*no Moat/,
    'a refresh asked for says why',
  );
  t.same(parseStoredBuiltin(readFileSync(file, 'utf8')).lines, { obfs4: [OBFS4_B] }, 'the file unchanged');
});

t.test('the adapter: poke refreshes once routing; a corrupt file at start is ignored', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, BUILTIN_FILE);
  writeFileSync(file, '{"version":1,"refreshedAt":"2026-');
  const logged: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void logged.push(s) });
  let routing = false;
  let fetched: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    fetched = resolve;
  });
  const r = new BuiltinRefresher({
    file,
    fetch: async () => {
      fetched();
      return JSON.stringify({ obfs4: [OBFS4] });
    },
    routing: () => routing,
    now: () => T0,
    log,
  });
  t.teardown(() => r.stop());
  await r.start();
  t.equal(r.current(), null, "the corrupt file ignored: the release's lines");
  t.match(logged.join(''), /OBX_ERR_TOR_BUILTIN_STORE_INVALID.*stored file ignored/);
  routing = true;
  r.poke();
  await done;
  await r.stop();
  t.same(r.current()?.lines, { obfs4: [OBFS4] }, 'refreshed once routing');
});

t.test('the fetcher: GET {service}/circumvention/builtin over the injected connection', async (t) => {
  const { createServer } = await import('node:http');
  const { connect } = await import('node:net');
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.host}`);
    res.end(JSON.stringify({ obfs4: [OBFS4] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as import('node:net').AddressInfo).port;
  const via: string[] = [];
  const fetch = moatBuiltinFetch(
    { service: 'https://moat.example/moat', url: 'https://m.example/', front: 'f.example' },
    async (url) => {
      via.push(url.href);
      return connect(port, '127.0.0.1');
    },
  );
  t.same(JSON.parse(await fetch()), { obfs4: [OBFS4] });
  t.same(via, ['https://moat.example/moat/circumvention/builtin'], 'through the injected Connect only');
  t.same(seen, ['GET /moat/circumvention/builtin moat.example']);
  const failing = moatBuiltinFetch(
    { service: 'https://moat.example/moat', url: 'https://m.example/', front: 'f.example' },
    async () => {
      throw new Error('SOCKS refused');
    },
  );
  await t.rejects(failing(), { code: 'OBX_ERR_TOR_BUILTIN_REFRESH_FAILED' });
});
