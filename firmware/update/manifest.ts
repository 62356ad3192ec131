/**
 * The signed update manifest: its grammar (one TypeBox schema, checked where the manifest enters) and the
 * update policy as one pure function, decide(manifest, running, now, failedVersions). No I/O, no clock:
 * callers pass the time. The signature over the manifest's bytes is checked first (./minisign.ts); only a
 * manifest whose signature holds reaches parseManifest.
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type ErrorName, obxError } from '../errors.js';
import { parseJsonChecked, problemSummary, schemaProblems } from '../lib/schema-problems.js';

export const MANIFEST_FORMAT = 1 as const;

/** Plain MAJOR.MINOR.PATCH, no leading zeros, no pre-release or build suffix. */
export const VERSION_PATTERN = '^(0|[1-9][0-9]{0,5})\\.(0|[1-9][0-9]{0,5})\\.(0|[1-9][0-9]{0,5})$';
/** A board's compatible string, as RAUC's `compatible=` (e.g. "onionbox-rpi3"). */
export const BOARD_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
/** Release notes: plain text (printable characters, newlines and tabs; no other control character). */
export const NOTES_MAX_LENGTH = 4000;
const NOTES_PATTERN = '^[^\\x00-\\x08\\x0b-\\x1f\\x7f]*$';
/** An ISO 8601 UTC instant as Date.prototype.toISOString writes it (seconds, optional milliseconds). */
const INSTANT_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{3})?Z$';
/** The default cap on a bundle: a root slot image of the Pi's size, with room to spare. */
export const DEFAULT_MAX_BUNDLE_BYTES = 2 * 1024 * 1024 * 1024;
/** Manifests are small: anything longer is refused before JSON.parse. */
export const MANIFEST_MAX_BYTES = 16 * 1024;

const Version = Type.String({ pattern: VERSION_PATTERN, description: 'MAJOR.MINOR.PATCH' });
const Instant = Type.String({ pattern: INSTANT_PATTERN, description: 'UTC instant, ISO 8601' });

export const ManifestSchema = Type.Object(
  {
    format: Type.Literal(MANIFEST_FORMAT),
    version: Version,
    compatible: Type.String({ pattern: BOARD_PATTERN, description: 'The board this release is for' }),
    bundle: Type.Object(
      {
        name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', description: 'File name' }),
        size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
        sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
      },
      { additionalProperties: false },
    ),
    released: Instant,
    expires: Instant,
    notes: Type.String({ maxLength: NOTES_MAX_LENGTH, pattern: NOTES_PATTERN }),
    minVersion: Version,
  },
  { additionalProperties: false },
);
export type Manifest = Static<typeof ManifestSchema>;

const compiled = TypeCompiler.Compile(ManifestSchema);

/** Field path -> problem, empty when the document is a valid manifest. */
export function manifestProblems(doc: unknown): Record<string, string> {
  if (!compiled.Check(doc)) return schemaProblems(compiled, doc);
  const problems: Record<string, string> = {};
  if (Date.parse(doc.expires) <= Date.parse(doc.released)) problems['/expires'] = 'must be after released';
  if (Number.isNaN(Date.parse(doc.released))) problems['/released'] = 'not a date';
  if (Number.isNaN(Date.parse(doc.expires))) problems['/expires'] = 'not a date';
  if (compareVersions(doc.minVersion, doc.version) >= 0) problems['/minVersion'] = 'must be below version';
  return problems;
}

/** Parses the (already signature-checked) manifest bytes, or throws OBX_ERR_UPDATE_MANIFEST_INVALID. */
export function parseManifest(bytes: Uint8Array | string): Readonly<Manifest> {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  const doc = parseJsonChecked(text, compiled, 'UPDATE_MANIFEST_INVALID', { maxBytes: MANIFEST_MAX_BYTES });
  const problems = manifestProblems(doc);
  if (Object.keys(problems).length > 0) {
    throw obxError('UPDATE_MANIFEST_INVALID', problemSummary(problems), { details: problems });
  }
  return Object.freeze({ ...(doc as Manifest), bundle: Object.freeze({ ...(doc as Manifest).bundle }) });
}

