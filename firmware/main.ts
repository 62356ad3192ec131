#!/usr/bin/env node
/**
 * onionboxd: the firmware's one long-running process. `--simulate` runs it with the simulated board and
 * clock; everything else is as on a Pi (firewall, tor as debian-tor, the page on the LAN address), so
 * the simulator runs it inside its own network namespace (scripts/sim/), never on the host.
 */
import { readdirSync, statSync } from 'node:fs';
import { parseDaemonArgs } from './cli/args.js';
import { Daemon } from './daemon.js';
import { describeError } from './errors.js';
import { createSdNotifier } from './lib/sd-notify.js';
import { createLogger } from './log.js';
import { firmwareTestNetwork } from './tor/fw-cfg.js';
import { loadTestNetwork, type TestNetwork } from './tor/test-network.js';

/**
 * True when this process runs in a named network namespace (`ip netns add`, bound under /run/netns), as
 * the simulator's box does; false in the machine's own namespace (or when it cannot be told).
 */
function inNamedNetns(): boolean {
  try {
    const self = statSync('/proc/self/ns/net');
    return readdirSync('/run/netns').some((n) => {
      const st = statSync(`/run/netns/${n}`);
      return st.ino === self.ino && st.dev === self.dev;
    });
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseDaemonArgs>;
  try {
    args = parseDaemonArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`onionboxd: ${describeError(err)}\n`);
    return 2;
  }
  if (args.simulate && !inNamedNetns()) {
    // --simulate changes only the board and the clock: the firewall and addresses are the box's own. On
    // a development machine that must happen in the simulator's namespace, never to the host.
    process.stderr.write(
      "onionboxd: --simulate runs inside the simulator's own network namespace, not on this host: use `npm start`\n",
    );
    return 2;
  }
  const log = createLogger({ level: args.logLevel, pretty: false });
  let testNetwork: TestNetwork | undefined;
  try {
    // --test-network FILE (the simulator), else what an emulator handed over as firmware data (fw_cfg);
    // a Pi has neither
    testNetwork =
      args.testNetwork !== undefined ? await loadTestNetwork(args.testNetwork) : await firmwareTestNetwork();
  } catch (err) {
    process.stderr.write(`onionboxd: ${describeError(err)}\n`);
    return 2;
  }
  const daemon = new Daemon({
    testNetwork,
    torDataDir: args.torDataDir,
    runDir: args.runDir,
    releaseDir: args.releaseDir,
    torControlSocket: args.torControlSocket,
    simulate: args.simulate,
    stateDir: args.stateDir,
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
  log.info({ pageSocket: daemon.pageSocket, simulate: args.simulate }, 'onionboxd ready');
  await sd.ready(`page socket at ${daemon.pageSocket}`);
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
