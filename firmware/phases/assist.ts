/**
 * onionboxd's `assist` phase: the connection assist (firmware/tor/assist.ts, the pure machine; its adapter
 * firmware/tor/assist-runner.ts) fed by tor's events, the WAN's link and lease and a timer, driving tor's
 * bridges and telling the page and the OLED what it makes of tor's connecting. Its built-in bridge lines
 * are the ones last refreshed over tor (phase `builtin`), else the release's (firmware/tor/builtin-bridges.ts);
 * a test network's own win when it names some (data, as its authorities are). Moat is asked first (firmware/tor/moat-ask.ts): onionboxd writes the job
 * (<state dir>/moat-job.json), onionbox-moat.service answers as tor's uid in its runtime directory
 * (%t/onionbox-moat/answer.json), and the firewall's Moat window is open only meanwhile. Its endpoint is
 * Tor Browser's, or a test network's own; a test network that names none has no Moat (nothing is asked).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BoxController } from '../box/controller.js';
import type { ConfigStore } from '../config/store.js';
import type { EventBus } from '../events.js';
import type { Phase } from '../lib/service.js';
import type { BoxNetwork } from '../net/network.js';
import { ConnectionAssist, carrier } from '../tor/assist-runner.js';
import { assistBuiltins, BUILTIN_BRIDGES } from '../tor/builtin-bridges.js';
import { builtinLinesForAssist, type StoredBuiltin } from '../tor/builtin-refresh.js';
import { MOAT_ENDPOINT, type MoatEndpoint } from '../tor/moat.js';
import { askMoat, assistJob, moatParts } from '../tor/moat-ask.js';
import type { RelaySet } from '../tor/relay-set.js';
import type { TorSupervisor } from '../tor/supervisor.js';
import type { TestNetwork } from '../tor/test-network.js';

export function assistPhase(deps: {
  config: ConfigStore;
  bus: EventBus;
  tor: TorSupervisor;
  network: BoxNetwork;
  box: BoxController;
  testNetwork: TestNetwork | undefined;
  relays: RelaySet;
  /** The built-in lines refreshed over tor (null: the release's). */
  refreshed: { current(): StoredBuiltin | null };
  stateDir: string;
  /** systemd's runtime root (%t): where onionbox-moat.service writes its answer. */
  runDir?: string | undefined;
  log: Logger;
}): Phase<ConnectionAssist> {
  const { box, network, testNetwork } = deps;
  // a private test network's own Moat, or none (its tor cannot reach Tor Browser's): then the try-list
  // says Moat is not available here and starts with the built-in lines
  const endpoint = testNetwork ? testNetwork.moat : MOAT_ENDPOINT;
  // this box's built-in lines: the test network's when it names some, else the ones refreshed over tor,
  // else the release's
  const builtinLines = () => builtinLinesForAssist(testNetwork?.builtinBridges, deps.refreshed.current());
  // Moat's "use your built-in lines"
  const builtinOf = (transport: string): readonly string[] =>
    builtinLines()?.filter((l) => l.startsWith(`${transport} `)) ??
    (transport === 'obfs4' ? BUILTIN_BRIDGES.obfs4 : []);
  // stopping the phase ends a wait for Moat at once (and with it the firewall's window)
  let stopping = new AbortController();
  const askWith = async (endpoint: MoatEndpoint) =>
    moatParts(
      await askMoat(assistJob(endpoint), {
        jobFile: join(deps.stateDir, 'moat-job.json'),
        answerFile: join(deps.runDir ?? '/run', 'onionbox-moat', 'answer.json'),
        window: (open) => deps.relays.moatWindow(open),
        signal: stopping.signal,
      }),
      builtinOf,
    );
  let assist: ConnectionAssist | null = null;
  return {
    name: 'assist',
    start: async () => {
      stopping = new AbortController();
      const a = new ConnectionAssist({
        bus: deps.bus,
        tor: deps.tor,
        config: deps.config,
        wan: {
          link: assistLink(box, () => carrier(network.current().wanInterface)),
          lease: () => network.wanLeased(),
        },
        builtins: () => assistBuiltins(builtinLines(), { moat: endpoint !== undefined }),
        ...(endpoint ? { moat: () => askWith(endpoint) } : {}),
        show: (view) => box.setAssist(view),
        log: deps.log.child({ component: 'assist' }),
      });
      assist = a;
      box.attachAssist(a);
      await a.start();
      return a;
    },
    stop: async () => {
      box.attachAssist(null);
      stopping.abort();
      await assist?.stop();
      assist = null;
    },
  };
}

/**
 * The WAN's link as the connection assist sees it. While the box changes its WAN or LAN (and while it goes
 * back after a failed change), tor's stall is the change's to judge (its own timeout and rollback), not a
 * blocked Tor's: the assist waits as for a missing link, and starts over on whichever network the box ends
 * up on. Before, a change slower than the stall window (to a Wi-Fi with a link and a lease but no internet)
 * made it try bridges in the middle of the change.
 */
export function assistLink(
  box: { networkChanging(): boolean },
  carrierNow: () => Promise<boolean>,
): () => Promise<boolean> {
  return async () => !box.networkChanging() && (await carrierNow());
}
