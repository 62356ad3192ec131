/** What the leak self-test page shows: a pure presenter of the box's LeakReport. */
import type { LeakOutcome, LeakReport } from '../../firmware/box/api.js';

export interface LeakCheckView {
  id: string;
  title: string;
  /** 'Passed', 'LEAK' or 'Not run'. */
  label: string;
  tone: 'ok' | 'bad' | 'wait';
  detail: string;
}

export interface LeakReportView {
  headline: string;
  tone: 'ok' | 'bad';
  /** "Ran 3 minutes ago, took 2.1 s." */
  when: string;
  checks: LeakCheckView[];
  notRun: number;
}

const LABEL: Record<LeakOutcome, { label: string; tone: LeakCheckView['tone'] }> = {
  pass: { label: 'Passed', tone: 'ok' },
  fail: { label: 'LEAK', tone: 'bad' },
  'not-run': { label: 'Not run', tone: 'wait' },
};

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'} ago`;
  const h = Math.round(m / 60);
  return `${h} hour${h === 1 ? '' : 's'} ago`;
}

export function describeLeakReport(report: LeakReport | null, now: number): LeakReportView | null {
  if (report === null) return null;
  const checks = report.checks.map((c) => ({
    id: c.id,
    title: c.title,
    detail: c.detail,
    ...LABEL[c.outcome],
  }));
  const failed = report.checks.filter((c) => c.outcome === 'fail').length;
  const notRun = report.checks.filter((c) => c.outcome === 'not-run').length;
  const headline = report.ok
    ? notRun === 0
      ? 'No leak found: every check passed.'
      : `No leak found, but ${notRun} check${notRun === 1 ? '' : 's'} could not run (see below).`
    : `${failed} check${failed === 1 ? '' : 's'} found a leak. Switch the kill switch on until this is fixed.`;
  return {
    headline,
    tone: report.ok ? 'ok' : 'bad',
    when: `Ran ${ago(now - report.at)}, took ${(report.durationMs / 1000).toFixed(1)} s.`,
    checks,
    notRun,
  };
}
