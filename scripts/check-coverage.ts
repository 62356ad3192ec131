/**
 * Enforces the coverage thresholds in package.json ("coverageThresholds") against the summary tap wrote
 * (.tap/report/coverage-summary.json). tap's own gate is all-or-nothing; this one is a real threshold.
 */
import { readFileSync } from 'node:fs';

type Metric = 'lines' | 'statements' | 'functions' | 'branches';
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  coverageThresholds?: Record<Metric, number>;
};
const thresholds = pkg.coverageThresholds;
if (!thresholds) {
  process.stderr.write('check-coverage: package.json has no "coverageThresholds"\n');
  process.exit(1);
}
let summary: { total: Record<Metric, { pct: number }> };
try {
  summary = JSON.parse(readFileSync('.tap/report/coverage-summary.json', 'utf8')) as typeof summary;
} catch (err) {
  process.stderr.write(`check-coverage: no coverage summary from tap (${(err as Error).message})\n`);
  process.exit(1);
}
let failed = false;
for (const [metric, min] of Object.entries(thresholds) as [Metric, number][]) {
  const pct = summary.total[metric]?.pct ?? 0;
  const ok = pct >= min;
  if (!ok) failed = true;
  process.stdout.write(
    `coverage ${metric.padEnd(10)} ${pct.toFixed(2).padStart(6)} % (minimum ${min} %) ${ok ? 'ok' : 'TOO LOW'}\n`,
  );
}
process.exit(failed ? 1 : 0);
