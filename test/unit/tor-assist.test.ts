/**
 * Connection assist (firmware/tor/assist.ts): every diagnosis, the try-list's order, one timeout per
 * candidate, the first that reaches routing kept, the owner's bridges never replaced without the owner's
 * word, and the words for the page and the OLED. Generated event sequences check the invariants.
 */
import fc from 'fast-check';
import t from 'tap';
import {
  type AssistEvent,
  type AssistState,
  assistEventOf,
  assistOledLine,
  type Candidate,
  describeAssist,
  initialAssist,
  STALL_MS,
  stepAssist,
  TRY_MS,
  tryList,
} from '../../firmware/tor/assist.js';
import { builtinCandidates } from '../../firmware/tor/builtin-bridges.js';
import { parseBridgeLine } from '../../firmware/tor/grammar.js';
import { parseEvent, parseTranscript } from '../../firmware/tor/protocol.js';

const OBFS = { transport: 'obfs4', lines: ['obfs4 203.0.113.1:443 A cert=x'] };
const SNOW = { transport: 'snowflake', lines: ['snowflake 192.0.2.3:80 B'] };
const MEEK = { transport: 'meek_lite', lines: ['meek_lite 192.0.2.2:80 C url=https://m/'] };

function run(events: AssistEvent[], from: AssistState = initialAssist()) {
  let state = from;
  const actions: string[] = [];
  for (const ev of events) {
    const r = stepAssist(state, ev);
    state = r.state;
    for (const a of r.actions)
      actions.push(
        a.kind === 'use-bridges'
          ? `use ${a.candidate.transport} ${a.attempt}/${a.of}`
          : a.kind === 'keep'
            ? `keep ${a.candidate.transport}`
            : a.kind,
      );
  }
  return { state, actions };
}

const start = (ownBridges = false, blockedHere = false): AssistEvent => ({
  type: 'start',
  at: 0,
  ownBridges,
  blockedHere,
});
const boot = (
  at: number,
  progress: number,
  extra: Partial<Extract<AssistEvent, { type: 'bootstrap' }>> = {},
): AssistEvent => ({
  type: 'bootstrap',
  at,
  progress,
  severity: 'NOTICE',
  ...extra,
});

t.test('the try-list: country, then defaults, then built-in; each setting once', async (t) => {
  const list = tryList({
    country: [SNOW],
    defaults: [OBFS, SNOW],
    builtin: [MEEK, OBFS, { transport: 'x', lines: [] }],
  });
  t.same(
    list.map((c) => `${c.source} ${c.transport}`),
    ['moat-country snowflake', 'moat-defaults obfs4', 'builtin meek_lite'],
  );
  t.same(tryList({}), []);
});

t.test('a direct connection: connecting, then connected', async (t) => {
  const r = run([start(), boot(1000, 10), boot(2000, 50), boot(3000, 100)]);
  t.equal(r.state.phase, 'connected');
  t.equal(r.state.via, 'direct');
  t.same(r.actions, []);
  t.equal(describeAssist(r.state), 'Connected to Tor.');
  t.equal(assistOledLine(r.state), 'tor ok');
});

t.test('no network: no link, no lease, or NOROUTE; back when the network is', async (t) => {
  t.equal(run([start(), { type: 'network', at: 1, link: false, lease: false }]).state.phase, 'no-network');
  t.equal(run([start(), { type: 'network', at: 1, link: true, lease: false }]).state.phase, 'no-network');
  const noroute = run([start(), boot(5, 5, { severity: 'WARN', reason: 'NOROUTE', recommendation: 'warn' })]);
  t.equal(noroute.state.phase, 'no-network');
  t.match(describeAssist(noroute.state), /No network: check the cable/);
  const back = run([{ type: 'network', at: 10, link: true, lease: true }], noroute.state);
  t.equal(back.state.phase, 'connecting', 'the network is back: tor connects again');
  const startedDown = run([{ type: 'network', at: 0, link: false, lease: false }, start()]);
  t.equal(startedDown.state.phase, 'no-network', 'a start without a network says so at once');
});

t.test('clock wrong: CLOCK_SKEW, then the owner sets the clock and tor retries', async (t) => {
  const r = run([start(), boot(1, 10), { type: 'clock-skew', at: 2 }]);
  t.equal(r.state.phase, 'clock-wrong');
  t.match(describeAssist(r.state), /clock is wrong/);
  t.equal(assistOledLine(r.state), 'clock wrong: fixing');
  t.equal(run([{ type: 'clock-set', at: 3 }], r.state).state.phase, 'connecting');
  t.equal(
    run([{ type: 'clock-set', at: 3 }], initialAssist()).state.phase,
    'connecting',
    'no effect otherwise',
  );
  t.equal(
    run([start(), boot(1, 100), { type: 'clock-skew', at: 2 }]).state.phase,
    'connected',
    'connected stays',
  );
});

