import fc from 'fast-check';
import t from 'tap';
import {
  initialUpdateState,
  UPDATE_EDGES,
  type UpdateInput,
  type UpdatePhase,
  type UpdateState,
  updateAfter,
  updateStep,
} from '../../firmware/update/machine.js';

const start = initialUpdateState('1.0.0');
const journey: UpdateInput[] = [
  { type: 'check' },
  { type: 'found', version: '1.1.0' },
  { type: 'download' },
  { type: 'progress', done: 10, total: 100 },
  { type: 'downloaded' },
  { type: 'verified' },
  { type: 'install' },
  { type: 'installed' },
];

t.test('the happy path: idle to good, running becomes the new version only at routing', async (t) => {
  const phases: UpdatePhase[] = [];
  let s: UpdateState = start;
  for (const input of journey) {
    s = updateStep(s, input);
    phases.push(s.phase);
  }
  t.same(phases, [
    'checking',
    'available',
    'downloading',
    'downloading',
    'verifying',
    'ready',
    'installing',
    'trial-boot',
  ]);
  t.equal(s.running, '1.0.0', 'still the old version on trial');
  t.equal(updateAfter(start, journey.slice(0, 4)).progress?.done, 10);
  const good = updateStep(s, { type: 'routing' });
  t.equal(good.phase, 'good');
  t.equal(good.running, '1.1.0');
  t.same(good.failed, []);
  t.match(good.result, /1\.1\.0 reached Tor/);
  t.equal(updateStep(good, { type: 'dismiss' }).phase, 'idle');
  t.ok(Object.isFrozen(good));
});

t.test('a trial that does not reach routing falls back and the version is never offered again', async (t) => {
  const fell = updateAfter(start, [
    ...journey,
    { type: 'trial-failed', reason: 'did not reach Tor within 10 minutes' },
  ]);
  t.equal(fell.phase, 'fell-back');
  t.equal(fell.running, '1.0.0');
  t.same(fell.failed, ['1.1.0']);
  t.equal(fell.result, '1.1.0 did not reach Tor within 10 minutes; the box went back to 1.0.0');
  const again = updateAfter(fell, [{ type: 'check' }, { type: 'found', version: '1.1.0' }]);
  t.equal(again.phase, 'idle');
  t.match(again.result, /not retried/);
  t.same(updateAfter(fell, [{ type: 'check' }, { type: 'found', version: '1.1.1' }]).target, '1.1.1');
  t.same(initialUpdateState('1.0.0', ['1.1.0', '1.1.0']).failed, ['1.1.0']);
});

t.test(
  'table: each failure before the trial goes back to idle, the reason in words, nothing marked failed',
  async (t) => {
    const cases: [UpdateInput[], UpdateInput, RegExp][] = [
      [journey.slice(0, 1), { type: 'check-failed', reason: 'tor not ready' }, /check failed: tor not ready/],
      [journey.slice(0, 1), { type: 'none', reason: 'up to date' }, /up to date/],
      [journey.slice(0, 3), { type: 'download-failed', reason: 'stalled' }, /download failed: stalled/],
      [journey.slice(0, 5), { type: 'verify-failed', reason: 'hash mismatch' }, /refused: hash mismatch/],
      [
        journey.slice(0, 7),
        { type: 'install-failed', reason: 'rauc refused' },
        /install failed: rauc refused/,
      ],
    ];
    for (const [prefix, failure, result] of cases) {
      const s = updateAfter(start, [...prefix, failure]);
      t.equal(s.phase, 'idle', failure.type);
      t.match(s.result, result);
      t.equal(s.target, null);
      t.same(s.failed, []);
      t.equal(s.running, '1.0.0');
    }
  },
);

t.test('ready waits for the owner or the night: install, a new check, or dismiss', async (t) => {
  const ready = updateAfter(start, journey.slice(0, 6));
  t.equal(ready.phase, 'ready');
  t.match(ready.result, /1\.1\.0 is downloaded, verified and ready to install/);
  t.equal(updateStep(ready, { type: 'install' }).phase, 'installing');
  t.equal(updateStep(ready, { type: 'check' }).phase, 'checking');
  t.equal(updateStep(ready, { type: 'dismiss' }).phase, 'idle');
  t.equal(updateStep(ready, { type: 'installed' }), ready, 'installed only after install');
});

