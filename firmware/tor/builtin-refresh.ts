/**
 * Refreshing the built-in bridge lines over tor (issue 21). Tor Browser's built-in lines change several
 * times a year; a box keeps the release's (firmware/tor/builtin-bridges.ts) only until it first routes:
 * then onionboxd asks Moat's `/circumvention/builtin` through tor (firmware/tor/builtin-refresher.ts, the
 * adapter) and stores the answer in its state directory. Pure here: the stored file's one schema, the
 * answer turned into what is stored (every line through the bridge grammar), the schedule (after each
 * boot once routing, then once a day, a growing wait after failures), what the assist then tries, and the
 * words the status shows.
 *
 * Never the owner's own bridges: these lines are only ever the assist's last step (its built-in part).
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { isObxError, obxError } from '../errors.js';
import { parseJsonChecked } from '../lib/schema-problems.js';
import { BUILTIN_BRIDGES } from './builtin-bridges.js';
import { parseBridgeLine } from './grammar.js';
import { parseMoatBuiltin } from './moat.js';

/** The stored file, in onionboxd's state directory. */
export const BUILTIN_FILE = 'builtin-bridges.json';

/** The transports whose built-in lines are kept (the grammar knows them; the assist tries obfs4 today). */
export const BUILTIN_REFRESH_TRANSPORTS: readonly string[] = Object.freeze([
  'obfs4',
  'webtunnel',
  'snowflake',
]);

/** Once a day, after the refresh of this boot. */
export const REFRESH_INTERVAL_MS = 24 * 60 * 60_000;
/** After a failure: 10 minutes, doubling, at most 6 hours. */
export const RETRY_FIRST_MS = 10 * 60_000;
export const RETRY_MAX_MS = 6 * 60 * 60_000;

/** The built-in lines as stored: when they were fetched, and the lines by transport (grammar-printed). */
export interface StoredBuiltin {
  refreshedAt: Date;
  lines: Record<string, string[]>;
}

const StoredSchema = Type.Object(
  {
    version: Type.Literal(1),
    refreshedAt: Type.String({ maxLength: 40 }),
    lines: Type.Record(
      Type.RegExp(/^[a-z][a-z0-9_]{0,31}$/),
      Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { maxItems: 64 }),
    ),
  },
  { additionalProperties: false },
);
const storedCheck = TypeCompiler.Compile(StoredSchema);

/** The file's text (version 1). */
export function serializeBuiltin(s: StoredBuiltin): string {
  return `${JSON.stringify({ version: 1, refreshedAt: s.refreshedAt.toISOString(), lines: s.lines }, null, 2)}\n`;
}

/**
 * The stored file read back: its schema, a real date, every line through the bridge grammar and of its
 * transport, at least one obfs4 line. Anything else throws OBX_ERR_TOR_BUILTIN_STORE_INVALID (the caller
 * ignores the file and uses the release's lines).
 */
export function parseStoredBuiltin(text: string): StoredBuiltin {
  const doc = parseJsonChecked(text, storedCheck, 'TOR_BUILTIN_STORE_INVALID');
  const at = new Date(doc.refreshedAt);
  if (Number.isNaN(at.getTime())) throw obxError('TOR_BUILTIN_STORE_INVALID', 'refreshedAt is not a date');
  const lines: Record<string, string[]> = {};
  for (const [transport, list] of Object.entries(doc.lines)) {
    if (!BUILTIN_REFRESH_TRANSPORTS.includes(transport))
      throw obxError('TOR_BUILTIN_STORE_INVALID', `transport ${transport} is not kept`);
    for (const [i, l] of list.entries()) {
      let t: string;
      try {
        t = parseBridgeLine(l).transport;
      } catch (err) {
        throw obxError('TOR_BUILTIN_STORE_INVALID', `${transport}/${i}: ${(err as Error).message}`);
      }
      if (t !== transport) throw obxError('TOR_BUILTIN_STORE_INVALID', `${transport}/${i}: a ${t} line`);
    }
    lines[transport] = [...list];
  }
  if ((lines.obfs4?.length ?? 0) === 0) throw obxError('TOR_BUILTIN_STORE_INVALID', 'no obfs4 line');
  return { refreshedAt: at, lines };
}

/**
 * Moat's `builtin` answer turned into what is stored: the schema, then every line through the grammar
 * (a line that fails, or of another transport, is dropped and counted). An answer that is not a builtin
 * answer, or has no usable obfs4 line (the one transport the assist tries), changes nothing: it throws
 * OBX_ERR_TOR_BUILTIN_REFRESH_FAILED with why.
 */
