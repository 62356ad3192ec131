/**
 * The board onionboxd uses: the simulated one with --simulate, else the Raspberry Pi's GPIO and OLED.
 */
import type { SimBoardControls } from '../firmware/box-api.js';
import type { BoardConfig } from '../firmware/config/schema.js';
import { GpioBoard } from './gpio/board.js';
import { SimBoard } from './sim/board.js';
import type { Board, BoardLogger } from './types.js';

export { GpioBoard } from './gpio/board.js';
export { SimBoard } from './sim/board.js';
export type { Board, BoardLogger, ButtonEvent } from './types.js';

export function createBoard(opts: { simulate: boolean; config: BoardConfig; log: BoardLogger }): {
  board: Board;
  sim: SimBoardControls | undefined;
} {
  if (opts.simulate) {
    const board = new SimBoard();
    return { board, sim: board.controls() };
  }
  return { board: new GpioBoard({ config: opts.config, log: opts.log }), sim: undefined };
}
