/**
 * The root side of the trial (firmware/update/trial.ts says what a trial is): thin adapters around
 * `rauc status`, the good record on /var/lib/rauc and `systemctl reboot`. Run by root oneshots of the image
 * (images/system/): `onionbox slot record-good` after `rauc status mark-good booted`
 * (onionbox-mark-good.service), `onionbox slot trial-check` TRIAL_MINUTES after boot
 * (onionbox-trial.timer). Nothing here reads anything of onionboxd's.
 *
 * Every program runs from an argument array; what it prints is parsed by the pure functions and checked
 * against their schemas. When in doubt (RAUC unreachable, output or record malformed) nothing changes: the
 * step fails with the reason, and the box stays on the slot it runs.
 */
import { readFile } from 'node:fs/promises';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { type ExecResult, exec } from '../lib/exec.js';
import {
  EMPTY_GOOD_RECORD,
  GOOD_RECORD_MAX_BYTES,
  GOOD_RECORD_PATH,
  type GoodRecord,
  judgeTrial,
  parseGoodRecord,
  parseRaucStatus,
  type RootSlots,
  recordMarkedGood,
  type TrialVerdict,
} from './trial.js';

export interface TrialRootDeps {
  /** runs a program (default: firmware/lib/exec) */
  readonly run?: (cmd: string, args: readonly string[]) => Promise<ExecResult>;
  /** the good record's path (default GOOD_RECORD_PATH) */
  readonly recordPath?: string;
  readonly now?: () => Date;
  readonly log: (line: string) => void;
}

const RAUC = '/usr/bin/rauc';
const SYSTEMCTL = '/usr/bin/systemctl';

function runner(d: TrialRootDeps): (cmd: string, args: readonly string[]) => Promise<ExecResult> {
  return d.run ?? ((cmd, args) => exec(cmd, args, { timeoutMs: 60_000, maxBuffer: 2 * 1024 * 1024 }));
}

/** RAUC's view of the slots, through its D-Bus service. */
export async function readSlots(d: TrialRootDeps): Promise<RootSlots> {
  const r = await runner(d)(RAUC, ['status', '--detailed', '--output-format=json']);
  if (!r.ok) {
    throw obxError(
      'UPDATE_SLOT_STATUS_INVALID',
      `rauc status failed (${r.code}): ${(r.stderr.trim() || r.error) ?? ''}`,
    );
  }
  return parseRaucStatus(r.stdout);
}

/** The good record; a missing file is the empty record (nothing marked good yet). */
export async function readGoodRecord(d: TrialRootDeps): Promise<GoodRecord> {
  const path = d.recordPath ?? GOOD_RECORD_PATH;
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > GOOD_RECORD_MAX_BYTES) {
      throw obxError('UPDATE_GOOD_RECORD_INVALID', `${path}: longer than ${GOOD_RECORD_MAX_BYTES} bytes`);
    }
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_GOOD_RECORD;
    if ((err as { code?: string }).code === 'OBX_ERR_UPDATE_GOOD_RECORD_INVALID') throw err;
    throw obxError('UPDATE_GOOD_RECORD_INVALID', `${path}: ${describeError(err)}`);
  }
  try {
    return parseGoodRecord(text);
  } catch (err) {
    throw obxError('UPDATE_GOOD_RECORD_INVALID', `${path}: ${describeError(err)}`);
  }
}

/**
 * After `rauc status mark-good booted`: records the booted slot's current install as good (once per
 * install: a later boot of the same install writes nothing). A record that
 * cannot be read is replaced (it can only make a later trial look unproven, never roll a good slot back:
 * the booted slot is written anew, and a slot missing from it is no fallback).
 */
export async function recordGood(d: TrialRootDeps): Promise<GoodRecord> {
  const status = await readSlots(d);
  let record: GoodRecord;
  try {
    record = await readGoodRecord(d);
  } catch (err) {
    d.log(`the good record is unreadable and is started afresh: ${describeError(err)}`);
    record = EMPTY_GOOD_RECORD;
  }
  const next = recordMarkedGood(record, status, (d.now ?? (() => new Date()))());
  const had = record.slots[status.booted];
  const now = next.slots[status.booted];
  if (had && now && JSON.stringify(had.install) === JSON.stringify(now.install)) {
    d.log(`slot ${status.booted} marked good; its install was recorded good before (${had.markedAt})`);
    return record; // the same install: no write (an SD card is written once per install, not per boot)
  }
  await atomicWriteFile(d.recordPath ?? GOOD_RECORD_PATH, `${JSON.stringify(next, null, 2)}\n`, 0o644);
  const entry = next.slots[status.booted];
  d.log(
    `slot ${status.booted} marked good (${entry?.install ? `install of ${entry.install.timestamp}, #${entry.install.count}` : 'the flashed system'})`,
  );
  return next;
}

export interface TrialCheckResult {
  readonly verdict: TrialVerdict;
  /** rolled back: RAUC's mark-bad succeeded */
  readonly markedBad: boolean;
  /** rolled back: the reboot was asked for */
  readonly rebooting: boolean;
}

/**
 * TRIAL_MINUTES after boot: judge the boot; on a failed trial, mark the booted slot bad and reboot (U-Boot
 * then boots the other slot). Should RAUC fail to mark it bad, the box reboots all the same: each boot
 * costs the trial slot one of its tries, so the boot counter brings the old slot back within two more
 * trials. Throws (and changes nothing) when RAUC's status or the record cannot be read.
 */
export async function trialCheck(d: TrialRootDeps): Promise<TrialCheckResult> {
  const status = await readSlots(d);
  const record = await readGoodRecord(d);
  const verdict = judgeTrial(status, record);
  d.log(verdict.words);
  if (verdict.action === 'keep') return { verdict, markedBad: false, rebooting: false };
  const run = runner(d);
  const bad = await run(RAUC, ['status', 'mark-bad', 'booted']);
  if (!bad.ok) {
    d.log(
      `rauc could not mark slot ${verdict.slot} bad (${bad.code}: ${(bad.stderr.trim() || bad.error) ?? ''}); rebooting all the same, the boot counter takes one of its tries`,
    );
  }
  const reboot = await run(SYSTEMCTL, ['--no-block', 'reboot']);
  if (!reboot.ok) {
    throw obxError(
      'UPDATE_ROLLBACK_FAILED',
      `the reboot back to slot ${verdict.to} was refused: ${(reboot.stderr.trim() || reboot.error) ?? ''}`,
    );
  }
  return { verdict, markedBad: bad.ok, rebooting: true };
}
