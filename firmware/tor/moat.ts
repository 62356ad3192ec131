/**
 * Moat, the Tor Project's bridge service, as the connection assist asks it (issue 21). Pure: the requests
 * the box sends, the one schema every answer must pass, and the try-list entries an answer gives. The I/O
 * (lyrebird's meek_lite client, SOCKS, TLS, HTTP) is in moat-client.ts; the firewall window and the wait
 * for the answer in moat-ask.ts.
 *
 * Moat's circumvention API (rdsys; Tor Browser's Moat.sys.mjs and OnionShare's censorship.py are clients):
 *   POST {service}/circumvention/settings  {"country"?: "ir", "transports": ["obfs4", ...]}
 *        -> {"settings": [{"bridges": {"type": "obfs4", "source": "bridgedb"|"builtin",
 *                                       "bridge_strings"?: ["obfs4 ..."]}}, ...], "country"?: "ir"}
 *           sorted by how well they work there; {} or no "settings": nothing known is needed;
 *           {"errors": [{"code": 404|406, "detail": "..."}]}: nothing works there, or an unknown country
 *   POST {service}/circumvention/defaults  {"transports": [...]}   -> the same shape, for any country
 *   GET|POST {service}/circumvention/builtin                       -> {"obfs4": ["obfs4 ..."], ...}
 * Content-Type application/vnd.api+json. Reached through meek_lite: TLS to `front` (the SNI the censor
 * sees), HTTP Host the reflector's (`url`), which hands the bytes on to Moat's own HTTPS.
 *
 * Nothing of an answer reaches torrc before it passed MoatAnswerSchema and every line the bridge grammar
 * (grammar.ts); the lines go on as the grammar prints them.
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { obxError } from '../errors.js';
import { parseJsonChecked } from '../lib/schema-problems.js';
import { formatBridgeLine, httpsUrlProblem, isHostName, parseBridgeLine, parseCountry } from './grammar.js';

/** Where Moat is and how meek_lite reaches it. */
export interface MoatEndpoint {
  /** Moat's base URL (the requests add /circumvention/...). */
  service: string;
  /** The meek reflector (meek_lite's `url=`: the HTTP Host inside the TLS). */
  url: string;
  /** The domain front (meek_lite's `front=`: the TLS server name and the address dialled). */
  front: string;
}

/** Tor Browser's Moat settings (its prefs extensions.torlauncher.moat_service, bridgedb_reflector, bridgedb_front). */
export const MOAT_ENDPOINT: Readonly<MoatEndpoint> = Object.freeze({
  service: 'https://bridges.torproject.org/moat',
  url: 'https://bespoke-strudel-c243cc.netlify.app/',
  front: 'vuejs.org',
});

/** The endpoint checked: https URLs without credentials, a host name for the front. Throws OBX_ERR_TOR_VALUE_INVALID. */
export function checkMoatEndpoint(e: unknown): MoatEndpoint {
  if (typeof e !== 'object' || e === null || Array.isArray(e))
    throw obxError('TOR_VALUE_INVALID', 'moat must be {service, url, front}');
  const o = e as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['service', 'url', 'front'].includes(k))
      throw obxError('TOR_VALUE_INVALID', `moat: unknown key ${k.slice(0, 40)}`);
  }
  for (const k of ['service', 'url'] as const) {
    const v = o[k];
    const problem = typeof v === 'string' && v.length <= 300 ? httpsUrlProblem(v) : 'must be an https:// URL';
    if (problem !== null) throw obxError('TOR_VALUE_INVALID', `moat ${k} ${problem}`);
  }
  if (typeof o.front !== 'string' || !isHostName(o.front))
    throw obxError('TOR_VALUE_INVALID', 'moat front must be a host name');
  return Object.freeze({ service: o.service as string, url: o.url as string, front: o.front });
}

export type MoatKind = 'settings' | 'defaults' | 'builtin';

/** The transports the box can use from Moat today (the assist's own list: snowflake does not connect yet). */
export const MOAT_TRANSPORTS: readonly string[] = Object.freeze(['obfs4']);

/** One request: its path below the service, and its JSON body. */
export interface MoatRequest {
  kind: MoatKind;
  path: string;
  body: string;
}

/** The request for `kind`; settings for `country` when the owner chose one (else Moat goes by the address). */
export function moatRequest(
  kind: MoatKind,
  opts: { country?: string | undefined; transports?: readonly string[] } = {},
): MoatRequest {
  const transports = [...(opts.transports ?? MOAT_TRANSPORTS)];
  const path = `/circumvention/${kind}`;
  if (kind === 'builtin') return { kind, path, body: '' };
  const body: { country?: string; transports: string[] } = { transports };
  if (kind === 'settings' && opts.country !== undefined) body.country = parseCountry(opts.country);
  return { kind, path, body: JSON.stringify(body) };
}

/** A path of the service URL joined with a request's: `https://host/moat` + `/circumvention/x`. */
export function moatUrl(service: string, path: string): URL {
  const u = new URL(service);
  u.pathname = `${u.pathname.replace(/\/$/, '')}${path}`;
  return u;
}

const Line = Type.String({ minLength: 1, maxLength: 1024 });
const Setting = Type.Object({
  bridges: Type.Object({
    type: Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$' }),
    source: Type.String({ maxLength: 40 }),
    bridge_strings: Type.Optional(Type.Array(Line, { maxItems: 64 })),
  }),
});
const MoatError = Type.Object({
  code: Type.Integer(),
  detail: Type.Optional(Type.String({ maxLength: 1000 })),
});