t.test('a warning (not "ignore") or a stall makes the box check the internet', async (t) => {
  const warned = run([start(), boot(1, 5, { severity: 'WARN', reason: 'TIMEOUT', recommendation: 'warn' })]);
  t.equal(warned.state.phase, 'checking');
  t.same(warned.actions, ['probe-internet']);
  const ignored = run([
    start(),
    boot(1, 5, { severity: 'WARN', reason: 'CONNECTREFUSED', recommendation: 'ignore' }),
  ]);
  t.equal(ignored.state.phase, 'connecting', 'RECOMMENDATION=ignore is not an error');
  const moving = run([start(), boot(STALL_MS - 1, 10), { type: 'tick', at: STALL_MS + 10 }]);
  t.equal(moving.state.phase, 'connecting', 'progress moved within the window');
  const stalled = run([
    start(),
    boot(1000, 10),
    { type: 'tick', at: 1000 + STALL_MS - 1 },
    { type: 'tick', at: 1000 + STALL_MS },
  ]);
  t.equal(stalled.state.phase, 'checking');
  t.same(stalled.actions, ['probe-internet']);
  const same = run([start(), boot(1000, 10), boot(50_000, 10), { type: 'tick', at: 1000 + STALL_MS }]);
  t.equal(same.state.phase, 'checking', 'the same progress again is no progress');
});

t.test('routing lost later: connecting again, and a stall is noticed again', async (t) => {
  const connected = run([start(), boot(1000, 100)]);
  t.equal(connected.state.phase, 'connected');
  const lost = run([{ type: 'lost', at: 5000 }], connected.state);
  t.equal(lost.state.phase, 'connecting', 'no longer says "connected"');
  t.equal(describeAssist(lost.state), 'Connecting to Tor (0 %).');
  t.same(lost.actions, []);
  const before = run([{ type: 'tick', at: 5000 + STALL_MS - 1 }], lost.state);
  t.equal(before.state.phase, 'connecting');
  const stalled = run([{ type: 'tick', at: 5000 + STALL_MS }], lost.state);
  t.equal(stalled.state.phase, 'checking', 'no progress since the loss: the internet is checked');
  t.same(stalled.actions, ['probe-internet']);
  t.equal(run([boot(6000, 100)], lost.state).state.phase, 'connected', 'routing again');
  // through a bridge the box found: still that bridge once it routes again
  const found = tryList({ builtin: [OBFS] });
  const viaBridge = run([
    start(),
    boot(1, 5, { severity: 'WARN', reason: 'TIMEOUT' }),
    { type: 'internet', at: 2, answers: true },
    { type: 'candidates', at: 3, list: found },
    boot(4, 100),
    { type: 'lost', at: 5 },
    boot(6, 100),
  ]);
  t.equal(viaBridge.state.phase, 'connected');
  t.same(
    viaBridge.actions,
    ['probe-internet', 'fetch-candidates', 'use obfs4 1/1', 'keep obfs4'],
    'kept once',
  );
  t.equal(describeAssist(viaBridge.state), 'Connected through a obfs4 bridge the box found.');
  for (const phase of ['connecting', 'trying', 'blocked'] as const) {
    const s = { ...initialAssist(), phase };
    t.equal(run([{ type: 'lost', at: 9 }], s).state, s, `no effect while ${phase}`);
  }
});

t.test('offline: the internet does not answer either; checked again later', async (t) => {
  const r = run([
    start(),
    boot(1, 5, { severity: 'WARN', reason: 'TIMEOUT' }),
    { type: 'internet', at: 2, answers: false },
  ]);
  t.equal(r.state.phase, 'offline');
  t.equal(assistOledLine(r.state), 'offline');
  const again = run([{ type: 'tick', at: 2 + STALL_MS }], r.state);
  t.equal(again.state.phase, 'checking');
  t.same(again.actions, ['probe-internet']);
  t.equal(run([boot(3, 100)], r.state).state.phase, 'connected', 'tor may still get through');
});

