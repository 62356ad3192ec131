/**
 * onionboxd's composition: a list of phases, each a service with start()/stop(). Start runs them in
 * order; stop runs them in reverse and never throws, so SIGTERM always ends cleanly.
 *
 * The simulator runs exactly this, inside its "box" network namespace: the only platform choices are
 * the board (GPIO or SimBoard) and the clock (set, or only recorded, in the simulator), made once by the
 * first phase (firmware/platform.ts, which also finds tor's uid and data directory); a private Tor
 * network is plain data (`--test-network FILE`: torrc lines and the check URL), never a code path.
 *
 * Phases, in the order that keeps the box closed (start() below; each in firmware/phases/):
 *   platform       Pi or simulator: board, clock, tor's user, uid and data directory
 *   firewall       open the nft session (the boot lockdown table is still in the kernel)
 *   relay-seed     fill the relay set before anything applies it: authorities and fallbacks (the test
 *                  network's, or tor's built-in lists), bridges, the cached consensus
 *   tor-supervisor the supervisor (not started yet) and its control-socket commands
 *   box            board + state machine: reads the kill switch, applies the first (closed) mode,
 *                  replacing whatever table the kernel holds (boot lockdown, or a crashed run's
 *                  `routing`) before tor runs
 *   wan-lease      the WAN's DHCP server from NetworkManager, for the firewall's DHCP exception
 *   lan            the box's LAN address (tor's TransPort/DNSPort and the page listen on it), then the
 *                  LAN's DHCP server (dnsmasq, DHCP only: the box is every device's router and DNS)
 *   tor-start      starts tor in the background: the state machine opens the LAN only when it is ready
 *   relay-follow   the relay set follows tor's consensus from here on
 *   web, ipc       the page on the LAN address, the CLI's control socket
 *
 * The relay set has one owner, RelaySet (firmware/tor/relay-set.ts): the firewall's parameters read its
 * current() and every change after the seed (new bridges, a new consensus) goes through it to the
 * firewall's refreshRelays.
 *
 * Stop runs them in reverse: the page goes, then tor (the box sees tor go and closes the LAN, as it would
 * for a crash: nothing is forwarded and TransPort has no listener), then the box lets go of the board and
 * loads `lockdown`. A crash leaves the last ruleset in the kernel (it never forwards); the unit's
 * ExecStopPost then loads the boot lockdown.
 *
 * Each phase is handed the objects it needs here; what its start returns
 * (the platform, the firewall, the relay set, tor, the box) is what later phases are handed. Two objects
 * are made before the phases, because a network change reaches them after start: the network the box
 * runs on with its LAN/WAN children (phases/network.ts) and the page (phases/web.ts).
 */
import type { Logger } from 'pino';
import type { BoxController } from './box.js';
import { ConfigStore } from './config/store.js';
import { describeError, obxError } from './errors.js';
import { EventBus } from './events.js';
import { IpcServer, socketPath } from './ipc.js';
import { leaseCidr } from './net/wan-lease.js';
import { boxPhase } from './phases/box.js';
import { firewallParams, firewallPhase } from './phases/firewall.js';
import { BoxNetwork } from './phases/network.js';
import { relayFollowPhase, relaySeedPhase, torSetupPhase, torStartPhase } from './phases/tor.js';
import { WebPage } from './phases/web.js';
import { choosePlatform, type Platform } from './platform.js';
import type { Phase } from './service.js';
import type { RelaySet } from './tor/relay-set.js';
import type { TestNetwork } from './tor/test-network.js';

export { TOR_PORTS } from './phases/tor.js';

export interface DaemonOptions {
  /** The simulated board and clock (SimBoard; the host's clock is never set). Nothing else differs. */
  simulate: boolean;
  stateDir: string;
  /** Overrides of where the page listens (default: the LAN address and the configured port). */
  listenHost?: string | undefined;
  listenPort?: number | undefined;
  /** A private Tor network to join instead of the public one (simulator, emulated image test). */
  testNetwork?: TestNetwork | undefined;
  /** tor's data directory: default <state dir>/tor/data; on the box Debian's /var/lib/tor (the unit). */
  torDataDir?: string | undefined;
  log: Logger;
}

