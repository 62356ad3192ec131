/**
 * onionboxd's `ipc` phase: every control-socket command (firmware/control/commands.ts) registered on
 * the socket, then the socket listening (mode 0600, in the state directory). It is the last phase: the
 * CLI reaches a box that has started.
 */
import { type ControlTargets, registerControlCommands } from '../control/commands.js';
import type { IpcServer } from '../control/socket.js';
import type { Phase } from '../lib/service.js';

export function controlPhase(deps: { ipc: IpcServer } & ControlTargets): Phase<void> {
  const { ipc, ...targets } = deps;
  return {
    name: 'ipc',
    start: async () => {
      registerControlCommands(ipc, targets);
      await ipc.start();
    },
    stop: () => ipc.stop(),
  };
}
