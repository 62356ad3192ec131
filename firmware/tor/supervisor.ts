/**
 * TorSupervisor: renders torrc from the typed settings, checks it with `tor --verify-config`, runs tor as
 * a child process (production: tor drops to `User debian-tor`), connects the control port (SAFECOOKIE),
 * follows bootstrap and readiness, restarts tor with backoff after a crash, and applies new settings with
 * rollback to the last working torrc.
 *
 * Ready means a general-purpose (exit) circuit was built after Bootstrapped 100% (EXTENDCIRCUIT 0 ->
 * CIRC BUILT), not just the bootstrap message: docs/architecture.md.
 *
 * Events on the firmware bus: 'tor:status' (every status change), 'tor:warning' (tor WARN/ERR messages),
 * 'tor:clock-skew' (CLOCK_SKEW reports, for clock.ts).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ApplyTorResult, CircuitInfo } from '../box-api.js';
import type { TorConfig } from '../config/schema.js';
import { describeError, isObxError, obxError } from '../errors.js';
import type { EventBus } from '../events.js';
import { atomicWriteFile } from '../lib/atomic-write.js';
import type { TorStatus as MachineTorStatus } from '../state/machine.js';
import { connectControl, type TorControl } from './control.js';
import { parseBridgeLine, torSettingsProblems } from './grammar.js';
import {
  parseBootstrap,
  parseCircuitLine,
  parseKeywords,
  parseStatusEvent,
  type TorEvent,
} from './protocol.js';
import { BUILTIN_SNOWFLAKE, renderTorrc, type TorRuntime } from './torrc.js';

/**
 * The supervisor's status: the state machine's TorStatus (firmware/state/machine.ts, which declares the
 * 'tor:status' event) plus tor's PID while it runs.
 */
export interface TorStatus extends MachineTorStatus {
  pid?: number;
}

export interface ClockSkew {
  /** Seconds our clock is ahead of the source (negative: we are behind). */
  skewSeconds: number;
  /** SOURCE= of the report: CONSENSUS, DIRSERV:..., OR:... */
  source: string;
  /** True when SKEW is only a lower bound (MIN_SKEW, from the consensus). */
  minimum: boolean;
}

declare module '../events.js' {
  interface BoxEvents {
    'tor:warning': string;
    'tor:clock-skew': ClockSkew;
    /** tor has a new consensus (NEWCONSENSUS): the relay set may have changed. */
    'tor:consensus': undefined;
  }
}

export type { ApplyTorResult };

export interface SupervisorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

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
}

const STOPPED: TorStatus = { phase: 'stopped', progress: 0, summary: 'tor is not running', ready: false };
const MAX_WARNINGS = 20;
const MAX_LOG_LINES = 40;
/** tor's MAX_SIGNEWNYM_RATE (10 s) plus a margin for clock granularity (tor counts whole seconds). */
const NEWNYM_INTERVAL_MS = 11_000;
/** After a network change, while tor is not ready, its connections are closed again this often. */
const NET_CHANGE_KICK_MS = 15_000;

/**
 * tor's environment: onionboxd's without systemd's notify socket and watchdog variables (tor would
 * otherwise report readiness or pet the watchdog on onionboxd's behalf) and without LISTEN_* sockets.
 */
export function torEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (k === 'NOTIFY_SOCKET' || k.startsWith('WATCHDOG_') || k.startsWith('LISTEN_')) continue;
    out[k] = v;
  }
  return out;
}