t.test(
  'blocked without own bridges: candidates in order, one timeout each, the first that routes kept',
  async (t) => {
    const list = tryList({ country: [SNOW], defaults: [OBFS], builtin: [MEEK] });
    const blocked = run([
      start(),
      boot(1, 5, { severity: 'WARN', reason: 'TIMEOUT' }),
      { type: 'internet', at: 2, answers: true },
    ]);
    t.equal(blocked.state.phase, 'blocked');
    t.same(blocked.actions, ['probe-internet', 'fetch-candidates']);
    t.match(describeAssist(blocked.state), /seems to block Tor\. Looking for a bridge/);
    const r = run(
      [
        { type: 'candidates', at: 10, list },
        boot(20, 30),
        { type: 'tick', at: 10 + TRY_MS - 1 },
        { type: 'tick', at: 10 + TRY_MS }, // snowflake timed out
        boot(10 + TRY_MS + 5, 40, { severity: 'WARN', reason: 'NOROUTE' }), // stays trying
      ],
      blocked.state,
    );
    t.equal(r.state.phase, 'trying');
    t.equal(r.state.index, 1);
    t.same(r.actions, ['use snowflake 1/3', 'use obfs4 2/3']);
    t.equal(
      describeAssist(r.state),
      'Your internet provider seems to block Tor. Trying a bridge (2 of 3)...',
    );
    t.equal(assistOledLine(r.state), 'blocked: try 2/3');
    const kept = run([boot(10 + TRY_MS + 100, 100)], r.state);
    t.equal(kept.state.phase, 'connected');
    t.same(kept.actions, ['keep obfs4']);
    t.match(describeAssist(kept.state), /through a obfs4 bridge the box found/);
    t.equal(assistOledLine(kept.state), 'via obfs4');
  },
);

t.test('every candidate fails: exhausted, the previous settings restored', async (t) => {
  const list = tryList({ builtin: [SNOW, MEEK] });
  const r = run([
    start(false, true),
    { type: 'candidates', at: 1, list },
    { type: 'tick', at: 1 + TRY_MS },
    { type: 'tick', at: 1 + 2 * TRY_MS },
  ]);
  t.equal(r.state.phase, 'exhausted');
  t.same(r.actions, ['fetch-candidates', 'use snowflake 1/2', 'use meek_lite 2/2', 'restore']);
  t.match(describeAssist(r.state), /no bridge the box knows got through/);
  const none = run([start(false, true), { type: 'candidates', at: 1, list: [] }]);
  t.same(none.actions, ['fetch-candidates', 'restore'], 'an empty list: nothing to try');
});

t.test('"Tor is blocked here": the try-list first, no direct attempt', async (t) => {
  const r = run([start(false, true)]);
  t.equal(r.state.phase, 'blocked');
  t.same(r.actions, ['fetch-candidates']);
});

t.test("the owner's own bridges are never replaced without the owner's word", async (t) => {
  const blocked = run([
    start(true),
    boot(1, 5, { severity: 'WARN', reason: 'TIMEOUT' }),
    { type: 'internet', at: 2, answers: true },
  ]);
  t.equal(blocked.state.phase, 'blocked');
  t.same(blocked.actions, ['probe-internet'], 'nothing fetched, nothing used');
  t.match(describeAssist(blocked.state), /if you allow it/);
  t.equal(assistOledLine(blocked.state), 'blocked: see the page');
  const ignored = run([{ type: 'candidates', at: 3, list: tryList({ builtin: [OBFS] }) }], blocked.state);
  t.equal(ignored.state.phase, 'blocked', 'candidates arriving anyway are not used');
  t.same(ignored.actions, []);
  t.same(run([start(true, true)]).actions, [], '"blocked here" with own bridges: the owner bridges first');
  const consent = run(
    [
      { type: 'owner-consents', at: 4 },
      { type: 'candidates', at: 5, list: tryList({ builtin: [OBFS] }) },
    ],
    blocked.state,
  );
  t.same(consent.actions, ['fetch-candidates', 'use obfs4 1/1']);
  t.same(
    run([{ type: 'owner-consents', at: 4 }], initialAssist()).actions,
    [],
    'consent outside blocked: nothing',
  );
});

