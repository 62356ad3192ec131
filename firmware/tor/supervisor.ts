/**
 * TorSupervisor: runs tor and keeps it ready. It composes the parts, each in its own module:
 *   - torrc-files.ts: the torrc files (`.new` -> `tor --verify-config` -> installed -> `.good`),
 *   - process.ts: the tor process (environment, user, data directory, spawn, exit),
 *   - readiness.ts: readiness as a pure reducer over tor's events,
 *   - queries.ts: circuits and the consensus's relays,
 * and owns the control connection, restarts after a crash (with backoff) and settings changes with
 * rollback to the last working torrc. On the box tor runs in its own unit (onionbox-tor.service, as
 * debian-tor; option `external`): the supervisor never spawns it, attaches to its ControlSocket, and
 * attaches again after systemd restarts it. Spawned (tests, development), tor drops to `User debian-tor`.
 * The control client uses SAFECOOKIE only, with the cookie's path pinned.
 *
 * Events on the firmware bus: 'tor:status' (every status change), 'tor:warning' (tor WARN/ERR messages),
 * 'tor:clock-skew' (CLOCK_SKEW reports, for clock.ts), 'tor:consensus' (NEWCONSENSUS),
 * 'tor:dangerous-version' (STATUS_GENERAL DANGEROUS_VERSION, for the update warning),
 * 'tor:client-status' (every STATUS_CLIENT and STATUS_GENERAL event as tor sent it, for the connection
 * assist).
 *
 * Over 600 lines (about a fifth of it comments, the options' documentation among them) because start,
 * attach, apply with rollback, the network change (networkChanged), restart and stop share one control
 * connection, one launch generation and one apply queue: split further, each part would need all three.
 * What needs none of them is in the modules above.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ApplyTorResult, CircuitInfo } from '../box/api.js';
import type { TorConfig } from '../config/schema.js';
import { describeError, isObxError, obxError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { RelayEndpoint } from '../firewall/params.js';
import { clipText } from '../lib/clip.js';
import type { Log } from '../log.js';
import type { TorStatus } from '../state/machine.js';
import { type ControlOptions, connectControl, type TorControl } from './control.js';
import { torSettingsProblems } from './grammar.js';
import { prepareDataDir, TorProcess } from './process.js';
import { dangerousVersionOf, parseBootstrap, parseStatusEvent, type TorEvent } from './protocol.js';
import { TorQueries } from './queries.js';
import {
  extendedCircuit,
  initialReadiness,
  probeNeeded,
  type Readiness,
  type ReadinessEvent,
  readinessEventOf,
  reduceReadiness,
} from './readiness.js';
import { cookiePath, renderTorrc, type TorRuntime } from './torrc.js';
import { TorrcFiles } from './torrc-files.js';

/** The supervisor's status: TorStatus is declared once, in firmware/state/machine.ts (with tor's PID). */
export type { TorStatus };

export interface ClockSkew {
  /** Seconds our clock is ahead of the source (negative: we are behind). */
  skewSeconds: number;
  /** SOURCE= of the report: CONSENSUS, DIRSERV:..., OR:... */
  source: string;
  /** True when SKEW is only a lower bound (MIN_SKEW, from the consensus). */
  minimum: boolean;
}

export type { ApplyTorResult };

/** The firmware's one logger interface (firmware/log.ts). */
export type SupervisorLogger = Log;

