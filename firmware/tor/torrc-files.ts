/**
 * The torrc on disk, in three files: `<torrc>.new` (a candidate, checked with `tor --verify-config`),
 * `<torrc>` (what tor runs) and `<torrc>.good` (the last torrc tor became ready with). The one sequence
 * every change goes through is here: write `.new`, verify it, install it, and keep it as `.good` once tor
 * is ready with it. Every write is atomic (a power cut leaves the old or the new file).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { obxError } from '../errors.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import { exec } from '../lib/exec.js';
import { torEnvironment } from './process.js';

/** `tor --verify-config` on a file: ok, or tor's warnings and errors (last 8 lines). */
export async function verifyTorrc(
  torBinary: string,
  torrc: string,
  dataDir?: string,
): Promise<{ ok: boolean; output: string }> {
  const r = await exec(
    torBinary,
    [
      '--verify-config',
      '--defaults-torrc',
      '/dev/null',
      '-f',
      torrc,
      '--ignore-missing-torrc',
      '--hush',
      // tor checks that it can use its DataDirectory; with tor in its own unit that is debian-tor's
      // (0700), so onionboxd verifies the rest of the file against a private directory of its own
      ...(dataDir === undefined ? [] : ['--DataDirectory', dataDir]),
    ],
    { timeoutMs: 30_000, env: torEnvironment(process.env) },
  );
  const output = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => /\[(warn|err)\]/.test(l) || (!r.ok && l.trim() !== ''))
    .slice(-8)
    .join('\n');
  return { ok: r.ok, output };
}

export class TorrcFiles {
  readonly #torBinary: string;
  readonly #verifyDataDir: string | undefined;
  constructor(
    /** Where tor's torrc lives. */
    readonly path: string,
    torBinary: string,
    /** A DataDirectory of onionboxd's own for `--verify-config` (tor in its own unit); default the torrc's. */
    verifyDataDir?: string,
  ) {
    this.#torBinary = torBinary;
    this.#verifyDataDir = verifyDataDir;
  }

  get candidatePath(): string {
    return `${this.path}.new`;
  }

  get goodPath(): string {
    return `${this.path}.good`;
  }

  /**
   * Writes text as the candidate and has tor verify it. Refused: OBX_ERR_TOR_CONFIG_REJECTED with tor's
   * own words, and the running torrc is untouched.
   */
  async verify(text: string): Promise<void> {
    await atomicWriteFile(this.candidatePath, text, 0o644);
    if (this.#verifyDataDir !== undefined) await mkdir(this.#verifyDataDir, { recursive: true, mode: 0o700 });
    const verified = await verifyTorrc(this.#torBinary, this.candidatePath, this.#verifyDataDir);
    if (!verified.ok) throw obxError('TOR_CONFIG_REJECTED', verified.output || 'tor --verify-config failed');
  }

  /**
   * The one sequence every new torrc goes through: verify it as `.new` (refused: throws
   * OBX_ERR_TOR_CONFIG_REJECTED, nothing installed), run beforeInstall, install it, let tor use it
   * (start or reload), and keep it as `.good` when use() reports tor working with it (true). Returns
   * use()'s outcome: true, or why tor did not work with it.
   */
  async adopt(
    text: string,
    steps: { beforeInstall?: () => Promise<void>; use: () => Promise<true | string> },
  ): Promise<true | string> {
    await this.verify(text);
    await steps.beforeInstall?.();
    await this.install(text);
    const outcome = await steps.use();
    if (outcome === true) await this.keepAsGood(text);
    return outcome;
  }

  /** Makes text the torrc tor runs (after verify, or an earlier torrc being restored). */
  install(text: string): Promise<void> {
    return atomicWriteFile(this.path, text, 0o644);
  }

  /** Keeps text as the last working torrc: tor became ready with it. */
  keepAsGood(text: string): Promise<void> {
    return atomicWriteFile(this.goodPath, text, 0o644);
  }

  /** The torrc tor runs now. */
  current(): Promise<string> {
    return readFile(this.path, 'utf8');
  }

  /** The last working torrc, or null before tor was ever ready. */
  good(): Promise<string | null> {
    return readFile(this.goodPath, 'utf8').catch(() => null);
  }

  /** Installs the last working torrc again; false when there is none. */
  async restoreGood(): Promise<boolean> {
    const good = await this.good();
    if (good === null) return false;
    await this.install(good);
    return true;
  }
}
