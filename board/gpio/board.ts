/**
 * The real board: kill switch, claim button and LEDs on GPIO (onoff 6, sysfs), the OLED on I2C.
 *
 * Wiring (pulls set in config.txt, onoff cannot set them): the kill switch and the claim button are
 * inputs with pull-ups. The kill switch connects its pin to ground when RELEASED (devices allowed), so a
 * cut wire or a missing switch reads high = engaged. The button connects to ground while pressed. LEDs
 * are active-high outputs.
 *
 * Fail-closed: the switch is read first, before any other pin or the display is opened. A chip that
 * cannot be found, a pin that cannot be exported, configured for edges, read or watched, and a read
 * error at any later time all make the switch 'unreadable' (= engaged), with a log line saying why.
 * A periodic re-read catches edges the kernel did not deliver.
 */
import type { BoardConfig } from '../../firmware/config/schema.js';
import { describeError } from '../../firmware/errors.js';
import { Listeners } from '../../firmware/lib/listeners.js';
import { Framebuffer } from '../oled/framebuffer.js';
import { renderScreen } from '../oled/screens.js';
import { type I2cOpener, openI2cBus, Ssd1306 } from '../oled/ssd1306.js';
import {
  type Board,
  type BoardLogger,
  type ButtonEvent,
  HOLD_MS,
  type LedPattern,
  type Screen,
  type SwitchPosition,
} from '../types.js';
import { globalNumber, listChips, pickChip } from './chip.js';
import { type Bit, containReads, type GpioClass, type GpioLine, loadOnoff } from './port.js';

export interface GpioBoardOptions {
  config: BoardConfig;
  log: BoardLogger;
  /** Where /sys is (tests point it at a fake tree for chip discovery). */
  sysfsRoot?: string;
  /** onoff's Gpio class (default: the real onoff, loaded at start). */
  Gpio?: GpioClass | (() => GpioClass);
  openI2c?: I2cOpener;
  debounceMs?: number;
  holdMs?: number;
  blinkMs?: number;
  /** Safety re-read of the switch, in case an edge was lost. */
  pollMs?: number;
  oledRetryMs?: number;
  now?: () => number;
}

const LED_NAMES = ['green', 'amber', 'red'] as const;