export interface TorSupervisorOptions {
  bus: EventBus;
  log?: SupervisorLogger | undefined;
  /** Initial settings (from the config store). */
  settings: TorConfig;
  /** Where the rendered torrc lives (the last working copy is kept as `<torrc>.good`). */
  torrcPath: string;
  /** Runtime parameters of the torrc (data dir, ports, LAN address, user, extra lines). */
  runtime: TorRuntime;
  /** tor binary (default `tor` on PATH). */
  torBinary?: string | undefined;
  /** Restart backoff: first delay and cap (ms). Default 250 ms doubling to 30 s. */
  backoffMs?: { initial: number; max: number } | undefined;
  /** How long applySettings waits for readiness before rolling back (default 90 s). */
  applyTimeoutMs?: number | undefined;
  /** How long start() waits for tor's control port (default 30 s). */
  startTimeoutMs?: number | undefined;
  /**
   * Called with verified new settings before tor is reloaded with them (and again with the old ones
   * before a rollback): the firewall's relay set must already hold new bridges when tor dials them.
   */
  beforeReload?: ((settings: TorConfig) => Promise<void>) | undefined;
  /**
   * tor runs in its own unit (onionbox-tor.service, as debian-tor): systemd starts, restarts and stops it.
   * The supervisor writes and verifies the torrc (against `verifyDataDir`, a private directory of its own:
   * tor's is debian-tor's) and drives tor only over the control socket: RELOAD after a new torrc; a closed
   * socket is tor's death (status crashed, the LAN stays closed) and it reconnects once systemd has
   * restarted tor. Without it (tests, development) the supervisor spawns tor itself.
   */
  external?: { verifyDataDir: string } | undefined;
}

const MAX_WARNINGS = 20;
/** tor's MAX_SIGNEWNYM_RATE (10 s) plus a margin for clock granularity (tor counts whole seconds). */
const NEWNYM_INTERVAL_MS = 11_000;
/** A probe circuit not built within this long is given up and another one launched. */
const PROBE_TIMEOUT_MS = 10_000;
/** After a network change, while tor is not ready, its connections are closed again this often. */
const NET_CHANGE_KICK_MS = 15_000;

export class TorSupervisor {
  readonly #opts: TorSupervisorOptions;
  readonly #files: TorrcFiles;
  readonly #queries = new TorQueries();
  #settings: TorConfig;
  #readiness: Readiness = initialReadiness();
  /** The status last published on the bus (readiness plus PID). */
  #status: TorStatus = { ...initialReadiness().status };
  #proc: TorProcess | null = null;
  #control: TorControl | null = null;
  #warnings: string[] = [];
  #stopping = false;
  #running = false;
  #restartTimer: NodeJS.Timeout | null = null;
  #probeTimer: NodeJS.Timeout | null = null;
  #backoff: number;
  #readyWaiters = new Set<() => void>();
  #generation = 0;
  #applyQueue: Promise<unknown> = Promise.resolve();
  /** When tor last honoured a NEWNYM (or started: be conservative). */
  #lastNewnymAt = 0;
  /** tor's PID when it runs in its own unit (GETINFO process/pid). */
  #unitPid: number | undefined;

  constructor(opts: TorSupervisorOptions) {
    this.#opts = opts;
    this.#settings = opts.settings;
    this.#backoff = opts.backoffMs?.initial ?? 250;
    this.#files = new TorrcFiles(opts.torrcPath, opts.torBinary ?? 'tor', opts.external?.verifyDataDir);
  }

  get settings(): TorConfig {
    return this.#settings;
  }

  /** tor runs in its own unit (the supervisor attaches to its control socket, never spawns it). */
  get external(): boolean {
    return this.#opts.external !== undefined;
  }

  get torrcPath(): string {
    return this.#files.path;
  }

  get goodTorrcPath(): string {
    return this.#files.goodPath;
  }

