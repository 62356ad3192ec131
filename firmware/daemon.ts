/**
 * onionboxd's composition: a list of phases, each a service with start()/stop(). Start runs them in
 * order; stop runs them in reverse and never throws, so SIGTERM always ends cleanly.
 *
 * The simulator runs exactly this, inside its "box" network namespace: the only platform choices are
 * the board (GPIO or SimBoard) and the clock (set, or only recorded, in the simulator), made once by the
 * first phase (firmware/platform.ts, which also finds tor's uid and data directory); a private Tor
 * network is plain data (`--test-network FILE`: torrc lines and the check URL), never a code path.
 *
 * Phases, in the order that keeps the box closed:
 *   0. platform    Pi or simulator: board, clock, tor's user, uid and data directory
 *   1. firewall    open the nft session (the boot lockdown table is still in the kernel)
 *   2. relays      fill the relay set before anything applies it: authorities and fallbacks (the test
 *                  network's, or tor's built-in lists), bridges, the cached consensus
 *   3. tor-supervisor the supervisor (not started yet) and its control-socket commands
 *   4. box         board + state machine: reads the kill switch, applies the first (closed) mode,
 *                  replacing whatever table the kernel holds (boot lockdown, or a crashed run's
 *                  `routing`) before tor runs
 *   5. wan-lease   the WAN's DHCP server from NetworkManager, for the firewall's DHCP exception
 *   6. lan         the box's LAN address (tor's TransPort/DNSPort and the page listen on it), then the
 *                  LAN's DHCP server (dnsmasq, DHCP only: the box is every device's router and DNS)
 *   7. tor-start   starts tor in the background: the state machine opens the LAN only when it is ready;
 *                  the relay set follows tor's consensus from here on
 *   8. web, ipc    the page on the LAN address, the CLI's control socket
 *
 * Stop runs them in reverse: the page goes, then tor (the box sees tor go and closes the LAN, as it would
 * for a crash: nothing is forwarded and TransPort has no listener), then the box, which loads `lockdown`
 * before it lets go of the board. A crash leaves the last ruleset in the kernel (it never forwards); the
 * unit's ExecStopPost then loads the boot lockdown.
 *
 * Over 400 lines because every phase is still written here, closing over the daemon's fields (the box,
 * firewall, tor, relay set, LAN children) and the network change's step executors; the next step is
 * each phase in its own function handed the objects it needs by this composition root (issue 15).
 */
import { chmod, mkdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildWebApp } from '../web/app.js';
import { BoxController, type NetworkChangeSystem, registerBoardIpc } from './box.js';
import type { TorConfig } from './config/schema.js';
import { ConfigStore } from './config/store.js';
import { describeError, obxError } from './errors.js';
import { EventBus } from './events.js';
import { Firewall, firewallForBox } from './firewall/apply.js';
import type { FirewallParams, RelayEndpoint } from './firewall/params.js';
import { IpcServer, socketPath } from './ipc.js';
import { LeakTester } from './leak-test/leak-test.js';
import { type AccessPoint, createAccessPoint } from './net/access-point.js';
import { createBoxNetwork } from './net/box-network.js';
import type { NetworkShape } from './net/change.js';
import { createLanDhcp, type LanDhcp } from './net/lan-dhcp.js';
import { removeLanAddress, setLanAddress } from './net/lan-link.js';
import { leaseCidr, type WanLease, WanLeaseWatcher } from './net/wan-lease.js';
import { NetworkManagerWan } from './net/wifi.js';
import { choosePlatform, type Platform } from './platform.js';
import type { Service } from './service.js';
import { DEFAULT_CHECK_URL, TorCheck } from './tor/check.js';
import { ClockService } from './tor/clock.js';
import { registerTorIpc } from './tor/ipc.js';
import { RelaySet } from './tor/relay-set.js';
import { TorSupervisor } from './tor/supervisor.js';
import type { TestNetwork } from './tor/test-network.js';
import type { TorRuntime } from './tor/torrc.js';

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

/** tor's ports on the box (DESIGN: SocksPort and ControlPort on loopback, the others on the LAN). */
export const TOR_PORTS = Object.freeze({ socks: 9050, control: 9051, trans: 9040, dns: 5353 });
/** Besides every new consensus, the relay set is re-read this often. */
const RELAY_REFRESH_MS = 10 * 60_000;

