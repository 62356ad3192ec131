/**
 * `onionbox tor status|newnym|circuits|check|bridges`: talk to the running onionboxd over its control socket
 * (handlers in firmware/control/commands.ts).
 */

import type { CircuitInfo } from '../box/api.js';
import type { TorStatusReply } from '../control/commands.js';
import { obxError } from '../errors.js';
import { parseCliArgs } from './args.js';
import { daemonCall, daemonQueryCommand } from './status.js';
import type { CliCommand } from './types.js';

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

export const torStatusCommand = daemonQueryCommand<TorStatusReply>({
  name: 'tor status',
  summary: "Show tor's bootstrap progress, readiness, warnings and built circuits",
  usage: 'onionbox tor status',
  call: 'tor.status',
  format: formatTorStatus,
});

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

export const torCircuitsCommand = daemonQueryCommand<CircuitInfo[]>({
  name: 'tor circuits',
  summary: "List tor's circuits with their relays and countries",
  usage: 'onionbox tor circuits',
  call: 'tor.circuits',
  format: formatCircuits,
});

export const torCheckCommand = daemonQueryCommand<{ isTor: boolean; ip: string; url: string }>({
  name: 'tor check',
  summary: 'Ask the fixed check service, through tor, whether traffic arrives from tor',
  usage: 'onionbox tor check',
  call: 'tor.check',
  timeoutMs: 45_000,
  format: (r) =>
    `${r.isTor ? 'yes: traffic through tor arrives from a tor exit' : 'NO: the check service did not see a tor exit'} (${r.ip}, ${r.url})\n`,
  exitCode: (r) => (r.isTor ? 0 : 1),
});

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
