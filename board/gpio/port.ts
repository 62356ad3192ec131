/**
 * The thin adapter around onoff 6. onoff hard-codes /sys/class/gpio and cannot be pointed elsewhere, so
 * the board code receives onoff's Gpio class as a value: production passes the real one (loaded lazily,
 * so a machine without epoll still starts and reads the switch as unreadable); tests pass the real onoff
 * module loaded against a fake sysfs and a fake epoll (test/helpers/fake-gpio.ts).
 */
import { createRequire } from 'node:module';

export type Bit = 0 | 1;
export type Direction = 'in' | 'out' | 'high' | 'low';
export type Edge = 'none' | 'rising' | 'falling' | 'both';

/** The part of onoff's Gpio instance this firmware uses. */
export interface GpioLine {
  readSync(): Bit;
  writeSync(value: Bit): void;
  watch(callback: (err: Error | null | undefined, value: Bit) => void): void;
  unwatchAll(): void;
  edge(): Edge;
  unexport(): void;
}

export type GpioClass = new (
  gpio: number,
  direction: Direction,
  edge?: Edge,
  options?: { debounceTimeout?: number; activeLow?: boolean; reconfigureDirection?: boolean },
) => GpioLine;

/** onoff's Gpio class; throws (with the reason) when onoff or its epoll addon cannot be loaded. */
export function loadOnoff(): GpioClass {
  const require = createRequire(import.meta.url);
  return (require('onoff') as { Gpio: GpioClass }).Gpio;
}

/**
 * onoff's interrupt handler calls the instance's readSync() from an epoll or debounce callback; if the
 * line returns EIO there, the exception is uncaught and would take the firmware down. Wrap the instance's
 * readSync so that every read reports its outcome to `onResult` (null when it worked) and a failed read
 * returns `failSafe` instead of throwing.
 */
export function containReads(line: GpioLine, failSafe: Bit, onResult: (err: unknown) => void): GpioLine {
  const original = line.readSync.bind(line);
  line.readSync = () => {
    let value: Bit;
    try {
      value = original();
    } catch (err) {
      onResult(err);
      return failSafe;
    }
    onResult(null);
    return value;
  };
  return line;
}
