/**
 * Phase `page-socket`: onionboxd's side of the page (issue 23). The page runs in its own process
 * (web/main.ts, onionbox-web.service) and reaches the box only through this socket: the page's commands
 * (firmware/control/web-commands.ts) on web.sock in the state directory, mode 0660 and group
 * onionbox-web (onionboxd's user, the page's user and root may connect; firmware/control/socket.ts).
 * The updater (the `update` phase's Updates) answers the page's Updates section over the same socket.
 * onionboxd itself listens on no TCP port for the page.
 */
import type { PageUpdatesApi } from '../box/api.js';
import type { BoxController } from '../box/controller.js';
import type { ConfigStore } from '../config/store.js';
import { IpcServer, WEB_GROUP, webSocketPath } from '../control/socket.js';
import { registerWebCommands } from '../control/web-commands.js';
import type { Phase } from '../lib/service.js';

export function pageSocketPhase(deps: {
  config: ConfigStore;
  box: BoxController;
  stateDir: string;
  updates?: PageUpdatesApi | undefined;
}): Phase<IpcServer> {
  const server = new IpcServer(webSocketPath(deps.stateDir), { mode: 0o660, group: WEB_GROUP });
  return {
    name: 'page-socket',
    start: async () => {
      registerWebCommands(server, deps.box, (listener) => deps.config.onChange(listener), deps.updates);
      await server.start();
      return server;
    },
    stop: () => server.stop(),
  };
}
