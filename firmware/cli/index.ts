/**
 * `onionbox`: the box's command line. Global flag: --state-dir DIR (default /var/lib/onionbox, or
 * $ONIONBOX_STATE_DIR, or the running simulator's box when started from its checkout). Subcommands are matched on their longest name prefix ("firewall render").
 */
import { parseArgs } from 'node:util';
import { describeError, isObxError } from '../errors.js';
import { DEFAULT_STATE_DIR, parseCliArgs, stringOption } from './args.js';
import { boardHandoverCommand, boardPressCommand, boardSwitchCommand } from './board.js';
import { firewallCommands } from './firewall.js';
import { fwCfgHandoverCommand } from './fw-cfg.js';
import { leakTestCommand } from './leak-test.js';
import { moatAskCommand } from './moat.js';
import { NET_COMMANDS } from './net.js';
import { readSimInfo, SIM_COMMANDS } from './sim.js';
import { SLOT_COMMANDS } from './slot.js';
import { statusCommand } from './status.js';
import { TOR_COMMANDS } from './tor.js';
import type { CliCommand, CliContext } from './types.js';
import { UPDATE_COMMANDS } from './update.js';
import { WIFI_COMMANDS } from './wifi.js';

/** Options before the command word. */
const GLOBAL_OPTIONS = {
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const COMMANDS: readonly CliCommand[] = [
  statusCommand,
  boardSwitchCommand,
  boardPressCommand,
  boardHandoverCommand,
  fwCfgHandoverCommand,
  ...firewallCommands,
  leakTestCommand,
  ...TOR_COMMANDS,
  moatAskCommand,
  ...NET_COMMANDS,
  ...WIFI_COMMANDS,
  ...UPDATE_COMMANDS,
  ...SLOT_COMMANDS,
  ...SIM_COMMANDS,
];

export function usage(commands: readonly CliCommand[] = COMMANDS): string {
  const lines = ['Usage: onionbox [--state-dir DIR] COMMAND [ARGS]', '', 'Commands:'];
  for (const c of commands) lines.push(`  ${c.usage.padEnd(60)} ${c.summary}`);
  return `${lines.join('\n')}\n`;
}

export function findCommand(
  argv: string[],
  commands: readonly CliCommand[] = COMMANDS,
): { command: CliCommand; rest: string[] } | null {
  let best: { command: CliCommand; rest: string[] } | null = null;
  for (const command of commands) {
    const words = command.name.split(' ');
    if (
      words.every((w, i) => argv[i] === w) &&
      (!best || words.length > best.command.name.split(' ').length)
    ) {
      best = { command, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function runCli(argv: string[], ctx: Partial<CliContext> = {}): Promise<number> {
  const out = ctx.out ?? ((t: string) => process.stdout.write(t));
  const err = ctx.err ?? ((t: string) => process.stderr.write(t));
  // Default: the box's own state directory; from a checkout with a running simulator, the simulated box's.
  let stateDir =
    ctx.stateDir ?? process.env.ONIONBOX_STATE_DIR ?? readSimInfo()?.box.stateDir ?? DEFAULT_STATE_DIR;
  // Global options stand before the command word; the command parses its own (parseCliArgs, strict).
  const { tokens } = parseArgs({
    args: argv,
    options: GLOBAL_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const cut = tokens.find((tk) => tk.kind !== 'option')?.index ?? argv.length;
  let global: ReturnType<typeof parseCliArgs>['values'];
  try {
    global = parseCliArgs(argv.slice(0, cut), GLOBAL_OPTIONS).values;
  } catch (e) {
    err(`onionbox: ${describeError(e)}\n\n${usage()}`);
    return 2;
  }
  stateDir = stringOption(global, 'state-dir') ?? stateDir;
  const args = argv.slice(cut);
  if (args[0] === '--') args.shift();
  if (global.help === true || args[0] === 'help') {
    out(usage());
    return 0;
  }
  if (args.length === 0) {
    out(usage());
    return 2;
  }
  const found = findCommand(args);
  if (!found) {
    err(`onionbox: unknown command "${args.join(' ')}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await found.command.run(found.rest, { stateDir, out, err });
  } catch (e) {
    err(`onionbox ${found.command.name}: ${describeError(e)}\n`);
    if (isObxError(e, 'CLI_USAGE')) {
      err(`usage: ${found.command.usage}\n`);
      return 2;
    }
    return 1;
  }
}
