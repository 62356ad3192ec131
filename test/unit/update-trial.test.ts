/**
 * The trial of a newly installed slot (firmware/update/trial.ts): RAUC's JSON status parsed with its
 * schema, the good record, and the verdict 15 minutes after boot. The status fixture is real RAUC output
 * (`rauc status --detailed --output-format=json`, Debian's rauc on a private bus, slot B just installed
 * and booted, slot A the flashed system); variants change one field of it.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { NO_WAN_MINUTES } from '../../firmware/update/slot.js';
import {
  EMPTY_GOOD_RECORD,
  type GoodRecord,
  judgeTrial,
  parseGoodRecord,
  parseRaucStatus,
  recordMarkedGood,
  TRIAL_MINUTES,
} from '../../firmware/update/trial.js';

const FIXTURE = readFileSync(new URL('../fixtures/update/rauc-status-trial-b.json', import.meta.url), 'utf8');
const B_INSTALL = { timestamp: '2026-12-07T12:40:11Z', count: 1 };
const AT = '2026-12-07T12:00:00.000Z';

type Json = Record<string, unknown>;
/** The fixture with one change made by `edit` on its parsed JSON. */
function variant(edit: (doc: Json & { slots: Record<string, Json>[] }) => void): string {
  const doc = JSON.parse(FIXTURE);
  edit(doc);
  return JSON.stringify(doc);
}
function slot(doc: { slots: Record<string, Json>[] }, name: string): Json {
  const entry = doc.slots.find((s) => name in s);
  if (!entry) throw new Error(`no ${name}`);
  return entry[name] as Json;
}
function record(slots: GoodRecord['slots']): GoodRecord {
  return { format: 1, slots };
}

t.test('RAUC status: the booted slot, boot states and installs', async (t) => {
  const s = parseRaucStatus(FIXTURE);
  t.equal(s.booted, 'B');
  const a = s.slots.find((x) => x.bootname === 'A');
  const b = s.slots.find((x) => x.bootname === 'B');
  t.same(a, { name: 'rootfs.0', bootname: 'A', bootGood: true, install: null, version: null });
  t.same(b, { name: 'rootfs.1', bootname: 'B', bootGood: true, install: B_INSTALL, version: '1.1.0' });
  t.ok(Object.isFrozen(s) && Object.isFrozen(s.slots));
  const bad = parseRaucStatus(
    variant((d) => {
      slot(d, 'rootfs.0').boot_status = 'bad';
    }),
  );
  t.equal(bad.slots.find((x) => x.bootname === 'A')?.bootGood, false);
  const other = parseRaucStatus(
    variant((d) =>
      d.slots.push({ 'appfs.0': { class: 'appfs', bootname: null, state: 'inactive', boot_status: null } }),
    ),
  );
  t.equal(other.slots.length, 2, 'a slot that is not a bootable root slot is left out');
});

t.test('RAUC status: anything unexpected is a clear error', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not JSON', 'rauc-Message: no', /not JSON/],
    ['empty', '', /not JSON/],
    [
      'no booted slot',
      variant((d) => {
        d.booted = null;
      }),
      /no booted slot/,
    ],
    [
      'a booted name with a space',
      variant((d) => {
        d.booted = 'A B';
      }),
      /no booted slot/,
    ],
    ['no slots array', variant((d) => delete (d as Json).slots), /slots/],
    ['boot status missing', variant((d) => delete slot(d, 'rootfs.1').boot_status), /boot_status/],
    [
      'an unknown boot status',
      variant((d) => {
        slot(d, 'rootfs.1').boot_status = 'maybe';
      }),
      /boot_status/,
    ],
    [
      'a bootable slot without boot status',
      variant((d) => {
        slot(d, 'rootfs.1').boot_status = null;
      }),
      /no boot status/,
    ],
    ['two slots in one entry', variant((d) => Object.assign(d.slots[0] as Json, { x: {} })), /slots\/0/],
    [
      'a slot name with a space',
      variant((d) =>
        d.slots.push({
          'root fs': { class: 'rootfs', bootname: 'C', state: 'inactive', boot_status: 'good' },
        }),
      ),
      /a slot named "root fs"/,
    ],
    [
      'two slots named B',
      variant((d) => {
        slot(d, 'rootfs.0').bootname = 'B';
      }),
      /two slots are named B/,
    ],
    [
      'an install without count',
      variant((d) => {
        const st = slot(d, 'rootfs.1').slot_status as Json;
        st.installed = { timestamp: 'x' };
      }),
      /installed/,
    ],
    ['far too long', ' '.repeat(1024 * 1024 + 1), /longer than/],
  ];
  for (const [what, text, msg] of cases) {
    t.throws(() => parseRaucStatus(text), { code: 'OBX_ERR_UPDATE_SLOT_STATUS_INVALID', message: msg }, what);
  }
});

