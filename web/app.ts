/**
 * The web page (Fastify). This is the foundation's placeholder: one status page that says what the box
 * is doing. The web issue replaces it with claim, login, status and settings.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ConfigStore } from '../firmware/config/store.js';

export interface WebDeps {
  log: Logger;
  config: ConfigStore;
  simulate: boolean;
}

export function buildWebApp(deps: WebDeps): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log.child({ component: 'web' }) as FastifyBaseLogger,
    disableRequestLogging: true,
  });
  app.get('/', async (_req, reply) => {
    const claimed = deps.config.get().web.passwordHash !== null;
    reply.type('text/html; charset=utf-8');
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Onionbox</title></head><body><h1>Onionbox</h1><p>${claimed ? 'This box is claimed.' : 'This box has not been claimed yet.'}</p>${deps.simulate ? '<p>Running in simulator mode.</p>' : ''}</body></html>`;
  });
  return app;
}
