#!/usr/bin/env node
/**
 * onionboxd: the firmware's one long-running process. `--simulate` runs it with the simulated board and
 * clock; everything else is as on a Pi (firewall, tor as debian-tor, the page on the LAN address), so
 * the simulator runs it inside its own network namespace (scripts/sim/), never on the host.
 */
import { parseDaemonArgs } from './args.js';
import { Daemon } from './daemon.js';
import { describeError } from './errors.js';
import { createSdNotifier } from './lib/sd-notify.js';
import { createLogger } from './log.js';
import { loadTestNetwork, type TestNetwork } from './tor/test-network.js';

async function main(): Promise<number> {
  let args: ReturnType<typeof parseDaemonArgs>;
  try {
    args = parseDaemonArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`onionboxd: ${describeError(err)}\n`);
    return 2;
  }
  const log = createLogger({ level: args.logLevel, pretty: false });
  let testNetwork: TestNetwork | undefined;
  if (args.testNetwork !== undefined) {
    try {
      testNetwork = await loadTestNetwork(args.testNetwork);
    } catch (err) {
      process.stderr.write(`onionboxd: ${describeError(err)}\n`);
      return 2;
    }
  }
  const daemon = new Daemon({
    testNetwork,
    torDataDir: args.torDataDir,
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
    log.fatal(
      { err: describeError(err) },
      'onionboxd failed to start; the box stays closed (boot lockdown, or its own lockdown)',
    );
    log.flush?.();
    return 1;
  }
  log.info({ address: daemon.address, simulate: args.simulate }, 'onionboxd ready');
  await sd.ready(`web page at ${daemon.address}`);
  stopWatchdog = sd.startWatchdog();
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