function verifyConfig(torBinary: string, torrc: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      torBinary,
      ['--verify-config', '--defaults-torrc', '/dev/null', '-f', torrc, '--ignore-missing-torrc', '--hush'],
      { timeout: 30_000, env: torEnvironment(process.env) },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`
          .split('\n')
          .filter((l) => /\[(warn|err)\]/.test(l) || (err && l.trim() !== ''))
          .slice(-8)
          .join('\n');
        resolve({ ok: !err, output });
      },
    );
  });
}

/** uid/gid of a system user from /etc/passwd (no shell, no `id`). */
export async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && /^[0-9]+$/.test(f[2] ?? '') && /^[0-9]+$/.test(f[3] ?? '')) {
      return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  }
  throw obxError('TOR_START_FAILED', `no system user "${name}" for tor`);
}

export class TorSupervisor {
  readonly #opts: TorSupervisorOptions;
  #settings: TorConfig;
  #status: TorStatus = { ...STOPPED };
  #child: ChildProcess | null = null;
  #control: TorControl | null = null;
  #warnings: string[] = [];
  #logLines: string[] = [];
  #stopping = false;
  #running = false;
  #restartTimer: NodeJS.Timeout | null = null;
  #probeTimer: NodeJS.Timeout | null = null;
  #backoff: number;
  #probeCircuit: string | null = null;
  #readyWaiters = new Set<() => void>();
  #hopCache = new Map<string, { address?: string | undefined; country?: string | undefined }>();
  #generation = 0;
  #applyQueue: Promise<unknown> = Promise.resolve();
  /** When tor last honoured a NEWNYM (or started: be conservative). */
  #lastNewnymAt = 0;

  constructor(opts: TorSupervisorOptions) {
    this.#opts = opts;
    this.#settings = opts.settings;
    this.#backoff = opts.backoffMs?.initial ?? 250;
  }

  get settings(): TorConfig {
    return this.#settings;
  }

  get torrcPath(): string {
    return this.#opts.torrcPath;
  }

  get goodTorrcPath(): string {
    return `${this.#opts.torrcPath}.good`;
  }

  status(): TorStatus {
    return { ...this.#status };
  }

  lastWarnings(): string[] {
    return [...this.#warnings];
  }

  /** tor's PID, while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
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
      await mkdir(dirname(this.#opts.torrcPath), { recursive: true });
      await mkdir(this.#opts.runtime.dataDir, { recursive: true, mode: 0o700 });
      // With `User`, tor drops privileges before it touches its DataDirectory: it must belong to that user
      // (what Debian's tor unit does for /var/lib/tor).
      // Only when it is not so already (Debian's tor package creates /var/lib/tor this way): onionboxd
      // on the box then needs no CAP_CHOWN/CAP_FOWNER.
      if (this.#opts.runtime.user !== undefined) {
        const ids = await systemUser(this.#opts.runtime.user);
        const st = await stat(this.#opts.runtime.dataDir);
        if (st.uid !== ids.uid || st.gid !== ids.gid)
          await chown(this.#opts.runtime.dataDir, ids.uid, ids.gid);
        if ((st.mode & 0o777) !== 0o700) await chmod(this.#opts.runtime.dataDir, 0o700);
      }
      const candidate = `${this.#opts.torrcPath}.new`;
      await atomicWriteFile(candidate, text, 0o644);
      const verified = await verifyConfig(this.#torBinary, candidate);
      if (!verified.ok) {
        const err = obxError('TOR_CONFIG_REJECTED', verified.output || 'tor --verify-config failed');
        // Keep the box working: run the last torrc tor was ready with, and say so.
        const good = await readFile(this.goodTorrcPath, 'utf8').catch(() => null);
        if (good === null) throw err;
        this.#warn(`running with the last working torrc: ${describeError(err)}`);
        this.#opts.log?.error(
          { err: describeError(err) },
          'configured tor settings refused; using the last working torrc',
        );
        await atomicWriteFile(this.#opts.torrcPath, good, 0o644);
        await this.#launch();
        return;
      }
      await atomicWriteFile(this.#opts.torrcPath, text, 0o644);
      await this.#launch();
      await atomicWriteFile(this.goodTorrcPath, text, 0o644);
    } catch (err) {
      this.#running = false;
      this.#setStatus({ phase: 'failed', progress: 0, summary: describeError(err), ready: false });
      this.#killChild();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#running = false;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#restartTimer = null;
    this.#probeTimer = null;
    const child = this.#child;
    this.#control?.close();
    this.#control = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    this.#child = null;
    this.#setStatus({ ...STOPPED });
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

  async circuits(): Promise<CircuitInfo[]> {
    const control = this.#requireControl();
    const circuits = await control.circuits();
    const out: CircuitInfo[] = [];
    for (const c of circuits) {
      const hops = [];
      for (const h of c.hops) {
        const info = await this.#hopInfo(control, h.fingerprint);
        hops.push({
          fingerprint: h.fingerprint,
          nickname: h.nickname,
          address: info.address,
          country: info.country,
        });
      }
      out.push({ id: c.id, status: c.status, purpose: c.purpose, hops });
    }
    return out;
  }

  /** Relay OR endpoints from the consensus (GETINFO ns/all) plus configured bridges: the firewall's set. */
  async relayEndpoints(): Promise<{ address: string; port: number }[]> {
    const control = this.#requireControl();
    const seen = new Set<string>();
    const out: { address: string; port: number }[] = [];
    const add = (address: string, port: number) => {
      const key = `${address}:${port}`;
      if (seen.has(key) || address.includes(':')) return; // IPv6 is dropped on the WAN anyway
      seen.add(key);
      out.push({ address, port });
    };
    for (const r of await control.networkStatus()) add(r.address, r.orPort);
    if (this.#settings.useBridges) {
      const lines = [
        ...this.#settings.bridges,
        ...(this.#settings.builtinSnowflake ? BUILTIN_SNOWFLAKE : []),
      ];
      for (const l of lines) {
        const b = parseBridgeLine(l);
        add(b.address, b.port);
      }
    }
    return out;
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
    const problems = torSettingsProblems(settings);
    if (Object.keys(problems).length > 0) {
      const summary = Object.entries(problems)
        .slice(0, 3)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ');
      throw obxError('CONFIG_INVALID', summary, { details: problems });
    }
    const text = renderTorrc(settings, this.#opts.runtime);
    const candidate = `${this.#opts.torrcPath}.new`;
    await atomicWriteFile(candidate, text, 0o644);
    const verified = await verifyConfig(this.#torBinary, candidate);
    if (!verified.ok) {
      const err = obxError('TOR_CONFIG_REJECTED', verified.output || 'tor --verify-config failed');
      return { ok: false, rolledBack: false, message: describeError(err) };
    }
    const previousText = await readFile(this.#opts.torrcPath, 'utf8');
    const previousSettings = this.#settings;
    await this.#opts.beforeReload?.(settings);
    await atomicWriteFile(this.#opts.torrcPath, text, 0o644);
    this.#settings = settings;
    const applied = await this.#reloadAndWait();
    if (applied === true) {
      await atomicWriteFile(this.goodTorrcPath, text, 0o644);
      return { ok: true, rolledBack: false, message: 'tor is ready with the new settings' };
    }
    this.#opts.log?.warn({ reason: applied }, 'tor did not become ready with the new settings: rolling back');
    await this.#opts.beforeReload?.(previousSettings);
    await atomicWriteFile(this.#opts.torrcPath, previousText, 0o644);
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
        const candidate = `${this.#opts.torrcPath}.new`;
        await atomicWriteFile(candidate, text, 0o644);
        const verified = await verifyConfig(this.#torBinary, candidate);
        if (!verified.ok) return verified.output || 'tor --verify-config failed';
        await atomicWriteFile(this.#opts.torrcPath, text, 0o644);
        await atomicWriteFile(this.goodTorrcPath, text, 0o644);
        this.#opts.runtime = runtime;
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

  get #torBinary(): string {
    return this.#opts.torBinary ?? 'tor';
  }

  #requireControl(): TorControl {
    const c = this.#control;
    if (!c?.connected) throw obxError('TOR_NOT_RUNNING', `tor is ${this.#status.phase}`);
    return c;
  }

  async #hopInfo(control: TorControl, fp: string) {
    const cached = this.#hopCache.get(fp);
    if (cached) return cached;
    const info: { address?: string | undefined; country?: string | undefined } = {};
    try {
      const ns = (await control.getInfo(`ns/id/${fp}`))[`ns/id/${fp}`] ?? '';
      const r = ns.split('\n').find((l) => l.startsWith('r '));
      const f = r?.split(' ') ?? [];
      info.address = f[f.length - 3];
      if (info.address) {
        const cc = (await control.getInfo(`ip-to-country/${info.address}`))[`ip-to-country/${info.address}`];
        if (cc && /^[a-z]{2}$/.test(cc) && cc !== '??') info.country = cc;
      }
    } catch {
      // unknown relay (e.g. a bridge): no address or country
    }
    if (this.#hopCache.size > 500) this.#hopCache.clear();
    this.#hopCache.set(fp, info);
    return info;
  }

  /** Closes every OR connection (DisableNetwork 1, then 0); tor reconnects at once. */
  async #dropConnections(): Promise<void> {
    const control = this.#control;
    if (!control?.connected) return;
    await control.command('SETCONF DisableNetwork=1').catch(() => undefined);
    await control.command('SETCONF DisableNetwork=0').catch(() => undefined);
  }

  async #reloadAndWait(): Promise<true | string> {
    const control = this.#control;
    if (!control?.connected) {
      // tor is down (crashed, restarting): the next start uses the new torrc.
      const ready = await this.waitReady(this.#opts.applyTimeoutMs ?? 90_000);
      return ready ? true : 'tor did not come back';
    }
    try {
      await control.signal('RELOAD');
    } catch (err) {
      return describeError(err);
    }
    this.#markNotReady('applying new settings');
    this.#probeCircuit = null; // a probe launched under the old settings says nothing about the new ones
    // Old circuits may be built with the old settings: use fresh ones.
    await control.signal('NEWNYM').catch(() => undefined);
    this.#lastNewnymAt = Date.now();
    this.#scheduleProbe(200);
    const ready = await this.waitReady(this.#opts.applyTimeoutMs ?? 90_000);
    return ready ? true : `not ready within ${this.#opts.applyTimeoutMs ?? 90_000} ms`;
  }

  async #launch(): Promise<void> {
    const generation = ++this.#generation;
    this.#lastNewnymAt = Date.now() - NEWNYM_INTERVAL_MS; // a fresh tor has no NEWNYM behind it
    this.#setStatus({ phase: 'starting', progress: 0, summary: 'starting tor', ready: false });
    const child = spawn(
      this.#torBinary,
      ['--defaults-torrc', '/dev/null', '-f', this.#opts.torrcPath, '--ignore-missing-torrc'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: torEnvironment(process.env) },
    );
    this.#child = child;
    let buffered = '';
    const onOut = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) this.#logLine(line);
    };
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', onOut);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        reject(
          obxError(
            'TOR_START_FAILED',
            `tor exited (${code ?? signal}) during start-up: ${this.#logLines.slice(-5).join(' | ')}`,
          ),
        );
      });
      child.once('error', (err) => reject(obxError('TOR_START_FAILED', err.message, { cause: err })));
    });
    exited.catch(() => undefined);
    const endpoint = this.#controlEndpoint();
    const control = await Promise.race([
      connectControl(endpoint, this.#opts.startTimeoutMs ?? 30_000),
      exited,
    ]);
    if (generation !== this.#generation || this.#stopping) {
      control.close();
      return;
    }
    this.#control = control;
    child.once('exit', (code, signal) => this.#onExit(generation, code, signal));
    control.onEvent((ev) => this.#onEvent(ev));
    // tor exits if this connection closes (and, via __OwningControllerProcess, if we die).
    await control.command('TAKEOWNERSHIP');
    await control.command('RESETCONF __OwningControllerProcess');
    await control.setEvents(['STATUS_CLIENT', 'STATUS_GENERAL', 'CIRC', 'WARN', 'ERR', 'NEWCONSENSUS']);
    const phase = (await control.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] ?? '';
    const b = parseBootstrap(phase);
    this.#onBootstrap(b.progress, b.summary);
    this.#opts.log?.info({ pid: child.pid }, 'tor started');
  }

  #controlEndpoint() {
    const c = this.#opts.runtime.control;
    return 'unix' in c ? { path: c.unix } : { host: c.host, port: c.port };
  }

  #logLine(line: string): void {
    const clean = line.replace(/[^\x20-\x7e]/g, '').slice(0, 300);
    if (!clean) return;
    this.#logLines.push(clean);
    if (this.#logLines.length > MAX_LOG_LINES) this.#logLines.shift();
    if (/\[(warn|err)\]/.test(clean)) this.#warn(clean.replace(/^.*?\[(warn|err)\] /, ''));
  }

  #warn(message: string): void {
    const m = message.slice(0, 300);
    if (this.#warnings[this.#warnings.length - 1] === m) return;
    this.#warnings.push(m);
    if (this.#warnings.length > MAX_WARNINGS) this.#warnings.shift();
    this.#opts.bus.emit('tor:warning', m);
  }

  #onEvent(ev: TorEvent): void {
    try {
      if (ev.type === 'STATUS_CLIENT' || ev.type === 'STATUS_GENERAL') {
        const st = parseStatusEvent(ev);
        if (st.action === 'BOOTSTRAP') {
          const progress = Number(st.args.PROGRESS);
          if (Number.isInteger(progress)) this.#onBootstrap(progress, st.args.SUMMARY ?? '');
          if (st.args.WARNING) this.#warn(`bootstrap: ${st.args.WARNING}`);
        } else if (st.action === 'CLOCK_SKEW') {
          const skew = st.args.SKEW ?? st.args.MIN_SKEW;
          if (skew !== undefined && /^-?[0-9]+$/.test(skew)) {
            this.#opts.bus.emit('tor:clock-skew', {
              skewSeconds: Number(skew),
              source: st.args.SOURCE ?? '',
              minimum: st.args.SKEW === undefined,
            });
          }
          this.#warn(`clock skew reported by ${st.args.SOURCE ?? 'tor'}: ${skew ?? '?'} s`);
        } else if (st.action === 'CIRCUIT_NOT_ESTABLISHED' || st.action === 'NOT_ENOUGH_DIR_INFO') {
          this.#markNotReady(st.args.REASON ?? st.action.toLowerCase().replace(/_/g, ' '));
          this.#scheduleProbe(2000);
        }
      } else if (ev.type === 'CIRC') {
        const c = parseCircuitLine(ev.body);
        if (c.id === this.#probeCircuit) {
          if (c.status === 'BUILT' && c.hops.length >= 3) {
            this.#probeCircuit = null;
            this.#setReady();
          } else if (c.status === 'FAILED' || c.status === 'CLOSED') {
            this.#probeCircuit = null;
            this.#scheduleProbe(1000);
          }
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

  #onBootstrap(progress: number, summary: string): void {
    if (this.#status.ready) {
      this.#setStatus({ ...this.#status, progress, summary: this.#status.summary });
      return;
    }
    this.#setStatus({ phase: 'bootstrapping', progress, summary, ready: false, ...this.#pidField() });
    if (progress === 100) this.#scheduleProbe(0);
  }

  #pidField(): { pid?: number } {
    return this.#child?.pid ? { pid: this.#child.pid } : {};
  }

  #setReady(): void {
    this.#backoff = this.#opts.backoffMs?.initial ?? 250;
    this.#setStatus({
      phase: 'ready',
      progress: 100,
      summary: 'Connected: an exit circuit is built',
      ready: true,
      ...this.#pidField(),
    });
    for (const w of [...this.#readyWaiters]) w();
  }

  #markNotReady(summary: string): void {
    if (!this.#status.ready && this.#status.phase === 'bootstrapping') return;
    this.#setStatus({
      phase: 'bootstrapping',
      progress: this.#status.progress,
      summary,
      ready: false,
      ...this.#pidField(),
    });
  }

  /** Readiness probe: EXTENDCIRCUIT 0 builds a general-purpose circuit, which ends at an exit. */
  #scheduleProbe(delayMs: number): void {
    if (this.#probeTimer || this.#stopping) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = null;
      void this.#probe();
    }, delayMs);
    this.#probeTimer.unref();
  }

  async #probe(): Promise<void> {
    const control = this.#control;
    if (!control?.connected || this.#status.ready || this.#probeCircuit) return;
    try {
      const reply = await control.command('EXTENDCIRCUIT 0');
      const { positional } = parseKeywords(reply.lines[0]?.text ?? '');
      if (positional[0] !== 'EXTENDED' || !positional[1]) throw new Error('unexpected EXTENDCIRCUIT reply');
      this.#probeCircuit = positional[1];
      // Not built within 10 s: try another one.
      const id = this.#probeCircuit;
      setTimeout(() => {
        if (this.#probeCircuit === id && !this.#status.ready) {
          this.#probeCircuit = null;
          this.#scheduleProbe(0);
        }
      }, 10_000).unref();
    } catch (err) {
      if (!isObxError(err, 'TOR_CONTROL_CLOSED')) this.#scheduleProbe(2000);
    }
  }

  #onExit(generation: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (generation !== this.#generation) return;
    this.#control?.close();
    this.#control = null;
    this.#child = null;
    this.#probeCircuit = null;
    if (this.#stopping) return;
    const why = `tor exited (${code ?? signal})`;
    this.#opts.log?.error({ code, signal, log: this.#logLines.slice(-5) }, why);
    this.#setStatus({ phase: 'crashed', progress: 0, summary: `${why}; restarting`, ready: false });
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#opts.backoffMs?.max ?? 30_000);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#stopping) return;
      void this.#launch().catch((err: unknown) => {
        this.#opts.log?.error({ err: describeError(err) }, 'tor restart failed');
        this.#killChild();
        this.#child = null;
        this.#setStatus({ phase: 'crashed', progress: 0, summary: describeError(err), ready: false });
        // Try again later with the last torrc that worked, if the current one is the problem.
        void this.#restoreGood().finally(() => this.#onExit(this.#generation, null, null));
      });
    }, delay);
  }

  async #restoreGood(): Promise<void> {
    try {
      const good = await readFile(this.goodTorrcPath, 'utf8');
      await atomicWriteFile(this.#opts.torrcPath, good, 0o644);
    } catch {
      // no good copy yet: keep the current torrc
    }
  }

  #killChild(): void {
    const c = this.#child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
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
