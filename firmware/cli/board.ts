/**
 * `onionbox board switch on|off` and `onionbox board press [--hold SECONDS]`: flip the simulated board's
 * kill switch and press its claim button (onionboxd --simulate). On a real board onionboxd refuses with
 * OBX_ERR_BOARD_NOT_SIMULATED: the physical switch is the only one there.
 */

import { obxError } from '../errors.js';
import { parseCliArgs, stringOption } from './args.js';
import { daemonCall } from './status.js';
import type { CliCommand } from './types.js';

export const boardSwitchCommand: CliCommand = {
  name: 'board switch',
  summary: 'Simulator: turn the kill switch on (devices cut off) or off',
  usage: 'onionbox board switch on|off',
  async run(argv, ctx) {
    const [position] = parseCliArgs(argv, {}, { positionals: { max: 1 } }).positionals;
    if (position !== 'on' && position !== 'off') throw obxError('CLI_USAGE', 'say "on" or "off"');
    const result = (await daemonCall(ctx.stateDir, 'board.switch', { engaged: position === 'on' })) as {
      state: string;
      firewallMode: string;
    };
    ctx.out(`kill switch ${position}: box ${result.state}, firewall ${result.firewallMode}\n`);
    return 0;
  },
};

export const boardPressCommand: CliCommand = {
  name: 'board press',
  summary: 'Simulator: press the claim button (--hold SECONDS to hold it)',
  usage: 'onionbox board press [--hold SECONDS]',
  async run(argv, ctx) {
    const hold = stringOption(parseCliArgs(argv, { hold: { type: 'string' } }).values, 'hold');
    if (hold !== undefined && !/^\d{1,2}$/.test(hold))
      throw obxError('CLI_USAGE', '--hold takes SECONDS (0-60)');
    const holdMs = hold === undefined ? 0 : Number(hold) * 1000;
    if (holdMs > 60_000) throw obxError('CLI_USAGE', '--hold is at most 60 seconds');
    await daemonCall(ctx.stateDir, 'board.press', { holdMs });
    ctx.out(holdMs > 0 ? `claim button held for ${holdMs / 1000} s\n` : 'claim button pressed\n');
    return 0;
  },
};
