/**
 * The one command-line parser for onionboxd and every `onionbox` command: node:util `parseArgs` in
 * strict mode. Unknown options, missing values, stray arguments and missing required options are
 * OBX_ERR_CLI_USAGE (the CLI prints the message and the usage, and exits 2), never ignored.
 */
import { resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { obxError } from '../errors.js';

export type CliOptions = NonNullable<ParseArgsConfig['options']>;

export interface CliRules {
  /** How many positional arguments are allowed (default none). */
  positionals?: { min?: number; max?: number } | undefined;
  /** Options that must be given. */
  required?: readonly string[] | undefined;
}

export interface CliArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parseCliArgs(argv: readonly string[], options: CliOptions, rules: CliRules = {}): CliArgs {
  let parsed: CliArgs;
  try {
    parsed = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowPositionals: rules.positionals !== undefined,
    }) as CliArgs;
  } catch (err) {
    throw obxError('CLI_USAGE', (err as Error).message);
  }
  const { min = 0, max = 0 } = rules.positionals ?? {};
  if (parsed.positionals.length > max) {
    throw obxError('CLI_USAGE', `unexpected argument "${(parsed.positionals[max] ?? '').slice(0, 40)}"`);
  }
  if (parsed.positionals.length < min) throw obxError('CLI_USAGE', 'missing argument');
  for (const r of rules.required ?? []) {
    if (parsed.values[r] === undefined) throw obxError('CLI_USAGE', `--${r} is required`);
  }
  return parsed;
}

/** A string option's value (parseCliArgs checked its type). */
export function stringOption(v: CliArgs['values'], name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}

export interface DaemonArgs {
  simulate: boolean;
  stateDir: string;
  logLevel: string | undefined;
  /** A private Tor network's torrc lines and check URL (JSON file), for the simulator and image tests. */
  testNetwork: string | undefined;
  /** tor's data directory (default <state dir>/tor/data; the box's unit gives Debian's /var/lib/tor). */
  torDataDir: string | undefined;
  /** systemd's runtime root (default /run): dnsmasq's and hostapd's units keep their files under it. */
  runDir: string | undefined;
  /** The image's release files (release.json, release-keys/): default /etc/onionbox; the simulator's own. */
  releaseDir: string | undefined;
  /**
   * tor runs in its own unit and listens on this control socket (the box: /run/onionbox-tor/control);
   * onionboxd then never spawns tor. Absent: onionboxd spawns tor itself (development, tests).
   */
  torControlSocket: string | undefined;
}

export const DEFAULT_STATE_DIR = '/var/lib/onionbox';
export const DEFAULT_SIM_STATE_DIR = '.onionbox-sim';

export function parsePort(value: string, flag: string, min = 1): number {
  if (!/^[0-9]{1,5}$/.test(value))
    throw obxError('CLI_USAGE', `${flag} must be a port number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > 65535) throw obxError('CLI_USAGE', `${flag} must be ${min}-65535, got ${n}`);
  return n;
}

/** `--listen IPV4:PORT` (the page process's, for development and tests; port 0: any free port). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(value);
  if (!m?.[1]) throw obxError('CLI_USAGE', `--listen must be IPV4:PORT, got "${value}"`);
  return { host: m[1], port: parsePort(m[2] ?? '', '--listen', 0) };
}

export function parseDaemonArgs(argv: string[]): DaemonArgs {
  const parsed = parseCliArgs(argv, {
    simulate: { type: 'boolean', default: false },
    'state-dir': { type: 'string' },
    'log-level': { type: 'string' },
    'test-network': { type: 'string' },
    'tor-data-dir': { type: 'string' },
    'run-dir': { type: 'string' },
    'release-dir': { type: 'string' },
    'tor-control-socket': { type: 'string' },
  });
  const v = parsed.values;
  const simulate = v.simulate === true;
  const logLevel = typeof v['log-level'] === 'string' ? v['log-level'] : undefined;
  if (
    logLevel !== undefined &&
    !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)
  ) {
    throw obxError('CLI_USAGE', `--log-level must be one of fatal,error,warn,info,debug,trace,silent`);
  }
  // Absolute from here on: nft's `include`, tor's torrc and the private network all need absolute paths.
  const stateDir = resolve(
    typeof v['state-dir'] === 'string'
      ? v['state-dir']
      : simulate
        ? DEFAULT_SIM_STATE_DIR
        : DEFAULT_STATE_DIR,
  );
  const testNetwork = typeof v['test-network'] === 'string' ? resolve(v['test-network']) : undefined;
  const torDataDir = typeof v['tor-data-dir'] === 'string' ? resolve(v['tor-data-dir']) : undefined;
  const runDir = typeof v['run-dir'] === 'string' ? resolve(v['run-dir']) : undefined;
  const releaseDir = typeof v['release-dir'] === 'string' ? resolve(v['release-dir']) : undefined;
  const torControlSocket =
    typeof v['tor-control-socket'] === 'string' ? resolve(v['tor-control-socket']) : undefined;
  return { simulate, stateDir, logLevel, testNetwork, torDataDir, runDir, releaseDir, torControlSocket };
}
