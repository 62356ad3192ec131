/**
 * What the box shows of itself, from the state machine's view (firmware/state/machine.ts `view`): the
 * LEDs and the OLED (with the LAN address and, while unclaimed, the claim code), the page's status and
 * its listeners, the diagnostics text and the box's recent events. BoxController (firmware/box/controller.ts) calls
 * render() after every change; the board and the listeners hear only real changes.
 */
import type { Board, BoardLogger } from '../../board/types.js';
import { describeError } from '../errors.js';
import { Listeners } from '../lib/listeners.js';
import type { OwnerAccount } from '../owner/owner.js';
import { type Screen, view } from '../state/machine.js';
import type { AssistView, BoxStatus } from './api.js';
import type { ModeReconciler } from './reconcile.js';

export interface BoxViewDeps {
  core: ModeReconciler;
  /** The LAN address the box runs on now (the network's owner, firmware/net/network.ts). */
  lanAddress(): string;
  owner: OwnerAccount;
  board: Board;
  log: BoardLogger;
  simulate: boolean;
  now: () => number;
  /** tor's recent warnings (may throw: then none). */
  torWarnings(): string[];
  /** Extra diagnostics text (e.g. recent daemon log lines, without secrets). */
  diagnostics?: (() => Promise<string>) | undefined;
}

/** How many recent events the diagnostics keep. */
const MAX_EVENTS = 100;

export class BoxView {
  readonly #deps: BoxViewDeps;
  #startedAt = 0;
  #lastScreen = '';
  #lastStatus = '';
  #events: string[] = [];
  #alert: string | undefined;
  #updateWarning: string | null = null;
  #assist: (AssistView & { oled: string }) | null = null;
  #builtinBridges: string | null = null;
  readonly #listeners = new Listeners<BoxStatus>((err) => {
    this.#deps.log.error({ err: describeError(err) }, 'status listener failed');
  });

  constructor(deps: BoxViewDeps) {
    this.#deps = deps;
  }

  /** When the box started (uptime, and the claim button's boot window). */
  get startedAt(): number {
    return this.#startedAt;
  }

  started(at: number): void {
    this.#startedAt = at;
  }

  /** A short warning for the OLED from the updater (null: none). */
  updateWarning(text: string | null): void {
    this.#updateWarning = text;
  }

  /** The connection assist's state (firmware/tor/assist-runner.ts): the page's words and the OLED's line. */
  assist(view: (AssistView & { oled: string }) | null): void {
    this.#assist = view;
  }

  /** The built-in bridge lines' source in words (firmware/tor/builtin-refresh.ts builtinPageWords). */
  builtinBridges(words: string | null): void {
    this.#builtinBridges = words;
  }

  /** A sentence the page's status carries from now on (`alert`). */
  alert(text: string): void {
    this.#alert = text;
  }

  status(): BoxStatus {
    const { core, now } = this.#deps;
    const state = core.state;
    const v = view(state);
    const tor = state.tor;
    return {
      state: v.state,
      explanation: v.explanation,
      firewallMode: v.firewallMode,
      tor: {
        phase: tor.phase,
        progress: tor.progress,
        summary: tor.summary,
        ready: tor.ready,
        lastWarnings: this.#torWarnings(),
      },
      killSwitch: { hardware: state.hardware !== 'released', software: state.softKill },
      uptimeSeconds: Math.max(0, Math.round((now() - this.#startedAt) / 1000)),
      claimed: this.#deps.owner.isClaimed(),
      simulate: this.#deps.simulate,
      at: now(),
      ...(this.#alert !== undefined ? { alert: this.#alert } : {}),
      ...(this.#assist !== null ? { assist: pageAssist(this.#assist) } : {}),
      ...(this.#builtinBridges !== null ? { builtinBridges: this.#builtinBridges } : {}),
    };
  }

  onStatus(listener: (status: BoxStatus) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** LEDs and OLED when they changed; the status to its listeners when it changed (or when forced). */
  render(forceStatus = false): void {
    const { board, owner } = this.#deps;
    const v = view(this.#deps.core.state);
    const claim = owner.display();
    const screen: Screen = {
      ...v.screen,
      lanAddress: this.#deps.lanAddress(),
      claimCode: claim?.code ?? null,
      claimId: claim?.id ?? null,
      claimNotice: claim?.notice ?? null,
      updateWarning: this.#updateWarning,
      // while tor connects, the assist's line says why it takes long (blocked, no network, clock)
      assist: v.state === 'connecting' && this.#assist !== null ? this.#assist.oled : null,
    };
    const key = JSON.stringify([screen, v.leds]);
    if (key !== this.#lastScreen) {
      this.#lastScreen = key;
      board.setLeds(v.leds);
      board.showScreen(screen);
    }
    const s = this.status();
    const statusKey = JSON.stringify({ ...s, at: 0, uptimeSeconds: 0 });
    if (statusKey !== this.#lastStatus || forceStatus) {
      this.#lastStatus = statusKey;
      this.#listeners.emit(s);
    }
  }

  /** The diagnostics file's text, every secret redacted. */
  async diagnostics(): Promise<string> {
    const { core, board, owner, now } = this.#deps;
    const extra = this.#deps.diagnostics ? await this.#deps.diagnostics().catch((e) => describeError(e)) : '';
    const s = this.status();
    const text = [
      `onionbox diagnostics ${new Date(now()).toISOString()}`,
      `state ${s.state}, firewall ${s.firewallMode} (applied: ${core.applied ?? 'unknown'})`,
      `tor ${s.tor.phase} ${s.tor.progress}% ready=${s.tor.ready} ${s.tor.summary}`,
      `kill switch hardware=${core.state.hardware} web=${s.killSwitch.software}`,
      `board ${board.kind}, claimed ${s.claimed}`,
      ...s.tor.lastWarnings.map((w) => `tor warning: ${w}`),
      '--- recent box events ---',
      ...this.#events,
      extra,
    ].join('\n');
    // No secret ever leaves in a diagnostics file, whatever a log line or tor warning carried.
    return owner.redact(text);
  }

  /** One line for the box's event log (the diagnostics' recent events). */
  record(line: string): void {
    this.#events.push(`${new Date(this.#deps.now()).toISOString()} ${line}`);
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
  }

  #torWarnings(): string[] {
    try {
      return this.#deps.torWarnings().slice(-10);
    } catch {
      return [];
    }
  }
}

/** The assist's view as the page's status carries it (without the OLED's line). */
function pageAssist(a: AssistView & { oled: string }): AssistView {
  const { oled: _, ...rest } = a;
  return { ...rest, skipped: [...rest.skipped] };
}
