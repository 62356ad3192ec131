/**
 * The install step behind one interface (Installer), and its real adapter: the verified bundle handed to
 * RAUC's service over the system D-Bus (`de.pengutronix.rauc.Installer.InstallBundle`), so onionboxd stays
 * non-root. The image's D-Bus policy (firmware/system/dbus-1/onionbox-rauc.conf) lets user onionbox call
 * exactly that method; RAUC itself checks the bundle's CMS signature against its keyring, writes only the
 * slot the box is not running from (marked bad before writing, good and primary after), and reports the
 * end as the `Completed` signal (0: done) and the `LastError` property.
 *
 * The adapter runs two programs with argument arrays (glib's gdbus, from libglib2.0-bin): `gdbus monitor`
 * (a match rule on RAUC's signals: no method call, no extra permission) started first, then `gdbus call`.
 * What the monitor prints is parsed by a pure function (parseRaucSignal).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { describeError, obxError } from '../errors.js';
import { followLines, LastLines } from '../lib/child-lines.js';
import { exec } from '../lib/exec.js';

export interface Installer {
  /**
   * Writes the verified bundle at `bundlePath` to the other slot (never the running one) and resolves when
   * the write is complete; throws OBX_ERR_UPDATE_INSTALL_FAILED with RAUC's reason otherwise.
   */
  install(bundlePath: string, onProgress?: (percent: number, message: string) => void): Promise<void>;
  /** Restarts the box into the slot just written (its trial boot). */
  restart(): Promise<void>;
}

export const RAUC_BUS_NAME = 'de.pengutronix.rauc';
export const RAUC_INSTALLER = 'de.pengutronix.rauc.Installer';

export type RaucSignal =
  | { readonly kind: 'completed'; readonly result: number }
  | { readonly kind: 'last-error'; readonly message: string }
  | { readonly kind: 'progress'; readonly percent: number; readonly message: string };

/** One GVariant text string ('...' with \\ escapes, or "..."), as gdbus prints it. */
const GSTRING = String.raw`'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"`;

