/**
 * onionboxd's composition: a list of phases, each a function in firmware/phases/ that takes what it
 * needs (typed) and returns a Phase<T> with start()/stop(). Start runs them in order (start() below is
 * the list); what a phase's start returns is what later phases are handed, so a phase cannot come
 * before the one whose result it takes. Stop runs them in reverse and never throws, so SIGTERM always
 * ends cleanly.
 *
 * The simulator runs exactly this, inside its "box" network namespace: the only platform choices are
 * the board (GPIO or SimBoard) and the clock (set, or only recorded, in the simulator), made once by the
 * first phase (firmware/platform/platform.ts, which also finds tor's uid and data directory); a private
 * Tor network is plain data (`--test-network FILE`: torrc lines and the check URL), never a code path.
 *
 * Phases, in the order that keeps the box closed:
 *   platform       Pi or simulator: board, clock, tor's user, uid and data directory
 *   firewall       open the nft session (the boot lockdown table is still in the kernel)
 *   relay-seed     fill the relay set before anything applies it: authorities and fallbacks (the test
 *                  network's, or tor's built-in lists), bridges, the cached consensus
 *   tor-supervisor the supervisor (not started yet)
 *   network        BoxNetwork (firmware/net/network.ts): the network the box runs on, the one answer to
 *                  "which network" (firewall parameters, overlap check, leak test, OLED), and a network
 *                  change's system steps (which move tor); nothing runs yet
 *   box            board + state machine: reads the kill switch, applies the first (closed) mode,
 *                  replacing whatever table the kernel holds (boot lockdown, or a crashed run's
 *                  `routing`) before tor runs
 *   wan-lease      the WAN's DHCP server from NetworkManager, for the firewall's DHCP exception
 *   lan            the box's LAN address (tor's TransPort/DNSPort and the page listen on it), then the
 *                  LAN's DHCP server (dnsmasq, DHCP only: the box is every device's router and DNS)
 *   tor-start      starts tor in the background: the state machine opens the LAN only when it is ready
 *   relay-follow   the relay set follows tor's consensus from here on
 *   assist         the connection assist (firmware/tor/assist-runner.ts): tells apart no network, a
 *                  wrong clock and Tor blocked, and when blocked tries the built-in bridges by itself
 *   update         the updater (firmware/update/): the image's release files, its saved state, the daily
 *                  timer; fetches only through tor's SocksPort once the box routes
 *   page-socket    the page's socket (web.sock): the page runs in its own process (onionbox-web.service,
 *                  web/main.ts) and reaches the box and the updater only through it; onionboxd listens on
 *                  no TCP port
 *   ipc            every control-socket command (firmware/control/commands.ts), then the socket
 *   slot           asks for the running A/B slot to be marked good once the box routes, or after some
 *                  healthy minutes without a WAN (firmware/update/slot.ts)
 *
 * The relay set has one owner, RelaySet (firmware/tor/relay-set.ts): the firewall's parameters read its
 * current() and every change after the seed (new bridges, a new consensus) goes through it to the
 * firewall's refreshRelays.
 *
 * Stop runs them in reverse: the page's socket goes, then tor (the box sees tor go and closes the LAN, as it would
 * for a crash: nothing is forwarded and TransPort has no listener), then the box lets go of the board and
 * loads `lockdown`. A crash leaves the last ruleset in the kernel (it never forwards); the unit's
 * ExecStopPost then loads the boot lockdown.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BoxController } from './box/controller.js';
import { ConfigStore } from './config/store.js';
import { IpcServer, socketPath, webSocketPath } from './control/socket.js';
import { describeError, obxError } from './errors.js';
import { EventBus } from './events.js';
import type { Phase } from './lib/service.js';
import type { BoxNetwork } from './net/network.js';
import { assistPhase } from './phases/assist.js';
import { boxPhase } from './phases/box.js';
import { builtinPhase } from './phases/builtin.js';
import { controlPhase } from './phases/control.js';
import { firewallParams, firewallPhase } from './phases/firewall.js';
import { lanPhase, networkPhase, wanLeasePhase } from './phases/network.js';
import { platformPhase } from './phases/platform.js';
import { relayFollowPhase, relaySeedPhase, torCheck, torSetupPhase, torStartPhase } from './phases/tor.js';
import { type Updates, updatePhase } from './phases/update.js';
import { pageSocketPhase } from './phases/web.js';
import type { BuiltinRefresher } from './tor/builtin-refresher.js';
import type { RelaySet } from './tor/relay-set.js';
import type { TestNetwork } from './tor/test-network.js';
import { slotPhase } from './update/slot.js';
import { updateSummary } from './update/words.js';

export { TOR_PORTS } from './phases/tor.js';

export interface DaemonOptions {
  /** The simulated board and clock (SimBoard; the host's clock is never set). Nothing else differs. */
  simulate: boolean;
  stateDir: string;
  /** A private Tor network to join instead of the public one (simulator, emulated image test). */
  testNetwork?: TestNetwork | undefined;
  /** tor's data directory: default <state dir>/tor/data; on the box Debian's /var/lib/tor (the unit). */
  torDataDir?: string | undefined;
  /**
   * systemd's runtime root (%t, default /run), where dnsmasq's and hostapd's own units keep their
   * runtime directories; the simulator, which plays systemd's part, gives its own.
   */
  runDir?: string | undefined;
  /** The image's release files (release.json, release-keys/): default /etc/onionbox. */
  releaseDir?: string | undefined;
  /** tor in its own unit, on this control socket (onionbox-tor.service); absent: onionboxd spawns tor. */
  torControlSocket?: string | undefined;
  log: Logger;
}

