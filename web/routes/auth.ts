/** First-boot claim (physical presence + new password), login and logout. */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { obxError } from '../../firmware/errors.js';
import { type FieldErrors, field } from '../lib/forms.js';
import { hashPassword, MIN_PASSWORD_LENGTH, passwordProblem, verifyPassword } from '../lib/password.js';
import {
  flashFor,
  isClaimed,
  type PluginOpts,
  page,
  SESSION_COOKIE_OPTS,
  type WebContext,
} from './common.js';

/** How long a press of the claim button counts as presence. */
export const PRESENCE_WINDOW_MS = 10 * 60_000;

const formLimit = { rateLimit: { max: 60, timeWindow: 60_000 } };

export function presenceOk(ctx: WebContext, typedCode: string | undefined): boolean {
  const presence = ctx.box.claimPresence();
  if (presence.buttonPressedAt !== null && ctx.now() - presence.buttonPressedAt <= PRESENCE_WINDOW_MS) {
    return true;
  }
  const typed = (typedCode ?? '').replace(/[\s-]/g, '').toUpperCase();
  const code = presence.code.replace(/[\s-]/g, '').toUpperCase();
  if (typed.length === 0 || code.length === 0 || typed.length !== code.length) return false;
  return timingSafeEqual(Buffer.from(typed), Buffer.from(code));
}

function throttled(
  ctx: WebContext,
  which: 'loginThrottle' | 'claimThrottle',
  req: FastifyRequest,
  reply: FastifyReply,
) {
  const verdict = ctx[which].check(req.ip);
  if (verdict.allowed) return;
  reply.header('Retry-After', String(Math.ceil(verdict.retryAfterMs / 1000)));
  throw obxError('WEB_THROTTLED', `try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s`);
}

/** A fresh session id on every login (the previous one, if any, ends). */
export function startSession(ctx: WebContext, previous: string | null, reply: FastifyReply): void {
  ctx.sessions.delete(previous);
  reply.setCookie('obx_sid', ctx.sessions.create(), SESSION_COOKIE_OPTS);
}

export async function authRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  const claimView = (extra: Record<string, unknown>) => {
    const presence = ctx.box.claimPresence();
    const pressed =
      presence.buttonPressedAt !== null && ctx.now() - presence.buttonPressedAt <= PRESENCE_WINDOW_MS;
    return { title: 'Claim this box', pressed, minLength: MIN_PASSWORD_LENGTH, code: '', ...extra };
  };

  app.get('/claim', async (_req, reply) => {
    if (isClaimed(ctx)) return reply.redirect('/login', 303);
    return page(reply, ctx, 'claim', claimView({}));
  });

  app.post('/claim', { preValidation: app.csrfProtection, config: formLimit }, async (req, reply) => {
    if (isClaimed(ctx)) throw obxError('WEB_ALREADY_CLAIMED');
    throttled(ctx, 'claimThrottle', req, reply);
    const code = field(req.body, 'code');
    const password = field(req.body, 'password') ?? '';
    const confirm = field(req.body, 'confirm') ?? '';
    const errors: FieldErrors = {};
    if (!presenceOk(ctx, code)) {
      ctx.claimThrottle.fail(req.ip);
      errors.code =
        code && code.trim() !== ''
          ? 'That is not the code the box shows. Check the screen on the box, or press its button.'
          : 'Press the button on the box (or type the code its screen shows), then send this form again.';
    }
    const weak = passwordProblem(password);
    if (weak) errors.password = weak;
    else if (confirm !== password) errors.confirm = 'The two passwords differ.';
    if (Object.keys(errors).length > 0) {
      return page(reply, ctx, 'claim', claimView({ errors, code: (code ?? '').slice(0, 32) }), 400);
    }
    const hash = await hashPassword(password);
    await ctx.box.config.update((c) => {
      if (c.web.passwordHash !== null) throw obxError('WEB_ALREADY_CLAIMED');
      return { ...c, web: { ...c.web, passwordHash: hash } };
    });
    ctx.claimThrottle.succeed(req.ip);
    req.log.info('box claimed');
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
    throttled(ctx, 'loginThrottle', req, reply);
    const password = field(req.body, 'password') ?? '';
    if (!(await verifyPassword(password, ctx.box.config.get().web.passwordHash))) {
      ctx.loginThrottle.fail(req.ip);
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
