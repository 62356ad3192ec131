/**
 * The trial of a newly installed slot, judged by root from root's own facts (issue 20: "the new slot boots
 * on trial; it is marked good only when it reaches routing; if it does not within N minutes ... it is
 * marked bad and the box boots the old slot by itself").
 *
 * Two facts, both root's and both on the data partition (/var/lib/rauc):
 *   - RAUC's slot status (`rauc status --detailed --output-format=json`): which slot is booted, each slot's
 *     boot state in U-Boot's environment (`boot_status`: good = tries left) and, for a slot RAUC wrote,
 *     its install (`slot_status.installed`: timestamp and count; a slot never written by RAUC, the flashed
 *     system, has none);
 *   - the good record (GOOD_RECORD_PATH), written by the root oneshot onionbox-mark-good.service right after
 *     `rauc status mark-good booted`: for each slot, the install that was marked good.
 *
 * A boot is a trial when the booted slot holds an install RAUC wrote that was never marked good. An
 * ordinary boot of a slot that was good before is never a trial, whatever the box does now (a box whose
 * tor cannot connect in a censored country stays where it is). A trial is rolled back only towards a slot
 * that is proven: tries left in U-Boot's environment and its current content marked good before. Anything
 * unreadable or unexpected keeps the box where it is, with the reason (bad input changes nothing).
 *
 * Everything here is pure; the adapter (firmware/update/trial-root.ts) runs rauc, reads and writes the
 * record, and reboots. onionboxd is not asked anything: a trial whose onionboxd died is rolled back too.
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { obxError } from '../errors.js';
import { parseJsonChecked } from '../lib/schema-problems.js';

/**
 * Minutes after boot at which a trial that was not marked good is rolled back (onionbox-trial.timer,
 * OnBootSec=). Longer than NO_WAN_MINUTES: a healthy box without a WAN is marked good after 10 unbroken
 * minutes of onionboxd's own, which start only once the daemon runs (a minute or two after power-on on a
 * Zero 2 W), so such a box is always marked good before this runs. A box with a WAN reaches routing within
 * a minute or two when tor works.
 */
export const TRIAL_MINUTES = 15;
export const GOOD_RECORD_PATH = '/var/lib/rauc/onionbox-good.json';
/** The record is small: two slots. Anything larger is not ours. */
export const GOOD_RECORD_MAX_BYTES = 16 * 1024;
export const RAUC_STATUS_MAX_BYTES = 1024 * 1024;

const BOOTNAME = '^[A-Za-z0-9_-]{1,16}$';
const SLOT_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const Install = Type.Object(
  {
    timestamp: Type.String({ minLength: 1, maxLength: 64 }),
    count: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: true },
);