/** The control socket's `net.change` arguments, typed (the plan validates the values). */
function networkChangeArgs(args: Record<string, unknown>): Partial<Omit<NetworkShape, 'accessPoint'>> {
  const out: Partial<Omit<NetworkShape, 'accessPoint'>> = {};
  for (const k of ['wanInterface', 'lanInterface', 'lanAddress'] as const) {
    const v = args[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw obxError('NET_VALUE_INVALID', `${k} must be a string`);
    out[k] = v;
  }
  if (args.lanPrefix !== undefined) {
    if (typeof args.lanPrefix !== 'number') throw obxError('NET_VALUE_INVALID', 'lanPrefix must be a number');
    out.lanPrefix = args.lanPrefix;
  }
  return out;
}

export class Daemon {
  readonly config: ConfigStore;
  readonly bus: EventBus;
  readonly ipc: IpcServer;
  readonly startedAt = Date.now();
  #configSource = '';
  #started: Service[] = [];
  #web: FastifyInstance | null = null;
  #address = '';
  #firewall: Firewall | null = null;
  #tor: TorSupervisor | null = null;
  #box: BoxController | null = null;
  #relaySet: RelaySet | null = null;
  #dhcpServers: string[] = [];
  /** Created with the box (the page lists its leases), started once the LAN address is set. */
  #lanDhcp: LanDhcp | null = null;
  #accessPoint: AccessPoint | null = null;
  #chosen: Platform | null = null;
  /** The network the box runs on (the config's until a change replaces it: firmware/net/change.ts). */
  #net: NetworkShape | null = null;
  #wanWatcher: WanLeaseWatcher | null = null;
  /** Where tor should listen after the next reconnect (a LAN address change). */
  #torLanAddress: string | undefined;

  constructor(private readonly opts: DaemonOptions) {
    this.config = new ConfigStore(opts.stateDir, opts.log.child({ component: 'config' }));
    this.bus = new EventBus(opts.log.child({ component: 'bus' }));
    this.ipc = new IpcServer(socketPath(opts.stateDir));
    this.ipc.register('status', async () => this.status());
  }

  /** Where the web page answers, once started. */
  get address(): string {
    return this.#address;
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
      simulate: this.opts.simulate,
      address: this.#address,
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
      relays: this.#relaySet?.current().length ?? 0,
      relaySet: this.#relaySet?.sizes() ?? null,
      dhcpServers: this.#dhcpServers,
      testNetwork: this.opts.testNetwork !== undefined,
    };
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    const loaded = await this.config.load();
    this.#configSource = loaded.source;
    log.info({ source: loaded.source, path: this.config.path }, 'configuration loaded');
    const phases: Service[] = [
      this.#platformService(),
      this.#firewallService(),
      this.#relaySeedService(),
      this.#torSetupService(),
      this.#boxService(),
      this.#wanLeaseService(),
      this.#lanService(),
      this.#torStartService(),
      this.#relayFollowService(),
      this.#webService(),
      { name: 'ipc', start: () => this.ipc.start(), stop: () => this.ipc.stop() },
    ];
    try {
      for (const service of phases) {
        await service.start();
        this.#started.push(service);
        log.debug({ service: service.name }, 'service started');
      }
    } catch (err) {
      await this.stop();
      throw obxError('DAEMON_START_FAILED', describeError(err), { cause: err });
    }
  }

  async stop(): Promise<void> {
    for (const service of this.#started.reverse()) {
      try {
        await service.stop();
      } catch (err) {
        this.opts.log.error({ service: service.name, err: describeError(err) }, 'service failed to stop');
      }
    }
    this.#started = [];
  }

  /** Chosen by the first phase: board, clock, tor's uid and data directory. */
  get #platform(): Platform {
    if (!this.#chosen) throw new Error('the platform is chosen by the first phase');
    return this.#chosen;
  }

  /** The platform, chosen once (Pi or simulator): firmware/platform.ts. */
  #platformService(): Service {
    return {
      name: 'platform',
      start: async () => {
        this.#chosen = await choosePlatform({
          simulate: this.opts.simulate,
          stateDir: this.opts.stateDir,
          torDataDir: this.opts.torDataDir,
          board: this.config.get().board,
          log: this.opts.log,
        });
      },
      stop: async () => undefined,
    };
  }

  /** The network the box runs on now. */
  #netNow(): NetworkShape {
    if (this.#net) return this.#net;
    const n = this.config.get().network;
    return {
      wanInterface: n.wanInterface,
      lanInterface: n.lanInterface,
      lanAddress: n.lanAddress,
      lanPrefix: n.lanPrefix,
      accessPoint: n.accessPoint !== null,
    };
  }

  #firewallParams(): FirewallParams {
    const net = this.#netNow();
    return {
      lanIf: net.lanInterface,
      wanIf: net.wanInterface,
      lanAddr: net.lanAddress,
      lanPrefix: net.lanPrefix,
      torUid: this.#chosen?.tor.uid ?? 0,
      transPort: TOR_PORTS.trans,
      dnsPort: TOR_PORTS.dns,
      webPort: this.config.get().web.port,
      relays: this.#relaySet?.current() ?? [],
      dhcpServers: this.#dhcpServers,
    };
  }

  #firewallService(): Service {
    const log = this.opts.log.child({ component: 'firewall' });
    return {
      name: 'firewall',
      start: async () => {
        // The scripts go to memory where there is some: systemd's RuntimeDirectory (/run/onionbox, tmpfs)
        // on the box, not the SD card (a file per change; ext4 measured p99 12 ms, tmpfs 0.3 ms).
        const workDir = join(process.env.RUNTIME_DIRECTORY ?? this.opts.stateDir, 'firewall');
        await mkdir(workDir, { recursive: true, mode: 0o700 });
        this.#firewall = new Firewall({ log, workDir });
        await this.#firewall.start();
      },
      stop: async () => {
        // The ruleset stays in the kernel when onionboxd stops: the box stays closed (fail-closed).
        await this.#firewall?.stop();
        this.#firewall = null;
      },
    };
  }

  /** The relay set, filled before the first apply: a fresh box must be able to reach its directories. */
  #relaySeedService(): Service {
    const log = this.opts.log.child({ component: 'relays' });
    return {
      name: 'relay-seed',
      start: async () => {
        this.#relaySet = new RelaySet({
          torrcLines: this.opts.testNetwork?.torrc ?? [],
          dataDir: this.#platform.tor.dataDir,
        });
        await this.#relaySet.seed(this.config.get().tor);
        log.info(
          this.#relaySet.sizes(),
          'relay set seeded (authorities, fallbacks, bridges, cached consensus)',
        );
      },
      stop: async () => undefined,
    };
  }

  /** Puts a new relay set in the kernel (the box's current mode keeps its rules). */
  async #pushRelays(relays: RelayEndpoint[], why: string): Promise<void> {
    const fw = this.#firewall;
    if (!fw || fw.current() === null) return; // the first apply will carry them
    await fw.refreshRelays(relays);
    this.opts.log.debug({ relays: relays.length, why }, 'relay set refreshed');
  }

  /** Creates the tor supervisor; tor starts in a later phase. */
  #torSetupService(): Service {
    const log = this.opts.log.child({ component: 'tor' });
    return {
      name: 'tor-supervisor',
      start: async () => {
        const cfg = this.config.get();
        const torDir = join(this.opts.stateDir, 'tor');
        await mkdir(torDir, { recursive: true, mode: 0o711 });
        // tor switches to debian-tor before it opens its data directory and re-reads its torrc as that
        // user on reload: the directories on the way must be traversable (not listable). Every file the
        // box keeps in them is 0600 (config, secrets) or tor's own.
        await chmod(this.opts.stateDir, 0o711);
        await chmod(torDir, 0o711);
        const runtime: TorRuntime = {
          dataDir: this.#platform.tor.dataDir,
          control: { host: '127.0.0.1', port: TOR_PORTS.control },
          socks: { host: '127.0.0.1', port: TOR_PORTS.socks },
          lanAddress: cfg.network.lanAddress,
          transPort: TOR_PORTS.trans,
          dnsPort: TOR_PORTS.dns,
          user: this.#platform.tor.user,
          owningPid: process.pid,
          extraLines: this.opts.testNetwork?.torrc ?? [],
        };
        await mkdir(runtime.dataDir, { recursive: true, mode: 0o700 });
        this.#tor = new TorSupervisor({
          bus: this.bus,
          log,
          settings: cfg.tor,
          torrcPath: join(torDir, 'torrc'),
          runtime,
          // new bridges must be in the relay set before tor dials them (else they roll back)
          beforeReload: async (settings: TorConfig) => {
            const set = this.#relaySet;
            if (set) await this.#pushRelays(set.withSettings(settings), 'bridges changed');
          },
        });
        registerTorIpc(this.ipc, this.#tor);
        this.ipc.register('tor.check', () => this.#torCheck());
      },
      stop: async () => undefined,
    };
  }

  /** "Is this Tor?" through tor's SOCKS port; the URL is fixed by the firmware (the test network's, when one is set), never input. */
  async #torCheck(): Promise<{ isTor: boolean; ip: string; url: string }> {
    const url = this.opts.testNetwork?.checkUrl ?? DEFAULT_CHECK_URL;
    const result = await new TorCheck({ socks: { host: '127.0.0.1', port: TOR_PORTS.socks }, url }).run();
    return { ...result, url };
  }

  /** The leak self-test, on the box's real firewall, sysctls and WAN (firmware/leak-test/). */
  #leakTester(fw: Firewall): LeakTester {
    return new LeakTester({
      firewallMode: () => fw.current(),
      audit: () => fw.audit(),
      routing: () => this.#box?.status().state === 'routing',
      torCheck: () => this.#torCheck(),
      wanInterface: () => this.config.get().network.wanInterface,
      dhcpServers: () => this.#dhcpServers,
      wanAddresses: () => {
        const addrs = networkInterfaces()[this.config.get().network.wanInterface] ?? [];
        return addrs.filter((a) => a.family === 'IPv4').map((a) => a.address);
      },
    });
  }

  #boxService(): Service {
    const log = this.opts.log.child({ component: 'box' });
    let clock: ClockService | null = null;
    return {
      name: 'box',
      start: async () => {
        const fw = this.#firewall;
        const tor = this.#tor;
        if (!fw || !tor) throw new Error('box started before firewall and tor');
        const { simulate, sim, board, setSystemTime } = this.#platform;
        clock = new ClockService({
          file: join(this.opts.stateDir, 'clock.json'),
          bus: this.bus,
          log: this.opts.log.child({ component: 'clock' }),
          setSystemTime,
        });
        await clock.start();
        const clockRef = clock;
        let torWasRunning = false;
        const net = this.config.get().network;
        this.#lanDhcp = createLanDhcp({
          settings: {
            interface: net.lanInterface,
            lanAddr: `${net.lanAddress}/${net.lanPrefix}`,
            leaseFile: join(this.opts.stateDir, 'dnsmasq.leases'),
          },
          confPath: join(this.opts.stateDir, 'dnsmasq.conf'),
          log: this.opts.log.child({ component: 'lan-dhcp' }),
        });
        const apLog = this.opts.log.child({ component: 'access-point' });
        const network = createBoxNetwork({
          wan: net.upstreamWifi ? new NetworkManagerWan({ interface: net.upstreamWifi.interface }) : null,
          lan: this.#lanDhcp,
          sharedRadio: false,
          applyAccessPoint: async (ap) => {
            const settings = { ...ap, interface: this.#netNow().lanInterface };
            if (this.#accessPoint) await this.#accessPoint.update(settings);
            else {
              this.#accessPoint = createAccessPoint({
                settings,
                confPath: join(this.opts.stateDir, 'hostapd.conf'),
                log: apLog,
              });
              await this.#accessPoint.start();
            }
          },
        });
        this.#box = new BoxController({
          network,
          networkChange: this.#networkChangeSystem(),
          config: this.config,
          bus: this.bus,
          board,
          tor,
          firewall: firewallForBox(fw, () => this.#firewallParams()),
          log,
          simulate,
          sim,
          clock: { set: (ms) => clockRef.setFromOwner(ms) },
          // nft refusing every closed ruleset: stop tor so nothing the old ruleset allows can flow
          leakTest: this.#leakTester(fw),
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
        await this.#box.start();
        // The first (closed) mode is in the kernel before tor runs: after a crash it may still hold `routing`.
        await this.#box.settled();
        registerBoardIpc(this.ipc, this.#box);
        const box = this.#box;
        this.ipc.register('box.leakTest', () => box.runLeakTest());
        // `onionbox net set`: the same path as the page's forms (firmware/net/change.ts)
        this.ipc.register('net.change', async (args) => box.changeNetwork(networkChangeArgs(args)));
      },
      stop: async () => {
        await this.#box?.stop();
        this.#box = null;
        await clock?.stop();
        // A clean stop ends in lockdown (a crash leaves the last ruleset, which never forwards; the unit's
        // ExecStopPost loads the boot lockdown then).
        await this.#firewall?.apply('lockdown', this.#firewallParams()).catch((err: unknown) => {
          log.error({ err: describeError(err) }, 'lockdown at stop failed; the last ruleset stays');
        });
      },
    };
  }

  /** The WAN's DHCP server (NetworkManager's lease): the firewall lets the DHCP client renew with it. */
  #wanLeaseService(): Service {
    return {
      name: 'wan-lease',
      start: () => this.#watchWan(this.#netNow().wanInterface),
      stop: async () => {
        await this.#wanWatcher?.stop();
        this.#wanWatcher = null;
      },
    };
  }

  /** Follows the lease of `wanIf` (replacing the watcher of the previous WAN interface, if any). */
  async #watchWan(wanIf: string): Promise<void> {
    await this.#wanWatcher?.stop();
    this.#dhcpServers = [];
    const watcher = new WanLeaseWatcher({
      wanIf,
      log: this.opts.log.child({ component: 'wan' }),
      onChange: (lease) => this.#wanLeaseChanged(lease),
    });
    this.#wanWatcher = watcher;
    await watcher.start();
  }

  /** Every new lease: the DHCP exception names its server, and its subnet may not overlap the LAN. */
  async #wanLeaseChanged(lease: WanLease): Promise<void> {
    this.#dhcpServers = lease.serverId ? [lease.serverId] : [];
    this.#box?.wanLease(leaseCidr(lease));
    await this.#box?.reapply();
  }

  /** The system steps of a WAN/LAN change (firmware/net/change.ts); the box runs the state machine's. */
  #networkChangeSystem(): NetworkChangeSystem {
    const log = this.opts.log.child({ component: 'net-change' });
    return {
      current: () => this.#netNow(),
      firewall: async (step) => {
        // #firewallParams() renders from this from now on; the box re-applies its (closed) mode
        this.#net = { ...step.network };
      },
      'wan-watch': (step) => this.#watchWan(step.wanInterface),
      'lan-address': async (step) => {
        const p = step.previous;
        await setLanAddress(step.lanInterface, step.address, step.prefix);
        if (p.lanInterface !== step.lanInterface || p.address !== step.address || p.prefix !== step.prefix) {
          await removeLanAddress(p.lanInterface, p.address, p.prefix);
        }
      },
      dhcp: async (step) => {
        await this.#lanDhcp?.update({
          interface: step.lanInterface,
          lanAddr: `${step.lanAddress}/${step.lanPrefix}`,
          leaseFile: join(this.opts.stateDir, 'dnsmasq.leases'),
        });
      },
      'access-point': async (step) => {
        const ap = this.config.get().network.accessPoint;
        if (ap && this.#accessPoint) await this.#accessPoint.update({ ...ap, interface: step.lanInterface });
      },
      'tor-listen': async (step) => {
        this.#torLanAddress = step.lanAddress;
      },
      'web-listen': async (step) => {
        if (this.opts.listenHost !== undefined) return; // the page was told where to listen
        await this.#web?.close();
        await this.#listenWeb(step.lanAddress);
      },
      reconnect: async () => {
        const tor = this.#tor;
        if (!tor) throw new Error('tor is not set up');
        const ready = await tor.networkChanged({ lanAddress: this.#torLanAddress });
        if (ready !== true) throw new Error(`tor is not ready over the new network: ${ready}`);
      },
      commit: async (wanted) => {
        await this.config.update((c) => ({
          ...c,
          network: {
            ...c.network,
            wanInterface: wanted.wanInterface,
            lanInterface: wanted.lanInterface,
            lanAddress: wanted.lanAddress,
            lanPrefix: wanted.lanPrefix,
          },
        }));
        log.info({ ...wanted }, 'network change stored');
      },
    };
  }

  #lanService(): Service {
    let dhcp: LanDhcp | null = null;
    return {
      name: 'lan',
      start: async () => {
        const net = this.config.get().network;
        await setLanAddress(net.lanInterface, net.lanAddress, net.lanPrefix);
        dhcp = this.#lanDhcp;
        await dhcp?.start();
        // The access point, when the owner has set one up (a box on Ethernet only has none).
        if (net.accessPoint) {
          this.#accessPoint = createAccessPoint({
            settings: { ...net.accessPoint, interface: net.lanInterface },
            confPath: join(this.opts.stateDir, 'hostapd.conf'),
            log: this.opts.log.child({ component: 'access-point' }),
          });
          await this.#accessPoint.start().catch((err: unknown) => {
            this.opts.log.error({ err: describeError(err) }, 'the access point did not start');
          });
        }
      },
      stop: async () => {
        await this.#accessPoint?.stop();
        this.#accessPoint = null;
        await dhcp?.stop();
        dhcp = null;
      },
    };
  }

  /** Starts tor in the background; the state machine opens the LAN only when tor says it is ready. */
  #torStartService(): Service {
    const log = this.opts.log.child({ component: 'tor' });
    let starting: Promise<void> | null = null;
    return {
      name: 'tor-start',
      start: async () => {
        const tor = this.#tor;
        if (!tor) throw new Error('tor started before setup');
        starting = tor.start().catch((err: unknown) => {
          log.error({ err: describeError(err) }, 'tor did not start; the LAN stays closed');
        });
      },
      stop: async () => {
        await starting;
        await this.#tor?.stop();
      },
    };
  }

  /** Keeps the relay set in step with tor's consensus (each new one, on readiness, and every 10 min). */
  #relayFollowService(): Service {
    const log = this.opts.log.child({ component: 'relays' });
    let timer: NodeJS.Timeout | null = null;
    const refresh = async (why: string) => {
      const tor = this.#tor;
      const set = this.#relaySet;
      if (!tor || !set || tor.control === null) return;
      try {
        const relays = set.withConsensus(await tor.relayEndpoints());
        await this.#pushRelays(relays, why);
      } catch (err) {
        log.warn({ err: describeError(err) }, 'relay set not refreshed');
      }
    };
    return {
      name: 'relay-follow',
      start: async () => {
        let wasReady = false;
        this.bus.on('tor:status', 'relays', (s) => {
          if (s.ready && !wasReady) void refresh('tor ready');
          wasReady = s.ready;
        });
        this.bus.on('tor:consensus', 'relays', () => void refresh('new consensus'));
        timer = setInterval(() => void refresh('timer'), RELAY_REFRESH_MS);
        timer.unref();
      },
      stop: async () => {
        this.bus.removeOwner('relays');
        if (timer) clearInterval(timer);
        timer = null;
      },
    };
  }

  #webService(): Service {
    return {
      name: 'web',
      start: () => this.#listenWeb(this.opts.listenHost ?? this.#netNow().lanAddress),
      stop: async () => {
        await this.#web?.close();
        this.#web = null;
      },
    };
  }

  async #listenWeb(host: string): Promise<void> {
    const box = this.#box;
    if (!box) throw new Error('web started before box');
    const port = this.opts.listenPort ?? this.config.get().web.port;
    this.#web = buildWebApp({ log: this.opts.log, box, simulate: this.opts.simulate });
    await this.#web.listen({ host, port });
    const addr = this.#web.server.address();
    const actualPort = addr && typeof addr === 'object' ? addr.port : port;
    this.#address = `http://${host}${actualPort === 80 ? '' : `:${actualPort}`}/`;
  }
}
