/**
 * Simulator panel, registered only with --simulate: flip the kill switch, press the claim button, see the
 * LEDs and the OLED. Open without login (the button must be pressable before the box is claimed), but
 * every form carries a CSRF token like any other.
 */
import type { FastifyInstance } from 'fastify';
import { obxError } from '../../firmware/errors.js';
import { field } from '../lib/forms/fields.js';
import { type PluginOpts, page } from './common.js';

export async function simRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  const sim = ctx.box.sim;
  if (!sim) return;
  const csrf = { preValidation: app.csrfProtection };

  app.get('/sim', async (_req, reply) => {
    const status = ctx.box.status();
    return page(reply, ctx, 'sim', {
      title: 'Simulator',
      leds: Object.entries(await sim.leds()).map(([name, state]) => ({ name, state })),
      hardware: status.killSwitch.hardware,
      stamp: ctx.now(),
    });
  });

  app.get('/sim/oled.png', async (_req, reply) => {
    reply.type('image/png');
    return await sim.oledPng();
  });

  app.post('/sim/switch', csrf, async (req, reply) => {
    const engaged = field(req.body, 'engaged');
    if (engaged !== '1' && engaged !== '0') throw obxError('WEB_FORM_INVALID', 'engaged must be 1 or 0');
    await sim.setSwitch(engaged === '1');
    return reply.redirect('/sim', 303);
  });

  app.post('/sim/button', csrf, async (_req, reply) => {
    await sim.pressClaimButton(200);
    return reply.redirect('/sim', 303);
  });
}
