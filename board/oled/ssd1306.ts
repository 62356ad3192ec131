/**
 * SSD1306 (or SH1106) 128x64 OLED over I2C with i2c-bus 5. Every transfer is one i2cWrite: control byte
 * 0x00 followed by commands, or 0x40 followed by display data (i2cWrite has no 32-byte limit; the SMBus
 * block calls do). The SH1106 is a near twin with 132 columns of RAM (the panel starts at column 2) and
 * page addressing only.
 *
 * A display that is not there (bus missing, no ACK at the address, address taken by a kernel driver) is
 * not an error: it is logged once and looked for again later. An I2C error mid-run is logged, the bus is
 * closed and reopened after a pause, the display re-initialised and the latest frame drawn again. Nothing
 * here throws to the caller.
 */
import { createRequire } from 'node:module';
import { describeError } from '../../firmware/errors.js';
import type { BoardLogger } from '../types.js';
import type { Framebuffer } from './framebuffer.js';

/** The part of i2c-bus's PromisifiedBus this driver uses. */
export interface I2cBusLike {
  i2cWrite(address: number, length: number, buffer: Buffer): Promise<{ bytesWritten: number }>;
  close(): Promise<void>;
}

export type I2cOpener = (bus: number) => Promise<I2cBusLike>;

/** The real bus (i2c-bus 5, loaded on first use). */
export const openI2cBus: I2cOpener = async (bus) => {
  const require = createRequire(import.meta.url);
  const i2c = require('i2c-bus') as { openPromisified(n: number): Promise<I2cBusLike> };
  return i2c.openPromisified(bus);
};

export type OledController = 'ssd1306' | 'sh1106';

export const CONTROL_COMMAND = 0x00;
export const CONTROL_DATA = 0x40;

/** Power-on sequence for a 128x64 panel (datasheet order: off, timing, addressing, charge pump, on). */
export function initCommands(controller: OledController): number[] {
  const common = [
    0xae, // display off
    0xd5,
    0x80, // clock divide ratio / oscillator
    0xa8,
    0x3f, // multiplex ratio: 64 rows
    0xd3,
    0x00, // display offset 0
    0x40, // start line 0
  ];
  const power =
    controller === 'ssd1306'
      ? [0x8d, 0x14, 0x20, 0x00] // charge pump on; horizontal addressing mode
      : [0xad, 0x8b]; // SH1106: DC-DC on (page addressing only)
  return [
    ...common,
    ...power,
    0xa1, // segment remap (column 127 = SEG0)
    0xc8, // COM scan direction: remapped
    0xda,
    0x12, // COM pins: alternative configuration
    0x81,
    0xcf, // contrast
    0xd9,
    0xf1, // pre-charge period
    0xdb,
    0x40, // VCOMH deselect level
    0xa4, // display follows RAM
    0xa6, // normal (not inverted)
    0xaf, // display on
  ];
}

/** The transfers that draw a whole frame: one for the SSD1306, one per page for the SH1106. */
export function frameTransfers(fb: Framebuffer, controller: OledController): Buffer[] {
  if (controller === 'ssd1306') {
    return [
      Buffer.from([CONTROL_COMMAND, 0x21, 0, fb.width - 1, 0x22, 0, fb.pages - 1]),
      Buffer.concat([Buffer.from([CONTROL_DATA]), Buffer.from(fb.bytes)]),
    ];
  }
  const out: Buffer[] = [];
  const column = 2; // SH1106: 132-column RAM, the 128-pixel panel starts at column 2
  for (let p = 0; p < fb.pages; p++) {
    out.push(Buffer.from([CONTROL_COMMAND, 0xb0 + p, column & 0x0f, 0x10 | (column >> 4)]));
    out.push(Buffer.concat([Buffer.from([CONTROL_DATA]), Buffer.from(fb.page(p))]));
  }
  return out;
}

export interface Ssd1306Options {
  bus: number;
  address: number;
  controller: OledController;
  open: I2cOpener;
  log: BoardLogger;
  /** Pause before looking for the display again after an error (default 30 s). */
  retryMs?: number | undefined;
}

