import t from 'tap';
import { parseSerial } from '../../images/boot-report.js';
import {
  bootedSlots,
  longestCut,
  missingOrFailed,
  requiredUpdateChecks,
  uniqueChecks,
} from '../../images/update-report.js';

const v = { v1: '0.1.0', v2: '0.1.1', v3: '0.1.2' };

t.test('every required step must be reported and pass', async (t) => {
  const required = requiredUpdateChecks(v);
  t.equal(required.length, 13);
  t.ok(required.includes('update-installed-0.1.1') && required.includes('update-not-retried'));
  const lines = required.map((c, i) => `OBX-SELFTEST ${c} PASS t=${i + 1}.5 fine`).join('\n');
  const all = uniqueChecks(parseSerial(lines).checks);
  t.same(missingOrFailed(all, required), []);
  // one missing, one failed, one extra failure
  const broken = uniqueChecks(
    parseSerial(
      lines
        .replace(/OBX-SELFTEST update-kept PASS[^\n]*\n/, '')
        .replace('update-fell-back PASS', 'update-fell-back FAIL')
        .concat('\nOBX-SELFTEST trial-timer FAIL t=3.0 no timer'),
    ).checks,
  );
  t.same(missingOrFailed(broken, required), [
    'update-kept: never reported',
    'update-fell-back: FAIL',
    'trial-timer: FAIL',
  ]);
});

t.test(
  'a line the console shows twice counts once; the same check in another boot counts again',
  async (t) => {
    const text = [
      'OBX-SELFTEST update-boot PASS t=20.1 boot 1: slot A runs 0.1.0',
      'OBX-SELFTEST update-boot PASS t=20.1 boot 1: slot A runs 0.1.0',
      'OBX-SELFTEST update-boot PASS t=19.0 boot 2: slot B runs 0.1.1',
    ].join('\n');
    t.equal(uniqueChecks(parseSerial(text).checks).length, 2);
  },
);

t.test("U-Boot's booted slots in order", async (t) => {
  const serial = [
    'Onionbox: booting slot A (BOOT_A_LEFT=2 BOOT_B_LEFT=3 saved)',
    'noise',
    'Onionbox: booting slot B (BOOT_A_LEFT=0 BOOT_B_LEFT=2 saved)',
  ].join('\n');
  t.same(bootedSlots(serial), ['A', 'B']);
  t.same(bootedSlots('nothing'), []);
});

t.test('the longest cut is closed by an answer', async (t) => {
  t.same(
    longestCut([
      { t: 0, ok: true },
      { t: 5, ok: true },
      { t: 10, ok: false },
      { t: 15, ok: false },
      { t: 20, ok: true },
      { t: 25, ok: false },
      { t: 27, ok: true },
    ]),
    { from: 5, to: 20 },
  );
  t.equal(
    longestCut([
      { t: 0, ok: true },
      { t: 5, ok: false },
    ]),
    null,
    'a cut never closed is no cut',
  );
  t.equal(
    longestCut([
      { t: 0, ok: false },
      { t: 5, ok: true },
    ]),
    null,
    'nothing answered before it',
  );
  t.equal(longestCut([]), null);
});
