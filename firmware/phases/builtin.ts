/**
 * onionboxd's `builtin` phase: the refresh of the built-in bridge lines over tor (issue 21; pure parts in
 * firmware/tor/builtin-refresh.ts, the adapter firmware/tor/builtin-refresher.ts). Its start reads the
 * stored lines (<state dir>/builtin-bridges.json) and nothing else: the fetch waits until the box routes,
 * then goes through tor's SocksPort on loopback with its own SOCKS username, to Moat's endpoint (Tor
 * Browser's, or a test network's own), as onionboxd's user. The connection assist's built-in part uses
 * what it returns.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BoxController } from '../box/controller.js';
import type { Phase } from '../lib/service.js';
import { BUILTIN_FILE } from '../tor/builtin-refresh.js';
import { BUILTIN_SOCKS_USERNAME, BuiltinRefresher, moatBuiltinFetch } from '../tor/builtin-refresher.js';
import { MOAT_ENDPOINT } from '../tor/moat.js';
import type { TestNetwork } from '../tor/test-network.js';
import { torConnect } from '../update/socks5.js';
import { TOR_PORTS } from './tor.js';

export function builtinPhase(deps: {
  box: BoxController;
  testNetwork: TestNetwork | undefined;
  stateDir: string;
  now?: () => Date;
  log: Logger;
}): Phase<BuiltinRefresher> {
  let refresher: BuiltinRefresher | null = null;
  let off: (() => void) | null = null;
  return {
    name: 'builtin',
    start: async () => {
      // a private test network's own Moat, or none (its tor cannot reach Tor Browser's)
      const endpoint = deps.testNetwork ? deps.testNetwork.moat : MOAT_ENDPOINT;
      const r = new BuiltinRefresher({
        file: join(deps.stateDir, BUILTIN_FILE),
        fetch: endpoint
          ? moatBuiltinFetch(
              endpoint,
              torConnect({ socksPort: TOR_PORTS.socks, username: BUILTIN_SOCKS_USERNAME }),
            )
          : null,
        routing: () => deps.box.status().state === 'routing',
        ...(deps.now ? { now: deps.now } : {}),
        changed: (line) => deps.box.record(line),
        statusChanged: () => deps.box.setBuiltinBridges(r.status().pageWords),
        log: deps.log.child({ component: 'builtin' }),
      });
      await r.start();
      off = deps.box.onStatus(() => r.poke());
      refresher = r;
      return r;
    },
    stop: async () => {
      off?.();
      off = null;
      await refresher?.stop();
      refresher = null;
      deps.box.setBuiltinBridges(null);
    },
  };
}
