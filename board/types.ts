/**
 * The hardware edge as the firmware sees it. Two implementations: board/gpio (a Raspberry Pi with onoff
 * and i2c-bus) and board/sim (the simulator and the tests). Both draw the OLED with the same framebuffer
 * code (board/oled/screens.ts).
 */

import type { Log } from '../firmware/log.js';
import type { LedPattern, Screen, SwitchPosition } from '../firmware/state/machine.js';

export type { LedPattern, LedState, Screen, SwitchPosition } from '../firmware/state/machine.js';

export interface ButtonEvent {
  /** 'press' when the button goes down; 'hold' once it has stayed down for the hold time. */
  kind: 'press' | 'hold';
  /** When the button went down (ms since epoch). */
  at: number;
  /** How long it had been held when the event was emitted (0 for 'press'). */
  heldMs: number;
  /** True when the button was already down when the board started (held through boot). */
  sinceBoot: boolean;
}

export interface Board {
  readonly kind: 'gpio' | 'sim';
  /** Reads the switch position first, then opens everything else. Never throws for hardware faults. */
  start(): Promise<void>;
  /** Releases pins, stops timers, blanks and closes the display. Never throws. */
  stop(): Promise<void>;
  /** The last known switch position ('unreadable' before start and when the pin failed). */
  readSwitch(): SwitchPosition;
  onSwitch(listener: (position: SwitchPosition) => void): () => void;
  onButton(listener: (event: ButtonEvent) => void): () => void;
  setLeds(pattern: LedPattern): void;
  /** Draws a screen on the OLED (asynchronously, latest wins). Never throws. */
  showScreen(screen: Screen): void;
}

/** How long the claim button must be held for a 'hold' event (the boot-time password reset). */
export const HOLD_MS = 10_000;

/** The firmware's one logger interface (firmware/log.ts), under the name the board's modules use. */
export type BoardLogger = Log;
