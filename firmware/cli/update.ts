/**
 * `onionbox update status|check|install [FILE]`: the updater through onionboxd's control socket
 * (handlers in firmware/control/commands.ts). `install FILE` installs an offline bundle: FILE is the RAUC
 * bundle, its manifest FILE.manifest.json and signature FILE.manifest.json.minisig lie beside it (as
 * `npm run release` writes them) unless --manifest/--signature say otherwise; the daemon runs the same
 * checks as for a download (signature, board, version order, expiry, size, SHA-256).
 */
import { resolve } from 'node:path';
import type { UpdateStatus } from '../update/service.js';
import { formatUpdateStatus } from '../update/words.js';
import { parseCliArgs, stringOption } from './args.js';
import { daemonCall, daemonQueryCommand } from './status.js';
import type { CliCommand } from './types.js';

export const updateStatusCommand = daemonQueryCommand<UpdateStatus>({
  name: 'update status',
  summary: 'Show the running version, the last check, an available update and the policy',
  usage: 'onionbox update status',
  call: 'update.status',
  format: (s) => formatUpdateStatus(s, new Date()),
});

export const updateCheckCommand = daemonQueryCommand<UpdateStatus>({
  name: 'update check',
  summary: 'Check for an update now, through tor (the onion service, then the mirror)',
  usage: 'onionbox update check',
  call: 'update.check',
  timeoutMs: 10 * 60_000,
  format: (s) => formatUpdateStatus(s, new Date()),
});

/** The three files of an offline install, absolute (the daemon reads them, from its own directory). */
export function offlineFiles(
  file: string,
  manifest: string | undefined,
  signature: string | undefined,
  cwd = process.cwd(),
): { bundle: string; manifest: string; signature: string } {
  const bundle = resolve(cwd, file);
  const m = resolve(cwd, manifest ?? `${bundle}.manifest.json`);
  return { bundle, manifest: m, signature: resolve(cwd, signature ?? `${m}.minisig`) };
}

export const updateInstallCommand: CliCommand = {
  name: 'update install',
  summary: 'Install the available update now (or an offline bundle FILE with its manifest); the box restarts',
  usage: 'onionbox update install [FILE [--manifest M] [--signature S]] [--json]',
  async run(argv, ctx) {
    const parsed = parseCliArgs(
      argv,
      { manifest: { type: 'string' }, signature: { type: 'string' }, json: { type: 'boolean' } },
      { positionals: { min: 0, max: 1 } },
    );
    const file = parsed.positionals[0];
    const manifest = stringOption(parsed.values, 'manifest');
    const signature = stringOption(parsed.values, 'signature');
    const args = file === undefined ? {} : offlineFiles(file, manifest, signature);
    const s = (await daemonCall(ctx.stateDir, 'update.install', args, 60 * 60_000)) as UpdateStatus;
    ctx.out(
      parsed.values.json === true ? `${JSON.stringify(s, null, 2)}\n` : formatUpdateStatus(s, new Date()),
    );
    return 0;
  },
};

export const UPDATE_COMMANDS: readonly CliCommand[] = [
  updateStatusCommand,
  updateCheckCommand,
  updateInstallCommand,
];
