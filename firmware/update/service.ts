/**
 * The box's updater: the thin adapter that drives the pure core (machine.ts, manifest.ts decide(),
 * schedule.ts) with the fetch through tor (fetch.ts, download.ts over an injected Connect: tor's SocksPort
 * with the updater's own SOCKS username in production), the files on the data partition (saved.ts) and the
 * install step (an Installer: RAUC over D-Bus in production, rauc.ts).
 *
 *   check      the onion service first, the HTTPS mirror second: `<base><board>.manifest.json` and its
 *              `.minisig` (both capped); the signature checked with the image's keys before anything of
 *              the manifest is read; decide() refuses other boards, old or same versions (a replayed
 *              manifest), versions that failed here, a too-low running version, expired manifests, bundles
 *              over the cap
 *   download   `<base><bundle name>` from the source the manifest came from (then the other), only after a
 *              check that the data partition has room; size cap, Range resume, SHA-256, fsync, rename
 *   ready      the verified bundle waits: "night" installs between 02:00 and 05:00, "ask" for the owner
 *   install    RAUC writes the other slot; the boot id is saved; the box restarts on trial
 *   trial      the new version runs: routing keeps it (the slot marks are the A/B layer's); the old version
 *              running after a new boot means it fell back, and that version is never tried again
 *
 * Every failure leaves the running slot and the saved state as they were, with the reason in words. Only
 * one operation runs at a time. Constructors do nothing; start()/stop() own the timer.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { UpdateConfig } from '../config/schema.js';
import { describeError, Errors, isObxError, type ObxError, obxError } from '../errors.js';
import { fsyncDirectory } from '../lib/atomic-write.js';
import type { Log } from '../log.js';
import { downloadBundle, partPath } from './download.js';
import { fetchSmall } from './fetch.js';
import { initialUpdateState, type UpdateInput, type UpdateState, updateStep } from './machine.js';
import {
  decide,
  MANIFEST_MAX_BYTES,
  type Manifest,
  parseManifest,
  REFUSAL_ERRORS,
  type RunningImage,
} from './manifest.js';
import { SIGNATURE_MAX_BYTES, type TrustedKeys, verifyMinisign } from './minisign.js';
import type { Installer } from './rauc.js';
import { loadSavedUpdate, machinePart, type SavedUpdate, writeSavedUpdate } from './saved.js';
import { drawCheckMinute, nextCheckAt, nextInstallAt, resumeUpdateState } from './schedule.js';
import type { Connect } from './socks5.js';

/** tor's SOCKS username for every update fetch: tor never puts them on a circuit with anything else. */
export const UPDATE_SOCKS_USERNAME = 'onionbox-update';
/** Room left free on the data partition besides the bundle. */
export const FREE_SPACE_MARGIN = 16 * 1024 * 1024;
/** The timer wakes at least this often, so a changed clock or setting is seen. */
const MAX_SLEEP_MS = 10 * 60_000;
/** A scheduled check that finds tor not ready tries again after this long. */
const NOT_READY_RETRY_MS = 5 * 60_000;

export interface ImageInfo extends RunningImage {
  /** When the running image was built; null when the image does not say. */
  readonly built: Date | null;
}

export interface UpdateServiceDeps {
  /** The updater's directory on the data partition (state, bundles). */
  readonly dir: string;
  readonly image: ImageInfo;
  /** The image's release keys; null: the image has none, updates are off. */
  readonly trust: TrustedKeys | null;
  /** Why updates are off when the image's release files say so (release-files.ts), in words. */
  readonly offReason?: string | null;
  readonly settings: () => Readonly<UpdateConfig>;
  readonly connect: Connect;
  readonly installer: Installer;
  readonly log: Log;
  readonly now?: () => Date;
  readonly random?: () => number;
  /** The kernel's boot id (/proc/sys/kernel/random/boot_id). */
  readonly bootId?: () => Promise<string>;
  /** Free bytes on the partition holding `dir`. */
  readonly freeBytes?: (dir: string) => Promise<number>;
  /** Whether tor can build circuits (a scheduled check waits for it). */
  readonly torReady?: () => boolean;
  readonly stallMs?: number;
  readonly fetchTimeoutMs?: number;
  readonly maxBundleBytes?: number;
}

