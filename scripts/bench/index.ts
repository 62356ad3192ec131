/**
 * `npm run bench`: runs every suite (or those named: `npm run bench -- firmware`), prints a table and
 * writes bench-results.json. Record the numbers with machine and date in BENCHMARKS.md.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { abuseSuite } from './abuse.js';
import { boardSuite } from './board.js';
import { censoredSuite } from './censored.js';
import { firewallSuite } from './firewall.js';
import { firmwareSuite } from './firmware.js';
import { netSuite } from './net.js';
import { torSuite } from './tor.js';
import type { BenchResult, BenchSuite } from './types.js';
import { webSuite } from './web.js';

export const SUITES: readonly BenchSuite[] = [
  firmwareSuite,
  firewallSuite,
  boardSuite,
  webSuite,
  torSuite,
  netSuite,
  abuseSuite,
  censoredSuite,
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !SUITES.some((s) => s.name === w));
if (unknown.length > 0) {
  process.stderr.write(
    `bench: unknown suite(s) ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}\n`,
  );
  process.exit(2);
}
const machine = `${cpus().length}x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const results: (BenchResult & { suite: string })[] = [];
let failed = false;
for (const suite of SUITES) {
  if (wanted.length > 0 && !wanted.includes(suite.name)) continue;
  if (suite.needs?.includes('root') && process.getuid?.() !== 0) {
    process.stderr.write(`bench: ${suite.name} needs root, skipped\n`);
    continue;
  }
  process.stderr.write(`bench: running ${suite.name} ...\n`);
  try {
    for (const r of await suite.run()) results.push({ ...r, suite: suite.name });
  } catch (err) {
    failed = true;
    process.stderr.write(`bench: ${suite.name} failed: ${(err as Error).stack ?? String(err)}\n`);
  }
}
const rows = results.map((r) => [
  r.suite,
  r.name,
  `${r.value} ${r.unit}`,
  r.goal,
  r.pass ? 'yes' : 'NO',
  r.detail ? JSON.stringify(r.detail) : '',
]);
const header = ['suite', 'metric', 'value', 'goal', 'met', 'detail'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
process.stdout.write(`Machine: ${machine}\nDate: ${new Date().toISOString()}\n\n`);
process.stdout.write(`${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
for (const r of rows) process.stdout.write(`${line(r)}\n`);
writeFileSync(
  'bench-results.json',
  `${JSON.stringify({ machine, date: new Date().toISOString(), results }, null, 2)}\n`,
);
process.exit(failed ? 1 : 0);
