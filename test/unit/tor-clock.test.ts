/**
 * The clock without NTP: saved time, owner time, CLOCK_SKEW policy. The system clock is the hardware
 * edge here: a recording setter stands in for `date -s`, so the test machine's clock is never touched.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { EventBus } from '../../firmware/events.js';
import { ClockService, decideSkew, MIN_PLAUSIBLE_MS, validEpochMs } from '../../firmware/tor/clock.js';
import { tmpDir } from '../helpers/tmp.js';

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);

function service(t: Test, now: () => number, bus?: EventBus) {
  const dir = tmpDir(t);
  const set: number[] = [];
  const clock = new ClockService({
    file: join(dir, 'clock.json'),
    setSystemTime: async (ms) => {
      set.push(ms);
    },
    now,
    bus,
  });
  return { clock, set, file: join(dir, 'clock.json') };
}

t.test('validEpochMs refuses absurd times', async (t) => {
  t.equal(validEpochMs(NOW), NOW);
  for (const bad of [
    0,
    -1,
    MIN_PLAUSIBLE_MS - 1,
    Date.UTC(2101, 0, 1),
    1.5,
    Number.NaN,
    '1700000000000',
    null,
  ]) {
    t.throws(() => validEpochMs(bad), { code: 'OBX_ERR_CLOCK_INVALID' }, String(bad));
  }
});

t.test('boot: a clock behind the saved time is moved forward; one ahead is left alone', async (t) => {
  const { clock, set, file } = service(t, () => Date.UTC(2026, 0, 1, 0, 0, 5)); // Pi without RTC after boot
  writeFileSync(file, JSON.stringify({ savedAt: NOW }));
  t.equal(await clock.restore(), true);
  t.same(set, [NOW]);
  const ahead = service(t, () => NOW + 1000);
  writeFileSync(ahead.file, JSON.stringify({ savedAt: NOW }));
  t.equal(await ahead.clock.restore(), false);
  t.same(ahead.set, []);
  const broken = service(t, () => NOW);
  writeFileSync(broken.file, '{not json');
  t.equal(await broken.clock.restore(), false, 'an unreadable file changes nothing');
});

t.test('save: atomic, mode 0600, never goes backwards, never saves an implausible clock', async (t) => {
  let now = NOW;
  const { clock, file } = service(t, () => now);
  await clock.save();
  t.same(JSON.parse(readFileSync(file, 'utf8')), { savedAt: NOW });
  t.equal(statSync(file).mode & 0o777, 0o600);
  now = NOW - 60_000;
  await clock.save();
  t.same(JSON.parse(readFileSync(file, 'utf8')), { savedAt: NOW }, 'the later time is kept');
  now = 0;
  await clock.save();
  t.same(JSON.parse(readFileSync(file, 'utf8')), { savedAt: NOW });
});

t.test("owner's time: validated, set and persisted", async (t) => {
  const { clock, set, file } = service(t, () => MIN_PLAUSIBLE_MS);
  await clock.setFromOwner(NOW);
  t.same(set, [NOW]);
  t.same(JSON.parse(readFileSync(file, 'utf8')), { savedAt: NOW });
  await t.rejects(clock.setFromOwner(12), { code: 'OBX_ERR_CLOCK_INVALID' });
  await t.rejects(clock.setFromOwner('tomorrow'), { code: 'OBX_ERR_CLOCK_INVALID' });
  t.same(set, [NOW], 'bad input changes nothing');
});

t.test('CLOCK_SKEW policy', async (t) => {
  t.same(
    decideSkew({ skewSeconds: -30, source: 'CONSENSUS', minimum: true }, []).adjustMs,
    0,
    'small skew ignored',
  );
  t.same(decideSkew({ skewSeconds: -7200, source: 'CONSENSUS', minimum: true }, []).adjustMs, 7_200_000);
  t.same(
    decideSkew({ skewSeconds: 7200, source: 'CONSENSUS', minimum: true }, []).adjustMs,
    0,
    'never backwards',
  );
  t.same(
    decideSkew({ skewSeconds: 7200, source: 'CONSENSUS', minimum: true }, [], { allowBackward: true })
      .adjustMs,
    -7_200_000,
  );
  const one = { skewSeconds: -3600, source: 'OR:192.0.2.1:9001', minimum: false };
  t.same(decideSkew(one, []).adjustMs, 0, 'one relay is not trusted');
  t.same(
    decideSkew(one, [{ source: 'OR:192.0.2.1:9001', skewSeconds: -3600 }]).adjustMs,
    0,
    'same relay twice',
  );
  t.same(
    decideSkew(one, [
      { source: 'OR:192.0.2.2:9001', skewSeconds: -3590 },
      { source: 'OR:192.0.2.3:443', skewSeconds: -3610 },
    ]).adjustMs,
    3_600_000,
    'three relays agree',
  );
  t.same(
    decideSkew(one, [
      { source: 'OR:192.0.2.2:9001', skewSeconds: -100_000 },
      { source: 'OR:192.0.2.3:443', skewSeconds: -3610 },
    ]).adjustMs,
    0,
    'disagreeing relays',
  );
  t.same(decideSkew({ skewSeconds: -3600, source: 'weird', minimum: false }, []).adjustMs, 0);
});

t.test('tor:clock-skew events drive the service', async (t) => {
  const bus = new EventBus();
  const { clock, set } = service(t, () => NOW, bus);
  await clock.start();
  bus.emit('tor:clock-skew', { skewSeconds: -7200, source: 'CONSENSUS', minimum: true });
  await new Promise((r) => setTimeout(r, 20));
  t.same(set, [NOW + 7_200_000]);
  await clock.stop();
  bus.emit('tor:clock-skew', { skewSeconds: -7200, source: 'CONSENSUS', minimum: true });
  await new Promise((r) => setTimeout(r, 20));
  t.equal(set.length, 1, 'unsubscribed at stop');
});
