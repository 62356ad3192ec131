/** The status page, its live updates (Server-Sent Events), the kill switch and New identity. */
import type { FastifyInstance } from 'fastify';
import { obxError } from '../../firmware/errors.js';
import { field } from '../lib/forms/fields.js';
import { describeCircuits, describeCounters, describeStatus } from '../lib/status-presenters.js';
import { flashFor, type PluginOpts, page, requireOwner } from './common.js';

const HEARTBEAT_MS = 25_000;

export async function statusRoutes(app: FastifyInstance, { ctx }: PluginOpts): Promise<void> {
  app.addHook('onRequest', requireOwner(ctx));

  app.get('/', async (req, reply) => {
    const status = ctx.box.status();
    const view = describeStatus(status);
    const [circuits, counters, updateWarnings] = await Promise.all([
      ctx.box.circuits().then(describeCircuits, () => null as ReturnType<typeof describeCircuits> | null),
      ctx.box.counters().then(describeCounters, () => null as ReturnType<typeof describeCounters> | null),
      // the status page shows without them when the updater does not answer
      Promise.resolve()
        .then(() => ctx.updates?.warnings() ?? [])
        .catch(() => [] as string[]),
    ]);
    return page(reply, ctx, 'status', {
      title: 'Onionbox',
      view,
      circuits,
      counters,
      updateWarnings,
      flash: flashFor(req.query),
      refresh: view.transient,
      live: true,
    });
  });

  app.get('/events', (req, reply) => {
    if (ctx.streams.size >= ctx.limits.maxStreams) {
      reply.code(503).header('Retry-After', '10').type('text/plain').send('too many live views');
      return;
    }
    reply.hijack();
    const res = reply.raw;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(reply.getHeaders())) if (typeof v === 'string') headers[k] = v;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    const sid = req.ownerSession;
    let last = '';
    const send = (status: Parameters<typeof describeStatus>[0]) => {
      if (sid === null || !ctx.sessions.has(sid)) return end();
      const data = JSON.stringify(describeStatus(status));
      if (data === last) return;
      last = data;
      res.write(`event: status\ndata: ${data}\n\n`);
    };
    const unsubscribe = ctx.box.onStatus(send);
    const ping = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    ping.unref();
    let ended = false;
    function end() {
      if (ended) return;
      ended = true;
      clearInterval(ping);
      unsubscribe();
      ctx.streams.delete(end);
      res.end();
    }
    ctx.streams.add(end);
    req.raw.on('close', end);
    res.write('retry: 3000\n\n');
    send(ctx.box.status());
  });

  app.post('/kill', { preValidation: app.csrfProtection }, async (req, reply) => {
    const engage = field(req.body, 'engage');
    if (engage !== '1' && engage !== '0') throw obxError('WEB_FORM_INVALID', 'engage must be 1 or 0');
    await ctx.box.setSoftKill(engage === '1');
    return reply.redirect(engage === '1' ? '/?done=kill-on' : '/?done=kill-off', 303);
  });

  /** The owner lets the connection assist try the box's bridges instead of the owner's own. */
  app.post('/assist/consent', { preValidation: app.csrfProtection }, async (_req, reply) => {
    await ctx.box.assistConsent();
    return reply.redirect('/?done=assist-consent', 303);
  });

  app.post('/newnym', { preValidation: app.csrfProtection }, async (_req, reply) => {
    await ctx.box.newIdentity();
    return reply.redirect('/?done=newnym', 303);
  });
}
