/**
 * Root steps of the A/B slots (firmware/update/trial.ts, trial-root.ts), run by the image's root oneshots,
 * never by onionboxd:
 *   `onionbox slot record-good`  after `rauc status mark-good booted` (onionbox-mark-good.service): records
 *                                the booted slot's current install as marked good on /var/lib/rauc
 *   `onionbox slot trial-check`  TRIAL_MINUTES after boot (onionbox-trial.timer): a trial of a newly
 *                                installed slot that was not marked good is marked bad, and the box reboots
 *                                into the other slot
 * Both refuse unless run as root, and read nothing of the firmware user's.
 */
import { describeError, obxError } from '../errors.js';
import { recordGood, trialCheck } from '../update/trial-root.js';
import { parseCliArgs } from './args.js';
import type { CliCommand, CliContext } from './types.js';

function rootOnly(argv: string[], command: string): void {
  parseCliArgs(argv, {});
  if (process.getuid?.() !== 0) throw obxError('CLI_USAGE', `${command} must run as root`);
}

function logTo(ctx: CliContext): (line: string) => void {
  return (line) => ctx.out(`${line}\n`);
}

export const slotRecordGoodCommand: CliCommand = {
  name: 'slot record-good',
  summary: 'Root, after RAUC marked the booted slot good: record its current install as good',
  usage: 'onionbox slot record-good',
  async run(argv, ctx) {
    rootOnly(argv, 'slot record-good');
    await recordGood({ log: logTo(ctx) });
    return 0;
  },
};

export const slotTrialCheckCommand: CliCommand = {
  name: 'slot trial-check',
  summary: 'Root, minutes after boot: roll back a trial boot of a new slot that was not marked good',
  usage: 'onionbox slot trial-check',
  async run(argv, ctx) {
    rootOnly(argv, 'slot trial-check');
    try {
      const r = await trialCheck({ log: logTo(ctx) });
      if (r.verdict.action === 'roll-back') ctx.out(`rebooting into slot ${r.verdict.to}\n`);
      return 0;
    } catch (err) {
      ctx.err(`in doubt, nothing changed: ${describeError(err)}\n`);
      return 1;
    }
  },
};

export const SLOT_COMMANDS: readonly CliCommand[] = [slotRecordGoodCommand, slotTrialCheckCommand];
