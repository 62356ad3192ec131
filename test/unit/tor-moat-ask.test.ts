/**
 * Asking Moat across the privilege split (issue 21): the job onionboxd writes and the unit checks, the
 * answer the unit writes and onionboxd checks, what an answer gives the try-list (settings for the
 * country, then the defaults), and the firewall window held open exactly while onionboxd waits.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { MOAT_ENDPOINT } from '../../firmware/tor/moat.js';
import {
  askMoat,
  assistJob,
  type MoatJobAnswer,
  moatParts,
  parseMoatJob,
  parseMoatJobAnswer,
} from '../../firmware/tor/moat-ask.js';
import { tmpDir } from '../helpers/tmp.js';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const A = `obfs4 198.18.0.17:4430 ${FP} cert=AAAABBBB iat-mode=0`;
const B = `obfs4 198.18.0.19:443 ${FP} cert=CCCCDDDD iat-mode=0`;
const settingsOf = (...lines: string[]) =>
  JSON.stringify({ settings: [{ bridges: { type: 'obfs4', source: 'bridgedb', bridge_strings: lines } }] });

t.test('the job: settings (with the country when chosen), then defaults; checked by the unit', async (t) => {
  const job = assistJob(MOAT_ENDPOINT, 'ru');
  t.match(job.id, /^[0-9a-f]{32}$/);
  t.same(job.requests, [{ kind: 'settings', country: 'ru' }, { kind: 'defaults' }]);
  t.same(assistJob(MOAT_ENDPOINT).requests, [{ kind: 'settings' }, { kind: 'defaults' }]);
  t.same(parseMoatJob(JSON.stringify(job)), job);
  const bad: [string, RegExp][] = [
    ['x', /not JSON/],
    [JSON.stringify({ ...job, id: 'x' }), /\/id/],
    [JSON.stringify({ ...job, requests: [] }), /\/requests/],
    [JSON.stringify({ ...job, requests: [{ kind: 'map' }] }), /\/requests/],
    [JSON.stringify({ ...job, extra: 1 }), /moat job/],
    [
      JSON.stringify({ ...job, endpoint: { ...job.endpoint, front: 'a b' } }),
      /moat front must be a host name/,
    ],
    [
      JSON.stringify({ ...job, endpoint: { ...job.endpoint, url: 'http://x/' } }),
      /moat url must be an https/,
    ],
  ];
  for (const [text, re] of bad)
    t.throws(() => parseMoatJob(text), { code: 'OBX_ERR_TOR_VALUE_INVALID', message: re }, text.slice(0, 50));
});

t.test('the answer: only the one to this job, in its schema', async (t) => {
  const id = 'a'.repeat(32);
  const answer: MoatJobAnswer = { id, results: [{ kind: 'settings', status: 200, body: '{}' }] };
  t.same(parseMoatJobAnswer(JSON.stringify(answer), id), answer);
  t.equal(parseMoatJobAnswer(JSON.stringify(answer), 'b'.repeat(32)), null, 'an older job');
  t.equal(parseMoatJobAnswer('{"id":', id), null, 'half written');
  t.equal(parseMoatJobAnswer(JSON.stringify({ ...answer, more: 1 }), id), null);
});

t.test('what an answer gives: the country first, the defaults second; failures only as notes', async (t) => {
  const id = 'a'.repeat(32);
  const both = moatParts({
    id,
    results: [
      { kind: 'settings', status: 200, body: settingsOf(A) },
      { kind: 'defaults', status: 200, body: settingsOf(B, A) },
    ],
  });
  t.same(both.country, [{ transport: 'obfs4', lines: [A] }]);
  t.same(both.defaults, [{ transport: 'obfs4', lines: [B, A] }]);
  t.same(both.notes, []);
  const failed = moatParts({
    id,
    results: [
      { kind: 'settings', status: 200, body: '{"errors":[{"code":404,"detail":"no"}]}' },
      { kind: 'defaults', status: 502, body: 'bad gateway' },
    ],
  });
  t.same([failed.country, failed.defaults], [[], []]);
  t.same(failed.notes, ['settings: Moat says 404', 'defaults: HTTP 502']);
  const broken = moatParts({
    id,
    results: [
      { kind: 'settings', error: 'meek_lite: connection refused' },
      { kind: 'defaults', status: 200, body: '{"settings":[{"bridges":{"type":"obfs4"}}]}' },
    ],
  });
  t.same([broken.country, broken.defaults], [[], []]);
  t.match(broken.notes[0], /settings: meek_lite: connection refused/);
  t.match(broken.notes[1], /defaults: Moat's answer was refused/);
  const builtin = moatParts(
    {
      id,
      results: [
        {
          kind: 'settings',
          status: 200,
          body: '{"settings":[{"bridges":{"type":"obfs4","source":"builtin"}}]}',
        },
      ],
    },
    () => [B],
  );
  t.same(builtin.country, [{ transport: 'obfs4', lines: [B] }], 'Moat\'s "your built-in lines"');
});

t.test(
  'askMoat: the window opens before the job is written and closes after the answer (or none)',
  async (t) => {
    const dir = tmpDir(t);
    const jobFile = join(dir, 'moat', 'job.json');
    const answerFile = join(dir, 'run', 'answer.json');
    mkdirSync(join(dir, 'run'));
    const events: string[] = [];
    const job = assistJob(MOAT_ENDPOINT);
    writeFileSync(answerFile, JSON.stringify({ id: 'b'.repeat(32), results: [] }), 'utf8');
    const pending = askMoat(job, {
      jobFile,
      answerFile,
      pollMs: 10,
      window: async (open) => {
        events.push(open ? 'open' : 'close');
      },
    });
    // the unit: sees the job, answers it
    while (!existsSync(jobFile)) await new Promise((r) => setTimeout(r, 10));
    t.same(events, ['open'], 'open before the job is there, and while waiting');
    const seen = parseMoatJob(readFileSync(jobFile, 'utf8'));
    t.equal(seen.id, job.id, 'the job as written');
    writeFileSync(
      answerFile,
      JSON.stringify({ id: seen.id, results: [{ kind: 'settings', status: 200, body: '{}' }] }),
    );
    const answer = await pending;
    t.equal(answer.id, job.id);
    t.same(events, ['open', 'close']);

    events.length = 0;
    await t.rejects(
      askMoat(assistJob(MOAT_ENDPOINT), {
        jobFile,
        answerFile,
        pollMs: 10,
        timeoutMs: 60,
        window: async (open) => {
          events.push(open ? 'open' : 'close');
        },
      }),
      { code: 'OBX_ERR_TOR_MOAT_FAILED' },
    );
    t.same(events, ['open', 'close'], 'no answer: closed all the same');

    events.length = 0;
    const stop = new AbortController();
    const waiting = askMoat(assistJob(MOAT_ENDPOINT), {
      jobFile,
      answerFile,
      pollMs: 10,
      signal: stop.signal,
      window: async (open) => {
        events.push(open ? 'open' : 'close');
      },
    });
    stop.abort();
    await t.rejects(
      waiting,
      { code: 'OBX_ERR_TOR_MOAT_FAILED', message: /stopped/ },
      'stopping ends the wait',
    );
    t.same(events, ['open', 'close'], 'and closes the window');
  },
);
