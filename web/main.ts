#!/usr/bin/env node
/**
 * onionbox-web: the page in its own process (issue 23). It parses the LAN's HTTP with one capability (to
 * bind port 80) and no secret but the session key, and reaches the box only through onionboxd's page
 * socket (web/lib/box-client.ts over firmware/control/web-commands.ts), the updater's Updates section
 * included. It listens on the box's LAN address and moves when the owner changes it; `--listen
 * IPV4:PORT` is for development and tests.
 */
import type { FastifyInstance } from 'fastify';
import { webSocketPath } from '../firmware/control/socket.js';
import { describeError } from '../firmware/errors.js';
import { createLogger } from '../firmware/log.js';
import { buildWebApp, pageDeps } from './app.js';
import { BoxClient } from './lib/box-client.js';
import { type ListenAddress, pageAddress, parseWebArgs } from './lib/listen.js';

/** How long the page waits for onionboxd's first answer before it exits (systemd starts it again). */
const FIRST_MIRROR_MS = 120_000;

async function main(): Promise<number> {
  let args: ReturnType<typeof parseWebArgs>;
  try {
    args = parseWebArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`onionbox-web: ${describeError(err)}\n`);
    return 2;
  }
  const log = createLogger({ level: args.logLevel, name: 'onionbox-web' });
  const box = new BoxClient(webSocketPath(args.stateDir), { startTimeoutMs: FIRST_MIRROR_MS });
  try {
    await box.start();
  } catch (err) {
    log.fatal({ err: describeError(err) }, 'onionboxd did not answer on its page socket');
    log.flush?.();
    return 1;
  }
  let app: FastifyInstance | null = null;
  let at: ListenAddress | null = null;
  // One listen at a time, in order: a LAN change closes the page on the old address, then opens it on
  // the new one (a Fastify instance cannot listen again once closed: a new one is built).
  let queue: Promise<void> = Promise.resolve();
  const follow = (): Promise<void> => {
    const run = queue.then(async () => {
      const want = pageAddress(box.settings(), args.listen);
      if (at && at.host === want.host && at.port === want.port) return;
      await app?.close();
      app = null;
      at = null;
      const next = buildWebApp({ log, ...pageDeps(box) });
      const address = await next.listen(want);
      app = next;
      at = want;
      log.info({ address }, 'onionbox-web listening');
    });
    queue = run.catch(() => undefined);
    return run;
  };
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    box.stop();
    (app?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await follow();
  const again = (): void => {
    follow().catch((err: unknown) => {
      // e.g. the new address is not on the interface yet: try again shortly
      log.error({ err: describeError(err) }, 'the page could not listen on the LAN address');
      setTimeout(again, 2000).unref();
    });
  };
  box.onMirror(again);
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`onionbox-web: ${describeError(err)}\n`);
    process.exit(1);
  },
);
