/**
 * The connection assist's adapter (issue 21): feeds the pure state machine (firmware/tor/assist.ts) and
 * carries out what it decides. Nothing here decides anything the machine does not.
 *
 * Fed by:
 *   - tor's events on the bus: `tor:client-status` (STATUS_CLIENT BOOTSTRAP with WARNING, REASON,
 *     RECOMMENDATION; STATUS_GENERAL CLOCK_SKEW), `tor:status` (ready, an exit circuit built: what
 *     "reached routing" means here, fed as progress 100; tor's own "Bootstrapped 100%" is fed as 99,
 *     since it can come before an exit is usable; not ready any more is `lost`);
 *   - `clock:set` from the clock service (firmware/tor/clock.ts, the one place the clock is set, with
 *     CAP_SYS_TIME on the box): tor then retries at once;
 *   - the WAN: the link (the interface's carrier) and the lease (the WAN lease watcher), read at every tick;
 *   - a timer (every TICK_MS, with the injected `now`): stalls and each bridge setting's timeout;
 *   - the stored settings (`tor`, `assist.blockedHere`): a change by the owner starts over.
 *
 * Carries out:
 *   probe-internet    answered from the WAN facts (a link and a lease). The box sends nothing to test the
 *                     internet: tor's own connections are the only traffic it may make. Moat's check over
 *                     meek is not built, so "offline" past the modem is not told apart from "blocked".
 *   fetch-candidates  Moat first, when the box has its client (moat-ask.ts: settings for the country, then
 *                     Moat's defaults, over meek_lite as tor's uid), then the built-in lines of the
 *                     transports that can connect (obfs4), in that order (assist.ts tryList), with the
 *                     steps left out and why (Moat that gave nothing; snowflake): the page shows them.
 *   use-bridges       tor runs with the candidate's lines (TorSupervisor.trySettings: verified, the relay
 *                     set widened first, no wait, no rollback); the machine times it out.
 *   keep              the setting is stored (tor's bridges and `assist.found`, one atomic write of
 *                     config.json) unless the owner changed tor's settings meanwhile, and its torrc
 *                     kept as the last working one.
 *   restore           tor runs with the stored settings again.
 *
 * Product rules (README "When Tor is blocked"): bridges the owner entered are never replaced by the box
 * on its own. When they do not get through, the page asks ("Try the box's bridges"); only that click
 * (assistConsent) lets the assist try its own, and a setting that routes then replaces the owner's lines
 * (they did not connect). "Tor is blocked here" skips the direct attempt when the owner has no bridges
 * of their own; with their own bridges it changes nothing (theirs are tried, as always, first).
 */