export interface UpdateStatus {
  readonly enabled: boolean;
  /** Why updates are off, in words, when they are. */
  readonly disabledReason: string | null;
  readonly phase: UpdateState['phase'];
  readonly running: string;
  readonly compatible: string;
  readonly built: string | null;
  readonly target: string | null;
  readonly result: string | null;
  readonly failed: readonly string[];
  readonly lastCheck: SavedUpdate['lastCheck'];
  readonly nextCheck: string | null;
  readonly available: {
    readonly version: string;
    readonly released: string;
    readonly expires: string;
    readonly notes: string;
    readonly size: number;
    readonly source: string;
  } | null;
  readonly progress: UpdateState['progress'];
  readonly policy: UpdateConfig['policy'];
}

async function kernelBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

async function partitionFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** How the page names a source: by the setting it came from (the onion service is tried first). */
export function sourceLabel(base: string, settings: Readonly<UpdateConfig>): string {
  if (base === settings.onion) return 'the onion service';
  if (base.startsWith('file:')) return 'a file';
  return `the mirror ${new URL(base).host}`;
}

export class UpdateService {
  readonly #d: UpdateServiceDeps;
  readonly #statePath: string;
  #state: UpdateState;
  #saved: SavedUpdate;
  #manifest: Readonly<Manifest> | null = null;
  #busy: Promise<unknown> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = true;
  #nextCheck: Date | null = null;

  constructor(deps: UpdateServiceDeps) {
    this.#d = deps;
    this.#statePath = join(deps.dir, 'state.json');
    this.#state = initialUpdateState(deps.image.version);
    this.#saved = this.#toSaved(this.#state, 0);
  }