t.test('invariants over random event sequences', async (t) => {
  const cand = fc.constantFrom<Candidate[]>(
    tryList({ builtin: [OBFS] }),
    tryList({ country: [SNOW], builtin: [MEEK, OBFS] }),
    [],
  );
  const ev = fc.oneof(
    fc.record({ type: fc.constant('start' as const), ownBridges: fc.boolean(), blockedHere: fc.boolean() }),
    fc.record({ type: fc.constant('network' as const), link: fc.boolean(), lease: fc.boolean() }),
    fc.record({
      type: fc.constant('bootstrap' as const),
      progress: fc.integer({ min: 0, max: 100 }),
      severity: fc.constantFrom('NOTICE' as const, 'WARN' as const),
      reason: fc.constantFrom(undefined, 'NOROUTE', 'TIMEOUT', 'CONNECTREFUSED'),
      recommendation: fc.constantFrom(undefined, 'ignore', 'warn'),
    }),
    fc.record({
      type: fc.constantFrom(
        'clock-skew' as const,
        'clock-set' as const,
        'tick' as const,
        'owner-consents' as const,
        'lost' as const,
      ),
    }),
    fc.record({ type: fc.constant('internet' as const), answers: fc.boolean() }),
    fc.record({ type: fc.constant('candidates' as const), list: cand }),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(ev, fc.integer({ min: 0, max: 200_000 })), { maxLength: 40 }), (steps) => {
      let s = initialAssist();
      let now = 0;
      for (const [e, dt] of steps) {
        now += dt;
        const before = s;
        const r = stepAssist(s, { ...e, at: now } as AssistEvent);
        s = r.state;
        for (const a of r.actions) {
          // candidates are used only while trying, never while the owner's own bridges stand
          if (a.kind === 'use-bridges' && (s.phase !== 'trying' || s.ownBridges)) return false;
          if (a.kind === 'keep' && s.phase !== 'connected') return false;
          if (a.kind === 'fetch-candidates' && s.ownBridges) return false;
        }
        if (s.phase === 'trying' && s.candidates[s.index] === undefined) return false;
        if (assistOledLine(s).length > 21 || describeAssist(s) === '') return false;
        if (before.phase === 'connected' && e.type === 'tick' && s.phase !== 'connected') return false;
      }
      return true;
    }),
    { numRuns: 2000, seed: 21 },
  );
  t.pass('2000 random sequences hold the invariants');
});

t.test("tor's events as the assist's (control-spec STATUS_CLIENT / STATUS_GENERAL lines)", async (t) => {
  const ev = (line: string) => {
    const [reply] = parseTranscript(`${line}\r\n`);
    if (!reply) throw new Error('no reply');
    return assistEventOf(parseEvent(reply), 7);
  };
  t.same(ev('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay"'), {
    type: 'bootstrap',
    at: 7,
    progress: 10,
    severity: 'NOTICE',
    reason: undefined,
    recommendation: undefined,
  });
  t.same(
    ev(
      '650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="No route to host" REASON=NOROUTE COUNT=1 RECOMMENDATION=warn HOSTID="0123456789ABCDEF0123456789ABCDEF01234567" HOSTADDR="198.18.0.99:443"',
    ),
    { type: 'bootstrap', at: 7, progress: 5, severity: 'WARN', reason: 'NOROUTE', recommendation: 'warn' },
  );
  t.same(ev('650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-7200 SOURCE=OR:198.18.0.10:5000'), {
    type: 'clock-skew',
    at: 7,
  });
  t.equal(ev('650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED'), null);
  t.equal(ev('650 STATUS_GENERAL NOTICE BOOTSTRAP PROGRESS=5'), null, 'bootstrap is a client status');
  t.equal(ev('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=101'), null);
  t.equal(ev('650 CIRC 1 BUILT'), null);
  const noroute = ev(
    '650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn REASON=NOROUTE RECOMMENDATION=warn',
  );
  if (noroute) t.equal(stepAssist(initialAssist(), noroute).state.phase, 'no-network', 'fed straight in');
});

t.test('the built-in lines shipped with the release: every one parses; last on the try-list', async (t) => {
  const builtin = builtinCandidates();
  t.same(
    builtin.map((c) => [c.transport, c.lines.length]),
    [
      ['obfs4', 11],
      ['snowflake', 2],
    ],
  );
  for (const c of builtin)
    for (const l of c.lines) t.equal(parseBridgeLine(l).transport, c.transport, l.slice(0, 40));
  const list = tryList({ country: [SNOW], builtin });
  t.same(
    list.map((c) => `${c.source} ${c.transport}`),
    ['moat-country snowflake', 'builtin obfs4', 'builtin snowflake'],
  );
});

t.test(
  'a setting tor refuses is skipped at once; a stale refusal is ignored; skipped steps kept',
  async (t) => {
    const list = tryList({ builtin: [OBFS, SNOW] });
    const skipped = [{ step: 'moat' as const, reason: 'Moat is not built.' }];
    const r = run([start(false, true), { type: 'candidates', at: 1, list, skipped }]);
    t.same(r.state.skipped, skipped, 'the page can say which steps were left out, and why');
    const stale = run([{ type: 'try-failed', at: 2, index: 1 }], r.state);
    t.equal(stale.state.index, 0, 'a refusal of another attempt changes nothing');
    const next = run([{ type: 'try-failed', at: 2, index: 0 }], r.state);
    t.same(next.actions, ['use snowflake 2/2']);
    t.equal(next.state.since, 2, 'the next one gets its whole time');
    t.same(run([{ type: 'try-failed', at: 3, index: 1 }], next.state).actions, ['restore']);
  },
);
