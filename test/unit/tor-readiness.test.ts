/**
 * The readiness reducer (firmware/tor/readiness.ts) on real tor transcripts recorded against the private
 * Tor network (test/fixtures/tor/readiness-*.txt, recorded by test/fixtures/tor/record-readiness.ts).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseEvent, parseTranscript } from '../../firmware/tor/protocol.js';
import {
  extendedCircuit,
  initialReadiness,
  probeNeeded,
  type Readiness,
  type ReadinessEvent,
  readinessEventOf,
  reduceReadiness,
} from '../../firmware/tor/readiness.js';

const transcript = (name: string) =>
  parseTranscript(readFileSync(new URL(`../fixtures/tor/${name}`, import.meta.url), 'latin1'));

/**
 * Replays a transcript as the supervisor would: each event through the reducer, the `250 EXTENDED`
 * reply as the probe's launch. A wanted probe is "scheduled" at once and fires before the next event.
 */
function replay(start: Readiness, name: string) {
  let s = start;
  const seen: Readiness[] = [];
  const step = (ev: ReadinessEvent) => {
    s = reduceReadiness(s, ev);
    if (s.probeWantedInMs !== null) s = reduceReadiness(s, { type: 'probe-timer-set' });
    seen.push(s);
  };
  let probes = 0;
  for (const reply of transcript(name)) {
    if (reply.code === 250) {
      const id = extendedCircuit(reply.lines[0]?.text ?? '');
      if (!id) throw new Error('unexpected 250 reply in the transcript');
      step({ type: 'probe-timer-fired' });
      probes++;
      step({ type: 'probe-launched', circuit: id });
      continue;
    }
    const ev = readinessEventOf(parseEvent(reply));
    if (ev) step(ev);
  }
  return { s, seen, probes };
}

t.test('a fresh tor: bootstrapping up to 100 %, not ready until the probe circuit is built', async (t) => {
  const start = reduceReadiness(initialReadiness(), { type: 'starting' });
  t.equal(start.status.phase, 'starting');
  const { s, seen, probes } = replay(start, 'readiness-bootstrap.txt');
  t.equal(probes, 1);
  const progress = seen.filter((x) => x.status.phase === 'bootstrapping').map((x) => x.status.progress);
  t.same(
    progress.filter((p, i) => p !== progress[i - 1]),
    [5, 10, 14, 15, 20, 25, 30, 40, 45, 50, 75, 90, 95, 100],
    "tor's bootstrap steps, in order",
  );
  const hundred = seen.findIndex((x) => x.status.progress === 100);
  t.equal(seen[hundred]?.status.ready, false, 'Bootstrapped 100% alone is not ready');
  t.equal(seen[hundred]?.probeTimerSet, true, 'and asks for a probe');
  const firstReady = seen.findIndex((x) => x.status.ready);
  t.ok(firstReady > hundred);
  t.ok(
    seen.slice(hundred, firstReady).some((x) => x.probeCircuit !== null),
    'ready comes from the probe circuit, not from the exit circuits tor built on its own',
  );
  t.same(s.status, {
    phase: 'ready',
    progress: 100,
    summary: 'Connected: an exit circuit is built',
    ready: true,
  });
  t.equal(s.probeCircuit, null);
  t.notOk(probeNeeded(s));
});

t.test('other circuits built before the probe do not make tor ready', async (t) => {
  let s = reduceReadiness(initialReadiness(), { type: 'bootstrap', progress: 100, summary: 'Done' });
  for (const reply of transcript('readiness-bootstrap.txt')) {
    if (reply.code !== 650) break; // stop at the probe's launch
    const ev = readinessEventOf(parseEvent(reply));
    if (ev?.type === 'circuit') s = reduceReadiness(s, ev);
  }
  t.equal(s.status.ready, false);
  t.ok(probeNeeded(s));
});

