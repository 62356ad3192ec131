/**
 * The update page: the running version and its age, the last check and its result in words, an available
 * update with its notes, the download's progress, the owner's policy ("install and restart at night" or
 * "ask me first"), and the buttons "Check now" and "Install now". A check or an install runs in the
 * background (it goes through tor and may take minutes); the page reloads while it runs. No JavaScript.
 * In the page process every call goes over onionboxd's page socket (`web.update.*`).
 */
import type { FastifyInstance } from 'fastify';
import { obxError } from '../../firmware/errors.js';
import { field } from '../lib/forms/fields.js';
import { describeUpdate } from '../lib/update-presenter.js';
import { flashFor, type PluginOpts, page, requireOwner } from './common.js';

export async function updateRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  const updates = ctx.updates;
  if (!updates) return;
  app.addHook('onRequest', requireOwner(ctx));

  app.get('/update', async (req, reply) => {
    const [status, warnings] = await Promise.all([updates.status(), updates.warnings()]);
    const view = describeUpdate(status, warnings, new Date(ctx.now()));
    return page(reply, ctx, 'update', {
      title: 'Updates',
      view,
      flash: flashFor(req.query),
      refresh: view.busy,
    });
  });

  app.post('/update/check', { preValidation: app.csrfProtection }, async (req, reply) => {
    // The result is shown on the page (the status's last check); a busy updater is said there too.
    updates.check().catch((err: unknown) => req.log.info({ err: String(err) }, 'update check from the page'));
    return reply.redirect('/update?done=update-checking', 303);
  });

  app.post('/update/install', { preValidation: app.csrfProtection }, async (req, reply) => {
    const { phase } = await updates.status();
    if (phase !== 'available' && phase !== 'ready') {
      throw obxError('UPDATE_NOTHING_TO_INSTALL', 'check for an update first');
    }
    updates
      .install()
      .catch((err: unknown) => req.log.info({ err: String(err) }, 'update install from the page'));
    return reply.redirect('/update?done=update-installing', 303);
  });

  app.post('/update/policy', { preValidation: app.csrfProtection }, async (req, reply) => {
    const policy = field(req.body, 'policy');
    if (policy !== 'night' && policy !== 'ask') {
      throw obxError('WEB_FORM_INVALID', 'policy must be "night" or "ask"');
    }
    await updates.setPolicy(policy);
    return reply.redirect('/update?done=update-policy', 303);
  });
}
