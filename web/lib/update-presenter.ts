/** The update page's view: the updater's status and warnings in words (pure). */
import type { UpdateStatus } from '../../firmware/update/service.js';
import { ageInWords, bytesInWords, phaseInWords } from '../../firmware/update/words.js';

export interface UpdateView {
  running: string;
  age: string | null;
  state: string;
  lastCheck: string;
  lastCheckOk: boolean | null;
  available: { version: string; released: string; size: string; notes: string[]; source: string } | null;
  progress: { done: number; total: number; percent: number } | null;
  policy: 'night' | 'ask';
  canCheck: boolean;
  canInstall: boolean;
  /** A check, download or install is under way: the page reloads itself. */
  busy: boolean;
  failed: string[];
  warnings: string[];
  enabled: boolean;
}

export function describeUpdate(s: UpdateStatus, warnings: string[], now: Date): UpdateView {
  const busy = ['checking', 'downloading', 'verifying', 'installing'].includes(s.phase);
  const p = s.progress;
  return {
    running: s.running,
    age: s.built ? `built ${s.built.slice(0, 10)}, ${ageInWords(new Date(s.built), now)} ago` : null,
    state: phaseInWords(s),
    lastCheck: s.lastCheck
      ? `${s.lastCheck.at.slice(0, 16).replace('T', ' ')} UTC: ${s.lastCheck.result}`
      : 'The box has not checked for an update yet.',
    lastCheckOk: s.lastCheck ? s.lastCheck.ok : null,
    available: s.available
      ? {
          version: s.available.version,
          released: s.available.released.slice(0, 10),
          size: bytesInWords(s.available.size),
          notes: s.available.notes.split('\n'),
          source: s.available.source,
        }
      : null,
    progress:
      p && p.total > 0
        ? { done: p.done, total: p.total, percent: Math.floor((100 * p.done) / p.total) }
        : null,
    policy: s.policy,
    canCheck: s.enabled && !busy,
    canInstall: s.enabled && (s.phase === 'available' || s.phase === 'ready'),
    busy,
    failed: [...s.failed],
    warnings,
    enabled: s.enabled,
  };
}
