/**
 * The leak self-test: the last report, and a form that runs the test again (POST, CSRF; the page waits
 * for the result, so it works without JavaScript). The test itself runs in the box (firmware/leak-test/).
 */
import type { FastifyInstance } from 'fastify';
import { describeLeakReport } from '../lib/leak-test.js';
import { type PluginOpts, page, requireOwner } from './common.js';

export async function leakTestRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  app.addHook('onRequest', requireOwner(ctx));

  app.get('/leak-test', async (_req, reply) => {
    return page(reply, ctx, 'leak-test', {
      title: 'Leak test',
      report: describeLeakReport(ctx.box.lastLeakTest(), ctx.now()),
      routing: ctx.box.status().state === 'routing',
    });
  });

  app.post('/leak-test', { preValidation: app.csrfProtection }, async (_req, reply) => {
    await ctx.box.runLeakTest();
    return reply.redirect('/leak-test', 303);
  });
}
