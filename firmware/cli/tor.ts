/**
 * `onionbox tor status|newnym|circuits|check|bridges`: talk to the running onionboxd over its control socket
 * (handlers in firmware/tor/ipc.ts).
 */

import { parseCliArgs } from '../args.js';
import type { CircuitInfo } from '../box-api.js';
import { obxError } from '../errors.js';
import type { TorStatusReply } from '../tor/ipc.js';
import { daemonCall } from './status.js';
import type { CliCommand } from './types.js';

/** `--json` or nothing. */
function jsonFlag(argv: string[]): boolean {
  return parseCliArgs(argv, { json: { type: 'boolean' } }).values.json === true;
}

/** One line per circuit: `id STATUS purpose  nick(cc) -> nick(cc) -> nick(cc)`. */
export function formatCircuits(circuits: CircuitInfo[]): string {
  if (circuits.length === 0) return 'no circuits\n';
  return circuits
    .map((c) => {
      const path = c.hops.map(
        (h) => `${h.nickname || h.fingerprint.slice(0, 8)}${h.country ? `(${h.country})` : ''}`,
      );
      return `${c.id.padStart(4)} ${c.status.padEnd(8)} ${c.purpose.padEnd(16)} ${path.join(' -> ')}\n`;
    })
    .join('');
}

export function formatTorStatus(s: TorStatusReply): string {
  const lines = [
    `phase      ${s.phase}${s.pid ? ` (pid ${s.pid})` : ''}`,
    `bootstrap  ${s.progress}% ${s.summary}`,
    `ready      ${s.ready ? 'yes: an exit circuit is built' : 'no'}`,
  ];
  if (s.circuits) lines.push(`circuits   ${s.circuits.length} built`);
  for (const w of s.warnings.slice(-5)) lines.push(`warning    ${w}`);
  let out = `${lines.join('\n')}\n`;
  if (s.circuits && s.circuits.length > 0) out += formatCircuits(s.circuits);
  return out;
}

export const torStatusCommand: CliCommand = {
  name: 'tor status',
  summary: "Show tor's bootstrap progress, readiness, warnings and built circuits",
  usage: 'onionbox tor status [--json]',
  async run(argv, ctx) {
    const json = jsonFlag(argv);
    const result = (await daemonCall(ctx.stateDir, 'tor.status')) as TorStatusReply;
    ctx.out(json ? `${JSON.stringify(result, null, 2)}\n` : formatTorStatus(result));
    return 0;
  },
};

export const torNewnymCommand: CliCommand = {
  name: 'tor newnym',
  summary: 'New identity: new circuits for new connections (SIGNAL NEWNYM)',
  usage: 'onionbox tor newnym',
  async run(argv, ctx) {
    parseCliArgs(argv, {});
    // tor honours one NEWNYM per 10 s; the daemon waits that out, so allow more than the usual 10 s.
    await daemonCall(ctx.stateDir, 'tor.newnym', {}, 30_000);
    ctx.out('new identity requested: new connections use new circuits\n');
    return 0;
  },
};

export const torCircuitsCommand: CliCommand = {
  name: 'tor circuits',
  summary: "List tor's circuits with their relays and countries",
  usage: 'onionbox tor circuits [--json]',
  async run(argv, ctx) {
    const json = jsonFlag(argv);
    const result = (await daemonCall(ctx.stateDir, 'tor.circuits')) as CircuitInfo[];
    ctx.out(json ? `${JSON.stringify(result, null, 2)}\n` : formatCircuits(result));
    return 0;
  },
};

export const torCheckCommand: CliCommand = {
  name: 'tor check',
  summary: 'Ask the fixed check service, through tor, whether traffic arrives from tor',
  usage: 'onionbox tor check [--json]',
  async run(argv, ctx) {
    const json = jsonFlag(argv);
    const result = (await daemonCall(ctx.stateDir, 'tor.check', {}, 45_000)) as {
      isTor: boolean;
      ip: string;
      url: string;
    };
    ctx.out(
      json
        ? `${JSON.stringify(result, null, 2)}\n`
        : `${result.isTor ? 'yes: traffic through tor arrives from a tor exit' : 'NO: the check service did not see a tor exit'} (${result.ip}, ${result.url})\n`,
    );
    return result.isTor ? 0 : 1;
  },
};

/** `onionbox tor bridges LINE...` (each line one argument) or `onionbox tor bridges --off`. */
export const torBridgesCommand: CliCommand = {
  name: 'tor bridges',
  summary: 'Use these bridges (as the page does: checked, applied, rolled back if tor cannot use them)',
  usage: 'onionbox tor bridges "LINE" ["LINE" ...] | --off',
  async run(argv, ctx) {
    const { values, positionals } = parseCliArgs(
      argv,
      { off: { type: 'boolean' } },
      { positionals: { max: Number.POSITIVE_INFINITY } },
    );
    const off = values.off === true;
    if (off === positionals.length > 0)
      throw obxError('CLI_USAGE', 'give bridge lines, one argument each, or --off');
    const result = (await daemonCall(
      ctx.stateDir,
      'tor.bridges',
      { bridges: off ? [] : positionals },
      150_000,
    )) as {
      ok: boolean;
      rolledBack: boolean;
      message: string;
    };
    ctx.out(`${result.message}\n`);
    return result.ok ? 0 : 1;
  },
};

export const TOR_COMMANDS: readonly CliCommand[] = [
  torStatusCommand,
  torNewnymCommand,
  torCircuitsCommand,
  torBridgesCommand,
  torCheckCommand,
];