export class Daemon {
  readonly config: ConfigStore;
  readonly bus: EventBus;
  readonly ipc: IpcServer;
  readonly startedAt = Date.now();
  readonly #opts: DaemonOptions;
  #configSource = '';
  #started: Phase<unknown>[] = [];
  /** Kept for status(): what the phases returned. */
  #box: BoxController | null = null;
  #relays: RelaySet | null = null;
  #network: BoxNetwork | null = null;
  #updates: Updates | null = null;
  #builtin: BuiltinRefresher | null = null;

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    this.config = new ConfigStore(opts.stateDir, opts.log.child({ component: 'config' }));
    this.bus = new EventBus(opts.log.child({ component: 'bus' }));
    this.ipc = new IpcServer(socketPath(opts.stateDir));
  }

  /** The page's socket (the page process, onionbox-web, connects to it). */
  get pageSocket(): string {
    return webSocketPath(this.#opts.stateDir);
  }

  /** The composed box (after start): the web page's and tests' view of it. */
  get box(): BoxController | null {
    return this.#box;
  }

  /** What `onionbox status` prints. */
  status(): Record<string, unknown> {
    const cfg = this.config.get();
    const box = this.#box?.status();
    return {
      simulate: this.#opts.simulate,
      pageSocket: this.pageSocket,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      configSource: this.#configSource,
      claimed: cfg.web.passwordHash !== null,
      state: box?.state ?? 'booting',
      firewallMode: box?.firewallMode ?? 'lockdown',
      tor: box ? `${box.tor.phase} ${box.tor.progress}% ${box.tor.summary}` : 'not started',
      torProgress: box?.tor.progress ?? 0,
      killSwitch: box
        ? `hardware ${box.killSwitch.hardware ? 'on' : 'off'}, web ${box.killSwitch.software ? 'on' : 'off'}`
        : '',
      relays: this.#relays?.current().length ?? 0,
      relaySet: this.#relays?.sizes() ?? null,
      dhcpServers: this.#network?.dhcpServers() ?? [],
      testNetwork: this.#opts.testNetwork !== undefined,
      update: this.#updates ? updateSummary(this.#updates.status()) : 'not started',
      assist: box?.assist?.words ?? 'not started',
      builtinBridges: this.#builtin?.status().summary ?? 'not started',
    };
  }

  /** The phases, in order; each is handed what earlier ones returned. */
  async start(): Promise<void> {
    const { log, stateDir, testNetwork, simulate, torDataDir, torControlSocket } = this.#opts;
    const { config, bus, ipc } = this;
    const loaded = await config.load();
    this.#configSource = loaded.source;
    log.info({ source: loaded.source, path: config.path }, 'configuration loaded');
    // What every phase may be handed; each phase's own type says which of these it takes.
    const root = { config, bus, ipc, stateDir, testNetwork, log };
    try {
      const platform = await this.#run(platformPhase({ ...root, simulate, torDataDir }));
      const firewall = await this.#run(firewallPhase(root));
      const relays = await this.#run(relaySeedPhase({ ...root, platform, firewall }));
      this.#relays = relays;
      const tor = await this.#run(torSetupPhase({ ...root, platform, relays, torControlSocket }));
      // dnsmasq's leases and PID file in its own unit's runtime directory (/run/onionbox-dhcp, tmpfs):
      // the LAN's MACs and hostnames never reach the SD card
      const network = await this.#run(networkPhase({ ...root, runDir: this.#opts.runDir, tor }));
      this.#network = network;
      const params = firewallParams({ ...root, network, platform, relays });
      const box = await this.#run(boxPhase({ ...root, platform, firewall, params, tor, network }));
      this.#box = box;
      // a change of transports changes rules (firmware/tor/transports.ts): the whole ruleset again
      relays.onRulesChanged(() => box.reapply());
      // tor's own resolv.conf (its unit binds it over /etc/resolv.conf): the WAN's resolvers only
      const resolvConf = join(process.env.RUNTIME_DIRECTORY ?? stateDir, 'tor-resolv.conf');
      await this.#run(wanLeasePhase({ network, box, resolvConf }));
      await this.#run(lanPhase({ network }));
      await this.#run(torStartPhase({ tor, log }));
      await this.#run(relayFollowPhase({ tor, relays, bus, log }));
      // the built-in bridge lines: the stored ones refreshed over tor once the box routes (issue 21)
      const refreshed = await this.#run(builtinPhase({ box, testNetwork, stateDir, log }));
      this.#builtin = refreshed;
      // why tor does not connect (no network, clock, blocked) and, when blocked, a bridge found by itself
      await this.#run(
        assistPhase({
          config,
          bus,
          tor,
          network,
          box,
          testNetwork,
          relays,
          refreshed,
          stateDir,
          runDir: this.#opts.runDir,
          log,
        }),
      );
      const updates = await this.#run(
        updatePhase({
          config,
          box,
          bus,
          stateDir,
          releaseDir: this.#opts.releaseDir,
          runtimeDir: process.env.RUNTIME_DIRECTORY,
          log,
        }),
      );
      this.#updates = updates;
      await this.#run(pageSocketPhase({ config, box, stateDir, updates }));
      const torCheckHere = () => torCheck(testNetwork);
      await this.#run(
        controlPhase({ ipc, status: () => this.status(), box, tor, torCheck: torCheckHere, updates }),
      );
      // the A/B slot: asks (through /run/onionbox) for the running slot to be marked good once it routes
      await this.#run(
        slotPhase({
          runtimeDir: process.env.RUNTIME_DIRECTORY,
          box,
          network,
          log: log.child({ component: 'slot' }),
        }),
      );
    } catch (err) {
      await this.stop();
      throw obxError('DAEMON_START_FAILED', describeError(err), { cause: err });
    }
  }

  async stop(): Promise<void> {
    for (const phase of this.#started.reverse()) {
      try {
        await phase.stop();
      } catch (err) {
        this.#opts.log.error({ service: phase.name, err: describeError(err) }, 'service failed to stop');
      }
    }
    this.#started = [];
    this.#box = null;
    this.#network = null;
    this.#updates = null;
    this.#builtin = null;
  }

  /** Starts one phase; once started, stop() stops it (in reverse order). */
  async #run<T>(phase: Phase<T>): Promise<T> {
    const out = await phase.start();
    this.#started.push(phase);
    this.#opts.log.debug({ service: phase.name }, 'service started');
    return out;
  }
}