/**
 * Every answer Moat may give the box, in one schema: settings (or defaults), errors, or the built-in
 * lines by transport. Nothing else passes (an answer with other fields is no answer the box knows).
 */
export const MoatAnswerSchema = Type.Union([
  Type.Object(
    { errors: Type.Array(MoatError, { minItems: 1, maxItems: 16 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      settings: Type.Optional(Type.Array(Setting, { maxItems: 32 })),
      country: Type.Optional(Type.String({ pattern: '^[a-z]{2}$' })),
    },
    { additionalProperties: false },
  ),
  Type.Record(
    Type.RegExp(/^(?!errors$|settings$|country$)[a-z][a-z0-9_]{0,31}$/),
    Type.Array(Line, { maxItems: 64 }),
    { additionalProperties: false },
  ),
]);
export type MoatAnswer = Static<typeof MoatAnswerSchema>;
const compiled = TypeCompiler.Compile(MoatAnswerSchema);

/** Answers are small: anything longer is refused before JSON.parse. */
export const MOAT_ANSWER_MAX_BYTES = 256 * 1024;

/** One setting from Moat as the assist's try-list takes it (assist.ts Candidate without its source). */
export interface MoatSetting {
  transport: string;
  lines: string[];
}

/** What one answer gave: the settings the box can try, and what it left out (for the log). */
export interface MoatResult {
  settings: MoatSetting[];
  /** Moat said nothing is needed, or nothing works there (its error codes). */
  errors: { code: number; detail: string }[];
  dropped: string[];
}

/**
 * The try-list entries of a settings or defaults answer. Checked by the schema, then each line by the
 * bridge grammar; a line that fails is dropped (and named in `dropped`), a setting of a transport the box
 * does not try is dropped. `source: builtin` without lines means "your built-in lines of that type":
 * `builtin` supplies them. Throws OBX_ERR_TOR_MOAT_ANSWER_INVALID on text that is not an answer.
 */
export function parseMoatSettings(
  text: string,
  opts: { transports?: readonly string[]; builtin?: (transport: string) => readonly string[] } = {},
): MoatResult {
  const doc = parseMoatJson(text);
  const transports = opts.transports ?? MOAT_TRANSPORTS;
  if ('errors' in doc && Array.isArray(doc.errors)) {
    const errors = (doc.errors as Static<typeof MoatError>[]).map((e) => ({
      code: e.code,
      detail: e.detail ?? '',
    }));
    return { settings: [], errors, dropped: [] };
  }
  const list = (doc as { settings?: unknown }).settings;
  if (list !== undefined && !Array.isArray(list))
    throw obxError('TOR_MOAT_ANSWER_INVALID', 'settings is not a list');
  const settings: MoatSetting[] = [];
  const dropped: string[] = [];
  for (const [i, s] of ((list ?? []) as Static<typeof Setting>[]).entries()) {
    const { type, source, bridge_strings: strings } = s.bridges;
    if (!transports.includes(type)) {
      dropped.push(`settings/${i}: transport ${type} is not tried by the box`);
      continue;
    }
    const raw = strings ?? (source === 'builtin' ? [...(opts.builtin?.(type) ?? [])] : []);
    const lines = checkedLines(raw, type, `settings/${i}`, dropped);
    if (lines.length > 0) settings.push({ transport: type, lines });
    else dropped.push(`settings/${i}: no usable ${type} line`);
  }
  return { settings, errors: [], dropped };
}

/** The built-in lines of a `builtin` answer, by transport (only the transports the box tries). */
export function parseMoatBuiltin(
  text: string,
  transports: readonly string[] = MOAT_TRANSPORTS,
): { builtin: Record<string, string[]>; dropped: string[] } {
  const doc = parseMoatJson(text);
  if ('settings' in doc || 'errors' in doc)
    throw obxError('TOR_MOAT_ANSWER_INVALID', 'not an answer of /circumvention/builtin');
  const builtin: Record<string, string[]> = {};
  const dropped: string[] = [];
  for (const [type, raw] of Object.entries(doc as Record<string, string[]>)) {
    if (!transports.includes(type)) continue;
    const lines = checkedLines(raw, type, type, dropped);
    if (lines.length > 0) builtin[type] = lines;
  }
  return { builtin, dropped };
}

function parseMoatJson(text: string): MoatAnswer {
  return parseJsonChecked(text, compiled, 'TOR_MOAT_ANSWER_INVALID', { maxBytes: MOAT_ANSWER_MAX_BYTES });
}

/** The lines of one setting that pass the grammar and are of its transport, as the grammar prints them. */
function checkedLines(raw: readonly string[], type: string, where: string, dropped: string[]): string[] {
  const out: string[] = [];
  for (const [j, line] of raw.entries()) {
    try {
      const b = parseBridgeLine(line);
      if (b.transport !== type) {
        dropped.push(`${where}/${j}: a ${b.transport} line in a ${type} setting`);
        continue;
      }
      const text = formatBridgeLine(b);
      if (!out.includes(text)) out.push(text);
    } catch (err) {
      dropped.push(`${where}/${j}: ${(err as Error).message}`);
    }
  }
  return out;
}
