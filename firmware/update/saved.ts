/**
 * The updater's state on the data partition (`<updates dir>/state.json`): one document, one schema checked
 * where it is read, written atomically (temp file, fsync, rename, fsync the directory) so a power cut
 * leaves the old or the new file. The manifest is kept with its signature and verified again at every load:
 * nothing of it is used from disk unless the image's keys still accept it.
 */
import { readFile } from 'node:fs/promises';
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { UPDATE_PHASES, type UpdateState } from './machine.js';
import { MANIFEST_MAX_BYTES, type Manifest, parseManifest, VERSION_PATTERN } from './manifest.js';
import { SIGNATURE_MAX_BYTES, type TrustedKeys, verifyMinisign } from './minisign.js';
import { MINUTES_PER_DAY } from './schedule.js';

const Version = Type.String({ pattern: VERSION_PATTERN });

export const SavedUpdateSchema = Type.Object(
  {
    format: Type.Literal(1),
    phase: Type.Union(UPDATE_PHASES.map((p) => Type.Literal(p))),
    running: Version,
    target: Type.Union([Type.Null(), Version]),
    failed: Type.Array(Version, { maxItems: 256 }),
    result: Type.Union([Type.Null(), Type.String({ maxLength: 4000 })]),
    checkMinute: Type.Integer({ minimum: 0, maximum: MINUTES_PER_DAY - 1 }),
    lastCheck: Type.Union([
      Type.Null(),
      Type.Object(
        { at: Type.String({ maxLength: 40 }), ok: Type.Boolean(), result: Type.String({ maxLength: 4000 }) },
        { additionalProperties: false },
      ),
    ]),
    /** The kernel's boot id when RAUC finished writing: a later boot is the trial boot. */
    installBootId: Type.Union([Type.Null(), Type.String({ pattern: '^[0-9a-f-]{36}$' })]),
    manifest: Type.Union([
      Type.Null(),
      Type.Object(
        {
          text: Type.String({ maxLength: MANIFEST_MAX_BYTES }),
          signature: Type.String({ maxLength: SIGNATURE_MAX_BYTES }),
          source: Type.String({ maxLength: 300 }),
        },
        { additionalProperties: false },
      ),
    ]),
  },
  { additionalProperties: false },
);
export type SavedUpdate = Static<typeof SavedUpdateSchema>;

const compiled = TypeCompiler.Compile(SavedUpdateSchema);

export interface LoadedUpdate {
  readonly saved: SavedUpdate;
  /** The saved manifest, verified again with today's keys; null when there is none or it no longer holds. */
  readonly manifest: Readonly<Manifest> | null;
}

/** Reads and checks the file; a missing or unreadable one gives null (the caller starts afresh). */
export async function loadSavedUpdate(path: string, trust: TrustedKeys | null): Promise<LoadedUpdate | null> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
  if (!compiled.Check(doc)) return null;
  const saved = doc as SavedUpdate;
  let manifest: Readonly<Manifest> | null = null;
  if (saved.manifest && trust) {
    try {
      verifyMinisign(Buffer.from(saved.manifest.text, 'utf8'), saved.manifest.signature, trust);
      manifest = parseManifest(saved.manifest.text);
    } catch {
      manifest = null;
    }
  }
  return { saved, manifest };
}

export async function writeSavedUpdate(path: string, saved: SavedUpdate): Promise<void> {
  await atomicWriteFile(path, `${JSON.stringify(saved, null, 2)}\n`, 0o600);
}

/** The machine's part of the saved document. */
export function machinePart(saved: SavedUpdate): UpdateState {
  return Object.freeze({
    phase: saved.phase,
    running: saved.running,
    target: saved.target,
    failed: Object.freeze([...saved.failed]),
    result: saved.result,
    progress: null,
  });
}
