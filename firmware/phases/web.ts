/**
 * The page (web/app.ts) on the box's LAN address: phase `web`, and the move to a new LAN address that a
 * network change's `web-listen` step asks for.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildWebApp } from '../../web/app.js';
import type { BoxController } from '../box/controller.js';
import type { ConfigStore } from '../config/store.js';
import type { Service } from '../lib/service.js';

export interface WebPageOptions {
  config: ConfigStore;
  log: Logger;
  simulate: boolean;
  /** Overrides of where the page listens (default: the LAN address and the configured port). */
  listenHost?: string | undefined;
  listenPort?: number | undefined;
}

export class WebPage {
  readonly #opts: WebPageOptions;
  #app: FastifyInstance | null = null;
  #box: BoxController | null = null;
  #address = '';

  constructor(opts: WebPageOptions) {
    this.#opts = opts;
  }

  /** Where the page answers, once started ('' before). */
  get address(): string {
    return this.#address;
  }

  /** Phase `web`: the page for `box`, on the LAN address the box runs on now. */
  phase(box: BoxController, lanAddress: () => string): Service {
    return {
      name: 'web',
      start: () => {
        this.#box = box;
        return this.#listen(this.#opts.listenHost ?? lanAddress());
      },
      stop: async () => {
        await this.#app?.close();
        this.#app = null;
      },
    };
  }

  /** After a LAN address change: the page on the new address (unless it was told where to listen). */
  async relisten(lanAddress: string): Promise<void> {
    if (this.#opts.listenHost !== undefined) return;
    await this.#app?.close();
    await this.#listen(lanAddress);
  }

  async #listen(host: string): Promise<void> {
    const box = this.#box;
    if (!box) throw new Error('web started before box');
    const port = this.#opts.listenPort ?? this.#opts.config.get().web.port;
    this.#app = buildWebApp({ log: this.#opts.log, box, simulate: this.#opts.simulate });
    await this.#app.listen({ host, port });
    const addr = this.#app.server.address();
    const actualPort = addr && typeof addr === 'object' ? addr.port : port;
    this.#address = `http://${host}${actualPort === 80 ? '' : `:${actualPort}`}/`;
  }
}
