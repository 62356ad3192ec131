/**
 * Settings: bridges, exit countries, clock, password, diagnostics. Each form is validated with the config
 * store's schema (web/lib/forms/settings.ts); on error the page names the field, keeps the input, changes
 * nothing.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { assistSettings, type TorConfig } from '../../firmware/config/schema.js';
import { describeError, isObxError } from '../../firmware/errors.js';
import { redact } from '../../firmware/lib/redact.js';
import { newPasswordErrors } from '../lib/forms/auth.js';
import { checkbox, type FieldErrors, field, fieldErrors } from '../lib/forms/fields.js';
import {
  type BridgesInput,
  bridgesFromConfig,
  bridgesInput,
  checkBridges,
  checkClock,
  checkExits,
  type ExitsInput,
  exitsFromConfig,
  exitsInput,
  formatClockInput,
} from '../lib/forms/settings.js';
import { MIN_PASSWORD_LENGTH } from '../lib/password.js';
import { startSession } from './auth.js';
import { flashFor, type PluginOpts, page, requireOwner, type WebContext } from './common.js';

interface SettingsState {
  bridges?: BridgesInput;
  exits?: ExitsInput;
  clock?: string;
  errors?: FieldErrors;
  /** Which form the errors belong to (so the page can point there). */
  form?: string;
  problem?: string | null;
  flash?: string | null;
}

async function settingsPage(reply: FastifyReply, ctx: WebContext, state: SettingsState, statusCode = 200) {
  const settings = ctx.box.settings();
  const tor = settings.tor;
  const assist = assistSettings(settings);
  return page(
    reply,
    ctx,
    'settings',
    {
      title: 'Settings',
      bridges: state.bridges ?? bridgesFromConfig(tor),
      exits: state.exits ?? exitsFromConfig(tor),
      clock: state.clock ?? formatClockInput(ctx.now()),
      errors: state.errors ?? {},
      form: state.form ?? null,
      problem: state.problem ?? null,
      flash: state.flash ?? null,
      minLength: MIN_PASSWORD_LENGTH,
      builtinBridges: ctx.box.status().builtinBridges ?? null,
      assist: {
        blockedHere: assist.blockedHere,
        foundInUse:
          tor.useBridges && assist.found !== null && tor.bridges.join('\n') === assist.found.lines.join('\n'),
      },
    },
    statusCode,
  );
}

export async function settingsRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  app.addHook('onRequest', requireOwner(ctx));
  const csrf = { preValidation: app.csrfProtection };

  app.get('/settings', async (req, reply) => settingsPage(reply, ctx, { flash: flashFor(req.query) }));

  /** Applies validated tor settings; a rollback or a refusal by the box re-shows the form with the input. */
  async function applyTor(reply: FastifyReply, tor: TorConfig, state: SettingsState, form: string) {
    try {
      const result = await ctx.box.applyTorSettings(tor);
      if (result.ok) return reply.redirect('/?done=tor-applied', 303);
      const problem = result.rolledBack
        ? `Tor could not start with these settings, so the last working ones are back. (${result.message})`
        : `Tor did not accept these settings: ${result.message}`;
      return settingsPage(reply, ctx, { ...state, form, problem }, 409);
    } catch (err) {
      if (isObxError(err, 'CONFIG_INVALID')) {
        const errors = fieldErrors(err.details, { section: 'tor' });
        return settingsPage(reply, ctx, { ...state, form, errors, problem: describeError(err) }, 400);
      }
      throw err;
    }
  }

  app.post('/settings/bridges', csrf, async (req, reply) => {
    const input = bridgesInput(req.body);
    const checked = checkBridges(ctx.box.settings(), input);
    if (!checked.ok)
      return settingsPage(reply, ctx, { bridges: input, errors: checked.errors, form: 'bridges' }, 400);
    return applyTor(reply, checked.value, { bridges: input }, 'bridges');
  });

  app.post('/settings/exits', csrf, async (req, reply) => {
    const input = exitsInput(req.body);
    const checked = checkExits(ctx.box.settings(), input);
    if (!checked.ok)
      return settingsPage(reply, ctx, { exits: input, errors: checked.errors, form: 'exits' }, 400);
    return applyTor(reply, checked.value, { exits: input }, 'exits');
  });

  /** "Tor is blocked here" (the connection assist starts with bridges at once). */
  app.post('/settings/blocked-here', csrf, async (req, reply) => {
    await ctx.box.setBlockedHere(checkbox(req.body, 'blockedHere'));
    return reply.redirect('/settings?done=blocked-here#blocked-here', 303);
  });

  app.post('/settings/clock', csrf, async (req, reply) => {
    const typed = (field(req.body, 'clock') ?? '').slice(0, 40);
    const checked = checkClock(req.body);
    if (!checked.ok)
      return settingsPage(reply, ctx, { clock: typed, errors: checked.errors, form: 'clock' }, 400);
    try {
      await ctx.box.setClock(checked.value);
    } catch (err) {
      const errors = { clock: `The box refused this time: ${describeError(err)}` };
      return settingsPage(reply, ctx, { clock: typed, errors, form: 'clock' }, 400);
    }
    return reply.redirect('/settings?done=clock', 303);
  });

  app.post('/settings/password', csrf, async (req, reply) => {
    const current = field(req.body, 'current') ?? '';
    const password = field(req.body, 'password') ?? '';
    const confirm = field(req.body, 'confirm') ?? '';
    const errors = newPasswordErrors(password, confirm, current);
    if (Object.keys(errors).length > 0) return settingsPage(reply, ctx, { errors, form: 'password' }, 400);
    const verdict = ctx.loginThrottle.check(req.ip);
    if (!verdict.allowed) {
      const wait = Math.ceil(verdict.retryAfterMs / 1000);
      reply.header('Retry-After', String(wait));
      const tooMany = { current: `Too many wrong passwords; wait ${wait} s.` };
      return settingsPage(reply, ctx, { errors: tooMany, form: 'password' }, 429);
    }
    // Counted before the (slow) check, like a login: parallel guesses cannot outrun the throttle.
    ctx.loginThrottle.fail(req.ip);
    if ((await ctx.box.changePassword(current, password)) === 'wrong-password') {
      errors.current = 'That is not the current password.';
      return settingsPage(reply, ctx, { errors, form: 'password' }, 400);
    }
    ctx.loginThrottle.succeed(req.ip);
    ctx.sessions.clear();
    startSession(ctx, null, reply);
    req.log.info('owner password changed');
    return reply.redirect('/settings?done=password', 303);
  });

  app.get('/settings/diagnostics.txt', async (_req, reply) => {
    // Defence in depth: the box promises no secrets; make sure of the one this page knows (and of any
    // bridge-shaped text: firmware/lib/redact.ts).
    const text = redact(await ctx.box.diagnostics(), { secrets: [ctx.box.sessionKey()] });
    const stamp = new Date(ctx.now()).toISOString().replace(/[:.]/g, '-');
    reply
      .type('text/plain; charset=utf-8')
      .header('Content-Disposition', `attachment; filename="onionbox-diagnostics-${stamp}.txt"`);
    return text;
  });
}
