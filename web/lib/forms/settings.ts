/**
 * The settings page's forms: tor's bridges and exit countries, the clock. The tor forms are turned into
 * the config store's own types and checked with the config store's own schema (configProblems on the
 * whole candidate document, including the grammars subsystems register), so the page and the store
 * cannot disagree. Problems come back per form field, in words, with the owner's input kept as typed.
 * The password change is checked like the claim (web/lib/forms/auth.ts).
 */
import type { PageSettings } from '../../../firmware/box/api.js';
import type { TorConfig } from '../../../firmware/config/schema.js';
import { configProblems } from '../../../firmware/config/validate.js';
import { CLOCK_RANGE_TEXT, clockInRange } from '../../../firmware/lib/clock-range.js';
import { type Checked, checkbox, type FieldErrors, type FieldRef, field, fieldErrors } from './fields.js';

export const MAX_TEXTAREA = 40_000;

export interface BridgesInput {
  useBridges: boolean;
  bridges: string;
}

export interface ExitsInput {
  exitNodes: string;
  excludeExitNodes: string;
  strictNodes: boolean;
}

export function bridgesInput(body: unknown): BridgesInput {
  return {
    useBridges: checkbox(body, 'useBridges'),
    bridges: field(body, 'bridges') ?? '',
  };
}

export function exitsInput(body: unknown): ExitsInput {
  return {
    exitNodes: field(body, 'exitNodes') ?? '',
    excludeExitNodes: field(body, 'excludeExitNodes') ?? '',
    strictNodes: checkbox(body, 'strictNodes'),
  };
}

export function bridgesFromConfig(tor: TorConfig): BridgesInput {
  return {
    useBridges: tor.useBridges,
    bridges: tor.bridges.join('\n'),
  };
}

export function exitsFromConfig(tor: TorConfig): ExitsInput {
  return {
    exitNodes: tor.exitNodes.join(' '),
    excludeExitNodes: tor.excludeExitNodes.join(' '),
    strictNodes: tor.strictNodes,
  };
}

/** Bridge lines as pasted: one per line; blank lines and # comments dropped; a leading "Bridge " too. */
export function splitBridgeLines(text: string): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim().replace(/^bridge\s+/i, ''))
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export function splitCountries(text: string): string[] {
  return text
    .split(/[\s,;]+/)
    .map((c) =>
      c
        .trim()
        .toLowerCase()
        .replace(/^\{(.*)\}$/, '$1'),
    )
    .filter((c) => c !== '');
}

/** Candidate tor settings from the bridges form, validated against the store's schema. */
export function checkBridges(current: PageSettings, input: BridgesInput): Checked<TorConfig> {
  if (input.bridges.length > MAX_TEXTAREA) {
    return { ok: false, errors: { bridges: `Too much text (at most ${MAX_TEXTAREA} characters).` } };
  }
  const lines = splitBridgeLines(input.bridges);
  const tor: TorConfig = {
    ...current.tor,
    useBridges: input.useBridges,
    bridges: lines,
  };
  const errors = torProblems(current, tor, lines);
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, value: tor };
}

export function checkExits(current: PageSettings, input: ExitsInput): Checked<TorConfig> {
  if (input.exitNodes.length > 2000 || input.excludeExitNodes.length > 2000) {
    return { ok: false, errors: { exitNodes: 'Too much text.' } };
  }
  const tor: TorConfig = {
    ...current.tor,
    exitNodes: splitCountries(input.exitNodes),
    excludeExitNodes: splitCountries(input.excludeExitNodes),
    strictNodes: input.strictNodes,
  };
  const errors = torProblems(current, tor, []);
  // Stays: the store's grammar names an overlap only once the schema passed; a list the schema refused
  // ("xx1 de") would hide it.
  const both = tor.exitNodes.filter((c) => tor.excludeExitNodes.includes(c));
  if (both.length > 0 && !errors.excludeExitNodes) {
    errors.excludeExitNodes = `${both.join(', ')} cannot be both allowed and excluded.`;
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, value: tor };
}

/**
 * The store's validation of a candidate tor section, mapped to form fields in words. The store decides
 * (it checks again when the box stores them); this early run names the field in the owner's words
 * before a round trip to the box.
 */
/** Stands in for the access point's passphrase, which the page never holds (the schema needs one). */
const NEUTRAL_PASSPHRASE = 'neutral-passphrase';

export function torProblems(current: PageSettings, tor: TorConfig, lines: string[]): FieldErrors {
  // The page never holds the owner's secrets: the candidate document gets neutral ones (same schema).
  const web = { port: current.web.port, passwordHash: null, sessionKey: null };
  const ap = current.network.accessPoint;
  const network = { ...current.network, accessPoint: ap && { ...ap, passphrase: NEUTRAL_PASSPHRASE } };
  return fieldErrors(configProblems({ ...current, network, web, tor }), {
    section: 'tor',
    explain: (message, at) => explain(at, message, tor, lines),
  });
}

function explain({ name, index }: FieldRef, message: string, tor: TorConfig, lines: string[]): string {
  if (name === 'bridges') {
    if (index === undefined) {
      return /fewer|less or equal|at most 32/i.test(message) ? 'At most 32 bridge lines.' : message;
    }
    const line = lines[index] ?? '';
    if (/Expected string to match/.test(message)) {
      message = 'it contains a tab or a character other than plain letters, digits and punctuation';
    } else if (/length/i.test(message)) {
      message = 'it is longer than 1024 characters';
    }
    const shown = line.length > 60 ? `${line.slice(0, 60)}…` : line;
    return `Line ${index + 1} ("${shown}") is not a bridge line tor accepts: ${message}`;
  }
  if (name === 'exitNodes' || name === 'excludeExitNodes') {
    const list = name === 'exitNodes' ? tor.exitNodes : tor.excludeExitNodes;
    if (index !== undefined) {
      return `"${list[index] ?? ''}" is not a two-letter country code (like de, nl or ch).`;
    }
    if (/unique/i.test(message)) return 'A country is listed twice.';
    if (/fewer|less or equal/i.test(message)) return 'At most 64 countries.';
    return message;
  }
  return message;
}

/** The time from the clock form: the browser's own time (set by the script) or a typed UTC time. */
export function checkClock(body: unknown): Checked<number> {
  const fromScript = field(body, 'epochMs');
  const typed = (field(body, 'clock') ?? '').trim();
  let ms: number;
  if (fromScript !== undefined && /^[0-9]{1,15}$/.test(fromScript)) {
    ms = Number(fromScript);
  } else {
    const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?$/.exec(typed);
    if (!m) return { ok: false, errors: { clock: 'Type the date and time as YYYY-MM-DD HH:MM (UTC).' } };
    const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
    ms = Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s);
    const back = new Date(ms);
    if (back.getUTCMonth() !== (mo ?? 1) - 1 || back.getUTCDate() !== d || (h ?? 0) > 23 || (mi ?? 0) > 59) {
      return { ok: false, errors: { clock: 'That date or time does not exist.' } };
    }
  }
  if (!clockInRange(ms)) {
    return { ok: false, errors: { clock: `That time is not plausible (it must be ${CLOCK_RANGE_TEXT}).` } };
  }
  return { ok: true, value: ms };
}

export function formatClockInput(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}