  status(): TorStatus {
    return { ...this.#status };
  }

  lastWarnings(): string[] {
    return [...this.#warnings];
  }

  /** tor's PID, while it runs. */
  get pid(): number | undefined {
    return this.#proc?.pid ?? this.#unitPid;
  }

  /** The connected control client (for tests and benchmarks); null while tor is down. */
  get control(): TorControl | null {
    return this.#control?.connected ? this.#control : null;
  }

  /**
   * Renders and verifies the torrc, starts tor and connects its control port. Resolves once the control
   * port is up (readiness follows as 'tor:status' events). A bad torrc or a tor that dies at once:
   * OBX_ERR_TOR_CONFIG_REJECTED / OBX_ERR_TOR_START_FAILED, and phase 'failed'.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#stopping = false;
    this.#running = true;
    try {
      const text = renderTorrc(this.#settings, this.#opts.runtime);
      await mkdir(dirname(this.#files.path), { recursive: true });
      if (this.#opts.external) {
        await this.#startExternal(text);
        return;
      }
      await prepareDataDir(this.#opts.runtime.dataDir, this.#opts.runtime.user);
      // The torrc counts as working once tor runs with it and its control port answers.
      if (await this.#adoptAtStart(text, () => this.#launch().then(() => true as const)))
        await this.#launch();
    } catch (err) {
      this.#running = false;
      this.#dispatch({ type: 'failed', summary: describeError(err) });
      this.#proc?.kill();
      throw err;
    }
  }

  /**
   * The torrc at start: verified, installed and used; refused by tor, the last torrc tor was ready with is
   * installed instead and the box keeps working, saying so (true). Nothing to fall back to: throws.
   */
  async #adoptAtStart(text: string, use: () => Promise<true>): Promise<boolean> {
    try {
      await this.#files.adopt(text, { use });
      return false;
    } catch (err) {
      if (!isObxError(err, 'TOR_CONFIG_REJECTED')) throw err;
      if (!(await this.#files.restoreGood())) throw err;
      this.#warn(`running with the last working torrc: ${describeError(err)}`);
      this.#opts.log?.error(
        { err: describeError(err) },
        'configured tor settings refused; using the last working torrc',
      );
      return true;
    }
  }

  /**
   * tor in its own unit: the torrc verified and installed before this resolves (tor's unit starts after
   * onionboxd reports ready, and reads it), then the control socket is attached in the background.
   */
  async #startExternal(text: string): Promise<void> {
    await this.#adoptAtStart(text, async () => true);
    this.#dispatch({ type: 'starting' });
    this.#attachSoon(0);
  }

  #attachSoon(delayMs: number): void {
    if (this.#stopping) return;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      void this.#attach();
    }, delayMs);
  }

  #nextBackoff(): number {
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMs?.max ?? 30_000);
    return delay;
  }

  /** Connects to the unit's tor over its control socket (retrying while systemd starts it). */
  async #attach(): Promise<void> {
    const generation = ++this.#generation;
    this.#lastNewnymAt = Date.now() - NEWNYM_INTERVAL_MS;
    let control: TorControl;
    try {
      control = await connectControl(this.#controlOptions(), this.#opts.startTimeoutMs ?? 30_000);
    } catch (err) {
      if (generation !== this.#generation || this.#stopping) return;
      this.#opts.log?.error({ err: describeError(err) }, "tor's control socket is not answering");
      this.#dispatch({ type: 'crashed', summary: `tor is not answering (${describeError(err)})` });
      // if the torrc is what keeps tor from starting, systemd's next start uses the last working one
      await this.#files.restoreGood().catch(() => false);
      this.#attachSoon(this.#nextBackoff());
      return;
    }
    if (generation !== this.#generation || this.#stopping) {
      control.close();
      return;
    }
    control.onClose(() => this.#onControlClosed(generation));
    try {
      const pid = Number((await control.getInfo('process/pid'))['process/pid']);
      this.#unitPid = Number.isInteger(pid) && pid > 0 ? pid : undefined;
      await this.#take(control);
      this.#opts.log?.info({ pid: this.#unitPid }, "attached to tor's control socket");
    } catch (err) {
      this.#opts.log?.warn({ err: describeError(err) }, 'tor control setup failed');
      control.close();
    }
  }

  /** tor in its own unit: the control socket closed, so tor exited (systemd restarts it) or hung up. */
  #onControlClosed(generation: number): void {
    if (generation !== this.#generation || this.#stopping) return;
    this.#control = null;
    this.#unitPid = undefined;
    this.#opts.log?.error({}, "tor's control socket closed: tor exited or hung up; waiting for its restart");
    this.#dispatch({ type: 'crashed', summary: 'tor exited; restarting' });
    this.#attachSoon(this.#nextBackoff());
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#running = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#restartTimer = null;
    this.#probeTimer = null;
    const proc = this.#proc;
    this.#control?.close();
    this.#control = null;
    await proc?.stop();
    this.#proc = null;
    this.#dispatch({ type: 'stopped' });
  }

  /**
   * SIGNAL NEWNYM: new circuits for new connections (open ones keep theirs), DNS cache cleared. tor
   * honours one NEWNYM per 10 s and silently defers the rest, so this first waits out that interval (at
   * most ~11 s): when it resolves, the next connection really gets a new circuit.
   */
  async newIdentity(): Promise<void> {
    this.#requireControl();
    const wait = this.#lastNewnymAt + NEWNYM_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await this.#requireControl().signal('NEWNYM');
    this.#lastNewnymAt = Date.now();
  }

  circuits(): Promise<CircuitInfo[]> {
    return this.#queries.circuits(this.#requireControl());
  }

  /**
   * The relays of tor's consensus (GETINFO ns/all): address and ORPort. Only the consensus: the
   * firewall's relay set (tor/relay-set.ts) adds the authorities, fallbacks and bridges.
   */
  relayEndpoints(): Promise<RelayEndpoint[]> {
    return this.#queries.relayEndpoints(this.#requireControl());
  }

  /**
   * Validates, renders and verifies new settings, then reloads tor with them and waits for readiness.
   * Bad input: throws OBX_ERR_CONFIG_INVALID (field details) and nothing changes. tor refusing the torrc
   * (--verify-config): ok false, nothing changed. tor not becoming ready with them: the previous working
   * torrc is restored and reloaded, rolledBack true. The caller persists the settings when ok.
   */
  applySettings(settings: TorConfig): Promise<ApplyTorResult> {
    // One change at a time: a second apply waits for the first (and its possible rollback).
    const run = this.#applyQueue.then(() => this.#apply(settings));
    this.#applyQueue = run.catch(() => undefined);
    return run;
  }

  async #apply(settings: TorConfig): Promise<ApplyTorResult> {
    // Stays beside the store's check: the gate before tor's own file, naming every field to any caller.
    const problems = torSettingsProblems(settings);
    if (Object.keys(problems).length > 0) {
      const summary = Object.entries(problems)
        .slice(0, 3)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ');
      throw obxError('CONFIG_INVALID', summary, { details: problems });
    }
    const text = renderTorrc(settings, this.#opts.runtime);
    const previousSettings = this.#settings;
    let previousText = '';
    let applied: true | string;
    try {
      applied = await this.#files.adopt(text, {
        beforeInstall: async () => {
          previousText = await this.#files.current();
          await this.#opts.beforeReload?.(settings);
        },
        use: () => {
          this.#settings = settings;
          return this.#reloadAndWait();
        },
      });
    } catch (err) {
      if (!isObxError(err, 'TOR_CONFIG_REJECTED')) throw err;
      return { ok: false, rolledBack: false, message: describeError(err) };
    }
    if (applied === true)
      return { ok: true, rolledBack: false, message: 'tor is ready with the new settings' };
    this.#opts.log?.warn({ reason: applied }, 'tor did not become ready with the new settings: rolling back');
    await this.#opts.beforeReload?.(previousSettings);
    await this.#files.install(previousText);
    this.#settings = previousSettings;
    const back = await this.#reloadAndWait();
    return {
      ok: false,
      rolledBack: true,
      message: `tor did not work with the new settings (${applied}); the previous settings are back${
        back === true ? '' : ` but tor is not ready yet (${back})`
      }`,
    };
  }

  /**
   * Connection assist (firmware/tor/assist.ts): tor runs with `settings` from now on, without waiting
   * for readiness and without a rollback: the assist itself times each setting out and puts the stored
   * settings back (its `restore`). Verified first (refused: the reason, nothing changed), the relay set
   * updated before the reload (beforeReload), the torrc installed but not kept as the last working one
   * until keepAsGood(). Serialised with applySettings and networkChanged. Resolves true once tor reloaded
   * (or, while tor is down, once the next start will use it), or with why not. tor's open connections are
   * closed (DisableNetwork 1, then 0), so only the new setting can make it ready.
   */
  trySettings(settings: TorConfig): Promise<true | string> {
    const run = this.#applyQueue.then(async (): Promise<true | string> => {
      const problems = torSettingsProblems(settings);
      if (Object.keys(problems).length > 0) return Object.values(problems).join('; ');
      const text = renderTorrc(settings, this.#opts.runtime);
      try {
        await this.#files.verify(text);
      } catch (err) {
        if (!isObxError(err, 'TOR_CONFIG_REJECTED')) throw err;
        return describeError(err);
      }
      await this.#opts.beforeReload?.(settings);
      await this.#files.install(text);
      this.#settings = settings;
      const control = this.#control;
      if (!control?.connected) return true;
      try {
        await control.signal('RELOAD');
      } catch (err) {
        return describeError(err);
      }
      this.#dispatch({ type: 'reloading' });
      // connections of the previous setting would keep carrying circuits: readiness must prove this one
      await this.#dropConnections();
      await control.signal('NEWNYM').catch(() => undefined);
      this.#lastNewnymAt = Date.now();
      return true;
    });
    this.#applyQueue = run.catch(() => undefined);
    return run;
  }

  /** The torrc tor runs now becomes the last working one (the assist keeps a setting that routed). */
  async keepAsGood(): Promise<void> {
    await this.#files.keepAsGood(await this.#files.current());
  }

  /**
   * tor tries to connect again at once (DisableNetwork 1, then 0: every OR connection closed, bootstrap
   * resumes), e.g. after the clock was corrected. Nothing when tor is down.
   */
  async retryNow(): Promise<void> {
    await this.#dropConnections();
  }

  /**
   * The box's network changed under tor (firmware/net/change.ts). A new LAN address re-renders the
   * torrc (TransPort/DNSPort listen there); every OR connection is closed (DisableNetwork 1, then 0);
   * then RELOAD (tor re-binds its listeners), NEWNYM, and ready again only once a fresh exit circuit is
   * built over the new network. Serialised with
   * applySettings. Resolves true when ready, or with why not.
   */
  networkChanged(change: { lanAddress?: string | undefined } = {}): Promise<true | string> {
    const run = this.#applyQueue.then(async () => {
      if (change.lanAddress !== undefined && change.lanAddress !== this.#opts.runtime.lanAddress) {
        const runtime = { ...this.#opts.runtime, lanAddress: change.lanAddress };
        const text = renderTorrc(this.#settings, runtime);
        try {
          // Kept as the last working torrc once verified: the old one names a LAN address that is gone.
          await this.#files.adopt(text, {
            use: async () => {
              this.#opts.runtime = runtime;
              return true;
            },
          });
        } catch (err) {
          if (!isObxError(err, 'TOR_CONFIG_REJECTED')) throw err;
          return describeError(err);
        }
      }
      // tor's connections to its guards went out of the old WAN and would hang until they time out
      // (about a minute): DisableNetwork closes every OR connection at once; then RELOAD, fresh circuits.
      // The new WAN may come up only later (the cable moved after the setting): while tor is not
      // ready, its connections are closed again every 15 s, so it retries over whatever works by then.
      await this.#dropConnections();
      const kick = setInterval(() => {
        if (!this.#status.ready) void this.#dropConnections();
      }, NET_CHANGE_KICK_MS);
      kick.unref();
      try {
        return await this.#reloadAndWait();
      } finally {
        clearInterval(kick);
      }
    });
    this.#applyQueue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when ready (true) or after timeoutMs (false). */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.#status.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#readyWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.#readyWaiters.add(done);
    });
  }

  #requireControl(): TorControl {
    const c = this.#control;
    if (!c?.connected) throw obxError('TOR_NOT_RUNNING', `tor is ${this.#status.phase}`);
    return c;
  }

  /** Closes every OR connection (DisableNetwork 1, then 0); tor reconnects at once. */
  async #dropConnections(): Promise<void> {
    const control = this.#control;
    if (!control?.connected) return;
    await control.command('SETCONF DisableNetwork=1').catch(() => undefined);
    await control.command('SETCONF DisableNetwork=0').catch(() => undefined);
  }

  async #reloadAndWait(): Promise<true | string> {
    const timeoutMs = this.#opts.applyTimeoutMs ?? 90_000;
    const control = this.#control;
    if (!control?.connected) {
      // tor is down (crashed, restarting): the next start uses the new torrc.
      const ready = await this.waitReady(timeoutMs);
      return ready ? true : 'tor did not come back';
    }
    try {
      await control.signal('RELOAD');
    } catch (err) {
      return describeError(err);
    }
    this.#dispatch({ type: 'reloading' });
    // Old circuits may be built with the old settings: use fresh ones.
    await control.signal('NEWNYM').catch(() => undefined);
    this.#lastNewnymAt = Date.now();
    const ready = await this.waitReady(timeoutMs);
    return ready ? true : `not ready within ${timeoutMs} ms`;
  }

  async #launch(): Promise<void> {
    const generation = ++this.#generation;
    this.#lastNewnymAt = Date.now() - NEWNYM_INTERVAL_MS; // a fresh tor has no NEWNYM behind it
    this.#dispatch({ type: 'starting' });
    const proc = new TorProcess(this.#opts.torBinary ?? 'tor', this.#files.path, (line) => {
      if (/\[(warn|err)\]/.test(line)) this.#warn(line.replace(/^.*?\[(warn|err)\] /, ''));
    });
    this.#proc = proc;
    const control = await Promise.race([
      connectControl(this.#controlOptions(), this.#opts.startTimeoutMs ?? 30_000),
      proc.exited,
    ]);
    if (generation !== this.#generation || this.#stopping) {
      control.close();
      return;
    }
    proc.onExit((code, signal) => this.#onExit(generation, proc, code, signal));
    await this.#take(control);
    this.#opts.log?.info({ pid: proc.pid }, 'tor started');
  }

  /** A connected control socket becomes the supervisor's: ownership, events, the bootstrap so far. */
  async #take(control: TorControl): Promise<void> {
    this.#control = control;
    control.onEvent((ev) => this.#onEvent(ev));
    // tor exits if this connection closes (and, via __OwningControllerProcess, if we die).
    await control.command('TAKEOWNERSHIP');
    await control.command('RESETCONF __OwningControllerProcess');
    await control.setEvents(['STATUS_CLIENT', 'STATUS_GENERAL', 'CIRC', 'WARN', 'ERR', 'NEWCONSENSUS']);
    const phase = (await control.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] ?? '';
    const b = parseBootstrap(phase);
    this.#dispatch({ type: 'bootstrap', progress: b.progress, summary: b.summary });
  }

  #controlOptions(): ControlOptions {
    const rt = this.#opts.runtime;
    const c = rt.control;
    return {
      endpoint: 'unix' in c ? { path: c.unix } : { host: c.host, port: c.port },
      cookieFile: cookiePath(rt),
    };
  }

  #warn(message: string): void {
    const m = clipText(message, 300);
    if (this.#warnings[this.#warnings.length - 1] === m) return;
    this.#warnings.push(m);
    if (this.#warnings.length > MAX_WARNINGS) this.#warnings.shift();
    this.#opts.bus.emit('tor:warning', m);
  }

  /** One tor event: readiness (the reducer), warnings, clock skew, a new consensus. */
  #onEvent(ev: TorEvent): void {
    try {
      const readiness = readinessEventOf(ev);
      if (readiness) this.#dispatch(readiness);
      if (ev.type === 'STATUS_CLIENT' || ev.type === 'STATUS_GENERAL') {
        const st = parseStatusEvent(ev);
        if (st.action === 'BOOTSTRAP' && st.args.WARNING) this.#warn(`bootstrap: ${st.args.WARNING}`);
        // the raw event, for the connection assist (firmware/tor/assist.ts assistEventOf)
        this.#opts.bus.emit('tor:client-status', ev);
        if (st.action === 'CLOCK_SKEW') {
          const skew = st.args.SKEW ?? st.args.MIN_SKEW;
          if (skew !== undefined && /^-?[0-9]+$/.test(skew)) {
            this.#opts.bus.emit('tor:clock-skew', {
              skewSeconds: Number(skew),
              source: st.args.SOURCE ?? '',
              minimum: st.args.SKEW === undefined,
            });
          }
          this.#warn(`clock skew reported by ${st.args.SOURCE ?? 'tor'}: ${skew ?? '?'} s`);
        }
        const dangerous = dangerousVersionOf(ev);
        if (dangerous) {
          this.#opts.bus.emit('tor:dangerous-version', dangerous);
          this.#warn(`tor ${dangerous.current} is not recommended by the consensus (${dangerous.reason})`);
        }
      } else if (ev.type === 'NEWCONSENSUS') {
        this.#opts.bus.emit('tor:consensus', undefined);
      } else if (ev.type === 'WARN' || ev.type === 'ERR') {
        this.#warn([ev.body, ...ev.extra].join(' '));
      }
    } catch (err) {
      this.#opts.log?.warn({ err: describeError(err), type: ev.type }, 'unparsable tor event');
    }
  }

  /** Feeds the readiness reducer, sets the probe timer it asks for, publishes the status. */
  #dispatch(ev: ReadinessEvent): void {
    const wasReady = this.#readiness.status.ready;
    let next = reduceReadiness(this.#readiness, ev);
    if (next.probeWantedInMs !== null && !this.#stopping) {
      this.#probeTimer = setTimeout(() => {
        this.#probeTimer = null;
        this.#readiness = reduceReadiness(this.#readiness, { type: 'probe-timer-fired' });
        void this.#probe();
      }, next.probeWantedInMs);
      this.#probeTimer.unref();
      next = reduceReadiness(next, { type: 'probe-timer-set' });
    }
    this.#readiness = next;
    const running = next.status.phase === 'bootstrapping' || next.status.phase === 'ready';
    const pid = running ? this.pid : undefined;
    this.#setStatus({ ...next.status, ...(pid ? { pid } : {}) });
    if (!wasReady && next.status.ready) {
      this.#backoff = this.#opts.backoffMs?.initial ?? 250;
      for (const w of [...this.#readyWaiters]) w();
    }
  }

  /** Readiness probe: EXTENDCIRCUIT 0 builds a general-purpose circuit, which ends at an exit. */
  async #probe(): Promise<void> {
    const control = this.#control;
    if (!control?.connected || !probeNeeded(this.#readiness)) return;
    try {
      const reply = await control.command('EXTENDCIRCUIT 0');
      const circuit = extendedCircuit(reply.lines[0]?.text ?? '');
      if (!circuit) throw new Error('unexpected EXTENDCIRCUIT reply');
      this.#dispatch({ type: 'probe-launched', circuit });
      setTimeout(() => this.#dispatch({ type: 'probe-expired', circuit }), PROBE_TIMEOUT_MS).unref();
    } catch (err) {
      if (!isObxError(err, 'TOR_CONTROL_CLOSED')) this.#dispatch({ type: 'probe-refused' });
    }
  }

  #onExit(generation: number, proc: TorProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (generation !== this.#generation) return;
    this.#control?.close();
    this.#control = null;
    this.#proc = null;
    if (this.#stopping) return;
    const why = `tor exited (${code ?? signal})`;
    this.#opts.log?.error({ code, signal, log: proc.lastLines(5) }, why);
    this.#dispatch({ type: 'crashed', summary: `${why}; restarting` });
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMs?.max ?? 30_000);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#stopping) return;
      void this.#launch().catch((err: unknown) => {
        this.#opts.log?.error({ err: describeError(err) }, 'tor restart failed');
        const failed = this.#proc;
        failed?.kill();
        this.#proc = null;
        this.#dispatch({ type: 'crashed', summary: describeError(err) });
        // Try again later with the last torrc that worked, if the current one is the problem.
        void this.#files
          .restoreGood()
          .catch(() => false)
          .finally(() => this.#onExit(this.#generation, failed ?? proc, null, null));
      });
    }, delay);
  }

  #setStatus(next: TorStatus): void {
    const prev = this.#status;
    this.#status = next;
    if (
      prev.phase !== next.phase ||
      prev.progress !== next.progress ||
      prev.summary !== next.summary ||
      prev.ready !== next.ready ||
      prev.pid !== next.pid
    ) {
      this.#opts.bus.emit('tor:status', { ...next });
    }
  }
}
