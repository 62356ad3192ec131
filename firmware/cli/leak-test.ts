/** `onionbox leak-test [--json]`: runs the box's leak self-test (as the page's button does). */

import type { LeakReport } from '../box/api.js';
import { daemonQueryCommand } from './status.js';

const MARK = { pass: 'ok     ', fail: 'LEAK   ', 'not-run': 'not run' } as const;

export function formatLeakReport(r: LeakReport): string {
  const lines = r.checks.map((c) => `${MARK[c.outcome]}  ${c.title}\n         ${c.detail}`);
  lines.push(r.ok ? 'no leak found' : 'LEAK FOUND: switch the kill switch on until this is fixed');
  return `${lines.join('\n')}\n`;
}

export const leakTestCommand = daemonQueryCommand<LeakReport>({
  name: 'leak-test',
  summary: "Run the box's leak self-test (exit status 1 when a check finds a leak)",
  usage: 'onionbox leak-test',
  call: 'box.leakTest',
  timeoutMs: 60_000,
  format: formatLeakReport,
  exitCode: (report) => (report.ok ? 0 : 1),
});
