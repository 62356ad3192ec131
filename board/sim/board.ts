/**
 * The simulated board: the same Board interface, with a switch and a button that the web page's
 * simulator panel, the CLI (`onionbox board switch on|off`, `onionbox board press`) and tests can flip.
 * LEDs are plain state; the OLED is the same framebuffer code the real display uses, readable as a PNG.
 */
import type { SimBoardControls } from '../../firmware/box/api.js';
import { describeError } from '../../firmware/errors.js';
import { Listeners } from '../../firmware/lib/listeners.js';
import { Framebuffer } from '../oled/framebuffer.js';
import { framebufferToPng } from '../oled/png.js';
import { renderScreen } from '../oled/screens.js';
import {
  type Board,
  type BoardLogger,
  type ButtonEvent,
  HOLD_MS,
  type LedPattern,
  type Screen,
  type SwitchPosition,
} from '../types.js';

export interface SimBoardOptions {
  /** Switch position at power-on (default: released, so the simulator routes once tor is ready). */
  initialSwitch?: SwitchPosition;
  /** Claim button held down at power-on. */
  buttonHeldAtBoot?: boolean;
  now?: () => number;
  /** Where a throwing switch or button listener is reported (the others still run). */
  log?: BoardLogger | undefined;
}

export class SimBoard implements Board {
  readonly kind = 'sim' as const;
  readonly fb = new Framebuffer();
  #switch: SwitchPosition;
  #started = false;
  #physical: SwitchPosition;
  #leds: LedPattern = { green: 'off', amber: 'off', red: 'off' };
  #screen: Screen | null = null;
  readonly #switchListeners = new Listeners<SwitchPosition>((err) => {
    this.#log?.error({ err: describeError(err) }, 'switch listener failed');
  });
  readonly #buttonListeners = new Listeners<ButtonEvent>((err) => {
    this.#log?.error({ err: describeError(err) }, 'button listener failed');
  });
  readonly #log: BoardLogger | undefined;
  readonly #now: () => number;
  readonly #bootHeld: boolean;

  constructor(opts: SimBoardOptions = {}) {
    this.#physical = opts.initialSwitch ?? 'released';
    this.#switch = 'unreadable';
    this.#now = opts.now ?? Date.now;
    this.#bootHeld = opts.buttonHeldAtBoot ?? false;
    this.#log = opts.log;
  }

  async start(): Promise<void> {
    this.#switch = this.#physical;
    this.#started = true;
    if (this.#bootHeld) {
      const at = this.#now();
      this.#emitButton({ kind: 'press', at, heldMs: 0, sinceBoot: true });
      this.#emitButton({ kind: 'hold', at, heldMs: HOLD_MS, sinceBoot: true });
    }
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#leds = { green: 'off', amber: 'off', red: 'off' };
  }

  readSwitch(): SwitchPosition {
    return this.#switch;
  }

  onSwitch(listener: (p: SwitchPosition) => void): () => void {
    return this.#switchListeners.add(listener);
  }

  onButton(listener: (e: ButtonEvent) => void): () => void {
    return this.#buttonListeners.add(listener);
  }

  setLeds(pattern: LedPattern): void {
    this.#leds = { ...pattern };
  }

  showScreen(screen: Screen): void {
    this.#screen = { ...screen };
    renderScreen(screen, this.fb);
  }

  // --- simulator controls ---

  /** Flips the switch (true = engaged) or breaks it ('unreadable', like a pin that cannot be read). */
  setSwitch(position: boolean | SwitchPosition): void {
    const p: SwitchPosition = position === true ? 'engaged' : position === false ? 'released' : position;
    this.#physical = p;
    if (!this.#started || p === this.#switch) return;
    this.#switch = p;
    this.#switchListeners.emit(p);
  }

  /** A press (and, held for HOLD_MS or more, also a hold). */
  pressButton(holdMs = 0): void {
    if (!this.#started) return;
    const at = this.#now();
    this.#emitButton({ kind: 'press', at, heldMs: 0, sinceBoot: false });
    if (holdMs >= HOLD_MS) this.#emitButton({ kind: 'hold', at, heldMs: holdMs, sinceBoot: false });
  }

  leds(): LedPattern {
    return { ...this.#leds };
  }

  screen(): Screen | null {
    return this.#screen ? { ...this.#screen } : null;
  }

  oledPng(): Buffer {
    return framebufferToPng(this.fb);
  }

  /** The SimBoardControls the BoxApi exposes to the web page. */
  controls(): SimBoardControls {
    return {
      setSwitch: (engaged) => this.setSwitch(engaged),
      pressClaimButton: (holdMs) => this.pressButton(holdMs),
      leds: () => ({ ...this.leds() }),
      oledPng: () => this.oledPng(),
    };
  }

  #emitButton(e: ButtonEvent): void {
    this.#buttonListeners.emit(e);
  }
}