t.test('table: inputs out of place change nothing', async (t) => {
  const cases: [UpdateInput[], UpdateInput][] = [
    [[], { type: 'download' }],
    [[], { type: 'installed' }],
    [[], { type: 'routing' }],
    [[], { type: 'dismiss' }],
    [journey.slice(0, 1), { type: 'download' }],
    [journey.slice(0, 2), { type: 'installed' }],
    [journey.slice(0, 3), { type: 'check' }],
    [journey.slice(0, 3), { type: 'routing' }],
    [journey.slice(0, 5), { type: 'downloaded' }],
    [journey.slice(0, 6), { type: 'installed' }],
    [journey.slice(0, 7), { type: 'check' }],
    [journey.slice(0, 7), { type: 'install' }],
    [journey.slice(0, 3), { type: 'install' }],
    [journey, { type: 'check' }],
    [journey, { type: 'dismiss' }],
    [journey, { type: 'install-failed', reason: 'x' }],
  ];
  for (const [prefix, input] of cases) {
    const s = updateAfter(start, prefix);
    t.equal(updateStep(s, input), s, `${s.phase} + ${input.type}`);
  }
});

const version = fc.constantFrom('1.0.0', '1.1.0', '1.2.0', '2.0.0');
const input: fc.Arbitrary<UpdateInput> = fc.oneof(
  fc.constant({ type: 'check' as const }),
  version.map((v) => ({ type: 'found' as const, version: v })),
  fc.constant({ type: 'none' as const, reason: 'up to date' }),
  fc.constant({ type: 'check-failed' as const, reason: 'x' }),
  fc.constant({ type: 'download' as const }),
  fc.nat(100).map((n) => ({ type: 'progress' as const, done: n, total: 100 })),
  fc.constant({ type: 'downloaded' as const }),
  fc.constant({ type: 'download-failed' as const, reason: 'x' }),
  fc.constant({ type: 'verified' as const }),
  fc.constant({ type: 'verify-failed' as const, reason: 'x' }),
  fc.constant({ type: 'install' as const }),
  fc.constant({ type: 'installed' as const }),
  fc.constant({ type: 'install-failed' as const, reason: 'x' }),
  fc.constant({ type: 'routing' as const }),
  fc.constant({ type: 'trial-failed' as const, reason: 'x' }),
  fc.constant({ type: 'dismiss' as const }),
);

/** Single inputs, and the journey up to the trial boot so generated runs get deep into the machine. */
const chunk: fc.Arbitrary<UpdateInput[]> = fc.oneof(
  input.map((i) => [i]),
  fc.nat(journey.length).map((n) => journey.slice(0, n)),
);

t.test('properties over generated input sequences', async (t) => {
  const reached = new Set<UpdatePhase>();
  fc.assert(
    fc.property(fc.array(chunk, { maxLength: 30 }), (chunks) => {
      const inputs = chunks.flat();
      let s = start;
      for (const i of inputs) {
        const n = updateStep(s, i);
        // Only the machine's edges.
        if (n.phase !== s.phase && !UPDATE_EDGES[s.phase].includes(n.phase)) return false;
        // Failed versions are never forgotten.
        if (!s.failed.every((v) => n.failed.includes(v))) return false;
        // The running version changes only when a trial reaches routing, and then to the tried one.
        if (
          n.running !== s.running &&
          !(s.phase === 'trial-boot' && n.phase === 'good' && n.running === s.target)
        ) {
          return false;
        }
        // A version that failed is never offered, fetched, installed or tried again.
        if (
          ['available', 'downloading', 'verifying', 'ready', 'installing', 'trial-boot'].includes(n.phase)
        ) {
          if (n.target === null || n.failed.includes(n.target)) return false;
        }
        // Only a fall-back adds a failed version.
        if (n.failed.length !== s.failed.length && n.phase !== 'fell-back') return false;
        s = n;
        reached.add(s.phase);
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.same([...reached].sort(), Object.keys(UPDATE_EDGES).sort(), 'the generated runs reached every phase');
});
