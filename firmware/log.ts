/**
 * Structured logging with pino (Fastify's own logger): JSON lines on stdout for journald in production,
 * pretty, human-readable lines in the simulator. Secrets are redacted by path wherever they appear.
 */
import { createRequire } from 'node:module';
import { destination, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * What a part of the firmware needs of a logger: pino's Logger is one, and so is a test's list. The one
 * logger interface; every module that takes a logger takes this.
 */
export interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const REDACT_PATHS = [
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'sessionKey',
  '*.sessionKey',
  'passphrase',
  '*.passphrase',
  '*.*.passphrase',
  'cookie',
  '*.cookie',
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
];

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  /** Where JSON lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
  /** The process's name in every line (default onionboxd; the page process: onionbox-web). */
  name?: string;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.ONIONBOX_LOG_LEVEL ?? 'info',
    base: { name: opts.name ?? 'onionboxd' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (opts.pretty) {
    // Loaded only in the simulator: pino-pretty is a development convenience, not needed on the box.
    const require = createRequire(import.meta.url);
    const pretty = require('pino-pretty') as (o: object) => NodeJS.WritableStream;
    return pino(options, pretty({ sync: true, colorize: process.stdout.isTTY, ignore: 'pid,hostname,name' }));
  }
  return pino(options, opts.destination ?? destination({ sync: false }));
}