t.test('the good record: its schema, and what mark-good adds', async (t) => {
  const status = parseRaucStatus(FIXTURE);
  const before = record({ A: { install: null, markedAt: AT } });
  const after = recordMarkedGood(before, status, new Date('2026-12-07T12:45:00Z'));
  t.same(after, {
    format: 1,
    slots: {
      A: { install: null, markedAt: AT },
      B: { install: B_INSTALL, markedAt: '2026-12-07T12:45:00.000Z' },
    },
  });
  t.same(parseGoodRecord(JSON.stringify(after)), after, 'what is written reads back');
  t.same(before.slots.B, undefined, 'the old record is not changed');
  t.throws(
    () => recordMarkedGood(before, { ...status, booted: 'C' }, new Date()),
    { code: 'OBX_ERR_UPDATE_SLOT_STATUS_INVALID' },
    'a booted slot RAUC does not know is not recorded',
  );
  for (const bad of [
    'nope',
    '{}',
    JSON.stringify({ format: 2, slots: {} }),
    JSON.stringify({ format: 1, slots: { 'A B': { install: null, markedAt: AT } } }),
    JSON.stringify({ format: 1, slots: { A: { install: { timestamp: 'x', count: -1 }, markedAt: AT } } }),
    JSON.stringify({ format: 1, slots: { A: { install: null } } }),
    JSON.stringify({ format: 1, slots: {}, extra: true }),
  ]) {
    t.throws(() => parseGoodRecord(bad), { code: 'OBX_ERR_UPDATE_GOOD_RECORD_INVALID' }, bad);
  }
});

t.test('a trial of a new install that was never marked good goes back to the proven slot', async (t) => {
  const v = judgeTrial(parseRaucStatus(FIXTURE), record({ A: { install: null, markedAt: AT } }));
  t.equal(v.action, 'roll-back');
  t.match(v, { slot: 'B', to: 'A' });
  t.match(
    v.words,
    /slot B \(version 1\.1\.0 of 2026-12-07T12:40:11Z, install #1\) was not marked good within 15 minutes/,
  );
  // B was good once with an older install: the new one is still on trial
  const older = record({
    A: { install: null, markedAt: AT },
    B: { install: { timestamp: '2026-11-01T10:00:00Z', count: 0 }, markedAt: AT },
  });
  t.equal(
    judgeTrial(parseRaucStatus(FIXTURE), older).action,
    'roll-back',
    'an older install of B does not count',
  );
  const sameTimeOtherCount = record({
    A: { install: null, markedAt: AT },
    B: { install: { timestamp: B_INSTALL.timestamp, count: 2 }, markedAt: AT },
  });
  t.equal(judgeTrial(parseRaucStatus(FIXTURE), sameTimeOtherCount).action, 'roll-back');
});

t.test(
  'an ordinary boot of a slot marked good before is never rolled back (a censored box stays)',
  async (t) => {
    const good = record({
      A: { install: null, markedAt: AT },
      B: { install: B_INSTALL, markedAt: AT },
    });
    const v = judgeTrial(parseRaucStatus(FIXTURE), good);
    t.same(v.action, 'keep');
    t.match(v, { reason: 'marked-good' });
    // even with its tries used up by U-Boot's count on this boot
    const spent = parseRaucStatus(
      variant((d) => {
        slot(d, 'rootfs.1').boot_status = 'bad';
      }),
    );
    t.match(judgeTrial(spent, good), { action: 'keep', reason: 'marked-good' });
  },
);

t.test('the flashed system is no trial', async (t) => {
  const onA = parseRaucStatus(
    variant((d) => {
      d.booted = 'A';
    }),
  );
  t.match(judgeTrial(onA, EMPTY_GOOD_RECORD), { action: 'keep', reason: 'never-installed' });
  t.match(judgeTrial(onA, record({ B: { install: B_INSTALL, markedAt: AT } })), {
    action: 'keep',
    reason: 'never-installed',
  });
});

t.test('no proven slot to go back to: stay (the boot counter still handles a panic)', async (t) => {
  const status = parseRaucStatus(FIXTURE);
  t.match(judgeTrial(status, EMPTY_GOOD_RECORD), { action: 'keep', reason: 'no-proven-fallback' });
  const aBad = parseRaucStatus(
    variant((d) => {
      slot(d, 'rootfs.0').boot_status = 'bad';
    }),
  );
  t.match(judgeTrial(aBad, record({ A: { install: null, markedAt: AT } })), {
    action: 'keep',
    reason: 'no-proven-fallback',
  });
  // A was overwritten since it was marked good (it holds an install that was never marked good)
  const aRewritten = parseRaucStatus(
    variant((d) => {
      (slot(d, 'rootfs.0').slot_status as Json).installed = { timestamp: '2026-12-01T00:00:00Z', count: 3 };
    }),
  );
  t.match(judgeTrial(aRewritten, record({ A: { install: null, markedAt: AT } })), {
    action: 'keep',
    reason: 'no-proven-fallback',
  });
  const unknown = parseRaucStatus(
    variant((d) => {
      d.booted = 'C';
    }),
  );
  t.match(judgeTrial(unknown, record({ A: { install: null, markedAt: AT } })), {
    action: 'keep',
    reason: 'not-a-root-slot',
  });
});

t.test('the trial is judged after the offline mark-good had its chance', async (t) => {
  t.ok(TRIAL_MINUTES > NO_WAN_MINUTES, `${TRIAL_MINUTES} > ${NO_WAN_MINUTES}`);
});

t.test('the CLI steps take no arguments and are root only', async (t) => {
  const { runCli } = await import('../../firmware/cli/index.js');
  for (const step of ['record-good', 'trial-check']) {
    const err: string[] = [];
    const code = await runCli(['slot', step, '--force'], { out: () => undefined, err: (s) => err.push(s) });
    t.equal(code, 2, `slot ${step} --force is refused before anything runs`);
    t.match(err.join(''), /force/);
    if (process.getuid?.() !== 0) {
      const e2: string[] = [];
      t.equal(await runCli(['slot', step], { out: () => undefined, err: (s) => e2.push(s) }), 2);
      t.match(e2.join(''), /must run as root/);
    }
  }
});
