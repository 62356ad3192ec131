/**
 * The box's access point: hostapd as a Service. hostapd runs as a systemd unit of its own under its own
 * user (onionbox-hostapd.service): onionboxd neither starts nor stops it (unit-child.ts). start()
 * validates and renders hostapd.conf (render.ts), sets the regulatory country first (`rfkill unblock
 * wlan`: Wi-Fi stays blocked until a country is set; `iw reg set CC`), then replaces the live file
 * atomically: the rename has systemd restart hostapd with it (onionbox-hostapd.path), and start()
 * resolves once hostapd's PID file names a new process that keeps running. The last config that ran is
 * kept as `<conf>.good`: when new settings fail (hostapd exits or never starts), that one is put back
 * (and so started again), and the caller gets OBX_ERR_NET_AP_FAILED. A crash is systemd's to restart.
 *
 * Daemon wiring: `createAccessPoint({ settings: { ...config.network.accessPoint, interface:
 * config.network.lanInterface }, confPath: STATE_DIR/hostapd.conf, pidFile: /run/onionbox-ap/hostapd.pid,
 * log })`, started when `network.accessPoint` is set; `update()` from BoxNetwork's applyAccessPoint
 * (firmware/net/network.ts).
 */
import { copyFile, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeError, obxError } from '../errors.js';
import { atomicWriteFile, fsyncDirectory } from '../lib/atomic-write.js';
import { exec } from '../lib/exec.js';
import type { Service } from '../lib/service.js';
import type { Log } from '../log.js';
import { renderHostapd, validateAccessPoint } from './render.js';
import { UnitChild } from './unit-child.js';

/** The firmware's one logger interface (firmware/log.ts). */
type Logger = Log;

export interface AccessPointOptions {
  /** { interface, ssid, passphrase, country, channel, security } */
  settings: unknown;
  /** The live hostapd.conf, the file onionbox-hostapd.service loads. */
  confPath: string;
  /** The PID file hostapd writes (`-P`, in onionbox-hostapd.service: /run/onionbox-ap/hostapd.pid). */
  pidFile: string;
  iw?: string;
  rfkill?: string;
  log?: Logger;
  /** How long a restarted hostapd may take to run (default 20 s). */
  startTimeoutMs?: number;
  /** How long it must then keep running (default 1 s: a setting refused after it forked). */
  settleMs?: number;
}

/** The systemd unit hostapd runs in (named in errors: its journal has hostapd's own words). */
const UNIT = 'onionbox-hostapd';

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await exec(cmd, args, { timeoutMs: 15_000 });
  if (!r.ok) {
    throw obxError('NET_AP_FAILED', `${cmd} ${args.join(' ')}: ${r.stderr.trim().slice(0, 200) || r.error}`);
  }
}

export class AccessPoint implements Service {
  readonly name = 'access-point';
  #opts: AccessPointOptions;
  readonly #unit: UnitChild;
  #pid: number | null = null;

  constructor(opts: AccessPointOptions) {
    this.#opts = opts;
    this.#unit = new UnitChild({
      pidFile: opts.pidFile,
      startTimeoutMs: opts.startTimeoutMs ?? 20_000,
      settleMs: opts.settleMs ?? 1000,
    });
  }

  /** The hostapd that last started with settings from here (null before). */
  get pid(): number | null {
    return this.#pid;
  }

  async start(): Promise<void> {
    await this.#apply(this.#opts.settings);
  }

  /** New settings; on failure the last working ones run again and the error says why. */
  async update(settings: unknown): Promise<void> {
    await this.#apply(settings);
    this.#opts.settings = settings;
  }

  /** hostapd's unit stops with onionboxd's (PartOf=): nothing of it is onionboxd's to end. */
  async stop(): Promise<void> {}

  async #apply(settings: unknown): Promise<void> {
    const ap = validateAccessPoint(settings);
    const text = renderHostapd(settings);
    const conf = this.#opts.confPath;
    await run(this.#opts.rfkill ?? 'rfkill', ['unblock', 'wlan']);
    await run(this.#opts.iw ?? 'iw', ['reg', 'set', ap.country]);
    const before = await this.#unit.pid();
    await atomicWriteFile(conf, text, 0o600);
    try {
      this.#pid = await this.#unit.waitForStart(before);
    } catch (err) {
      const failure = obxError(
        'NET_AP_FAILED',
        `hostapd did not start with these settings (${describeError(err)}); its log: journalctl -u ${UNIT}`,
      );
      const good = await readFile(`${conf}.good`, 'utf8').catch(() => null);
      if (good === null || good === text) throw failure;
      this.#opts.log?.warn(
        { err: describeError(err) },
        'hostapd failed with the new settings; restoring the last working ones',
      );
      const country = /^country_code=([A-Z]{2})$/m.exec(good)?.[1];
      if (country) await run(this.#opts.iw ?? 'iw', ['reg', 'set', country]).catch(() => undefined);
      const failed = await this.#unit.pid();
      await copyFile(`${conf}.good`, `${conf}.restore`);
      await rename(`${conf}.restore`, conf);
      await fsyncDirectory(dirname(conf));
      try {
        this.#pid = await this.#unit.waitForStart(failed);
      } catch (e) {
        this.#opts.log?.error({ err: describeError(e) }, 'the last working hostapd config failed too');
      }
      throw failure;
    }
    await atomicWriteFile(`${conf}.good`, text, 0o600);
  }
}

export function createAccessPoint(opts: AccessPointOptions): AccessPoint {
  return new AccessPoint(opts);
}