export class Daemon {
  readonly config: ConfigStore;
  readonly bus: EventBus;
  readonly ipc: IpcServer;
  readonly startedAt = Date.now();
  readonly #opts: DaemonOptions;
  /** The network the box runs on and its LAN/WAN children (a network change reaches them after start). */
  readonly #network: BoxNetwork;
  /** The page (a network change moves it to the new LAN address). */
  readonly #web: WebPage;
  #configSource = '';
  #started: Phase<unknown>[] = [];
  /** Kept for status(): what the phases returned. */
  #box: BoxController | null = null;
  #relays: RelaySet | null = null;

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    this.config = new ConfigStore(opts.stateDir, opts.log.child({ component: 'config' }));
    this.bus = new EventBus(opts.log.child({ component: 'bus' }));
    this.ipc = new IpcServer(socketPath(opts.stateDir));
    this.ipc.register('status', async () => this.status());
    this.#network = new BoxNetwork({
      config: this.config,
      stateDir: opts.stateDir,
      // systemd's RuntimeDirectory (/run/onionbox, tmpfs) on the box, as the firewall phase uses it
      runtimeDir: process.env.RUNTIME_DIRECTORY,
      log: opts.log,
    });
    this.#web = new WebPage({
      config: this.config,
      log: opts.log,
      simulate: opts.simulate,
      listenHost: opts.listenHost,
      listenPort: opts.listenPort,
    });
  }

  /** Where the web page answers, once started. */
  get address(): string {
    return this.#web.address;
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
      address: this.#web.address,
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
      dhcpServers: this.#network.dhcpServers(),
      testNetwork: this.#opts.testNetwork !== undefined,
    };
  }

  /** The phases, in order; each is handed what earlier ones returned. */
  async start(): Promise<void> {
    const { log, stateDir, testNetwork } = this.#opts;
    const { config, bus, ipc } = this;
    const network = this.#network;
    const loaded = await config.load();
    this.#configSource = loaded.source;
    log.info({ source: loaded.source, path: config.path }, 'configuration loaded');
    // What every phase may be handed; each phase's own type says which of these it takes.
    const root = { config, bus, ipc, stateDir, testNetwork, log };
    const web = this.#web;
    try {
      const platform = await this.#run(platformPhase(this.#opts, config));
      const firewall = await this.#run(firewallPhase(root));
      const relays = await this.#run(relaySeedPhase({ ...root, platform, firewall }));
      this.#relays = relays;
      const tor = await this.#run(torSetupPhase({ ...root, platform, relays }));
      const params = firewallParams({ ...root, network, platform, relays });
      const box = await this.#run(boxPhase({ ...root, platform, firewall, params, tor, network, web }));
      this.#box = box;
      await this.#run(
        network.wanLeasePhase(async (lease) => {
          box.wanLease(leaseCidr(lease));
          await box.reapply();
        }),
      );
      await this.#run(network.lanPhase());
      await this.#run(torStartPhase({ tor, log }));
      await this.#run(relayFollowPhase({ tor, relays, bus, log }));
      await this.#run(web.phase(box, () => network.current().lanAddress));
      await this.#run({ name: 'ipc', start: () => ipc.start(), stop: () => ipc.stop() });
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
  }

  /** Starts one phase; once started, stop() stops it (in reverse order). */
  async #run<T>(phase: Phase<T>): Promise<T> {
    const out = await phase.start();
    this.#started.push(phase);
    this.#opts.log.debug({ service: phase.name }, 'service started');
    return out;
  }
}

/** Phase `platform`: Pi or simulator, chosen once (firmware/platform.ts). */
function platformPhase(opts: DaemonOptions, config: ConfigStore): Phase<Platform> {
  return {
    name: 'platform',
    start: () =>
      choosePlatform({
        simulate: opts.simulate,
        stateDir: opts.stateDir,
        torDataDir: opts.torDataDir,
        board: config.get().board,
        log: opts.log,
      }),
    stop: async () => undefined,
  };
}
