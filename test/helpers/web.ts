/**
 * Helpers for web tests: the real box (TestBox: BoxController on a SimBoard, tor and the firewall faked
 * at their interfaces) plus the real web app, pino logs captured in memory (to grep for
 * secrets), and a tiny cookie jar / form poster on top of app.inject().
 */
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import type { Test } from 'tap';
import type { PageApi } from '../../firmware/box/api.js';
import { IpcServer, webSocketPath } from '../../firmware/control/socket.js';
import { registerWebCommands } from '../../firmware/control/web-commands.js';
import { REDACT_PATHS } from '../../firmware/log.js';
import { buildWebApp, pageDeps, type UpdatePageTarget, type WebLimits } from '../../web/app.js';
import { BoxClient } from '../../web/lib/box-client.js';
import { TestBox, type TestBoxOptions } from './test-box.js';
import { tmpDir } from './tmp.js';

export const HOST = '10.42.0.1';
export const GOOD_PASSWORD = 'violet tractor umbrella 42';
/** A bridge line tor's grammar accepts (documentation address). */
export const BRIDGE =
  'obfs4 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0';
export const BRIDGE_FAILING = '192.0.2.99:443 0123456789ABCDEF0123456789ABCDEF01234567';

export interface WebHarness {
  app: FastifyInstance;
  box: TestBox;
  /** The box as the page sees it: the controller, or the page socket's client (`ipc`). */
  api: PageApi;
  logs: () => string;
  dir: string;
}

export async function webHarness(
  t: Test,
  opts: TestBoxOptions & {
    now?: () => number;
    limits?: Partial<WebLimits>;
    updates?: UpdatePageTarget;
    /**
     * The page reaches the box (and `updates`) over the page socket, built as the page process builds it
     * (web/main.ts, pageDeps), instead of calling the controller in-process. OBX_WEB_OVER_IPC=1 turns it
     * on for every web test.
     */
    ipc?: boolean;
  } = {},
): Promise<WebHarness> {
  const dir = tmpDir(t, 'onionbox-web-');
  const box = await TestBox.create(dir, opts);
  t.teardown(() => box.stop());
  const client =
    (opts.ipc ?? process.env.OBX_WEB_OVER_IPC === '1') ? await pageSocket(t, dir, box, opts.updates) : null;
  const api = client ?? box.controller;
  let logs = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs += chunk.toString();
      cb();
    },
  });
  const log = pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  const app = buildWebApp({
    log,
    now: opts.now,
    limits: opts.limits,
    ...(client
      ? pageDeps(client)
      : { box: box.controller, simulate: opts.simulate ?? true, updates: opts.updates }),
  });
  await app.ready();
  t.teardown(() => app.close());
  return { app, box, api, logs: () => logs, dir };
}

/** onionboxd's page socket for `box` (and `updates`) in `dir`, and the page's client of it (started). */
export async function pageSocket(
  t: Test,
  dir: string,
  box: TestBox,
  updates?: UpdatePageTarget,
): Promise<BoxClient> {
  const server = new IpcServer(webSocketPath(dir));
  registerWebCommands(server, box.controller, (listener) => box.config.onChange(listener), updates);
  await server.start();
  const client = new BoxClient(server.path);
  t.teardown(async () => {
    client.stop();
    await server.stop();
  });
  await client.start();
  return client;
}

/** A browser-like client: keeps cookies, reads CSRF tokens from pages, posts forms. */
export class Client {
  readonly cookies = new Map<string, string>();
  constructor(
    readonly app: FastifyInstance,
    readonly remoteAddress = '10.42.0.23',
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  #keep(res: LightMyRequestResponse): void {
    for (const c of res.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[]) {
      if (c.value === '' || (c.expires && c.expires.getTime() < Date.now())) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: 'GET',
      url,
      remoteAddress: this.remoteAddress,
      headers: { host: HOST, cookie: this.cookieHeader(), ...headers },
    });
    this.#keep(res);
    return res;
  }

  /** Posts a urlencoded form; `_csrf` is taken from `fromPage` (GET) unless given. */
  async post(
    url: string,
    form: Record<string, string>,
    fromPage?: string,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    const fields = { ...form };
    if (fromPage !== undefined && fields._csrf === undefined) {
      fields._csrf = csrfFrom((await this.get(fromPage)).body);
    }
    const res = await this.app.inject({
      method: 'POST',
      url,
      remoteAddress: this.remoteAddress,
      headers: {
        host: HOST,
        cookie: this.cookieHeader(),
        'content-type': 'application/x-www-form-urlencoded',
        ...headers,
      },
      payload: new URLSearchParams(fields).toString(),
    });
    this.#keep(res);
    return res;
  }
}

export function csrfFrom(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m?.[1]) throw new Error('no CSRF token on the page');
  return m[1];
}

/** Claims the box through the page (start a claim, button pressed) and returns the logged-in client. */
export async function claimed(h: WebHarness, password = GOOD_PASSWORD): Promise<Client> {
  const c = new Client(h.app);
  const start = await c.post('/claim/start', {}, '/claim');
  if (start.statusCode !== 303) throw new Error(`claim start failed: ${start.statusCode}`);
  h.box.pressWhenShown();
  const res = await c.post('/claim', { password, confirm: password }, '/claim');
  if (res.statusCode !== 303) throw new Error(`claim failed: ${res.statusCode} ${res.body}`);
  return c;
}