export class GpioBoard implements Board {
  readonly kind = 'gpio' as const;
  #switch: SwitchPosition = 'unreadable';
  #switchLine: GpioLine | null = null;
  #switchReadFailed = false;
  #buttonLine: GpioLine | null = null;
  #buttonDownAt: number | null = null;
  #buttonSinceBoot = false;
  #holdTimer: NodeJS.Timeout | null = null;
  #leds = new Map<(typeof LED_NAMES)[number], GpioLine>();
  #ledFailed = new Set<string>();
  #pattern: LedPattern = { green: 'off', amber: 'off', red: 'off' };
  #blinkOn = false;
  #blinkTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #oled: Ssd1306 | null = null;
  readonly #fb = new Framebuffer();
  readonly #switchListeners = new Listeners<SwitchPosition>((err) => {
    this.#opts.log.error({ err: describeError(err) }, 'switch listener failed');
  });
  readonly #buttonListeners = new Listeners<ButtonEvent>((err) => {
    this.#opts.log.error({ err: describeError(err) }, 'button listener failed');
  });
  readonly #now: () => number;

  readonly #opts: GpioBoardOptions;
  constructor(opts: GpioBoardOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    const { config, log } = this.#opts;
    let Gpio: GpioClass | null = null;
    let base: ((offset: number) => number) | null = null;
    try {
      const chip = pickChip(await listChips(this.#opts.sysfsRoot), config.gpioChip);
      base = (offset) => globalNumber(chip, offset);
      log.info({ chip: chip.name, label: chip.label, base: chip.base }, 'GPIO controller found');
    } catch (err) {
      log.error({ err: describeError(err) }, 'GPIO controller not found: kill switch counts as engaged');
    }
    try {
      const g = this.#opts.Gpio;
      Gpio = g === undefined ? loadOnoff() : isFactory(g) ? g() : g;
    } catch (err) {
      log.error({ err: describeError(err) }, 'onoff cannot be loaded: kill switch counts as engaged');
    }

    // 1. The kill switch, before anything else opens.
    if (Gpio && base) this.#openSwitch(Gpio, base);
    else this.#setSwitch('unreadable');

    // 2. The claim button, the LEDs and the display.
    if (Gpio && base) {
      this.#openButton(Gpio, base);
      for (const name of LED_NAMES) {
        try {
          const line = new Gpio(base(config.ledPins[name]), 'low');
          this.#leds.set(name, line);
        } catch (err) {
          log.warn({ led: name, pin: config.ledPins[name], err: describeError(err) }, 'LED pin unavailable');
        }
      }
    }
    if (config.oled.enabled) {
      this.#oled = new Ssd1306({
        bus: config.oled.bus,
        address: config.oled.address,
        controller: config.oled.controller,
        open: this.#opts.openI2c ?? openI2cBus,
        log,
        retryMs: this.#opts.oledRetryMs,
      });
      await this.#oled.start();
    }
    const pollMs = this.#opts.pollMs ?? 1000;
    this.#pollTimer = setInterval(() => this.#pollSwitch(), pollMs);
    this.#pollTimer.unref();
  }

  async stop(): Promise<void> {
    for (const timer of [this.#pollTimer, this.#blinkTimer, this.#holdTimer]) if (timer) clearInterval(timer);
    this.#pollTimer = this.#blinkTimer = this.#holdTimer = null;
    for (const [name, line] of this.#leds) {
      this.#release(line, `LED ${name}`, true);
    }
    this.#leds.clear();
    if (this.#buttonLine) this.#release(this.#buttonLine, 'claim button', false);
    if (this.#switchLine) this.#release(this.#switchLine, 'kill switch', false);
    this.#buttonLine = this.#switchLine = null;
    this.#switch = 'unreadable';
    await this.#oled?.stop();
    this.#oled = null;
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
    this.#pattern = { ...pattern };
    this.#drawLeds();
    const blinking = LED_NAMES.some((n) => pattern[n] === 'blink');
    if (blinking && !this.#blinkTimer) {
      this.#blinkTimer = setInterval(() => {
        this.#blinkOn = !this.#blinkOn;
        this.#drawLeds();
      }, this.#opts.blinkMs ?? 500);
      this.#blinkTimer.unref();
    } else if (!blinking && this.#blinkTimer) {
      clearInterval(this.#blinkTimer);
      this.#blinkTimer = null;
    }
  }

  showScreen(screen: Screen): void {
    renderScreen(screen, this.#fb);
    this.#oled?.show(this.#fb);
  }

  /** The display driver (for diagnostics and tests). */
  get oled(): Ssd1306 | null {
    return this.#oled;
  }

  #openSwitch(Gpio: GpioClass, base: (offset: number) => number): void {
    const { config, log } = this.#opts;
    const pin = config.killSwitchPin;
    try {
      const line = containReads(
        new Gpio(base(pin), 'in', 'both', { debounceTimeout: this.#opts.debounceMs ?? 30 }),
        1,
        (err) => {
          if (err === null) {
            if (this.#switchReadFailed) log.info({ pin }, 'kill switch pin readable again');
            this.#switchReadFailed = false;
            return;
          }
          if (!this.#switchReadFailed) {
            log.error({ pin, err: describeError(err) }, 'kill switch pin unreadable: counts as engaged');
          }
          this.#switchReadFailed = true;
        },
      );
      this.#switchLine = line;
      // A line that was exported before may have kept an edge setting onoff could not change: without
      // edges no interrupt ever arrives, so such a line is unwatchable.
      const edge = line.edge();
      if (edge !== 'both')
        throw new Error(`edge detection is "${edge}", not "both" (no interrupts on this line)`);
      const first = line.readSync();
      this.#setSwitch(this.#switchReadFailed ? 'unreadable' : positionOf(first));
      line.watch((err, value) => {
        if (err) {
          log.error({ pin, err: describeError(err) }, 'kill switch watch failed: counts as engaged');
          this.#setSwitch('unreadable');
          return;
        }
        this.#setSwitch(this.#switchReadFailed ? 'unreadable' : positionOf(value));
      });
      log.info({ pin, position: this.#switch }, 'kill switch read');
    } catch (err) {
      log.error({ pin, err: describeError(err) }, 'kill switch pin cannot be used: counts as engaged');
      this.#setSwitch('unreadable');
    }
  }

  #pollSwitch(): void {
    const line = this.#switchLine;
    if (!line) return;
    const v = line.readSync();
    this.#setSwitch(this.#switchReadFailed ? 'unreadable' : positionOf(v));
  }

  #setSwitch(p: SwitchPosition): void {
    if (p === this.#switch) return;
    this.#switch = p;
    this.#switchListeners.emit(p);
  }

  #openButton(Gpio: GpioClass, base: (offset: number) => number): void {
    const { config, log } = this.#opts;
    const pin = config.claimButtonPin;
    try {
      const line = containReads(
        new Gpio(base(pin), 'in', 'both', { debounceTimeout: this.#opts.debounceMs ?? 30 }),
        1,
        (err) => {
          if (err !== null) log.warn({ pin, err: describeError(err) }, 'claim button unreadable');
        },
      );
      this.#buttonLine = line;
      if (line.readSync() === 0) this.#buttonDown(true);
      line.watch((err, value) => {
        if (err) return;
        if (value === 0) this.#buttonDown(false);
        else this.#buttonUp();
      });
    } catch (err) {
      log.warn({ pin, err: describeError(err) }, 'claim button pin cannot be used');
    }
  }

  #buttonDown(sinceBoot: boolean): void {
    if (this.#buttonDownAt !== null) return;
    const at = this.#now();
    this.#buttonDownAt = at;
    this.#buttonSinceBoot = sinceBoot;
    this.#emitButton({ kind: 'press', at, heldMs: 0, sinceBoot });
    const holdMs = this.#opts.holdMs ?? HOLD_MS;
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = null;
      if (this.#buttonDownAt === at) {
        this.#emitButton({ kind: 'hold', at, heldMs: this.#now() - at, sinceBoot: this.#buttonSinceBoot });
      }
    }, holdMs);
  }

  #buttonUp(): void {
    this.#buttonDownAt = null;
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
  }

  #emitButton(e: ButtonEvent): void {
    this.#buttonListeners.emit(e);
  }

  #drawLeds(): void {
    for (const [name, line] of this.#leds) {
      const s = this.#pattern[name];
      const bit: Bit = s === 'on' || (s === 'blink' && this.#blinkOn) ? 1 : 0;
      try {
        line.writeSync(bit);
        this.#ledFailed.delete(name);
      } catch (err) {
        if (!this.#ledFailed.has(name))
          this.#opts.log.warn({ led: name, err: describeError(err) }, 'LED write failed');
        this.#ledFailed.add(name);
      }
    }
  }

  #release(line: GpioLine, what: string, off: boolean): void {
    try {
      line.unwatchAll();
      if (off) line.writeSync(0);
    } catch {
      // released below anyway
    }
    try {
      line.unexport();
    } catch (err) {
      this.#opts.log.warn({ pin: what, err: describeError(err) }, 'GPIO release failed');
    }
  }
}

/** High (pull-up, contact open) = engaged; low (contact closed to ground) = released. */
function positionOf(v: Bit): SwitchPosition {
  return v === 0 ? 'released' : 'engaged';
}

function isFactory(g: GpioClass | (() => GpioClass)): g is () => GpioClass {
  return !('prototype' in g) || g.prototype === undefined;
}
