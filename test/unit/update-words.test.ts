/**
 * The updater's status in words (firmware/update/words.ts): every phase has its sentence for the page
 * and the CLI, the owner's policy changes what "available" and "ready" promise, and a fallback says which
 * version the box went back to.
 */
import t from 'tap';
import type { UpdateStatus } from '../../firmware/update/service.js';
import {
  ageInWords,
  bytesInWords,
  formatUpdateStatus,
  imageAgeWarning,
  phaseInWords,
  updateSummary,
} from '../../firmware/update/words.js';

const base: UpdateStatus = {
  enabled: true,
  disabledReason: null,
  phase: 'idle',
  running: '1.0.0',
  compatible: 'onionbox-rpi3',
  built: null,
  target: null,
  result: null,
  failed: [],
  lastCheck: null,
  nextCheck: null,
  available: null,
  progress: null,
  policy: 'night',
};
const now = new Date('2026-12-07T12:00:00Z');
const DAY = 86_400_000;

t.test('every phase in one sentence, for both policies', async (t) => {
  const s = (o: Partial<UpdateStatus>) => phaseInWords({ ...base, target: '1.1.0', ...o });
  t.equal(s({ phase: 'idle', target: null }), 'No update check yet.');
  t.match(s({ phase: 'idle', target: null, result: 'up to date' }), /Up to date .*\(up to date\)/);
  t.match(s({ phase: 'checking' }), /Checking for an update through Tor/);
  t.match(s({ phase: 'available', policy: 'ask' }), /1\.1\.0 is available: install it when you are ready/);
  t.match(s({ phase: 'available', policy: 'night' }), /downloads now and installs at night/);
  t.equal(s({ phase: 'downloading' }), 'Downloading version 1.1.0 through Tor...', 'no size known yet');
  t.match(
    s({ phase: 'downloading', progress: { done: 512 * 1024, total: 2 * 1024 * 1024 } }),
    /512 KiB of 2\.0 MiB \(25%\)/,
  );
  t.match(s({ phase: 'verifying' }), /Checking the downloaded version 1\.1\.0/);
  t.match(s({ phase: 'ready', policy: 'ask' }), /install it when you are ready \(the box restarts/);
  t.match(s({ phase: 'ready', policy: 'night' }), /installs tonight between 02:00 and 05:00/);
  t.match(s({ phase: 'installing' }), /Installing version 1\.1\.0 to the other slot/);
  t.match(s({ phase: 'trial-boot' }), /1\.1\.0 is written; the box restarts into it/);
  t.match(s({ phase: 'trial-boot', running: '1.1.0' }), /Running version 1\.1\.0 on trial/);
  t.equal(s({ phase: 'good', running: '1.1.0' }), 'Version 1.1.0 reached Tor and is kept.');
  t.equal(s({ phase: 'good', result: 'kept 1.1.0' }), 'kept 1.1.0');
  t.equal(
    s({ phase: 'fell-back' }),
    'The update did not work; the box went back to version 1.0.0.',
    'a fallback without a saved reason still says where the box is',
  );
  t.match(
    s({ phase: 'fell-back', result: '1.1.0 did not reach Tor; the box went back to 1.0.0' }),
    /went back to 1\.0\.0/,
  );
  t.equal(
    phaseInWords({ ...base, enabled: false, disabledReason: 'no update source is configured' }),
    'Updates are off: no update source is configured.',
  );
});

t.test('ages, sizes and the old-image warning', async (t) => {
  const ago = (days: number) => ageInWords(new Date(now.getTime() - days * DAY), now);
  t.equal(ago(0), 'less than a day');
  t.equal(ago(1), '1 day');
  t.equal(ago(59), '59 days');
  t.equal(ago(200), '6 months');
  t.equal(ago(800), '2 years');
  t.equal(ago(-3), 'less than a day', 'a clock behind the build date is not a negative age');
  t.equal(bytesInWords(1024), '1 KiB');
  t.equal(bytesInWords(3.5 * 1024 * 1024), '3.5 MiB');
  t.equal(imageAgeWarning(null, now), null, 'an image without a date raises nothing');
  t.equal(imageAgeWarning(new Date(now.getTime() - 100 * DAY), now), null);
  t.match(imageAgeWarning(new Date(now.getTime() - 200 * DAY), now), /6 months old/);
});

t.test('the summary line and the CLI status say when updates are off and why', async (t) => {
  t.equal(updateSummary(base), 'idle (running 1.0.0)');
  t.equal(updateSummary({ ...base, phase: 'ready', target: '1.1.0' }), 'ready (running 1.0.0, target 1.1.0)');
  t.equal(
    updateSummary({ ...base, enabled: false, disabledReason: 'this image holds no release key' }),
    'idle (running 1.0.0): off, this image holds no release key',
  );
  const text = formatUpdateStatus(
    {
      ...base,
      built: new Date(now.getTime() - 200 * DAY).toISOString(),
      phase: 'available',
      target: '1.1.0',
      policy: 'ask',
      failed: ['1.0.5'],
      nextCheck: '2026-12-08T03:12:00.000Z',
      lastCheck: { at: '2026-12-07T03:12:00.000Z', ok: true, result: '1.1.0 is available' },
      available: {
        version: '1.1.0',
        released: '2026-12-06T00:00:00.000Z',
        expires: '2027-01-05T00:00:00.000Z',
        notes: 'line one\nline two',
        size: 5 * 1024 * 1024,
        source: 'the onion service',
      },
    },
    now,
  );
  t.match(text, /^running {4}1\.0\.0 for onionbox-rpi3, built \d{4}-\d\d-\d\d \(6 months ago\)$/m);
  t.match(text, /^policy {5}ask me first$/m);
  t.match(text, /^next check 2026-12-08/m);
  t.match(text, /^available {2}1\.1\.0 \(released 2026-12-06, 5\.0 MiB, from the onion service\)$/m);
  t.match(text, /^ {11}line two$/m);
  t.match(text, /^not retried 1\.0\.5$/m);
  t.match(text, /^warning {4}This box's software is 6 months old/m);
  t.match(formatUpdateStatus(base, now), /^last check never$/m);
});