t.test('a reload: not ready until a probe launched after it is built', async (t) => {
  const ready = replay(
    reduceReadiness(initialReadiness(), { type: 'starting' }),
    'readiness-bootstrap.txt',
  ).s;
  let s = reduceReadiness(ready, { type: 'reloading' });
  t.same(s.status, { phase: 'bootstrapping', progress: 100, summary: 'applying new settings', ready: false });
  t.equal(s.probeWantedInMs, 200);
  s = reduceReadiness(s, { type: 'probe-timer-set' });
  const after = replay(s, 'readiness-reload.txt');
  t.equal(after.probes, 1);
  t.equal(after.s.status.ready, true);
  t.ok(
    after.seen.findIndex((x) => x.status.ready) > after.seen.findIndex((x) => x.probeCircuit !== null),
    'the circuits built before the reload do not count',
  );
});

t.test('probe failures, losing circuits, crashes', async (t) => {
  let s = reduceReadiness(initialReadiness(), { type: 'bootstrap', progress: 100, summary: 'Done' });
  t.equal(s.probeWantedInMs, 0);
  t.equal(reduceReadiness(s, { type: 'probe-refused' }).probeWantedInMs, 0, 'one request at a time');
  s = reduceReadiness(s, { type: 'probe-timer-set' });
  t.equal(reduceReadiness(s, { type: 'probe-refused' }).probeWantedInMs, null, 'a pending timer covers it');
  s = reduceReadiness(s, { type: 'probe-timer-fired' });
  t.equal(reduceReadiness(s, { type: 'probe-refused' }).probeWantedInMs, 2000);
  s = reduceReadiness(s, { type: 'probe-launched', circuit: '7' });
  t.notOk(probeNeeded(s));
  t.equal(reduceReadiness(s, { type: 'circuit', id: '7', status: 'BUILT', hops: 1 }).status.ready, false);
  t.equal(reduceReadiness(s, { type: 'circuit', id: '8', status: 'BUILT', hops: 3 }).status.ready, false);
  const failed = reduceReadiness(s, { type: 'circuit', id: '7', status: 'FAILED', hops: 2 });
  t.equal(failed.probeCircuit, null);
  t.equal(failed.probeWantedInMs, 1000);
  t.equal(
    reduceReadiness(s, { type: 'probe-expired', circuit: '6' }),
    s,
    'an older probe expiring changes nothing',
  );
  t.equal(reduceReadiness(s, { type: 'probe-expired', circuit: '7' }).probeWantedInMs, 0);
  s = reduceReadiness(s, { type: 'circuit', id: '7', status: 'BUILT', hops: 3 });
  t.equal(s.status.ready, true);
  t.equal(reduceReadiness(s, { type: 'probe-expired', circuit: '7' }), s);
  const later = reduceReadiness(s, { type: 'bootstrap', progress: 100, summary: 'Done' });
  t.equal(later.status.ready, true, 'a later bootstrap report keeps ready');
  const lost = readinessEventOf(
    parseEvent(
      parseTranscript('650 STATUS_CLIENT NOTICE CIRCUIT_NOT_ESTABLISHED REASON=CLOCK_JUMPED\r\n')[0] ?? {
        code: 650,
        lines: [],
      },
    ),
  );
  t.same(lost, { type: 'not-established', reason: 'CLOCK_JUMPED' });
  s = reduceReadiness(s, lost ?? { type: 'stopped' });
  t.same(s.status, { phase: 'bootstrapping', progress: 100, summary: 'CLOCK_JUMPED', ready: false });
  t.equal(s.probeWantedInMs, 2000);
  const crashed = reduceReadiness(s, { type: 'crashed', summary: 'tor exited (9); restarting' });
  t.same(crashed.status, {
    phase: 'crashed',
    progress: 0,
    summary: 'tor exited (9); restarting',
    ready: false,
  });
  t.same(reduceReadiness(crashed, { type: 'stopped' }), initialReadiness());
  t.equal(reduceReadiness(s, { type: 'failed', summary: 'x' }).status.phase, 'failed');
  t.equal(extendedCircuit('EXTENDED'), null);
  t.equal(extendedCircuit('OK'), null);
});