type OledState = 'stopped' | 'absent' | 'ready' | 'retrying';

export class Ssd1306 {
  #bus: I2cBusLike | null = null;
  #state: OledState = 'stopped';
  #frame: Buffer[] | null = null;
  #drawing: Promise<void> | null = null;
  #dirty = false;
  #retry: NodeJS.Timeout | null = null;
  #errors = 0;
  #absentLogged = false;
  /** Frames drawn since start (diagnostics and tests). */
  framesDrawn = 0;

  readonly #opts: Ssd1306Options;
  constructor(opts: Ssd1306Options) {
    this.#opts = opts;
  }

  get state(): OledState {
    return this.#state;
  }

  get errors(): number {
    return this.#errors;
  }

  async start(): Promise<void> {
    this.#state = 'retrying';
    await this.#connect();
  }

  /** Queues a frame; only the latest frame is drawn when the bus is busy. */
  show(fb: Framebuffer): void {
    this.#frame = frameTransfers(fb, this.#opts.controller);
    this.#dirty = true;
    if (this.#state === 'ready') void this.#pump();
  }

  /** Resolves when the queued frame has been drawn (or could not be). */
  async idle(): Promise<void> {
    while (this.#drawing) await this.#drawing;
  }

  async stop(): Promise<void> {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    await this.idle();
    const bus = this.#bus;
    this.#bus = null;
    if (bus && this.#state === 'ready') {
      await bus.i2cWrite(this.#opts.address, 2, Buffer.from([CONTROL_COMMAND, 0xae])).catch(() => undefined);
    }
    this.#state = 'stopped';
    await bus?.close().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const { address, bus: busNumber, controller, log } = this.#opts;
    try {
      this.#bus = await this.#opts.open(busNumber);
      const init = Buffer.from([CONTROL_COMMAND, ...initCommands(controller)]);
      await this.#bus.i2cWrite(address, init.length, init);
      this.#state = 'ready';
      this.#absentLogged = false;
      log.info({ bus: busNumber, address: `0x${address.toString(16)}`, controller }, 'OLED ready');
      this.#dirty = this.#frame !== null;
      await this.#pump();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const absent = code === 'ENOENT' || code === 'EREMOTEIO' || code === 'ENXIO' || code === 'EBUSY';
      if (absent) {
        if (!this.#absentLogged) {
          log.info(
            { bus: busNumber, address: `0x${address.toString(16)}`, err: describeError(err) },
            'no OLED display found; running without one',
          );
        }
        this.#absentLogged = true;
      } else {
        this.#errors++;
        // Some adapters report a NACK as EIO: log the first failure of a streak only.
        if (!this.#absentLogged)
          log.warn({ err: describeError(err) }, 'OLED initialisation failed; will retry');
        this.#absentLogged = true;
      }
      await this.#drop(absent ? 'absent' : 'retrying');
    }
  }

  async #pump(): Promise<void> {
    if (this.#drawing) return;
    this.#drawing = (async () => {
      while (this.#dirty && this.#state === 'ready' && this.#bus && this.#frame) {
        this.#dirty = false;
        const transfers = this.#frame;
        try {
          for (const t of transfers) await this.#bus.i2cWrite(this.#opts.address, t.length, t);
          this.framesDrawn++;
        } catch (err) {
          this.#errors++;
          this.#dirty = true;
          this.#opts.log.warn({ err: describeError(err) }, 'OLED write failed; reconnecting later');
          await this.#drop('retrying');
        }
      }
    })();
    try {
      await this.#drawing;
    } finally {
      this.#drawing = null;
    }
  }

  async #drop(state: OledState): Promise<void> {
    const bus = this.#bus;
    this.#bus = null;
    this.#state = state;
    await bus?.close().catch(() => undefined);
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#state !== 'stopped') void this.#connect();
    }, this.#opts.retryMs ?? 30_000);
    this.#retry.unref();
  }
}
