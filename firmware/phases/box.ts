/**
 * onionboxd's `box` phase: the clock service, the board and the state machine (BoxController) bound to
 * the firewall, tor, the network and the leak self-test. Its
 * start reads the kill switch and applies the first (closed) mode, replacing whatever table the kernel
 * holds (boot lockdown, or a crashed run's `routing`) before tor runs; its stop loads `lockdown` after
 * the box let go of the board.
 */
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BoxController } from '../box/controller.js';
import type { ConfigStore } from '../config/store.js';
import { describeError } from '../errors.js';
import type { EventBus } from '../events.js';
import { type Firewall, type FirewallParams, firewallForBox } from '../firewall/apply.js';
import { LeakTester } from '../leak-test/leak-test.js';
import type { Phase } from '../lib/service.js';
import type { BoxNetwork } from '../net/network.js';
import type { Platform } from '../platform/platform.js';
import { ClockService } from '../tor/clock.js';
import type { TorSupervisor } from '../tor/supervisor.js';
import type { TestNetwork } from '../tor/test-network.js';
import { torCheck } from './tor.js';

export interface BoxPhaseDeps {
  config: ConfigStore;
  bus: EventBus;
  platform: Platform;
  firewall: Firewall;
  /** The firewall's parameters as they stand (phases/firewall.ts firewallParams). */
  params: () => FirewallParams;
  tor: TorSupervisor;
  network: BoxNetwork;
  stateDir: string;
  testNetwork: TestNetwork | undefined;
  log: Logger;
}

export function boxPhase(deps: BoxPhaseDeps): Phase<BoxController> {
  const { config, bus, platform, firewall: fw, tor, network, params } = deps;
  const log = deps.log.child({ component: 'box' });
  let clock: ClockService | null = null;
  let box: BoxController | null = null;
  return {
    name: 'box',
    start: async () => {
      clock = new ClockService({
        file: join(deps.stateDir, 'clock.json'),
        bus,
        log: deps.log.child({ component: 'clock' }),
        setSystemTime: platform.setSystemTime,
      });
      await clock.start();
      const clockRef = clock;
      let torWasRunning = false;
      const controller = new BoxController({
        network,
        config,
        bus,
        board: platform.board,
        tor,
        firewall: firewallForBox(fw, params),
        log,
        simulate: platform.simulate,
        sim: platform.sim,
        clock: { set: (ms) => clockRef.setFromOwner(ms) },
        leakTest: leakTester({ ...deps, routing: () => box?.status().state === 'routing' }),
        // nft refusing every closed ruleset: stop tor so nothing the old ruleset allows can flow
        containment: {
          engage: async () => {
            torWasRunning = tor.status().phase !== 'stopped';
            await tor.stop();
          },
          release: async () => {
            if (torWasRunning) await tor.start();
          },
        },
      });
      box = controller;
      await controller.start();
      // The first (closed) mode is in the kernel before tor runs: after a crash it may still hold `routing`.
      await controller.settled();
      return controller;
    },
    stop: async () => {
      await box?.stop();
      box = null;
      await clock?.stop();
      // A clean stop ends in lockdown (a crash leaves the last ruleset, which never forwards; the unit's
      // ExecStopPost loads the boot lockdown then).
      await fw.apply('lockdown', params()).catch((err: unknown) => {
        log.error({ err: describeError(err) }, 'lockdown at stop failed; the last ruleset stays');
      });
    },
  };
}

/** The leak self-test, on the box's real firewall, sysctls and WAN (firmware/leak-test/). */
function leakTester(deps: BoxPhaseDeps & { routing: () => boolean }): LeakTester {
  const { firewall: fw, network } = deps;
  return new LeakTester({
    firewallMode: () => fw.current(),
    audit: () => fw.audit(),
    routing: deps.routing,
    torCheck: () => torCheck(deps.testNetwork),
    wanInterface: () => network.current().wanInterface,
    dhcpServers: () => network.dhcpServers(),
    wanAddresses: () => {
      const addrs = networkInterfaces()[network.current().wanInterface] ?? [];
      return addrs.filter((a) => a.family === 'IPv4').map((a) => a.address);
    },
  });
}
