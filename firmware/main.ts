#!/usr/bin/env node
/**
 * onionboxd: the firmware's one long-running process. `--simulate` runs it against the simulated board
 * and never touches the host's firewall or network.
 */
import { parseDaemonArgs } from './args.js';
import { Daemon } from './daemon.js';
import { describeError } from './errors.js';
import { createSdNotifier } from './lib/sd-notify.js';
import { createLogger } from './log.js';

async function main(): Promise<number> {
  let args: ReturnType<typeof parseDaemonArgs>;
  try {
    args = parseDaemonArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`onionboxd: ${describeError(err)}\n`);
    return 2;
  }
  const log = createLogger({ level: args.logLevel, pretty: args.simulate && process.env.CI !== 'true' });
  const daemon = new Daemon({
    simulate: args.simulate,
    stateDir: args.stateDir,
    listenHost: args.listenHost,
    listenPort: args.listenPort,
    log,
  });
  const sd = createSdNotifier();
  let stopWatchdog: () => void = () => undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    stopWatchdog();
    void sd.stopping();
    daemon.stop().then(
      () => {
        log.info('stopped');
        log.flush?.();
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err: describeError(err) }, 'onionboxd failed to start; the boot lockdown stays in force');
    log.flush?.();
    return 1;
  }
  log.info({ address: daemon.address, simulate: args.simulate }, 'onionboxd ready');
  await sd.ready(`web page at ${daemon.address}`);
  stopWatchdog = sd.startWatchdog();
  if (args.simulate) process.stdout.write(`Onionbox simulator: web page at ${daemon.address}\n`);
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`onionboxd: ${describeError(err)}\n`);
    process.exit(1);
  },
);