import { readFile } from 'node:fs/promises';
import { type AssistConfig, assistSettings, type Config, type TorConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { Log } from '../log.js';
import type { TorStatus } from '../state/machine.js';
import {
  type AssistAction,
  type AssistEvent,
  type AssistSkip,
  type AssistState,
  assistEventOf,
  assistOledLine,
  type Candidate,
  describeAssist,
  initialAssist,
  stepAssist,
  tryList,
} from './assist.js';
import { MOAT_FAILED_WHY } from './builtin-bridges.js';
import type { MoatParts } from './moat-ask.js';

/** How often the timer feeds the machine (and re-reads the WAN's link and lease). */
export const TICK_MS = 5000;

/** What the page and the OLED get (BoxController.setAssist). */
export interface AssistOutput {
  phase: AssistState['phase'];
  words: string;
  oled: string;
  attempt: number | null;
  of: number | null;
  skipped: string[];
  askOwner: boolean;
}

/** tor as the assist drives it: the TorSupervisor. */
export interface AssistTor {
  trySettings(settings: TorConfig): Promise<true | string>;
  keepAsGood(): Promise<void>;
  retryNow(): Promise<void>;
  status(): TorStatus;
  readonly settings: TorConfig;
}

/** The config store as the assist uses it. */
export interface AssistConfigStore {
  get(): Readonly<Config>;
  update(change: (c: Readonly<Config>) => Config): Promise<unknown>;
  onChange(listener: (config: Readonly<Config>) => void): () => void;
}

export interface AssistWan {
  /** The WAN interface has a carrier (a cable, or a joined Wi-Fi network). */
  link(): Promise<boolean>;
  /** The WAN has a DHCP lease. */
  lease(): boolean;
}

export interface AssistTimer {
  every(ms: number, fn: () => void): () => void;
}

export interface ConnectionAssistDeps {
  bus: EventBus;
  tor: AssistTor;
  config: AssistConfigStore;
  wan: AssistWan;
  /** The built-in part of the try-list (firmware/tor/builtin-bridges.ts assistBuiltins). */
  builtins(): { candidates: { transport: string; lines: string[] }[]; skipped: AssistSkip[] };
  /**
   * Moat's part of the try-list (moat-ask.ts): settings for the country, then the defaults, every line
   * validated. Absent: the box has no Moat client. A failure (or nothing usable) leaves Moat out, with why.
   */
  moat?: () => Promise<MoatParts>;
  /** What the page and the OLED show. */
  show(output: AssistOutput): void;
  now?: () => number;
  timer?: AssistTimer;
  log?: Pick<Log, 'info' | 'warn'>;
}

const realTimer: AssistTimer = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

/** The WAN interface's carrier from sysfs (1: a link). Unreadable: no link. */
export async function carrier(ifname: string, sys = '/sys/class/net'): Promise<boolean> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(ifname)) return false;
  try {
    return (await readFile(`${sys}/${ifname}/carrier`, 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}

/** Bridge lines the owner entered are configured (not the ones the assist found and stored). */
export function ownBridgesOf(tor: TorConfig, assist: Readonly<AssistConfig>): boolean {
  if (!tor.useBridges || tor.bridges.length === 0) return false;
  const found = assist.found?.lines ?? [];
  return !(found.length === tor.bridges.length && tor.bridges.every((l) => found.includes(l)));
}

const sameTor = (a: TorConfig, b: TorConfig) => JSON.stringify(a) === JSON.stringify(b);

/** The page's and the OLED's view of a state. Pure. */
export function assistOutput(s: AssistState): AssistOutput {
  const trying = s.phase === 'trying';
  return {
    phase: s.phase,
    words: describeAssist(s),
    oled: assistOledLine(s),
    attempt: trying ? s.index + 1 : null,
    of: trying ? s.candidates.length : null,
    skipped: ['blocked', 'trying', 'exhausted'].includes(s.phase) ? s.skipped.map((k) => k.reason) : [],
    askOwner: s.phase === 'blocked' && s.ownBridges,
  };
}

export class ConnectionAssist {
  readonly #deps: ConnectionAssistDeps;
  #state: AssistState = initialAssist();
  #off: (() => void)[] = [];
  /** Actions run one after another, in the order the machine asked for them. */
  #queue: Promise<void> = Promise.resolve();
  /** The settings the assist last saw stored (a change by anyone else starts over). */
  #seen = '';
  #link = true;
  #lease = true;
  #wasReady = false;
  /** Settings being applied now (#use): tor's status speaks of the previous ones meanwhile. */
  #applying = 0;
  #stopped = true;

  constructor(deps: ConnectionAssistDeps) {
    this.#deps = deps;
  }

  /** The machine's state (tests, diagnostics). */
  get state(): AssistState {
    return this.#state;
  }

  async start(): Promise<void> {
    const { bus, config } = this.#deps;
    this.#stopped = false;
    this.#wasReady = this.#deps.tor.status().ready;
    this.#off.push(
      bus.on('tor:client-status', 'assist', (ev) => {
        const a = assistEventOf(ev, this.#now());
        // tor's "Bootstrapped 100%" is not routing yet: readiness (an exit circuit) is
        if (a?.type === 'bootstrap' && a.progress >= 100) this.#feed({ ...a, progress: 99 });
        else if (a) this.#feed(a);
      }),
      bus.on('tor:status', 'assist', (s: TorStatus) => this.#torStatus(s)),
      bus.on('clock:set', 'assist', () => {
        const wasWrong = this.#state.phase === 'clock-wrong';
        this.#feed({ type: 'clock-set', at: this.#now() });
        // tor retries at once with the corrected clock (its connections closed and opened again)
        if (wasWrong) this.#run(() => this.#deps.tor.retryNow());
      }),
      config.onChange((c) => this.#configChanged(c)),
    );
    await this.#readWan();
    const now = this.#now();
    this.#feed({ type: 'network', at: now, link: this.#link, lease: this.#lease });
    this.#seen = this.#settingsKey(config.get());
    this.#begin(config.get());
    this.#off.push(
      (this.#deps.timer ?? realTimer).every(TICK_MS, () => {
        void this.tick();
      }),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const off of this.#off.splice(0)) off();
    this.#deps.bus.removeOwner('assist');
    await this.#queue;
  }

  /** One timer tick: the WAN's facts again, then the time. */
  async tick(): Promise<void> {
    if (this.#stopped) return;
    const before = `${this.#link}|${this.#lease}`;
    await this.#readWan();
    const at = this.#now();
    if (`${this.#link}|${this.#lease}` !== before)
      this.#feed({ type: 'network', at, link: this.#link, lease: this.#lease });
    this.#feed({ type: 'tick', at });
  }

  /** The owner lets the assist try the box's bridges instead of the owner's own (BoxApi.assistConsent). */
  consent(): boolean {
    if (!(this.#state.phase === 'blocked' && this.#state.ownBridges)) return false;
    this.#feed({ type: 'owner-consents', at: this.#now() });
    return true;
  }

  /** Resolves once every action has run, those the actions led to included (tests). */
  async settled(): Promise<void> {
    let q: Promise<void>;
    do {
      q = this.#queue;
      await q;
    } while (q !== this.#queue);
  }

  /**
   * tor's readiness, as routing gained or lost. Not while a setting is being applied: tor's status then
   * still speaks of the previous setting (tor verifies and reloads for a second or more), and a "ready"
   * of the previous setting must not count as the new candidate's (it would be kept and stored). Once
   * the setting is applied, the status is read again (#use).
   */
  #torStatus(s: TorStatus): void {
    if (this.#applying > 0) return;
    if (s.ready && !this.#wasReady)
      this.#feed({ type: 'bootstrap', at: this.#now(), progress: 100, severity: 'NOTICE' });
    else if (!s.ready && this.#wasReady) this.#feed({ type: 'lost', at: this.#now() });
    this.#wasReady = s.ready;
  }

  #now(): number {
    return (this.#deps.now ?? Date.now)();
  }

  async #readWan(): Promise<void> {
    this.#link = await this.#deps.wan.link();
    this.#lease = this.#deps.wan.lease();
  }

  /** What of the stored settings the assist starts over for (the owner's tor settings, "blocked here"). */
  #settingsKey(c: Readonly<Config>): string {
    const { tor } = c;
    const a = assistSettings(c);
    return JSON.stringify([
      tor.useBridges,
      tor.bridges,
      tor.exitNodes,
      tor.excludeExitNodes,
      tor.strictNodes,
      a.blockedHere,
      a.found?.lines ?? null,
    ]);
  }

  /** Starts over from the stored settings (at start, and after the owner changed them). */
  #begin(c: Readonly<Config>): void {
    const assist = assistSettings(c);
    // tor may still run a candidate of an earlier round: the stored settings are what it should run
    if (!sameTor(this.#deps.tor.settings, c.tor)) this.#run(() => this.#use(c.tor, null));
    // tor already routes (the owner changed something else): connected, nothing to look for, and a
    // connection that works is not swapped for bridges ("blocked here" counts from the next start)
    const routes = this.#wasReady;
    this.#feed({
      type: 'start',
      at: this.#now(),
      ownBridges: ownBridgesOf(c.tor, assist),
      blockedHere: assist.blockedHere && !routes,
    });
    if (routes) this.#feed({ type: 'bootstrap', at: this.#now(), progress: 100, severity: 'NOTICE' });
  }

  #configChanged(c: Readonly<Config>): void {
    const key = this.#settingsKey(c);
    if (key === this.#seen) return;
    this.#seen = key;
    this.#begin(c);
  }

  #feed(ev: AssistEvent): void {
    if (this.#stopped) return;
    const before = this.#state;
    const r = stepAssist(before, ev);
    this.#state = r.state;
    for (const action of r.actions) this.#run(() => this.#act(action));
    if (r.state !== before) this.#deps.show(assistOutput(r.state));
  }

  #run(job: () => Promise<void>): void {
    this.#queue = this.#queue.then(job).catch((err: unknown) => {
      this.#deps.log?.warn({ err: describeError(err) }, 'connection assist: step failed');
    });
  }

  async #act(action: AssistAction): Promise<void> {
    const { log } = this.#deps;
    switch (action.kind) {
      case 'probe-internet':
        this.#feed({ type: 'internet', at: this.#now(), answers: this.#link && this.#lease });
        return;
      case 'fetch-candidates': {
        const { candidates, skipped } = this.#deps.builtins();
        let moat: MoatParts = { country: [], defaults: [], notes: [] };
        if (this.#deps.moat) {
          const asked = this.#now();
          try {
            moat = await this.#deps.moat();
          } catch (err) {
            moat.notes.push(describeError(err));
          }
          log?.info(
            {
              ms: this.#now() - asked,
              country: moat.country.length,
              defaults: moat.defaults.length,
              notes: moat.notes,
            },
            'connection assist: Moat asked',
          );
          if (moat.country.length + moat.defaults.length === 0)
            skipped.unshift({ step: 'moat', reason: MOAT_FAILED_WHY });
        }
        const list = tryList({ country: moat.country, defaults: moat.defaults, builtin: candidates });
        this.#feed({ type: 'candidates', at: this.#now(), list, skipped });
        return;
      }
      case 'use-bridges': {
        log?.info(
          { transport: action.candidate.transport, attempt: action.attempt, of: action.of },
          'connection assist: trying a bridge setting',
        );
        const index = action.attempt - 1;
        const settings: TorConfig = {
          ...this.#deps.config.get().tor,
          useBridges: true,
          bridges: [...action.candidate.lines],
        };
        await this.#use(settings, index);
        return;
      }
      case 'keep':
        await this.#keep(action.candidate);
        return;
      case 'restore':
        await this.#use(this.#deps.config.get().tor, null);
        return;
    }
  }

  /** tor runs with `settings`; refused while trying candidate `index`: the machine moves on at once. */
  async #use(settings: TorConfig, index: number | null): Promise<void> {
    this.#applying++;
    let r: true | string;
    try {
      r = await this.#deps.tor.trySettings(settings);
    } finally {
      this.#applying--;
      // what tor says now is about this setting (a reload makes it not ready until it proves itself)
      if (this.#applying === 0) this.#torStatus(this.#deps.tor.status());
    }
    if (r === true) return;
    this.#deps.log?.warn({ reason: r }, 'connection assist: tor refused a bridge setting');
    if (index !== null) this.#feed({ type: 'try-failed', at: this.#now(), index });
  }

  /** Stores the setting that reached routing (one atomic write), unless the owner changed tor's meanwhile. */
  async #keep(candidate: Candidate): Promise<void> {
    const { config, tor, log } = this.#deps;
    const lines = [...candidate.lines];
    const running = tor.settings;
    if (!running.useBridges || running.bridges.join('\n') !== lines.join('\n')) return;
    const at = this.#now();
    let stored = false;
    await config.update((c) => {
      // the owner saved other tor settings while this one was tried: theirs stand
      const { useBridges: _u, bridges: _b, ...restNow } = c.tor;
      const { useBridges: _u2, bridges: _b2, ...restTried } = running;
      if (JSON.stringify(restNow) !== JSON.stringify(restTried)) return { ...c };
      stored = true;
      const next: Config = {
        ...c,
        tor: { ...c.tor, useBridges: true, bridges: lines },
        assist: {
          ...assistSettings(c),
          found: { transport: candidate.transport, lines, source: candidate.source, at },
        },
      };
      this.#seen = this.#settingsKey(next);
      return next;
    });
    if (!stored) return;
    await tor.keepAsGood();
    log?.info({ transport: candidate.transport, source: candidate.source }, 'connection assist: bridge kept');
  }
}
