/**
 * The box's control-socket commands (`onionbox board ...`, `onionbox tor bridges`): argument checks,
 * then the same BoxApi calls the page makes. The box itself is firmware/box/controller.ts.
 */

import type { IpcServer } from '../control/socket.js';
import { obxError } from '../errors.js';
import type { BoxApi, SimBoardControls } from './api.js';

/**
 * Control-socket commands for the simulated board: `onionbox board switch on|off`, `onionbox board press`.
 * On a real board they answer OBX_ERR_BOARD_NOT_SIMULATED.
 */
export function registerBoardIpc(
  ipc: Pick<IpcServer, 'register'>,
  controller: BoxApi & { settled?(): Promise<void> },
): void {
  const sim = (): SimBoardControls => {
    if (!controller.sim) throw obxError('BOARD_NOT_SIMULATED');
    return controller.sim;
  };
  ipc.register('board.switch', async (args) => {
    if (typeof args.engaged !== 'boolean') throw obxError('BOX_BAD_INPUT', '"engaged" must be true or false');
    sim().setSwitch(args.engaged);
    await controller.settled?.();
    const s = controller.status();
    return { state: s.state, firewallMode: s.firewallMode, killSwitch: s.killSwitch };
  });
  ipc.register('board.press', async (args) => {
    const holdMs = args.holdMs === undefined ? 0 : args.holdMs;
    if (typeof holdMs !== 'number' || !Number.isInteger(holdMs) || holdMs < 0 || holdMs > 60_000) {
      throw obxError('BOX_BAD_INPUT', '"holdMs" must be an integer from 0 to 60000');
    }
    sim().pressClaimButton(holdMs);
    // What the press approved is for the browser that started the claim (and the OLED), not the CLI.
    return { pressed: true };
  });
  ipc.register('board.leds', async () => sim().leds());
  // The page's bridge form, from the command line: the same validation, rollback and storage.
  ipc.register('tor.bridges', async (args) => {
    const lines = args.bridges;
    if (!Array.isArray(lines) || lines.some((l) => typeof l !== 'string') || lines.length > 50) {
      throw obxError('CONFIG_INVALID', 'bridges must be a list of at most 50 bridge lines');
    }
    const tor = controller.settings().tor;
    return controller.applyTorSettings({ ...tor, useBridges: lines.length > 0, bridges: lines as string[] });
  });
}
