/**
 * The box's access point: hostapd as a Service. start() validates and renders hostapd.conf
 * (render.ts), sets the regulatory country first (`rfkill unblock wlan`: Wi-Fi stays blocked until a
 * country is set; `iw reg set CC`), replaces the live file atomically and runs `hostapd CONF` in the
 * foreground until it prints AP-ENABLED. The last config that reached AP-ENABLED is kept as
 * `<conf>.good`: when new settings fail (hostapd exits or never enables), that one is put back and
 * started again, and the caller gets OBX_ERR_NET_AP_FAILED with hostapd's last lines. A crash after
 * AP-ENABLED restarts hostapd with backoff; stop() ends the PID it started.
 *
 * Daemon wiring: `createAccessPoint({ settings: { ...config.network.accessPoint, interface:
 * config.network.lanInterface }, confPath: STATE_DIR/hostapd.conf, log })`, started when
 * `network.accessPoint` is set; `update()` from createBoxNetwork's applyAccessPoint.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFile, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile, fsyncDirectory } from '../lib/atomic-write.js';
import type { Service } from '../service.js';
import { renderHostapd, validateAccessPoint } from './render.js';

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AccessPointOptions {
  /** { interface, ssid, passphrase, country, channel, security } */
  settings: unknown;
  confPath: string;
  hostapd?: string;
  iw?: string;
  rfkill?: string;
  log?: Logger;
  startTimeoutMs?: number;
  backoffMs?: { initial: number; max: number };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, _out, stderr) => {
      if (err)
        reject(
          obxError(
            'NET_AP_FAILED',
            `${cmd} ${args.join(' ')}: ${String(stderr).trim().slice(0, 200) || err.message}`,
          ),
        );
      else resolve();
    });
  });
}

export class AccessPoint implements Service {
  readonly name = 'access-point';
  #opts: AccessPointOptions;
  #child: ChildProcess | null = null;
  #ending = new WeakSet<ChildProcess>();
  #stopping = false;
  #lines: string[] = [];
  #timer: NodeJS.Timeout | null = null;
  #backoff: number;
  #restarts = 0;

  constructor(opts: AccessPointOptions) {
    this.#opts = opts;
    this.#backoff = opts.backoffMs?.initial ?? 1000;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get restarts(): number {
    return this.#restarts;
  }

  async start(): Promise<void> {
    this.#stopping = false;
    await this.#apply(this.#opts.settings);
  }

  /** New settings; on failure the last working ones run again and the error says why. */
  async update(settings: unknown): Promise<void> {
    await this.#apply(settings);
    this.#opts.settings = settings;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#kill();
  }

  async #apply(settings: unknown): Promise<void> {
    const ap = validateAccessPoint(settings);
    const text = renderHostapd(settings);
    const conf = this.#opts.confPath;
    await this.#kill();
    await run(this.#opts.rfkill ?? 'rfkill', ['unblock', 'wlan']);
    await run(this.#opts.iw ?? 'iw', ['reg', 'set', ap.country]);
    await atomicWriteFile(conf, text, 0o600);
    try {
      await this.#launch();
    } catch (err) {
      const good = await readFile(`${conf}.good`, 'utf8').catch(() => null);
      if (good === null || good === text) throw err;
      this.#opts.log?.warn(
        { err: describeError(err) },
        'hostapd failed with the new settings; restoring the last working ones',
      );
      await copyFile(`${conf}.good`, `${conf}.restore`);
      await rename(`${conf}.restore`, conf);
      await fsyncDirectory(dirname(conf));
      const country = /^country_code=([A-Z]{2})$/m.exec(good)?.[1];
      if (country) await run(this.#opts.iw ?? 'iw', ['reg', 'set', country]).catch(() => undefined);
      await this.#launch().catch((e) =>
        this.#opts.log?.error({ err: describeError(e) }, 'the last working hostapd config failed too'),
      );
      throw err;
    }
    await atomicWriteFile(`${conf}.good`, text, 0o600);
  }

  #launch(): Promise<void> {
    this.#lines = [];
    const child = spawn(this.#opts.hostapd ?? '/usr/sbin/hostapd', [this.#opts.confPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    return new Promise((resolve, reject) => {
      let ready = false;
      const fail = (why: string) => {
        if (ready) return;
        ready = true;
        clearTimeout(timer);
        reject(obxError('NET_AP_FAILED', `${why}: ${this.#lines.slice(-4).join(' | ')}`));
      };
      const timer = setTimeout(() => {
        fail('hostapd did not enable the access point in time');
        void this.#kill();
      }, this.#opts.startTimeoutMs ?? 20_000);
      let buf = '';
      const onData = (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) {
          // hostapd never prints the passphrase; keep the lines short anyway
          this.#lines.push(line.slice(0, 200));
          if (this.#lines.length > 20) this.#lines.shift();
          if (!ready && /AP-ENABLED/.test(line)) {
            ready = true;
            clearTimeout(timer);
            this.#backoff = this.#opts.backoffMs?.initial ?? 1000;
            resolve();
          }
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (e) => fail(e.message));
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = null;
        if (!ready) return fail(`hostapd exited (${code ?? signal})`);
        if (this.#stopping || this.#ending.has(child)) return;
        this.#opts.log?.error({}, `hostapd exited (${code ?? signal}); restarting`);
        this.#scheduleRestart();
      });
    });
  }

  #scheduleRestart(): void {
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMs?.max ?? 30_000);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#stopping) return;
      this.#restarts++;
      this.#launch().catch(() => {
        if (!this.#stopping) this.#scheduleRestart();
      });
    }, delay);
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.#child = null;
      return;
    }
    this.#ending.add(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    if (this.#child === child) this.#child = null;
  }
}

export function createAccessPoint(opts: AccessPointOptions): AccessPoint {
  return new AccessPoint(opts);
}