function unescapeGVariant(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/**
 * One line of `gdbus monitor --system --dest de.pengutronix.rauc --object-path /`:
 *   /: de.pengutronix.rauc.Installer.Completed (0,)
 *   /: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'LastError': <'...'>}, @as [])
 *   /: org.freedesktop.DBus.Properties.PropertiesChanged ('de.pengutronix.rauc.Installer', {'Progress': <(40, 'Copying image', 1)>}, @as [])
 * Anything else is null.
 */
export function parseRaucSignal(line: string): RaucSignal | null {
  const completed = /^\/: de\.pengutronix\.rauc\.Installer\.Completed \((-?\d+),\)$/.exec(line.trim());
  if (completed) return { kind: 'completed', result: Number(completed[1]) };
  if (
    !/^\/: org\.freedesktop\.DBus\.Properties\.PropertiesChanged \('de\.pengutronix\.rauc\.Installer', /.test(
      line,
    )
  ) {
    return null;
  }
  const err = new RegExp(`'LastError': <(?:${GSTRING})>`).exec(line);
  if (err) return { kind: 'last-error', message: unescapeGVariant(err[1] ?? err[2] ?? '') };
  const progress = new RegExp(`'Progress': <\\((\\d+), (?:${GSTRING}), (\\d+)\\)>`).exec(line);
  if (progress) {
    return {
      kind: 'progress',
      percent: Number(progress[1]),
      message: unescapeGVariant(progress[2] ?? progress[3] ?? ''),
    };
  }
  return null;
}

/** A bundle path RAUC may be given: absolute, no control character, no comma-free surprises for gdbus. */
export function checkBundlePath(path: string): string {
  if (!isAbsolute(path) || !/^\/[A-Za-z0-9._/-]{1,4095}$/.test(path) || path.includes('/../')) {
    throw obxError('UPDATE_INSTALL_FAILED', `not a bundle path RAUC is given: ${JSON.stringify(path)}`);
  }
  return path;
}

export interface RaucDbusOptions {
  /** The gdbus program (tests put a stand-in first on PATH). */
  readonly gdbus?: string;
  /** RAUC's whole install (default 30 min: a root slot on an SD card). */
  readonly timeoutMs?: number;
  /**
   * Where onionboxd asks for the restart (its RuntimeDirectory, /run/onionbox): it writes
   * `reboot-requested` there and the root oneshot `onionbox-reboot.service`, started by its `.path` unit,
   * runs `systemctl reboot`. onionboxd holds no capability and no polkit rule to reboot by itself.
   */
  readonly runtimeDir?: string | undefined;
  /** How the restart is asked for (tests): default, the file above. */
  readonly requestRestart?: (file: string, reason: string) => Promise<void>;
}

export const REBOOT_REQUEST_FILE = 'reboot-requested';

export class RaucDbusInstaller implements Installer {
  readonly #gdbus: string;
  readonly #timeoutMs: number;
  readonly #runtimeDir: string | undefined;
  readonly #requestRestart: (file: string, reason: string) => Promise<void>;

  constructor(options: RaucDbusOptions = {}) {
    this.#gdbus = options.gdbus ?? 'gdbus';
    this.#timeoutMs = options.timeoutMs ?? 30 * 60_000;
    this.#runtimeDir = options.runtimeDir;
    this.#requestRestart =
      options.requestRestart ?? ((file, reason) => writeFile(file, `${reason}\n`, { mode: 0o600 }));
  }

  async install(bundlePath: string, onProgress?: (percent: number, message: string) => void): Promise<void> {
    const path = checkBundlePath(bundlePath);
    const monitor = spawn(
      this.#gdbus,
      ['monitor', '--system', '--dest', RAUC_BUS_NAME, '--object-path', '/'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const tail = new LastLines(5);
    try {
      let lastError = '';
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(obxError('UPDATE_INSTALL_FAILED', `RAUC did not finish within ${this.#timeoutMs} ms`)),
          this.#timeoutMs,
        );
        const finish = (err?: Error) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        };
        followLines([monitor.stdout, monitor.stderr], (line) => {
          tail.push(line);
          const signal = parseRaucSignal(line);
          if (signal?.kind === 'progress') onProgress?.(signal.percent, signal.message);
          if (signal?.kind === 'last-error') lastError = signal.message;
          if (signal?.kind === 'completed') {
            if (signal.result === 0) finish();
            else finish(obxError('UPDATE_INSTALL_FAILED', lastError || `RAUC's result ${signal.result}`));
          }
        });
        monitor.once('exit', (code) =>
          finish(
            obxError('UPDATE_INSTALL_FAILED', `gdbus monitor ended (${code}): ${tail.last().join(' / ')}`),
          ),
        );
        monitor.once('error', (err) =>
          finish(obxError('UPDATE_INSTALL_FAILED', err.message, { cause: err })),
        );
      });
      done.catch(() => undefined);
      await monitorReady(monitor);
      const call = await exec(
        this.#gdbus,
        [
          'call',
          '--system',
          '--dest',
          RAUC_BUS_NAME,
          '--object-path',
          '/',
          '--method',
          `${RAUC_INSTALLER}.InstallBundle`,
          path,
          // typed: gdbus cannot give an empty `{}` a type, sends it as a string, and RAUC refuses the call
          // ("Type of message, (ss), does not match expected type (sa{sv})", seen in the emulated image)
          '@a{sv} {}',
        ],
        { timeoutMs: 60_000 },
      );
      if (!call.ok) {
        throw obxError('UPDATE_INSTALL_FAILED', (call.stderr.trim() || call.error) ?? 'InstallBundle failed');
      }
      await done;
    } finally {
      monitor.kill('SIGTERM');
    }
  }

  async restart(): Promise<void> {
    if (this.#runtimeDir === undefined) {
      throw obxError(
        'UPDATE_INSTALL_FAILED',
        'restart: no runtime directory to ask for it; restart the box by hand',
      );
    }
    const file = join(this.#runtimeDir, REBOOT_REQUEST_FILE);
    try {
      await this.#requestRestart(file, 'update installed');
    } catch (err) {
      throw obxError('UPDATE_INSTALL_FAILED', `restart: could not write ${file}: ${describeError(err)}`);
    }
  }
}

/** gdbus monitor subscribes before it prints its first line ("Monitoring signals ..."). */
function monitorReady(monitor: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(obxError('UPDATE_INSTALL_FAILED', 'gdbus monitor did not start')),
      10_000,
    );
    monitor.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    monitor.once('exit', () => {
      clearTimeout(timer);
      reject(obxError('UPDATE_INSTALL_FAILED', 'gdbus monitor ended before it subscribed'));
    });
  });
}
