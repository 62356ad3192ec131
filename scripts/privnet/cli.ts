/**
 * `tsx scripts/privnet/cli.ts [--http] [--dir DIR]`: starts a private Tor network on loopback, prints the
 * client torrc lines and the start-up time, and runs until Ctrl-C (which stops only its own tors).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrivnet } from './index.js';

const dirArg = process.argv.indexOf('--dir');
const dir = dirArg >= 0 ? (process.argv[dirArg + 1] ?? '') : mkdtempSync(join(tmpdir(), 'privnet-'));
const net = await startPrivnet({
  dir,
  httpServer: process.argv.includes('--http'),
  log: (l) => process.stderr.write(`privnet: ${l}\n`),
});
process.stdout.write(
  `${JSON.stringify({ startupMs: net.startupMs, http: net.http, relays: net.relays }, null, 2)}\n`,
);
process.stdout.write(`${net.clientTorrcLines.join('\n')}\n`);
if (process.argv.includes('--once')) {
  await net.stop();
  if (dirArg < 0) rmSync(dir, { recursive: true, force: true });
} else {
  process.on('SIGINT', () => {
    void net.stop().then(() => process.exit(0));
  });
}
