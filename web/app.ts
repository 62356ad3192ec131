/**
 * The web page (Fastify 5): claim, login, status and settings, server-rendered with Eta (auto-escaping),
 * working without JavaScript; one shipped script adds live status over Server-Sent Events.
 *
 * Order of guards on every request: security headers (helmet, strict CSP) -> Host allowlist (DNS
 * rebinding) -> session from the signed cookie -> area guard (claimed? logged in?) -> body parse (forms
 * only, size-limited) -> CSRF token (preValidation) -> handler. Areas are encapsulated plugins:
 * routes/auth.ts, routes/status.ts, routes/settings.ts, routes/network.ts, routes/leak-test.ts,
 * routes/sim.ts.
 */
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import fastifyCookie, { Signer } from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import fastifyView from '@fastify/view';
import { Eta } from 'eta';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { PageApi } from '../firmware/box/api.js';
import { isObxError, ObxError, obxError } from '../firmware/errors.js';
import type { BoxClient } from './lib/box-client.js';
import { allowedHosts, hostAllowed } from './lib/hosts.js';
import { SessionStore } from './lib/sessions.js';
import { FailureThrottle } from './lib/throttle.js';
import { authRoutes } from './routes/auth.js';
import { renderError, type UpdatePageTarget, type WebContext } from './routes/common.js';
import { leakTestRoutes } from './routes/leak-test.js';
import { networkRoutes } from './routes/network.js';
import { settingsRoutes } from './routes/settings.js';
import { simRoutes } from './routes/sim.js';
import { statusRoutes } from './routes/status.js';
import { updateRoutes } from './routes/update.js';

export type { UpdatePageTarget } from './routes/common.js';

export interface BoxWebDeps {
  log: Logger;
  box: PageApi;
  /** The updater (the page's update section); absent: no such section. */
  updates?: UpdatePageTarget | undefined;
  simulate: boolean;
  /** Extra names the page answers to besides network.lanAddress and network.hostname (Host allowlist). */
  allowedHosts?: readonly string[] | undefined;
  /** Clock for throttles and sessions (tests). */
  now?: (() => number) | undefined;
  /** Connection limits (tests lower them); WEB_LIMITS by default. */
  limits?: Partial<WebLimits> | undefined;
}

/**
 * What one LAN client can hold: the page refuses more than this rather than let idle sockets or live
 * streams grow the daemon's memory (the firewall and the kill switch live in the same process).
 */
export interface WebLimits {
  /** Open TCP connections; further ones are closed at once by the kernel-facing server. */
  maxConnections: number;
  /**
   * Open TCP connections from one client address; further ones from it are closed at once, so one LAN
   * device cannot hold every connection the page has.
   */
  maxConnectionsPerAddress: number;
  /** A socket with no traffic for this long is closed (SSE streams send a ping every 25 s). */
  connectionTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Requests on one keep-alive connection before it is closed. */
  maxRequestsPerSocket: number;
  /** Open Server-Sent Event streams (owners only); more get 503. */
  maxStreams: number;
}

export const WEB_LIMITS: Readonly<WebLimits> = Object.freeze({
  maxConnections: 128,
  maxConnectionsPerAddress: 8,
  connectionTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 100,
  maxStreams: 16,
});

export type WebDeps = BoxWebDeps;

/**
 * What the page process (web/main.ts) builds its app from: everything from onionboxd's page socket, the
 * box, the updater (when onionboxd runs one) and the simulated board's controls (onionboxd --simulate).
 */
export function pageDeps(box: BoxClient): Pick<WebDeps, 'box' | 'updates' | 'simulate'> {
  return { box, updates: box.updates, simulate: box.sim !== undefined };
}

export const BODY_LIMIT = 64 * 1024;
export const SESSION_COOKIE = 'obx_sid';

