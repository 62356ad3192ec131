/**
 * First-boot claim (physical presence + new password), login and logout. The claim, the password and
 * the presence check belong to the box (BoxApi.startClaim/claim/changePassword); this page only carries
 * the browser's claim ticket in a signed cookie and counts failures per address.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { obxError } from '../../firmware/errors.js';
import { newPasswordErrors } from '../lib/forms/auth.js';
import { field } from '../lib/forms/fields.js';
import { MIN_PASSWORD_LENGTH } from '../lib/password.js';
import type { FailureThrottle } from '../lib/throttle.js';
import {
  flashFor,
  isClaimed,
  type PluginOpts,
  page,
  SESSION_COOKIE_OPTS,
  type WebContext,
} from './common.js';

export const CLAIM_COOKIE = 'obx_claim';
const CLAIM_COOKIE_OPTS = { ...SESSION_COOKIE_OPTS, path: '/claim', maxAge: 15 * 60 } as const;

const formLimit = { rateLimit: { max: 60, timeWindow: 60_000 } };

/**
 * Counts this attempt as a failure before anything is checked (so parallel requests cannot all pass the
 * throttle while the first is still hashing); a success later forgets it. Throws OBX_ERR_WEB_THROTTLED.
 */
export function takeAttempt(throttle: FailureThrottle, req: FastifyRequest, reply: FastifyReply): void {
  const verdict = throttle.check(req.ip);
  if (!verdict.allowed) {
    reply.header('Retry-After', String(Math.ceil(verdict.retryAfterMs / 1000)));
    throw obxError('WEB_THROTTLED', `try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s`);
  }
  throttle.fail(req.ip);
}

/** A fresh session id on every login (the previous one, if any, ends). */
export function startSession(ctx: WebContext, previous: string | null, reply: FastifyReply): void {
  ctx.sessions.delete(previous);
  reply.setCookie('obx_sid', ctx.sessions.create(), SESSION_COOKIE_OPTS);
}

function claimTicket(req: FastifyRequest): string | null {
  const raw = req.cookies[CLAIM_COOKIE];
  if (!raw) return null;
  const v = req.unsignCookie(raw);
  return v.valid ? v.value : null;
}

export async function authRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  // The page depends only on this browser's own claim: another browser's claim or a press of the
  // button for it changes nothing here.
  const claimView = async (req: FastifyRequest, extra: Record<string, unknown>) => {
    const progress = await ctx.box.claimProgress(claimTicket(req));
    return {
      title: 'Claim this box',
      claim: progress,
      minLength: MIN_PASSWORD_LENGTH,
      code: '',
      ...extra,
    };
  };

  app.get('/claim', async (req, reply) => {
    if (isClaimed(ctx)) return reply.redirect('/login', 303);
    return page(reply, ctx, 'claim', await claimView(req, {}));
  });

  app.post('/claim/start', { preValidation: app.csrfProtection, config: formLimit }, async (_req, reply) => {
    if (isClaimed(ctx)) throw obxError('WEB_ALREADY_CLAIMED');
    const { ticket } = await ctx.box.startClaim();
    reply.setCookie(CLAIM_COOKIE, ticket, CLAIM_COOKIE_OPTS);
    return reply.redirect('/claim', 303);
  });

  app.post('/claim', { preValidation: app.csrfProtection, config: formLimit }, async (req, reply) => {
    if (isClaimed(ctx)) throw obxError('WEB_ALREADY_CLAIMED');
    const code = field(req.body, 'code');
    const password = field(req.body, 'password') ?? '';
    const confirm = field(req.body, 'confirm') ?? '';
    const errors = newPasswordErrors(password, confirm);
    const keep = { code: (code ?? '').slice(0, 32) };
    if (Object.keys(errors).length > 0)
      return page(reply, ctx, 'claim', await claimView(req, { errors, ...keep }), 400);
    takeAttempt(ctx.claimThrottle, req, reply);
    const outcome = await ctx.box.claim({ password, code, ticket: claimTicket(req) });
    if (outcome === 'no-presence') {
      errors.code =
        code && code.trim() !== ''
          ? 'That is not the code the box shows. Check the screen on the box, or start a claim and press its button.'
          : 'Start a claim and press the button on the box (or type the code its screen shows), then send this form again.';
      return page(reply, ctx, 'claim', await claimView(req, { errors, ...keep }), 400);
    }
    ctx.claimThrottle.succeed(req.ip);
    req.log.info('box claimed');
    reply.clearCookie(CLAIM_COOKIE, { path: '/claim' });
    startSession(ctx, req.ownerSession, reply);
    return reply.redirect('/?done=claimed', 303);
  });

  app.get('/login', async (req, reply) => {
    if (!isClaimed(ctx)) return reply.redirect('/claim', 303);
    if (req.ownerSession !== null) return reply.redirect('/', 303);
    return page(reply, ctx, 'login', { title: 'Log in', flash: flashFor(req.query) });
  });

  app.post('/login', { preValidation: app.csrfProtection, config: formLimit }, async (req, reply) => {
    if (!isClaimed(ctx)) throw obxError('WEB_NOT_CLAIMED');
    const password = field(req.body, 'password') ?? '';
    takeAttempt(ctx.loginThrottle, req, reply);
    if (!(await ctx.box.verifyPassword(password))) {
      req.log.info({ failures: ctx.loginThrottle.failures(req.ip) }, 'login failed');
      return page(reply, ctx, 'login', { title: 'Log in', errors: { password: 'Wrong password.' } }, 401);
    }
    ctx.loginThrottle.succeed(req.ip);
    startSession(ctx, req.ownerSession, reply);
    return reply.redirect('/', 303);
  });

  app.post('/logout', { preValidation: app.csrfProtection }, async (req, reply) => {
    ctx.sessions.delete(req.ownerSession);
    reply.clearCookie('obx_sid', { path: '/' });
    return reply.redirect('/login?done=logout', 303);
  });
}
