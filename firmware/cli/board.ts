/**
 * `onionbox board switch on|off` and `onionbox board press [--hold SECONDS]`: flip the simulated board's
 * kill switch and press its claim button (onionboxd --simulate). On a real board onionboxd refuses with
 * OBX_ERR_BOARD_NOT_SIMULATED: the physical switch is the only one there.
 *
 * `onionbox board handover --user NAME`: root only, run by onionboxd.service before the daemon starts
 * (ExecStartPre=+): exports the configured GPIO lines and gives them and the OLED's bus to the firmware's
 * user (board/gpio/handover.ts says why).
 */
import { join } from 'node:path';
import { handOver, readConfigFileNoFollow } from '../../board/gpio/handover.js';
import { type BoardConfig, defaultConfig } from '../config/schema.js';
import { parseConfigText } from '../config/store.js';
import { describeError, obxError } from '../errors.js';
import { systemUser } from '../tor/process.js';
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

/**
 * A root step's `--user NAME` (the firmware's system user, allowlisted) and its uid and gid; refuses
 * unless run as root.
 */
export async function rootStepUser(
  argv: string[],
  command: string,
): Promise<{ user: string; owner: { uid: number; gid: number } }> {
  const user = stringOption(parseCliArgs(argv, { user: { type: 'string' } }).values, 'user');
  if (user === undefined || !/^[a-z_][a-z0-9_-]{0,31}$/.test(user))
    throw obxError('CLI_USAGE', "--user NAME (the firmware's system user) is required");
  if (process.getuid?.() !== 0) throw obxError('CLI_USAGE', `${command} must run as root`);
  const owner = await systemUser(user).catch(() => {
    throw obxError('CLI_USAGE', `no system user "${user}"`);
  });
  return { user, owner };
}

export const boardHandoverCommand: CliCommand = {
  name: 'board handover',
  summary: 'Root, before onionboxd: give the configured GPIO lines and OLED bus to the firmware user',
  usage: 'onionbox board handover --user NAME',
  async run(argv, ctx) {
    const { user, owner } = await rootStepUser(argv, 'board handover');
    const board = await boardSettings(ctx.stateDir, ctx.err);
    const result = await handOver({
      config: board,
      uid: owner.uid,
      gid: owner.gid,
      log: (l) => ctx.out(`${l}\n`),
    });
    ctx.out(
      `${result.handed.length} line(s) of ${result.chip.label} handed to ${user}; OLED bus ${result.i2c}${result.failed.length > 0 ? `; ${result.failed.length} failed` : ''}\n`,
    );
    return result.failed.length === 0 ? 0 : 1;
  },
};

/**
 * The board settings the daemon will use: config.json, else its last good copy, else the defaults (a
 * fresh box). The files are the firmware user's, so they are read without following a link.
 */
async function boardSettings(stateDir: string, err: (t: string) => void): Promise<BoardConfig> {
  for (const file of ['config.json', 'config.json.bak']) {
    try {
      return parseConfigText(await readConfigFileNoFollow(join(stateDir, file))).board;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') err(`${file}: ${describeError(e)}\n`);
    }
  }
  return defaultConfig().board;
}
