/**
 * onionboxd's composition: a list of phases, each a service with start()/stop(). Start runs them in
 * order; stop runs them in reverse and never throws, so SIGTERM always ends cleanly.
 *
 * Phases, in the order that keeps the box closed:
 *   1. config      load the one JSON document (or fall back to the last good copy)
 *   2. firewall    open the nft session; in the simulator, inside the simulated box's own namespace
 *   3. tor         supervisor (and, in the simulator, the private Tor network it joins), started in the
 *                  background: the state machine opens the LAN only when tor says it is ready
 *   4. box         board + state machine: reads the kill switch, applies the first (closed) mode,
 *                  replacing the boot lockdown table in the same transaction. Stops before tor, so
 *                  tor's going away at shutdown is not acted on with a half-closed firewall
 *   5. relays      keeps the firewall's relay set in step with tor's consensus
 *   6. web, ipc    the page and the CLI's control socket
 */
import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Board } from '../board/types.js';
import type { Privnet } from '../scripts/privnet/index.js';
import { buildWebApp } from '../web/app.js';
import { BoxController, registerBoardIpc } from './box.js';
import { ConfigStore } from './config/store.js';
import { describeError, obxError } from './errors.js';
import { EventBus } from './events.js';
import { Firewall, modeOnly } from './firewall/apply.js';
import { type FirewallParams, isHostAddress, type RelayEndpoint } from './firewall/params.js';
import { IpcServer, socketPath } from './ipc.js';
import type { Service } from './service.js';
import { SimNetns } from './sim/netns.js';
import { DEFAULT_CHECK_URL, TorCheck } from './tor/check.js';
import { ClockService, setSystemClock } from './tor/clock.js';
import { registerTorIpc } from './tor/ipc.js';
import { TorSupervisor } from './tor/supervisor.js';
import type { TorRuntime } from './tor/torrc.js';

export interface DaemonOptions {
  simulate: boolean;
  stateDir: string;
  listenHost?: string | undefined;
  listenPort?: number | undefined;
  log: Logger;
}

/** Production ports (DESIGN.md §3). The simulator picks free loopback ports instead. */
export const TOR_PORTS = Object.freeze({ socks: 9050, control: 9051, trans: 9040, dns: 5353 });
const RELAY_REFRESH_MS = 10 * 60_000;

function uidOf(user: string): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('id', ['-u', user], { timeout: 5000 }, (err, stdout) => {
      const uid = Number(stdout.trim());
      if (err || !Number.isInteger(uid) || uid <= 0) reject(new Error(`no uid for user ${user}`));
      else resolve(uid);
    });
  });
}

