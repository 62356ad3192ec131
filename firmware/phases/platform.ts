/** onionboxd's first phase, `platform`: Pi or simulator, chosen once (firmware/platform/platform.ts). */
import type { Logger } from 'pino';
import type { ConfigStore } from '../config/store.js';
import type { Phase } from '../lib/service.js';
import { choosePlatform, type Platform } from '../platform/platform.js';

export function platformPhase(deps: {
  simulate: boolean;
  stateDir: string;
  torDataDir: string | undefined;
  config: ConfigStore;
  log: Logger;
}): Phase<Platform> {
  return {
    name: 'platform',
    start: () =>
      choosePlatform({
        simulate: deps.simulate,
        stateDir: deps.stateDir,
        torDataDir: deps.torDataDir,
        board: deps.config.get().board,
        log: deps.log,
      }),
    stop: async () => undefined,
  };
}