  #now(): Date {
    return this.#d.now?.() ?? new Date();
  }

  #toSaved(state: UpdateState, checkMinute: number): SavedUpdate {
    return {
      format: 1,
      phase: state.phase,
      running: state.running,
      target: state.target,
      failed: [...state.failed],
      result: state.result,
      checkMinute,
      lastCheck: this.#saved?.lastCheck ?? null,
      installBootId: this.#saved?.installBootId ?? null,
      manifest: this.#saved?.manifest ?? null,
    };
  }

  async start(): Promise<void> {
    await mkdir(this.#d.dir, { recursive: true, mode: 0o700 });
    const loaded = await loadSavedUpdate(this.#statePath, this.#d.trust);
    const bootId = await (this.#d.bootId ?? kernelBootId)();
    if (loaded) {
      this.#saved = loaded.saved;
      this.#manifest = loaded.manifest;
      let state = resumeUpdateState(
        machinePart(loaded.saved),
        this.#d.image.version,
        bootId,
        loaded.saved.installBootId,
      );
      // A manifest that no longer verifies (keys rotated, file damaged) leaves nothing to offer.
      const needsManifest = ['available', 'ready'].includes(state.phase);
      if (needsManifest && (this.#manifest === null || this.#manifest.version !== state.target)) {
        state = Object.freeze({
          ...state,
          phase: 'idle',
          target: null,
          result: 'the saved update no longer verifies',
        });
        this.#manifest = null;
        this.#saved = { ...this.#saved, manifest: null };
      }
      if (state.phase === 'ready' && !(await this.#bundleComplete())) {
        state = Object.freeze({ ...state, phase: 'available' });
      }
      this.#state = state;
      // the version that fell back is never installed again: its bundle only takes room on the data partition
      if (state.phase === 'fell-back') await this.#removeBundles();
    } else {
      this.#saved = this.#toSaved(this.#state, drawCheckMinute(this.#d.random ?? Math.random));
    }
    await this.#persist();
    this.#stopped = false;
    this.#arm();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#busy?.catch(() => undefined);
  }

  #disabledReason(): string | null {
    if (this.#d.offReason) return this.#d.offReason;
    if (this.#d.trust === null || this.#d.trust.keys.length === 0) return 'this image holds no release key';
    const s = this.#d.settings();
    if (s.onion === null && s.mirror === null) return 'no update source is configured';
    return null;
  }

  status(): UpdateStatus {
    const m = this.#manifest;
    const showManifest =
      m !== null &&
      ['available', 'downloading', 'verifying', 'ready', 'installing'].includes(this.#state.phase);
    const reason = this.#disabledReason();
    return {
      enabled: reason === null,
      disabledReason: reason,
      phase: this.#state.phase,
      running: this.#state.running,
      compatible: this.#d.image.compatible,
      built: this.#d.image.built?.toISOString() ?? null,
      target: this.#state.target,
      result: this.#state.result,
      failed: this.#state.failed,
      lastCheck: this.#saved.lastCheck,
      nextCheck: this.#nextCheck?.toISOString() ?? null,
      available:
        showManifest && m
          ? {
              version: m.version,
              released: m.released,
              expires: m.expires,
              notes: m.notes,
              size: m.bundle.size,
              source: this.#saved.manifest
                ? sourceLabel(this.#saved.manifest.source, this.#d.settings())
                : '',
            }
          : null,
      progress: this.#state.progress,
      policy: this.#d.settings().policy,
    };
  }

  /** Where the bundle of the current target is kept. */
  bundlePath(manifest: Readonly<Manifest> | null = this.#manifest): string | null {
    return manifest ? join(this.#d.dir, `${manifest.version}-${manifest.bundle.name}`) : null;
  }

  /** "Check now" (the page, `onionbox update check`): resolves with the status after the check. */
  async check(): Promise<UpdateStatus> {
    await this.#exclusive(() => this.#check());
    this.#arm();
    return this.status();
  }

  /**
   * The owner's "Install now" (`onionbox update install`): downloads an available update if needed, then
   * installs and restarts. Nothing waits for the night.
   */
  async install(): Promise<UpdateStatus> {
    await this.#settled();
    await this.#exclusive(async () => {
      if (this.#state.phase === 'available') await this.#download();
      if (this.#state.phase !== 'ready')
        throw obxError('UPDATE_NOTHING_TO_INSTALL', this.#state.result ?? '');
      await this.#install();
    });
    return this.status();
  }

  /**
   * An offline update (`onionbox update install FILE`): the bundle and its manifest and signature from
   * files, with the same checks as a download (signature, decide(), size, SHA-256), copied into the data
   * directory and installed.
   */
  async installFile(bundle: string, manifestFile: string, signatureFile: string): Promise<UpdateStatus> {
    await this.#settled();
    await this.#exclusive(async () => {
      const keys = this.#trust();
      const text = await readCapped(manifestFile, MANIFEST_MAX_BYTES);
      const signature = (await readCapped(signatureFile, SIGNATURE_MAX_BYTES)).toString('utf8');
      verifyMinisign(text, signature, keys);
      const manifest = parseManifest(text);
      this.#refuseUnless(manifest);
      const dest = this.bundlePath(manifest) as string;
      await this.#ensureRoom(manifest.bundle.size, dest);
      await copyVerified(bundle, dest, manifest.bundle.size, manifest.bundle.sha256);
      this.#manifest = manifest;
      this.#saved = {
        ...this.#saved,
        manifest: { text: text.toString('utf8'), signature, source: `file://${basename(bundle)}` },
      };
      this.#state = Object.freeze({
        ...this.#state,
        phase: 'ready',
        target: manifest.version,
        progress: null,
        result: `${manifest.version} from a file is verified and ready to install`,
      });
      await this.#persist();
      await this.#install();
    });
    return this.status();
  }

  /** Called whenever the box reaches routing: a trial boot of the new version is kept. */
  async routing(): Promise<void> {
    if (this.#state.phase !== 'trial-boot' || this.#state.target !== this.#d.image.version) return;
    await this.#step({ type: 'routing' });
    this.#saved = { ...this.#saved, installBootId: null, manifest: null };
    this.#manifest = null;
    await this.#persist();
    await this.#removeBundles();
  }

  // --- the steps ---

  /** The owner's install waits for a check or download that is finishing, rather than fail as busy. */
  async #settled(): Promise<void> {
    await this.#busy?.catch(() => undefined);
  }

  async #exclusive(work: () => Promise<void>): Promise<void> {
    if (this.#busy) throw obxError('UPDATE_BUSY', `the updater is ${this.#state.phase}`);
    const run = work();
    this.#busy = run;
    try {
      await run;
    } finally {
      this.#busy = null;
    }
  }

  #trust(): TrustedKeys {
    const reason = this.#disabledReason();
    if (this.#d.trust === null || this.#d.trust.keys.length === 0) {
      throw obxError('UPDATE_NOT_CONFIGURED', reason ?? 'no release key');
    }
    return this.#d.trust;
  }

  #refuseUnless(manifest: Readonly<Manifest>): void {
    const d = decide(manifest, this.#d.image, this.#now(), this.#state.failed, this.#maxOptions());
    if (!d.accept) throw obxError(REFUSAL_ERRORS[d.refusal], d.reason);
  }

  #maxOptions(): { maxBundleBytes?: number } {
    return this.#d.maxBundleBytes === undefined ? {} : { maxBundleBytes: this.#d.maxBundleBytes };
  }

  #sources(first?: string): string[] {
    const s = this.#d.settings();
    const list = [s.onion, s.mirror].filter((x): x is string => x !== null);
    if (first && list.includes(first)) return [first, ...list.filter((x) => x !== first)];
    return list;
  }

  async #check(): Promise<void> {
    const reason = this.#disabledReason();
    if (reason !== null) throw obxError('UPDATE_NOT_CONFIGURED', reason);
    const keys = this.#trust();
    await this.#step({ type: 'check' });
    const errors: ObxError[] = [];
    let found: { manifest: Readonly<Manifest>; text: Buffer; signature: string; source: string } | null =
      null;
    for (const base of this.#sources()) {
      try {
        const name = `${this.#d.image.compatible}.manifest.json`;
        const text = await this.#fetch(new URL(name, base), MANIFEST_MAX_BYTES);
        const sig = (await this.#fetch(new URL(`${name}.minisig`, base), SIGNATURE_MAX_BYTES)).toString(
          'utf8',
        );
        verifyMinisign(text, sig, keys);
        found = { manifest: parseManifest(text), text, signature: sig, source: base };
        break;
      } catch (err) {
        const e = isObxError(err) ? err : obxError('UPDATE_FETCH_FAILED', String(err), { cause: err });
        errors.push(
          obxError(codeName(e), `${sourceLabel(base, this.#d.settings())}: ${detailOf(e)}`, { cause: e }),
        );
        this.#d.log.warn(
          { source: sourceLabel(base, this.#d.settings()), err: describeError(e) },
          'update source failed',
        );
      }
    }
    const at = this.#now().toISOString();
    if (!found) {
      const err = combine(errors);
      this.#saved = { ...this.#saved, lastCheck: { at, ok: false, result: err.message } };
      await this.#step({ type: 'check-failed', reason: err.message });
      throw err;
    }
    const d = decide(found.manifest, this.#d.image, this.#now(), this.#state.failed, this.#maxOptions());
    if (!d.accept) {
      const words =
        d.refusal === 'not-newer'
          ? `up to date: ${sourceLabel(found.source, this.#d.settings())} offers ${found.manifest.version}, this box runs ${this.#d.image.version}`
          : `refused ${found.manifest.version}: ${d.reason}`;
      this.#saved = { ...this.#saved, lastCheck: { at, ok: d.refusal === 'not-newer', result: words } };
      await this.#step({ type: 'none', reason: words });
      if (d.refusal !== 'not-newer') throw obxError(REFUSAL_ERRORS[d.refusal], d.reason);
      return;
    }
    this.#manifest = found.manifest;
    const words = `${found.manifest.version} is available from ${sourceLabel(found.source, this.#d.settings())}`;
    this.#saved = {
      ...this.#saved,
      lastCheck: { at, ok: true, result: words },
      manifest: { text: found.text.toString('utf8'), signature: found.signature, source: found.source },
    };
    await this.#step({ type: 'found', version: found.manifest.version });
  }

  async #fetch(url: URL, maxBytes: number): Promise<Buffer> {
    return await fetchSmall({
      url,
      connect: this.#d.connect,
      maxBytes,
      ...(this.#d.fetchTimeoutMs === undefined ? {} : { timeoutMs: this.#d.fetchTimeoutMs }),
    });
  }

  async #ensureRoom(size: number, dest: string): Promise<void> {
    const have = await sizeOrZero(partPath(dest));
    const free = await (this.#d.freeBytes ?? partitionFree)(this.#d.dir);
    const need = size - have + FREE_SPACE_MARGIN;
    if (free < need) {
      throw obxError(
        'UPDATE_NO_SPACE',
        `the bundle needs ${need} bytes, the data partition has ${free} free`,
      );
    }
  }

  async #download(): Promise<void> {
    const manifest = this.#manifest;
    const source = this.#saved.manifest?.source;
    if (!manifest || !source) throw obxError('UPDATE_NOTHING_TO_INSTALL', 'no verified manifest');
    const dest = this.bundlePath(manifest) as string;
    try {
      this.#refuseUnless(manifest); // the clock moved on since the check: expiry again
      await this.#ensureRoom(manifest.bundle.size, dest);
    } catch (err) {
      await this.#step({ type: 'download' });
      await this.#step({ type: 'download-failed', reason: describeError(err) });
      throw err;
    }
    await this.#step({ type: 'download' });
    let last: unknown = null;
    for (const base of this.#sources(source)) {
      if (base.startsWith('file:')) continue;
      try {
        await downloadBundle({
          url: new URL(manifest.bundle.name, base),
          dest,
          size: manifest.bundle.size,
          sha256: manifest.bundle.sha256,
          connect: this.#d.connect,
          ...(this.#d.stallMs === undefined ? {} : { stallMs: this.#d.stallMs }),
          // progress lives in memory only: the `.part` file on disk is what a restart resumes from
          onProgress: (done, total) => {
            this.#state = updateStep(this.#state, { type: 'progress', done, total });
          },
        });
        last = null;
        break;
      } catch (err) {
        last = err;
        this.#d.log.warn(
          { source: sourceLabel(base, this.#d.settings()), err: describeError(err) },
          'bundle download failed',
        );
        // a hash mismatch or an oversize answer removed the partial file: another source may be honest
      }
    }
    if (last !== null) {
      await this.#step({ type: 'download-failed', reason: describeError(last) });
      throw last;
    }
    await this.#step({ type: 'downloaded' });
    await this.#step({ type: 'verified' });
  }

  async #install(): Promise<void> {
    const path = this.bundlePath();
    if (this.#state.phase !== 'ready' || !path) throw obxError('UPDATE_NOTHING_TO_INSTALL');
    await this.#step({ type: 'install' });
    try {
      await this.#d.installer.install(path);
    } catch (err) {
      await this.#step({ type: 'install-failed', reason: describeError(err) });
      throw err;
    }
    const bootId = await (this.#d.bootId ?? kernelBootId)();
    this.#saved = { ...this.#saved, installBootId: bootId };
    await this.#step({ type: 'installed' });
    this.#d.log.info(
      { version: this.#state.target },
      'update written to the other slot; restarting on trial',
    );
    await this.#d.installer.restart();
  }

  async #step(input: UpdateInput): Promise<void> {
    const next = updateStep(this.#state, input);
    if (next === this.#state) return;
    this.#state = next;
    if (next.phase === 'idle' || next.phase === 'fell-back') {
      this.#saved = { ...this.#saved, manifest: next.phase === 'idle' ? null : this.#saved.manifest };
      if (next.phase === 'idle') this.#manifest = null;
    }
    await this.#persist();
    if (next.phase === 'idle' && input.type !== 'none' && input.type !== 'check-failed') {
      await this.#removeBundles(input.type === 'download-failed');
    }
  }

  async #persist(): Promise<void> {
    this.#saved = { ...this.#toSaved(this.#state, this.#saved.checkMinute) };
    await writeSavedUpdate(this.#statePath, this.#saved);
  }

  async #bundleComplete(): Promise<boolean> {
    const path = this.bundlePath();
    if (!path || !this.#manifest) return false;
    return (await sizeOrZero(path)) === this.#manifest.bundle.size;
  }

  /** Removes bundles (kept: the `.part` of a download that may resume, when asked). */
  async #removeBundles(keepParts = false): Promise<void> {
    const names = await readdir(this.#d.dir).catch(() => [] as string[]);
    for (const n of names) {
      if (n === 'state.json' || n.startsWith('.state.json')) continue;
      if (keepParts && n.endsWith('.part')) continue;
      await rm(join(this.#d.dir, n), { force: true });
    }
  }

  // --- the schedule ---

  #arm(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const now = this.#now();
    const last = this.#saved.lastCheck ? new Date(this.#saved.lastCheck.at) : null;
    this.#nextCheck =
      this.#disabledReason() === null ? nextCheckAt(now, this.#saved.checkMinute, last) : null;
    let wake = this.#nextCheck?.getTime() ?? Number.POSITIVE_INFINITY;
    const night = this.#d.settings().policy === 'night';
    if (night && this.#state.phase === 'available') wake = now.getTime();
    if (night && this.#state.phase === 'ready') {
      wake = Math.min(wake, nextInstallAt(now, this.#saved.checkMinute).getTime());
    }
    const delay = Math.max(0, Math.min(wake - now.getTime(), MAX_SLEEP_MS));
    this.#timer = setTimeout(() => void this.#tick(), delay);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    this.#timer = null;
    if (this.#stopped || this.#busy) return this.#arm();
    const now = this.#now();
    try {
      if (this.#nextCheck && now.getTime() >= this.#nextCheck.getTime()) {
        if (this.#d.torReady && !this.#d.torReady()) {
          this.#timer = setTimeout(() => void this.#tick(), NOT_READY_RETRY_MS);
          this.#timer.unref();
          return;
        }
        await this.#exclusive(() => this.#check());
      }
      const night = this.#d.settings().policy === 'night';
      if (night && this.#state.phase === 'available') await this.#exclusive(() => this.#download());
      if (
        night &&
        this.#state.phase === 'ready' &&
        nextInstallAt(this.#now(), this.#saved.checkMinute) <= this.#now()
      ) {
        await this.#exclusive(() => this.#install());
      }
    } catch (err) {
      this.#d.log.warn({ err: describeError(err) }, 'scheduled update step failed');
    }
    this.#arm();
  }
}

/** An error's message without its code's general sentence (that is said once, by the combined error). */
function detailOf(err: ObxError): string {
  const general = Errors[codeName(err)]?.message;
  return general && err.message.startsWith(`${general}: `)
    ? err.message.slice(general.length + 2)
    : err.message;
}

function codeName(err: ObxError): Parameters<typeof obxError>[0] {
  const prefix = 'OBX_ERR_';
  return err.code.slice(prefix.length) as Parameters<typeof obxError>[0];
}

/** One error for every source's failure: their common code, or FETCH_FAILED when they differ. */
function combine(errors: readonly ObxError[]): ObxError {
  if (errors.length === 0) return obxError('UPDATE_NOT_CONFIGURED', 'no update source is configured');
  const first = errors[0] as ObxError;
  const same = errors.every((e) => e.code === first.code);
  const detail = errors.map((e) => (same ? detailOf(e) : e.message)).join('; ');
  return same ? obxError(codeName(first), detail) : obxError('UPDATE_FETCH_FAILED', detail);
}

async function sizeOrZero(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readCapped(path: string, max: number): Promise<Buffer> {
  const s = await stat(path).catch((err: unknown) => {
    throw obxError('UPDATE_FETCH_FAILED', `${path}: ${describeError(err)}`);
  });
  if (s.size > max) throw obxError('UPDATE_FETCH_FAILED', `${path}: longer than ${max} bytes`);
  return await readFile(path);
}

/**
 * An offline bundle copied to `DEST.part`, its size (the manifest's cap) and SHA-256 checked on the copy
 * (the source may change while it is read), then fsync, rename and fsync of the directory.
 */
async function copyVerified(from: string, dest: string, size: number, sha256: string): Promise<void> {
  const s = await stat(from).catch((err: unknown) => {
    throw obxError('UPDATE_FETCH_FAILED', `${from}: ${describeError(err)}`);
  });
  if (s.size !== size) {
    throw obxError('UPDATE_DOWNLOAD_OVERSIZE', `${from} has ${s.size} bytes, the manifest ${size}`);
  }
  const part = partPath(dest);
  await copyFile(from, part);
  const hash = createHash('sha256');
  let length = 0;
  for await (const chunk of createReadStream(part)) {
    hash.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  const got = hash.digest('hex');
  if (length !== size || got !== sha256) {
    await unlink(part).catch(() => undefined);
    throw obxError('UPDATE_HASH_MISMATCH', `SHA-256 ${got} (${length} bytes), the manifest says ${sha256}`);
  }
  const h = await open(part, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(part, dest);
  await fsyncDirectory(dirname(dest));
}
