/**
 * Where the page process (web/main.ts) listens, decided by pure functions: the box's LAN address and the
 * page's port from the box's settings (the Mirror), so it moves when the owner changes the LAN address;
 * `--listen IPV4:PORT` instead for development and tests.
 */
import { resolve } from 'node:path';
import type { PageSettings } from '../../firmware/box/api.js';
import { DEFAULT_STATE_DIR, parseCliArgs, parseListen } from '../../firmware/cli/args.js';
import { obxError } from '../../firmware/errors.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface WebArgs {
  /** onionboxd's state directory, where its page socket (web.sock) is. */
  stateDir: string;
  /** `--listen`: a fixed address instead of the box's LAN address (development, tests). */
  listen: ListenAddress | null;
  logLevel: string | undefined;
}

export function parseWebArgs(argv: readonly string[]): WebArgs {
  const v = parseCliArgs(argv, {
    'state-dir': { type: 'string' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
  }).values;
  const listen = typeof v.listen === 'string' ? parseListen(v.listen) : null;
  const logLevel = typeof v['log-level'] === 'string' ? v['log-level'] : undefined;
  if (
    logLevel !== undefined &&
    !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)
  ) {
    throw obxError('CLI_USAGE', '--log-level must be one of fatal,error,warn,info,debug,trace,silent');
  }
  const stateDir = resolve(typeof v['state-dir'] === 'string' ? v['state-dir'] : DEFAULT_STATE_DIR);
  return { stateDir, listen, logLevel };
}

/** The address the page answers on now: `--listen`, else the LAN address and the configured port. */
export function pageAddress(settings: PageSettings, fixed: ListenAddress | null): ListenAddress {
  return fixed ?? { host: settings.network.lanAddress, port: settings.web.port };
}
