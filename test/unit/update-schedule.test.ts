import fc from 'fast-check';
import t from 'tap';
import { initialUpdateState, type UpdateState, updateAfter } from '../../firmware/update/machine.js';
import {
  drawCheckMinute,
  isNight,
  nextCheckAt,
  nextDailyAt,
  nextInstallAt,
  resumeUpdateState,
} from '../../firmware/update/schedule.js';

const at = (s: string) => new Date(s);

t.test('the daily check: the box minute, drawn once; at once when the last check is a day old', async (t) => {
  t.equal(
    drawCheckMinute(() => 0),
    0,
  );
  t.equal(
    drawCheckMinute(() => 0.999999999),
    1439,
  );
  t.equal(
    drawCheckMinute(() => Number.NaN),
    0,
  );
  t.equal(nextDailyAt(at('2026-12-07T10:00:00Z'), 9 * 60 + 30).toISOString(), '2026-12-08T09:30:00.000Z');
  t.equal(nextDailyAt(at('2026-12-07T09:00:00Z'), 9 * 60 + 30).toISOString(), '2026-12-07T09:30:00.000Z');
  t.equal(nextDailyAt(at('2026-12-07T09:30:00Z'), 9 * 60 + 30).toISOString(), '2026-12-08T09:30:00.000Z');
  const now = at('2026-12-07T10:00:00Z');
  t.equal(nextCheckAt(now, 600, null), now, 'never checked: now');
  t.equal(nextCheckAt(now, 600, at('2026-12-06T09:59:00Z')), now, 'more than a day ago: now');
  t.equal(nextCheckAt(now, 30, at('2026-12-07T00:30:00Z')).toISOString(), '2026-12-08T00:30:00.000Z');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4e12 }), fc.integer({ min: 0, max: 1439 }), (ms, minute) => {
      const next = nextDailyAt(new Date(ms), minute).getTime();
      return next > ms && next - ms <= 24 * 3600_000 && (next / 60_000) % 1440 === minute;
    }),
  );
});

t.test('the night: 02:00 to 05:00; installs wait for it', async (t) => {
  t.equal(isNight(at('2026-12-07T01:59:59Z')), false);
  t.equal(isNight(at('2026-12-07T02:00:00Z')), true);
  t.equal(isNight(at('2026-12-07T04:59:59Z')), true);
  t.equal(isNight(at('2026-12-07T05:00:00Z')), false);
  const night = at('2026-12-07T03:00:00Z');
  t.equal(nextInstallAt(night, 700), night);
  const next = nextInstallAt(at('2026-12-07T12:00:00Z'), 700);
  t.ok(isNight(next), next.toISOString());
  t.equal(next.toISOString().slice(0, 10), '2026-12-08');
});

t.test(
  'resume after a restart: cut work is done again, a trial boot is judged by the running version',
  async (t) => {
    const base = initialUpdateState('1.0.0');
    const phase = (inputs: Parameters<typeof updateAfter>[1]): UpdateState => updateAfter(base, inputs);
    const checking = phase([{ type: 'check' }]);
    const found = [{ type: 'check' as const }, { type: 'found' as const, version: '1.1.0' }];
    const downloading = phase([...found, { type: 'download' }]);
    const installing = phase([
      ...found,
      { type: 'download' },
      { type: 'downloaded' },
      { type: 'verified' },
      { type: 'install' },
    ]);
    const trial = phase([
      ...found,
      { type: 'download' },
      { type: 'downloaded' },
      { type: 'verified' },
      { type: 'install' },
      { type: 'installed' },
    ]);
    t.equal(resumeUpdateState(checking, '1.0.0', 'b', null).phase, 'idle');
    t.equal(resumeUpdateState(downloading, '1.0.0', 'b', null).phase, 'available');
    t.equal(resumeUpdateState(installing, '1.0.0', 'b', null).phase, 'ready');
    t.equal(
      resumeUpdateState(trial, '1.0.0', 'a', 'a').phase,
      'trial-boot',
      'same boot: the restart is still to come',
    );
    t.equal(
      resumeUpdateState(trial, '1.1.0', 'b', 'a').phase,
      'trial-boot',
      'new version runs: wait for routing',
    );
    const fell = resumeUpdateState(trial, '1.0.0', 'b', 'a');
    t.equal(fell.phase, 'fell-back');
    t.same(fell.failed, ['1.1.0']);
    t.equal(fell.running, '1.0.0');
    t.equal(resumeUpdateState(base, '1.2.0', 'b', null).running, '1.2.0', 'idle follows the image');
  },
);