/** Only routable host addresses may enter the firewall's WAN allowlist. */
function routable(relays: RelayEndpoint[]): RelayEndpoint[] {
  return relays.filter((r) => isHostAddress(r.address));
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
  #board: Board | null = null;
  #netns: SimNetns | null = null;
  #privnet: Privnet | null = null;
  #relays: RelayEndpoint[] = [];
  #relayTimer: NodeJS.Timeout | null = null;
  #torUid = 0;
  /** Read by the supervisor at each launch; the simulator adds the private network's lines to it. */
  #torRuntime: TorRuntime | null = null;
  #ports: { socks: number; control: number; trans: number; dns: number } = { ...TOR_PORTS };

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

  /** The simulated box's namespace (simulator only): where its firewall lives. */
  get netns(): string | null {
    return this.#netns?.name ?? null;
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
      killSwitch: box
        ? `hardware ${box.killSwitch.hardware ? 'on' : 'off'}, web ${box.killSwitch.software ? 'on' : 'off'}`
        : '',
      relays: this.#relays.length,
      ...(this.#netns ? { netns: this.#netns.name } : {}),
    };
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    const loaded = await this.config.load();
    this.#configSource = loaded.source;
    log.info({ source: loaded.source, path: this.config.path }, 'configuration loaded');
    const phases: Service[] = [
      this.#firewallService(),
      this.#torService(),
      this.#torStartService(),
      this.#boxService(),
      this.#relayService(),
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

  #firewallParams(): FirewallParams {
    const net = this.config.get().network;
    return {
      lanIf: net.lanInterface,
      wanIf: net.wanInterface,
      lanAddr: net.lanAddress,
      lanPrefix: net.lanPrefix,
      torUid: this.#torUid,
      transPort: this.#ports.trans,
      dnsPort: this.#ports.dns,
      webPort: this.config.get().web.port,
      relays: this.#relays,
    };
  }

  #firewallService(): Service {
    const log = this.opts.log.child({ component: 'firewall' });
    return {
      name: 'firewall',
      start: async () => {
        // tor's uid: the only one the WAN rules let out (debian-tor on the box and in the simulator's netns)
        this.#torUid = await uidOf('debian-tor');
        if (this.opts.simulate) {
          if (process.getuid?.() !== 0) {
            throw new Error(
              'the simulator needs root: it loads the real firewall into its own network namespace',
            );
          }
          this.#netns = new SimNetns(this.config.get().network);
          await this.#netns.start();
          log.info(
            { netns: this.#netns.name },
            'simulated box namespace created (the host firewall is untouched)',
          );
        }
        const workDir = join(this.opts.stateDir, 'firewall');
        await mkdir(workDir, { recursive: true, mode: 0o700 });
        this.#firewall = new Firewall({ netns: this.#netns?.name, log, workDir });
        await this.#firewall.start();
      },
      stop: async () => {
        // The ruleset stays in the kernel when onionboxd stops: the box stays closed (fail-closed).
        await this.#firewall?.stop();
        this.#firewall = null;
        await this.#netns?.stop();
        this.#netns = null;
      },
    };
  }

  /** Creates the tor supervisor (and the simulator's private Tor network); tor starts in a later phase. */
  #torService(): Service {
    const log = this.opts.log.child({ component: 'tor' });
    return {
      name: 'tor-setup',
      start: async () => {
        const cfg = this.config.get();
        const torDir = join(this.opts.stateDir, 'tor');
        await mkdir(torDir, { recursive: true, mode: 0o700 });
        let runtime: TorRuntime;
        if (this.opts.simulate) {
          const { freePorts } = await import('../scripts/privnet/index.js');
          const [socks, control, trans, dns] = await freePorts(4);
          this.#ports = { socks: socks ?? 0, control: control ?? 0, trans: trans ?? 0, dns: dns ?? 0 };
          runtime = {
            dataDir: join(torDir, 'data'),
            control: { host: '127.0.0.1', port: this.#ports.control },
            socks: { host: '127.0.0.1', port: this.#ports.socks },
            lanAddress: '127.0.0.1',
            transPort: this.#ports.trans,
            dnsPort: this.#ports.dns,
            owningPid: process.pid,
            // the private network's check stand-in is addressed by IP, which SafeSocks would refuse
            safeSocks: false,
            extraLines: [], // the private network's lines are added when it is up (phase tor)
          };
        } else {
          runtime = {
            dataDir: '/var/lib/tor',
            control: { host: '127.0.0.1', port: TOR_PORTS.control },
            socks: { host: '127.0.0.1', port: TOR_PORTS.socks },
            lanAddress: cfg.network.lanAddress,
            transPort: TOR_PORTS.trans,
            dnsPort: TOR_PORTS.dns,
            user: 'debian-tor',
            owningPid: process.pid,
          };
        }
        await mkdir(runtime.dataDir, { recursive: true, mode: 0o700 });
        this.#torRuntime = runtime;
        this.#tor = new TorSupervisor({
          bus: this.bus,
          log,
          settings: cfg.tor,
          torrcPath: join(torDir, 'torrc'),
          runtime,
        });
        registerTorIpc(this.ipc, this.#tor);
        this.ipc.register('tor.check', async () => {
          // The URL is fixed by the firmware (the private network's stand-in in the simulator), never input.
          const url = this.#privnet?.http
            ? `${this.#privnet.http.url.replace(/\/$/, '')}/api/ip`
            : DEFAULT_CHECK_URL;
          const result = await new TorCheck({
            socks: { host: '127.0.0.1', port: this.#ports.socks },
            url,
          }).run();
          return { ...result, url };
        });
      },
      stop: async () => undefined,
    };
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
        const simulate = this.opts.simulate;
        let sim: BoxController['sim'];
        if (simulate) {
          const { SimBoard } = await import('../board/sim/board.js');
          const board = new SimBoard();
          sim = board.controls();
          this.#board = board;
        } else {
          const { GpioBoard } = await import('../board/gpio/board.js');
          this.#board = new GpioBoard({
            config: this.config.get().board,
            log: this.opts.log.child({ component: 'board' }),
          });
        }
        // The simulator's clock is the host's: it records the owner's time but never sets the host clock.
        let simOffsetMs = 0;
        clock = new ClockService({
          file: join(this.opts.stateDir, 'clock.json'),
          bus: this.bus,
          log: this.opts.log.child({ component: 'clock' }),
          setSystemTime: simulate
            ? async (ms) => {
                simOffsetMs = ms - Date.now();
                log.info(
                  { offsetMs: simOffsetMs },
                  'simulator: clock offset recorded (host clock untouched)',
                );
              }
            : setSystemClock,
        });
        await clock.start();
        const clockRef = clock;
        let torWasRunning = false;
        this.#box = new BoxController({
          config: this.config,
          bus: this.bus,
          board: this.#board,
          tor,
          firewall: modeOnly(fw, () => this.#firewallParams()),
          log,
          simulate,
          sim,
          clock: { set: (ms) => clockRef.setFromOwner(ms) },
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
        await this.#box.start();
        registerBoardIpc(this.ipc, this.#box);
      },
      stop: async () => {
        await this.#box?.stop();
        this.#box = null;
        await clock?.stop();
      },
    };
  }

  /** Starts tor. In the simulator, first the private Tor network it joins (about 20 s). */
  #torStartService(): Service {
    const log = this.opts.log.child({ component: 'tor' });
    let starting: Promise<void> | null = null;
    return {
      name: 'tor',
      start: async () => {
        const tor = this.#tor;
        if (!tor) throw new Error('tor started before setup');
        starting = (async () => {
          if (this.opts.simulate) {
            const { startPrivnet } = await import('../scripts/privnet/index.js');
            const dir = join(this.opts.stateDir, 'privnet');
            await rm(dir, { recursive: true, force: true });
            await mkdir(dir, { recursive: true, mode: 0o700 });
            log.info('simulator: starting the private Tor network');
            this.#privnet = await startPrivnet({ dir, httpServer: true });
            log.info(
              { startupMs: this.#privnet.startupMs, http: this.#privnet.http?.url },
              'private Tor network up',
            );
            if (this.#torRuntime) this.#torRuntime.extraLines = this.#privnet.clientTorrcLines;
          }
          await tor.start();
        })().catch((err: unknown) => {
          log.error({ err: describeError(err) }, 'tor did not start; the LAN stays closed');
        });
      },
      stop: async () => {
        await starting;
        await this.#tor?.stop();
        await this.#privnet?.stop();
        this.#privnet = null;
      },
    };
  }

  /** Keeps the firewall's relay set in step with tor's view of the network. */
  #relayService(): Service {
    const log = this.opts.log.child({ component: 'relays' });
    let unsubscribe: (() => void) | null = null;
    const refresh = async () => {
      const tor = this.#tor;
      const fw = this.#firewall;
      if (!tor || !fw) return;
      try {
        const all = await tor.relayEndpoints();
        // Only routable host addresses may enter the WAN allowlist. In today's simulator tor and the
        // private network share the host's loopback, so its relays are left out here (the simulated
        // box's namespace carries no tor traffic until the whole-box simulator moves tor into it).
        const relays = routable(all);
        if (relays.length < all.length) {
          log.info(
            { dropped: all.length - relays.length },
            'relays on non-routable addresses left out of the set',
          );
        }
        if (relays.length === 0) return;
        this.#relays = relays;
        if (fw.current() !== null) await fw.refreshRelays(relays);
        log.debug({ relays: relays.length }, 'relay set refreshed');
      } catch (err) {
        log.warn({ err: describeError(err) }, 'relay set not refreshed');
      }
    };
    return {
      name: 'relays',
      start: async () => {
        // Before tor has a consensus, the relay set is the authorities/fallbacks it starts from.
        if (this.#privnet) this.#relays = routable(this.#privnet.relayEndpoints());
        let wasReady = false;
        unsubscribe = this.bus.on('tor:status', 'relays', (s) => {
          if (s.ready && !wasReady) void refresh();
          wasReady = s.ready;
        });
        this.#relayTimer = setInterval(() => void refresh(), RELAY_REFRESH_MS);
        this.#relayTimer.unref();
      },
      stop: async () => {
        unsubscribe?.();
        if (this.#relayTimer) clearInterval(this.#relayTimer);
        this.#relayTimer = null;
      },
    };
  }

  #webService(): Service {
    return {
      name: 'web',
      start: async () => {
        const cfg = this.config.get();
        const box = this.#box;
        if (!box) throw new Error('web started before box');
        const host = this.opts.listenHost ?? (this.opts.simulate ? '127.0.0.1' : cfg.network.lanAddress);
        const port = this.opts.listenPort ?? (this.opts.simulate ? 8080 : cfg.web.port);
        this.#web = buildWebApp({ log: this.opts.log, box, simulate: this.opts.simulate });
        await this.#web.listen({ host, port });
        const addr = this.#web.server.address();
        const actualPort = addr && typeof addr === 'object' ? addr.port : port;
        this.#address = `http://${host}:${actualPort}/`;
      },
      stop: async () => {
        await this.#web?.close();
        this.#web = null;
      },
    };
  }
}