/** Shipped files: next to this module in the source tree; dist/web/*.js finds them in ../../web/. */
export function assetDir(name: 'public' | 'views'): string {
  const here = fileURLToPath(new URL(`./${name}/`, import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL(`../../web/${name}/`, import.meta.url));
}

export function buildWebApp(deps: WebDeps): FastifyInstance {
  const limits: WebLimits = { ...WEB_LIMITS, ...(deps.limits ?? {}) };
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log.child({ component: 'web' }) as FastifyBaseLogger,
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT,
    trustProxy: false,
    forceCloseConnections: true,
    return503OnClosing: true,
    requestTimeout: 30_000,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    routerOptions: { maxParamLength: 200 },
  });
  // Beyond this the server closes new connections at once (Node's net.Server maxConnections).
  app.server.maxConnections = limits.maxConnections;
  limitPerAddress(app, limits.maxConnectionsPerAddress);
  const { box } = deps;
  const now = deps.now ?? Date.now;
  const ctx: WebContext = {
    box,
    updates: deps.updates,
    simulate: deps.simulate && box.sim !== undefined,
    sessions: new SessionStore({ now }),
    loginThrottle: new FailureThrottle({ now }),
    claimThrottle: new FailureThrottle({ now, freeFailures: 5 }),
    now,
    streams: new Set(),
    limits,
  };

  // Only HTML forms are accepted as bodies (Fastify's JSON and text parsers are removed).
  app.removeAllContentTypeParsers();
  app.register(fastifyFormbody, { bodyLimit: BODY_LIMIT });

  app.register(async (root) => {
    await root.register(fastifyHelmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      // Plain HTTP on the LAN: HSTS would lock owners out; everything else stays at helmet's strict defaults.
      strictTransportSecurity: false,
      referrerPolicy: { policy: 'no-referrer' },
    });
    root.addHook('onRequest', async (req, reply) => {
      reply.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), interest-cohort=()');
      reply.header('Cache-Control', 'no-store');
      const net = box.settings().network;
      const allowed = allowedHosts({
        lanAddress: net.lanAddress,
        hostname: net.hostname,
        simulate: deps.simulate,
        extra: deps.allowedHosts,
      });
      // Node keeps the first of repeated Host headers; a request that repeats it is refused outright.
      const hostLines = req.raw.rawHeaders.filter((_v, i) => i % 2 === 0 && /^host$/i.test(_v)).length;
      if (hostLines !== 1 || !hostAllowed(req.headers.host, allowed)) throw obxError('WEB_HOST_NOT_ALLOWED');
    });

    // Cookies are signed with the box's session key, read at each use: when the box rotates it
    // (claim-button reset), every cookie signed with the old key stops verifying at once.
    let signer: { key: string; signer: Signer } | null = null;
    const current = (): Signer => {
      const key = box.sessionKey();
      if (signer?.key !== key) signer = { key, signer: new Signer(key) };
      return signer.signer;
    };
    await root.register(fastifyCookie, {
      secret: { sign: (v: string) => current().sign(v), unsign: (v: string) => current().unsign(v) },
      hook: 'onRequest',
    });
    await root.register(fastifyCsrf, {
      sessionPlugin: '@fastify/cookie',
      cookieKey: 'obx_csrf',
      cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, signed: true },
      logLevel: 'debug',
    });
    await root.register(fastifyRateLimit, { global: false });
    await root.register(fastifyView, {
      engine: { eta: new Eta({ autoEscape: true, useWith: false, cache: true }) },
      root: assetDir('views'),
      production: true,
    });
    await root.register(fastifyStatic, {
      root: assetDir('public'),
      prefix: '/static/',
      dotfiles: 'deny',
      index: false,
      list: false,
      cacheControl: false,
      setHeaders: (res) => res.setHeader('Cache-Control', 'public, max-age=3600'),
    });

    root.addHook('onRequest', async (req) => {
      const raw = req.cookies[SESSION_COOKIE];
      const id = raw ? req.unsignCookie(raw) : null;
      const sid = id?.valid ? id.value : null;
      // An unclaimed box (fresh, or reset with the claim button) has no owner: every old session ends.
      if (!box.isClaimed()) {
        if (ctx.sessions.size > 0) ctx.sessions.clear();
        req.ownerSession = null;
        return;
      }
      req.ownerSession = sid && ctx.sessions.touch(sid) ? sid : null;
    });

    root.setErrorHandler(async (err, req, reply) => {
      const obx = toObxError(err);
      if (obx.statusCode >= 500)
        req.log.error({ code: obx.code, err: describeForLog(err) }, 'request failed');
      else req.log.info({ code: obx.code, url: req.routeOptions.url }, 'request refused');
      return renderError(reply, ctx, obx);
    });
    root.setNotFoundHandler(async (_req, reply) => renderError(reply, ctx, obxError('WEB_NOT_FOUND')));

    await root.register(authRoutes, { ctx });
    await root.register(statusRoutes, { ctx });
    await root.register(settingsRoutes, { ctx });
    await root.register(networkRoutes, { ctx });
    await root.register(leakTestRoutes, { ctx });
    if (ctx.updates) await root.register(updateRoutes, { ctx });
    if (ctx.simulate) await root.register(simRoutes, { ctx });
  });

  app.addHook('onClose', async () => {
    for (const end of ctx.streams) end();
  });
  return app;
}

/** Closes a new connection at once when its address already holds `max` open ones. */
function limitPerAddress(app: FastifyInstance, max: number): void {
  const open = new Map<string, number>();
  app.server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > max) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The owner's session id when logged in. */
    ownerSession: string | null;
  }
}

function toObxError(err: unknown): ObxError {
  if (err instanceof ObxError || isObxError(err)) return err as ObxError;
  const code = (err as { code?: unknown })?.code;
  switch (code) {
    case 'FST_CSRF_INVALID_TOKEN':
    case 'FST_CSRF_MISSING_SECRET':
      return obxError('WEB_CSRF');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return obxError('WEB_BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return obxError('WEB_BAD_CONTENT_TYPE');
    default: {
      const status = (err as { statusCode?: unknown })?.statusCode;
      if (typeof status === 'number' && status === 429) return obxError('WEB_THROTTLED');
      if (typeof status === 'number' && status >= 400 && status < 500) return obxError('WEB_FORM_INVALID');
      return obxError('INTERNAL');
    }
  }
}

function describeForLog(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : 'non-error thrown';
}
