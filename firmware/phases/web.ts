/**
 * The page (web/app.ts) on the box's LAN address: phase `web` (webPhase), and WebPage, the page's holder
 * made before the phases (a network change's `web-listen` step moves it to a new LAN address, and the
 * box is made before the page).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildWebApp, type UpdatePageTarget } from '../../web/app.js';
import type { BoxController } from '../box/controller.js';
import type { ConfigStore } from '../config/store.js';
import type { Phase } from '../lib/service.js';
import type { BoxNetwork } from '../net/network.js';

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
  /** The updater, for the page's update section (set by the daemon before the `web` phase). */
  updates: UpdatePageTarget | null = null;

  constructor(opts: WebPageOptions) {
    this.#opts = opts;
  }

  /** Where the page answers, once started ('' before). */
  get address(): string {
    return this.#address;
  }

  /** The page for `box` on `lanAddress` (unless it was told where to listen): phase `web`'s start. */
  async listen(box: BoxController, lanAddress: string): Promise<void> {
    this.#box = box;
    await this.#listen(this.#opts.listenHost ?? lanAddress);
  }

  async close(): Promise<void> {
    await this.#app?.close();
    this.#app = null;
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
    this.#app = buildWebApp({
      log: this.#opts.log,
      box,
      simulate: this.#opts.simulate,
      ...(this.updates ? { updates: this.updates } : {}),
    });
    await this.#app.listen({ host, port });
    const addr = this.#app.server.address();
    const actualPort = addr && typeof addr === 'object' ? addr.port : port;
    this.#address = `http://${host}${actualPort === 80 ? '' : `:${actualPort}`}/`;
  }
}

/** Phase `web`: the page for the box, on the LAN address the box runs on now. */
export function webPhase(deps: { web: WebPage; box: BoxController; network: BoxNetwork }): Phase<void> {
  return {
    name: 'web',
    start: () => deps.web.listen(deps.box, deps.network.current().lanAddress),
    stop: () => deps.web.close(),
  };
}
