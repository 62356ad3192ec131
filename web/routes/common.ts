/** What the route plugins share: the context object, page rendering, the owner guard, flash messages. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PageApi, PageUpdatesApi } from '../../firmware/box/api.js';
import { type ObxError, obxError, RETRY_AFTER } from '../../firmware/errors.js';
import type { WebLimits } from '../app.js';
import type { SessionStore } from '../lib/sessions.js';
import type { FailureThrottle } from '../lib/throttle.js';

/**
 * The updater as the page sees it: over the page socket in the page process (web/lib/box-client.ts
 * `updates`), or firmware/phases/update.ts Updates in-process (tests).
 */
export type UpdatePageTarget = PageUpdatesApi;

export interface WebContext {
  box: PageApi;
  /** The updater; absent in tests and builds that have none (the page then has no update section). */
  updates?: UpdatePageTarget | undefined;
  simulate: boolean;
  sessions: SessionStore;
  loginThrottle: FailureThrottle;
  claimThrottle: FailureThrottle;
  now: () => number;
  /** Open Server-Sent Event streams, ended when the app closes. */
  streams: Set<() => void>;
  limits: Readonly<WebLimits>;
}

export interface PluginOpts {
  ctx: WebContext;
}

export function isClaimed(ctx: WebContext): boolean {
  return ctx.box.isClaimed();
}

/** Renders a page with the layout's common fields (CSRF token, navigation state). */
export async function page(
  reply: FastifyReply,
  ctx: WebContext,
  view: string,
  data: Record<string, unknown>,
  statusCode = 200,
): Promise<string> {
  const base = {
    csrf: reply.generateCsrf(),
    loggedIn: reply.request.ownerSession !== null,
    claimed: isClaimed(ctx),
    simulate: ctx.simulate,
    hasUpdates: ctx.updates !== undefined,
    refresh: false,
    live: false,
    flash: null,
    errors: {},
  };
  reply.code(statusCode).type('text/html; charset=utf-8');
  return reply.viewAsync(view, { ...base, ...data });
}

/** Error page: no forms on it (it must render even before cookies are parsed), only the way back. */
export async function renderError(reply: FastifyReply, ctx: WebContext, err: ObxError): Promise<string> {
  // Every 429 says when to come back: the wait the refusal carries (the box-wide code back-off, the claim
  // cap), else a minute.
  if (err.statusCode === 429 && !reply.hasHeader('Retry-After')) {
    const wait = err.details[RETRY_AFTER];
    reply.header('Retry-After', wait !== undefined && /^[0-9]{1,6}$/.test(wait) ? wait : '60');
  }
  reply.code(err.statusCode).type('text/html; charset=utf-8');
  return reply.viewAsync('error', {
    title: 'Onionbox',
    csrf: '',
    loggedIn: false,
    claimed: isClaimed(ctx),
    simulate: ctx.simulate,
    hasUpdates: false,
    refresh: false,
    live: false,
    flash: null,
    code: err.code,
    message: err.message,
    statusCode: err.statusCode,
  });
}

/** onRequest guard for the owner's pages: GETs are sent to claim or login, anything else refused. */
export function requireOwner(ctx: WebContext) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!isClaimed(ctx)) {
      if (req.method === 'GET') return reply.redirect('/claim', 303);
      throw obxError('WEB_NOT_CLAIMED');
    }
    if (req.ownerSession === null) {
      if (req.method === 'GET') return reply.redirect('/login', 303);
      throw obxError('WEB_AUTH_REQUIRED');
    }
  };
}

const DONE: Record<string, string> = {
  claimed:
    'The box is yours. Keep the password somewhere safe: there is no default and no recovery by e-mail.',
  newnym: 'Done: tor will use new circuits (a new identity) for new connections.',
  'kill-on': 'Kill switch on: every device is cut off.',
  'kill-off': 'Kill switch from this page is off.',
  'tor-applied': 'Tor settings saved. Tor is reconnecting with them; the progress shows below.',
  clock: 'Clock set.',
  password: 'Password changed. Other browsers were logged out.',
  logout: 'Logged out.',
  'wifi-joined':
    'Joined. The box now reaches the internet through this Wi-Fi network; Tor reconnects over it.',
  cable:
    'The box now reaches the internet through its cable, and has forgotten the Wi-Fi network. Tor is connected over the cable.',
  'ap-saved': 'Access point settings saved. Devices reconnect with the new name or passphrase.',
  'update-checking': 'Checking for an update through Tor. This page shows the result in a moment.',
  'update-installing': 'The update is being fetched and installed; the box restarts when it is written.',
  'update-policy': 'Update policy saved.',
  'assist-consent': 'The box now tries its own bridges. This page says which one, and whether it connects.',
  'blocked-here': 'Saved. The box starts over with what you chose.',
};

/** Fixed messages after a redirect, chosen by key: nothing from the URL is ever echoed. */
export function flashFor(query: unknown): string | null {
  const key = (query as { done?: unknown } | null)?.done;
  return typeof key === 'string' && Object.hasOwn(DONE, key) ? (DONE[key] ?? null) : null;
}

export const SESSION_COOKIE_OPTS = {
  path: '/',
  httpOnly: true,
  sameSite: 'strict',
  signed: true,
} as const;
