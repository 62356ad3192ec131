/**
 * The configuration store: one JSON document, validated by one schema at load and at every write,
 * migrated by version, written atomically with mode 0600, with the last good copy kept beside it.
 *
 * Files in the state directory:
 *   config.json       the current document
 *   config.json.bak   the previous good document (written before every replacement; after a change of
 *                     secrets, the new document: an old password hash never stays behind)
 *   config.json.broken-<time>  a file that failed to load, kept for diagnosis, never deleted by us
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, isObxError, ObxError, obxError } from '../errors.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import type { Log } from '../log.js';
import { migrate } from './migrations.js';
import { type Config, defaultConfig } from './schema.js';
// The schema and the grammars of tor and networking (CONFIG_CHECKS): the store never accepts a document
// that tor or the network renderers would refuse.
import { validateConfig } from './validate.js';

export type ConfigSource = 'main' | 'backup' | 'defaults';

export interface LoadResult {
  config: Readonly<Config>;
  source: ConfigSource;
  /** Why the main file was not used, when it was not. */
  problem?: string;
}

const FILE = 'config.json';

/** Parses and validates one file's text. Throws ObxError with a precise code. */
export function parseConfigText(text: string): Readonly<Config> {
  if (text.trim() === '') throw obxError('CONFIG_NOT_JSON', 'file is empty');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw obxError('CONFIG_NOT_JSON', (err as Error).message);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw obxError('CONFIG_INVALID', 'top level must be a JSON object');
  }
  return validateConfig(migrate(doc).doc);
}

export class ConfigStore {
  readonly path: string;
  readonly backupPath: string;
  #config: Readonly<Config> | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #changed = new Set<(config: Readonly<Config>) => void>();

  readonly #log: Log | undefined;
  constructor(
    readonly dir: string,
    log?: Log,
  ) {
    this.#log = log;
    this.path = join(dir, FILE);
    this.backupPath = `${this.path}.bak`;
  }

  get(): Readonly<Config> {
    if (!this.#config) throw new Error('ConfigStore.get() before load()');
    return this.#config;
  }

  /**
   * Loads the document. Main file broken -> the backup is used and written back as main (the broken file
   * is kept aside). No file at all -> a fresh box's defaults with a new session key. Both broken ->
   * OBX_ERR_CONFIG_UNREADABLE and nothing is overwritten.
   */
  async load(): Promise<LoadResult> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.#removeStaleTemps();
    const main = await this.#tryRead(this.path);
    if (main.config) {
      this.#config = main.config;
      if (main.migrated) await this.#write(main.config, false);
      return { config: main.config, source: 'main' };
    }
    const backup = await this.#tryRead(this.backupPath);
    if (main.missing && backup.missing) {
      const fresh = validateConfig({
        ...defaultConfig(),
        web: { ...defaultConfig().web, sessionKey: randomBytes(32).toString('hex') },
      });
      await this.#write(fresh, false);
      this.#config = fresh;
      this.#log?.info({ path: this.path }, 'no configuration yet: fresh box defaults written');
      return { config: fresh, source: 'defaults' };
    }
    if (backup.config) {
      this.#log?.error(
        { path: this.path, problem: main.problem },
        'configuration unreadable, using the last good copy',
      );
      if (!main.missing) await this.#setAside(this.path);
      await this.#write(backup.config, false);
      this.#config = backup.config;
      return { config: backup.config, source: 'backup', problem: main.problem ?? 'missing' };
    }
    throw obxError(
      'CONFIG_UNREADABLE',
      `${this.path}: ${main.problem ?? 'missing'}; ${this.backupPath}: ${backup.problem ?? 'missing'}`,
    );
  }

  /** Called with each document update() stored (the page socket's Mirror follows it); returns the unsubscribe. */
  onChange(listener: (config: Readonly<Config>) => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  /**
   * Validates the whole new document, then writes it atomically. Bad input changes nothing.
   * `forgetPrevious`: the backup becomes the new document too, so the previous one (an old password hash
   * or session key) is gone from disk once this resolves.
   */
  update(
    change: (current: Readonly<Config>) => Config,
    opts: { forgetPrevious?: boolean } = {},
  ): Promise<Readonly<Config>> {
    const run = this.#queue.then(async () => {
      const next = validateConfig(change(this.get())); // the one validation that decides what is stored
      await this.#write(next, opts.forgetPrevious !== true);
      this.#config = next;
      for (const listener of this.#changed) {
        try {
          listener(next);
        } catch (err) {
          this.#log?.error({ err: describeError(err) }, 'a configuration listener failed');
        }
      }
      return next;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #write(config: Readonly<Config>, keepBackup: boolean): Promise<void> {
    const text = `${JSON.stringify(config, null, 2)}\n`;
    try {
      if (keepBackup && this.#config) {
        await atomicWriteFile(this.backupPath, `${JSON.stringify(this.#config, null, 2)}\n`, 0o600);
      }
      await atomicWriteFile(this.path, text, 0o600);
      if (!keepBackup) await atomicWriteFile(this.backupPath, text, 0o600);
    } catch (err) {
      throw obxError('CONFIG_WRITE_FAILED', describeError(err), { cause: err });
    }
  }

  async #tryRead(
    path: string,
  ): Promise<{ config?: Readonly<Config>; migrated?: boolean; missing?: boolean; problem?: string }> {
    let text: string;
    try {
      const st = await stat(path);
      if (!st.isFile()) return { problem: 'not a regular file' };
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
      return { problem: describeError(err) };
    }
    try {
      const version = peekVersion(text);
      const config = parseConfigText(text);
      return { config, migrated: version !== config.version };
    } catch (err) {
      if (err instanceof ObxError || isObxError(err)) return { problem: describeError(err) };
      throw err;
    }
  }

  /** Temp files of a write cut short (power cut, SIGKILL) are garbage: the rename never happened. */
  async #removeStaleTemps(): Promise<void> {
    for (const f of await readdir(this.dir)) {
      if (f.startsWith(`.${FILE}.tmp-`) || f.startsWith(`.${FILE}.bak.tmp-`)) {
        await unlink(join(this.dir, f)).catch(() => undefined);
      }
    }
  }

  async #setAside(path: string): Promise<void> {
    const aside = `${path}.broken-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      await rename(path, aside);
      this.#log?.warn({ aside }, 'broken configuration kept for diagnosis');
    } catch (err) {
      this.#log?.warn({ err: describeError(err) }, 'could not set the broken configuration aside');
    }
  }
}

function peekVersion(text: string): unknown {
  try {
    return (JSON.parse(text) as { version?: unknown }).version;
  } catch {
    return undefined;
  }
}
