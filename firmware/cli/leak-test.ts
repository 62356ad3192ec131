/** `onionbox leak-test [--json]`: runs the box's leak self-test (as the page's button does). */

import { parseCliArgs } from '../args.js';
import type { LeakReport } from '../box-api.js';
import { daemonCall } from './status.js';
import type { CliCommand } from './types.js';

const MARK = { pass: 'ok     ', fail: 'LEAK   ', 'not-run': 'not run' } as const;

export function formatLeakReport(r: LeakReport): string {
  const lines = r.checks.map((c) => `${MARK[c.outcome]}  ${c.title}\n         ${c.detail}`);
  lines.push(r.ok ? 'no leak found' : 'LEAK FOUND: switch the kill switch on until this is fixed');
  return `${lines.join('\n')}\n`;
}

export const leakTestCommand: CliCommand = {
  name: 'leak-test',
  summary: "Run the box's leak self-test (exit status 1 when a check finds a leak)",
  usage: 'onionbox leak-test [--json]',
  async run(argv, ctx) {
    const json = parseCliArgs(argv, { json: { type: 'boolean' } }).values.json === true;
    const report = (await daemonCall(ctx.stateDir, 'box.leakTest', {}, 60_000)) as LeakReport;
    ctx.out(json ? `${JSON.stringify(report, null, 2)}\n` : formatLeakReport(report));
    return report.ok ? 0 : 1;
  },
};
