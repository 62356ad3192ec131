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
 * `network.accessPoint` is set; `update()` from BoxNetwork's applyAccessPoint (firmware/net/network.ts).
 */
import { copyFile, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile, fsyncDirectory } from '../lib/atomic-write.js';
import { exec } from '../lib/exec.js';
import type { Service } from '../lib/service.js';
import type { Log } from '../log.js';
import { renderHostapd, validateAccessPoint } from './render.js';
import { SupervisedChild } from './supervised-child.js';

/** The firmware's one logger interface (firmware/log.ts). */
type Logger = Log;

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

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await exec(cmd, args, { timeoutMs: 15_000 });
  if (!r.ok) {
    throw obxError('NET_AP_FAILED', `${cmd} ${args.join(' ')}: ${r.stderr.trim().slice(0, 200) || r.error}`);
  }
}

export class AccessPoint implements Service {
  readonly name = 'access-point';
  #opts: AccessPointOptions;
  readonly #child: SupervisedChild;

  constructor(opts: AccessPointOptions) {
    this.#opts = opts;
    this.#child = new SupervisedChild({
      command: () => [this.#opts.hostapd ?? '/usr/sbin/hostapd', [this.#opts.confPath]],
      output: 'both',
      ready: /AP-ENABLED/,
      startTimeoutMs: opts.startTimeoutMs ?? 20_000,
      backoffMs: opts.backoffMs ?? { initial: 1000, max: 30_000 },
      // hostapd never prints the passphrase; keep the lines short anyway
      maxLineLength: 200,
      failure: (kind, detail, lines) => {
        const why =
          kind === 'timeout'
            ? 'hostapd did not enable the access point in time'
            : kind === 'exited'
              ? `hostapd ${detail}`
              : detail;
        return obxError('NET_AP_FAILED', `${why}: ${lines.slice(-4).join(' | ')}`);
      },
      onCrash: (why) => this.#opts.log?.error({}, `hostapd ${why}; restarting`),
    });
  }

  get pid(): number | null {
    return this.#child.pid;
  }

  get restarts(): number {
    return this.#child.restarts;
  }

  async start(): Promise<void> {
    await this.#apply(this.#opts.settings);
  }

  /** New settings; on failure the last working ones run again and the error says why. */
  async update(settings: unknown): Promise<void> {
    await this.#apply(settings);
    this.#opts.settings = settings;
  }

  async stop(): Promise<void> {
    await this.#child.stop();
  }

  async #apply(settings: unknown): Promise<void> {
    const ap = validateAccessPoint(settings);
    const text = renderHostapd(settings);
    const conf = this.#opts.confPath;
    await this.#child.kill();
    await run(this.#opts.rfkill ?? 'rfkill', ['unblock', 'wlan']);
    await run(this.#opts.iw ?? 'iw', ['reg', 'set', ap.country]);
    await atomicWriteFile(conf, text, 0o600);
    try {
      await this.#child.launch();
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
      await this.#child
        .launch()
        .catch((e) =>
          this.#opts.log?.error({ err: describeError(e) }, 'the last working hostapd config failed too'),
        );
      throw err;
    }
    await atomicWriteFile(`${conf}.good`, text, 0o600);
  }
}

export function createAccessPoint(opts: AccessPointOptions): AccessPoint {
  return new AccessPoint(opts);
}