export function isVersion(v: string): boolean {
  return new RegExp(VERSION_PATTERN).test(v);
}

/** Numeric order of MAJOR.MINOR.PATCH: negative, 0 or positive. Throws on a malformed version. */
export function compareVersions(a: string, b: string): number {
  const pa = versionParts(a);
  const pb = versionParts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function versionParts(v: string): number[] {
  if (!isVersion(v)) throw obxError('UPDATE_MANIFEST_INVALID', `not a version: ${JSON.stringify(v)}`);
  return v.split('.').map(Number);
}

/** What the box runs, as the image records it. */
export interface RunningImage {
  readonly version: string;
  readonly compatible: string;
}

export interface DecideOptions {
  /** Bundles larger than this are refused before any download (default DEFAULT_MAX_BUNDLE_BYTES). */
  readonly maxBundleBytes?: number;
}

export type Refusal =
  | 'not-newer'
  | 'wrong-board'
  | 'expired'
  | 'below-minimum'
  | 'failed-before'
  | 'too-large';

export type Decision =
  | { readonly accept: true }
  | { readonly accept: false; readonly refusal: Refusal; readonly reason: string };

/** The error each refusal is reported with. */
export const REFUSAL_ERRORS: Readonly<Record<Refusal, ErrorName>> = Object.freeze({
  'not-newer': 'UPDATE_NOT_NEWER',
  'wrong-board': 'UPDATE_WRONG_BOARD',
  expired: 'UPDATE_EXPIRED',
  'below-minimum': 'UPDATE_BELOW_MINIMUM',
  'failed-before': 'UPDATE_FAILED_BEFORE',
  'too-large': 'UPDATE_TOO_LARGE',
});

/**
 * The update policy. Checks run in a fixed order, so a manifest with several faults is always refused for
 * the same first one: board, version order (a replayed old manifest is not an update), versions that
 * failed before (never retried automatically), minimum version, expiry, size.
 */
export function decide(
  manifest: Readonly<Manifest>,
  running: RunningImage,
  now: Date,
  failedVersions: readonly string[],
  options: DecideOptions = {},
): Decision {
  const refuse = (refusal: Refusal, reason: string): Decision => ({ accept: false, refusal, reason });
  if (manifest.compatible !== running.compatible) {
    return refuse('wrong-board', `for ${manifest.compatible}, this box is ${running.compatible}`);
  }
  if (compareVersions(manifest.version, running.version) <= 0) {
    return refuse('not-newer', `offers ${manifest.version}, this box runs ${running.version}`);
  }
  if (failedVersions.includes(manifest.version)) {
    return refuse('failed-before', `${manifest.version} did not reach routing on this box before`);
  }
  if (compareVersions(running.version, manifest.minVersion) < 0) {
    return refuse('below-minimum', `${manifest.version} updates from ${manifest.minVersion} or later`);
  }
  if (now.getTime() >= Date.parse(manifest.expires)) {
    return refuse('expired', `expired ${manifest.expires}`);
  }
  const cap = options.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  if (manifest.bundle.size > cap) {
    return refuse('too-large', `${manifest.bundle.size} bytes, this box takes at most ${cap}`);
  }
  return { accept: true };
}

/** decide(), throwing the refusal's OBX_ERR_UPDATE_* error: for adapters that stop at the first no. */
export function assertAcceptable(
  manifest: Readonly<Manifest>,
  running: RunningImage,
  now: Date,
  failedVersions: readonly string[],
  options: DecideOptions = {},
): void {
  const d = decide(manifest, running, now, failedVersions, options);
  if (!d.accept) throw obxError(REFUSAL_ERRORS[d.refusal], d.reason);
}