/** The parts of RAUC's JSON status this code reads (RAUC 1.13's `r_status_formatter_json`). */
const RaucSlotSchema = Type.Object(
  {
    class: Type.String({ maxLength: 64 }),
    bootname: Type.Union([Type.Null(), Type.String({ pattern: BOOTNAME })]),
    state: Type.String({ maxLength: 32 }),
    boot_status: Type.Union([Type.Null(), Type.Literal('good'), Type.Literal('bad')]),
    slot_status: Type.Optional(
      Type.Object(
        {
          bundle: Type.Optional(
            Type.Object(
              { version: Type.Optional(Type.String({ maxLength: 256 })) },
              { additionalProperties: true },
            ),
          ),
          installed: Type.Optional(Install),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true },
);
const RaucStatusSchema = Type.Object(
  {
    compatible: Type.String({ maxLength: 256 }),
    booted: Type.Union([Type.Null(), Type.String({ maxLength: 64 })]),
    slots: Type.Array(
      Type.Record(Type.String(), RaucSlotSchema, {
        minProperties: 1,
        maxProperties: 1,
      }),
      { maxItems: 64 },
    ),
  },
  { additionalProperties: true },
);
const raucStatusCheck = TypeCompiler.Compile(RaucStatusSchema);

/** One install as RAUC records it; null for a slot RAUC never wrote (the flashed system). */
export interface SlotInstall {
  readonly timestamp: string;
  readonly count: number;
}

export interface RootSlot {
  /** RAUC's slot name, e.g. rootfs.1 */
  readonly name: string;
  /** U-Boot's name for it, A or B */
  readonly bootname: string;
  /** tries left in U-Boot's environment (RAUC's `boot_status` "good") */
  readonly bootGood: boolean;
  readonly install: SlotInstall | null;
  /** the version RAUC wrote there, when it knows it (for the log) */
  readonly version: string | null;
}

export interface RootSlots {
  /** the booted slot's bootname (RAUC's `booted`, from the kernel's `rauc.slot=`) */
  readonly booted: string;
  readonly slots: readonly RootSlot[];
}

/**
 * `rauc status --detailed --output-format=json` parsed and checked. Only bootable root slots (class
 * rootfs, with a bootname) are kept. Throws OBX_ERR_UPDATE_SLOT_STATUS_INVALID with what is wrong.
 */
export function parseRaucStatus(text: string): RootSlots {
  const status = parseJsonChecked(text, raucStatusCheck, 'UPDATE_SLOT_STATUS_INVALID', {
    maxBytes: RAUC_STATUS_MAX_BYTES,
  });
  if (status.booted === null || !new RegExp(BOOTNAME).test(status.booted)) {
    throw obxError(
      'UPDATE_SLOT_STATUS_INVALID',
      `no booted slot named (booted: ${JSON.stringify(status.booted)})`,
    );
  }
  const slots: RootSlot[] = [];
  for (const entry of status.slots) {
    const [name, slot] = Object.entries(entry)[0] as [string, Static<typeof RaucSlotSchema>];
    if (!SLOT_NAME.test(name))
      throw obxError('UPDATE_SLOT_STATUS_INVALID', `a slot named ${JSON.stringify(name)}`);
    if (slot.class !== 'rootfs' || slot.bootname === null) continue;
    if (slot.boot_status === null) {
      throw obxError('UPDATE_SLOT_STATUS_INVALID', `${name}: no boot status for a bootable slot`);
    }
    if (slots.some((s) => s.bootname === slot.bootname)) {
      throw obxError('UPDATE_SLOT_STATUS_INVALID', `two slots are named ${slot.bootname}`);
    }
    const installed = slot.slot_status?.installed;
    slots.push(
      Object.freeze({
        name,
        bootname: slot.bootname,
        bootGood: slot.boot_status === 'good',
        install: installed ? Object.freeze({ timestamp: installed.timestamp, count: installed.count }) : null,
        version: slot.slot_status?.bundle?.version ?? null,
      }),
    );
  }
  return Object.freeze({ booted: status.booted, slots: Object.freeze(slots) });
}

/** The good record: for each slot (by bootname), the install that was marked good and when. */
export const GoodRecordSchema = Type.Object(
  {
    format: Type.Literal(1),
    /** by bootname (BOOTNAME, checked in parseGoodRecord) */
    slots: Type.Record(
      Type.String(),
      Type.Object(
        {
          install: Type.Union([
            Type.Null(),
            Type.Object(
              {
                timestamp: Type.String({ minLength: 1, maxLength: 64 }),
                count: Type.Integer({ minimum: 0 }),
              },
              { additionalProperties: false },
            ),
          ]),
          markedAt: Type.String({ maxLength: 40 }),
        },
        { additionalProperties: false },
      ),
      { maxProperties: 8 },
    ),
  },
  { additionalProperties: false },
);
export type GoodRecord = Static<typeof GoodRecordSchema>;
const goodRecordCheck = TypeCompiler.Compile(GoodRecordSchema);

export const EMPTY_GOOD_RECORD: GoodRecord = Object.freeze({ format: 1, slots: Object.freeze({}) });

/** The record file's text checked; throws OBX_ERR_UPDATE_GOOD_RECORD_INVALID. */
export function parseGoodRecord(text: string): GoodRecord {
  const record: GoodRecord = parseJsonChecked(text, goodRecordCheck, 'UPDATE_GOOD_RECORD_INVALID', {
    maxBytes: GOOD_RECORD_MAX_BYTES,
  });
  const odd = Object.keys(record.slots).find((k) => !new RegExp(BOOTNAME).test(k));
  if (odd !== undefined) {
    throw obxError('UPDATE_GOOD_RECORD_INVALID', `/slots: not a slot's boot name: ${JSON.stringify(odd)}`);
  }
  return record;
}

function sameInstall(a: SlotInstall | null, b: SlotInstall | null): boolean {
  if (a === null || b === null) return a === b;
  return a.timestamp === b.timestamp && a.count === b.count;
}

/** Whether the slot's current content is the one the record says was marked good. */
function markedGood(record: GoodRecord, slot: RootSlot): boolean {
  const entry = record.slots[slot.bootname];
  return entry !== undefined && sameInstall(entry.install, slot.install);
}

/**
 * The record after the booted slot was marked good: its current install, at `now`. Pure; throws
 * OBX_ERR_UPDATE_SLOT_STATUS_INVALID when RAUC names no booted root slot (nothing is written then).
 */
export function recordMarkedGood(record: GoodRecord, status: RootSlots, now: Date): GoodRecord {
  const booted = status.slots.find((s) => s.bootname === status.booted);
  if (booted === undefined) {
    throw obxError(
      'UPDATE_SLOT_STATUS_INVALID',
      `the booted slot ${status.booted} is not a root slot RAUC knows`,
    );
  }
  return {
    format: 1,
    slots: {
      ...record.slots,
      [booted.bootname]: {
        install:
          booted.install === null
            ? null
            : { timestamp: booted.install.timestamp, count: booted.install.count },
        markedAt: now.toISOString(),
      },
    },
  };
}

export type TrialVerdict =
  | { readonly action: 'keep'; readonly reason: TrialKeepReason; readonly words: string }
  | {
      readonly action: 'roll-back';
      readonly slot: string;
      readonly to: string;
      readonly words: string;
    };

export type TrialKeepReason = 'not-a-root-slot' | 'never-installed' | 'marked-good' | 'no-proven-fallback';

function describe(slot: RootSlot): string {
  const what = slot.version === null ? 'its install' : `version ${slot.version}`;
  return slot.install === null
    ? `slot ${slot.bootname} (never written by RAUC)`
    : `slot ${slot.bootname} (${what} of ${slot.install.timestamp}, install #${slot.install.count})`;
}

/**
 * Whether this boot is a trial that failed, TRIAL_MINUTES after boot, from RAUC's status and the good
 * record (EMPTY_GOOD_RECORD when the file does not exist yet). Pure.
 *   - the booted slot is no root slot RAUC knows: keep (in doubt);
 *   - RAUC never wrote the booted slot (the flashed system): keep, it is no trial;
 *   - its current install was marked good (now or on an earlier boot): keep, it is no trial or it passed;
 *   - otherwise it is a trial that did not pass: roll back, but only to a slot with tries left whose
 *     current content was marked good; with none, keep (the boot counter still handles a panic or hang).
 */
export function judgeTrial(status: RootSlots, record: GoodRecord): TrialVerdict {
  const booted = status.slots.find((s) => s.bootname === status.booted);
  if (booted === undefined) {
    return {
      action: 'keep',
      reason: 'not-a-root-slot',
      words: `the booted slot ${status.booted} is not a root slot RAUC knows: nothing to judge`,
    };
  }
  if (booted.install === null) {
    return {
      action: 'keep',
      reason: 'never-installed',
      words: `${describe(booted)} is the flashed system, not a trial`,
    };
  }
  if (markedGood(record, booted)) {
    return {
      action: 'keep',
      reason: 'marked-good',
      words: `${describe(booted)} was marked good: not a trial`,
    };
  }
  const fallback = status.slots.find(
    (s) => s.bootname !== booted.bootname && s.bootGood && markedGood(record, s),
  );
  if (fallback === undefined) {
    return {
      action: 'keep',
      reason: 'no-proven-fallback',
      words: `${describe(booted)} was not marked good within ${TRIAL_MINUTES} minutes, but no other slot has tries left and was marked good: staying`,
    };
  }
  return {
    action: 'roll-back',
    slot: booted.bootname,
    to: fallback.bootname,
    words: `${describe(booted)} was not marked good within ${TRIAL_MINUTES} minutes of its trial boot: marking it bad and going back to ${describe(fallback)}`,
  };
}
