/**
 * onionboxd's composition: a list of phases, each a service with start()/stop(). Start runs them in
 * order; stop runs them in reverse and never throws, so SIGTERM always ends cleanly.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildWebApp } from '../web/app.js';
import { ConfigStore } from './config/store.js';
import { describeError, obxError } from './errors.js';
import { EventBus } from './events.js';
import { IpcServer, socketPath } from './ipc.js';
import type { Service } from './service.js';

export interface DaemonOptions {
  simulate: boolean;
  stateDir: string;
  listenHost?: string | undefined;
  listenPort?: number | undefined;
  log: Logger;
}

export class Daemon {
  readonly config: ConfigStore;
  readonly bus: EventBus;
  readonly ipc: IpcServer;
  readonly startedAt = Date.now();
  #configSource = '';
  #services: Service[] = [];
  #started: Service[] = [];
  #web: FastifyInstance | null = null;
  #address = '';

  constructor(private readonly opts: DaemonOptions) {
    this.config = new ConfigStore(opts.stateDir, opts.log.child({ component: 'config' }));
    this.bus = new EventBus(opts.log.child({ component: 'bus' }));
    this.ipc = new IpcServer(socketPath(opts.stateDir));
    this.ipc.register('status', async () => this.status());
  }

  /** What `onionbox status` prints; subsystems add their parts as they are wired in. */
  status(): Record<string, unknown> {
    const cfg = this.config.get();
    return {
      simulate: this.opts.simulate,
      address: this.#address,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      configSource: this.#configSource,
      claimed: cfg.web.passwordHash !== null,
    };
  }

  /** Where the web page answers, once started. */
  get address(): string {
    return this.#address;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    const loaded = await this.config.load();
    this.#configSource = loaded.source;
    log.info({ source: loaded.source, path: this.config.path }, 'configuration loaded');
    this.#services = [
      this.#webService(),
      { name: 'ipc', start: () => this.ipc.start(), stop: () => this.ipc.stop() },
    ];
    try {
      for (const service of this.#services) {
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

  #webService(): Service {
    return {
      name: 'web',
      start: async () => {
        const cfg = this.config.get();
        const host = this.opts.listenHost ?? (this.opts.simulate ? '127.0.0.1' : cfg.network.lanAddress);
        const port = this.opts.listenPort ?? (this.opts.simulate ? 8080 : cfg.web.port);
        this.#web = buildWebApp({ log: this.opts.log, config: this.config, simulate: this.opts.simulate });
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
