/**
 * The board onionboxd uses, chosen in this one place: the simulated one with --simulate, else the
 * Raspberry Pi's GPIO and OLED. Each is loaded only when chosen (the simulator never loads onoff or
 * i2c-bus; the box never loads the simulated board).
 */
import type { SimBoardControls } from '../firmware/box/api.js';
import type { BoardConfig } from '../firmware/config/schema.js';
import type { Board, BoardLogger } from './types.js';

export type { Board, BoardLogger, ButtonEvent } from './types.js';

export async function createBoard(opts: {
  simulate: boolean;
  config: BoardConfig;
  log: BoardLogger;
}): Promise<{
  board: Board;
  sim: SimBoardControls | undefined;
}> {
  if (opts.simulate) {
    const { SimBoard } = await import('./sim/board.js');
    const board = new SimBoard({ log: opts.log });
    return { board, sim: board.controls() };
  }
  const { GpioBoard } = await import('./gpio/board.js');
  return { board: new GpioBoard({ config: opts.config, log: opts.log }), sim: undefined };
}