export function builtinFromAnswer(text: string, now: Date): { stored: StoredBuiltin; dropped: string[] } {
  let parsed: { builtin: Record<string, string[]>; dropped: string[] };
  try {
    parsed = parseMoatBuiltin(text, BUILTIN_REFRESH_TRANSPORTS);
  } catch (err) {
    if (isObxError(err, 'TOR_MOAT_ANSWER_INVALID'))
      throw obxError('TOR_BUILTIN_REFRESH_FAILED', `not a built-in answer: ${err.message}`, {
        cause: err,
      });
    throw err;
  }
  if ((parsed.builtin.obfs4?.length ?? 0) === 0)
    throw obxError(
      'TOR_BUILTIN_REFRESH_FAILED',
      `the answer has no usable obfs4 line (${parsed.dropped.length} dropped)`,
      { details: Object.fromEntries(parsed.dropped.map((d, i) => [String(i), d])) },
    );
  return { stored: { refreshedAt: now, lines: parsed.builtin }, dropped: parsed.dropped };
}

/** What the schedule knows: the stored lines' date, and this boot's attempts. */
export interface RefreshState {
  /** tor routes (ready, firewall routing): nothing is fetched otherwise. */
  routing: boolean;
  /** When the stored lines were fetched (null: none stored). */
  lastSuccess: Date | null;
  /** This boot's last attempt (null: none yet). */
  lastAttempt: Date | null;
  /** Failures since the last success (this boot). */
  failures: number;
  /** A refresh succeeded since this boot. */
  doneThisBoot: boolean;
}

/** The wait after `failures` failures in a row (10 min, 20, 40, ... at most 6 h). */
export function retryDelay(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 20), RETRY_MAX_MS);
}

/**
 * Refresh now, later (at), or not before tor routes (at null). After each boot once routing; then once
 * a day after the last success; after a failure, not before the backoff has passed. A stored date in the
 * future (the clock was wrong then, or is now) counts from this boot's last attempt instead.
 */
export function refreshDecision(s: RefreshState, now: Date): { due: true } | { due: false; at: Date | null } {
  if (!s.routing) return { due: false, at: null };
  const t = now.getTime();
  let at: number;
  if (s.failures > 0 && s.lastAttempt !== null) at = s.lastAttempt.getTime() + retryDelay(s.failures);
  else if (!s.doneThisBoot || s.lastSuccess === null) return { due: true };
  else {
    const base =
      s.lastSuccess.getTime() > t && s.lastAttempt !== null
        ? s.lastAttempt.getTime()
        : s.lastSuccess.getTime();
    at = base + REFRESH_INTERVAL_MS;
  }
  return at <= t ? { due: true } : { due: false, at: new Date(at) };
}

/**
 * The lines the assist's built-in part uses: a test network's own (data standing in for the release's,
 * as in tests today), else the stored refreshed lines, else undefined (the release's, builtin-bridges.ts).
 */
export function builtinLinesForAssist(
  testNetworkLines: readonly string[] | undefined,
  stored: StoredBuiltin | null,
): readonly string[] | undefined {
  if (testNetworkLines !== undefined) return testNetworkLines;
  if (stored === null) return undefined;
  return BUILTIN_REFRESH_TRANSPORTS.flatMap((t) => stored.lines[t] ?? []);
}

/** How many lines per transport the box would use: the stored ones, else the release's. */
export function builtinCounts(stored: StoredBuiltin | null): Record<string, number> {
  const src: Readonly<Record<string, readonly string[]>> = stored?.lines ?? BUILTIN_BRIDGES;
  const out: Record<string, number> = {};
  for (const t of BUILTIN_REFRESH_TRANSPORTS) {
    const n = src[t]?.length ?? 0;
    if (n > 0) out[t] = n;
  }
  return out;
}

/**
 * The settings page's sentence (a household's words, minutes not seconds): where the built-in lines come
 * from and when they were last refreshed; a failed refresh only as "could not be refreshed" (the status
 * line and the log say why).
 */
export function builtinPageWords(stored: StoredBuiltin | null, lastError?: string | null): string {
  const counts = Object.entries(builtinCounts(stored))
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  const head =
    stored === null
      ? `Built-in bridges in use: the ones this software came with (${counts}); not refreshed through Tor yet.`
      : `Built-in bridges in use: refreshed through Tor on ${stored.refreshedAt
          .toISOString()
          .slice(0, 16)
          .replace('T', ' ')} UTC (${counts}).`;
  return lastError ? `${head} The last refresh did not work; the box tries again later.` : head;
}

/** The status line: where the built-in lines come from, when they were refreshed, how many per transport. */
export function builtinSummary(stored: StoredBuiltin | null, lastError?: string | null): string {
  const counts = Object.entries(builtinCounts(stored))
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  const head =
    stored === null
      ? `the release's (${counts}), not refreshed over Tor yet`
      : `refreshed over Tor ${stored.refreshedAt.toISOString()} (${counts})`;
  return lastError ? `${head}; last refresh failed: ${lastError}` : head;
}
