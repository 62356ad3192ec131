/**
 * The platform onionboxd runs on, chosen in this one place: a Raspberry Pi, or the simulator (which runs
 * the same daemon inside its own network namespace). Only these differ:
 *   - the board: GPIO and OLED, or SimBoard with its controls (board/index.ts createBoard);
 *   - the clock: set with `date -u -s` (tor/clock.ts setSystemClock), or in the simulator only recorded
 *     (the host's clock is never touched);
 * and these are the same on both, but found here once: tor's user and its uid (from /etc/passwd: the
 * only uid the firewall lets out on the WAN), and tor's data directory.
 */
import { join } from 'node:path';
import { createBoard } from '../../board/index.js';
import type { Board, BoardLogger } from '../../board/types.js';
import type { SimBoardControls } from '../box/api.js';
import type { BoardConfig } from '../config/schema.js';
import { setSystemClock } from '../tor/clock.js';
import { systemUser } from '../tor/process.js';

/** tor runs as Debian's tor user on the box and in the simulator alike. */
export const TOR_USER = 'debian-tor';

export interface Platform {
  simulate: boolean;
  board: Board;
  /** The simulated board's controls (the page's and the CLI's switch and button); none on a Pi. */
  sim: SimBoardControls | undefined;
  /** Sets the system clock (the simulator only records the offset). */
  setSystemTime(epochMs: number): Promise<void>;
  tor: { user: string; uid: number; dataDir: string };
}

export interface PlatformOptions {
  simulate: boolean;
  stateDir: string;
  /** tor's data directory: default <state dir>/tor/data; on the box Debian's /var/lib/tor (the unit). */
  torDataDir?: string | undefined;
  board: BoardConfig;
  log: BoardLogger & { child(bindings: object): BoardLogger };
}

export async function choosePlatform(opts: PlatformOptions): Promise<Platform> {
  const { uid } = await systemUser(TOR_USER).catch(() => ({ uid: 0 }));
  if (uid <= 0) throw new Error(`no uid for user ${TOR_USER}`);
  const { board, sim } = await createBoard({
    simulate: opts.simulate,
    config: opts.board,
    log: opts.log.child({ component: 'board' }),
  });
  const clockLog = opts.log.child({ component: 'clock' });
  return {
    simulate: opts.simulate,
    board,
    sim,
    setSystemTime: opts.simulate
      ? async (ms) => {
          clockLog.info(
            { offsetMs: ms - Date.now() },
            'simulator: clock offset recorded (host clock untouched)',
          );
        }
      : setSystemClock,
    tor: { user: TOR_USER, uid, dataDir: opts.torDataDir ?? join(opts.stateDir, 'tor', 'data') },
  };
}
