/**
 * onionboxd's tor-side phases: the relay set seeded before the first apply (`relay-seed`), the tor
 * supervisor and its control-socket commands (`tor-supervisor`), tor started in the background
 * (`tor-start`), and the relay set following tor's consensus (`relay-follow`). Each is handed what it
 * needs by the composition root (firmware/daemon.ts).
 */
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { ConfigStore } from '../config/store.js';
import { describeError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { Firewall } from '../firewall/apply.js';
import type { Phase } from '../lib/service.js';
import type { Platform } from '../platform/platform.js';
import { DEFAULT_CHECK_URL, TorCheck } from '../tor/check.js';
import { RelaySet } from '../tor/relay-set.js';
import { TorSupervisor } from '../tor/supervisor.js';
import type { TestNetwork } from '../tor/test-network.js';
import type { TorRuntime } from '../tor/torrc.js';

/** tor's ports on the box (SocksPort and ControlPort on loopback, TransPort and DNSPort on the LAN). */
export const TOR_PORTS = Object.freeze({ socks: 9050, control: 9051, trans: 9040, dns: 5353 });
/** Besides every new consensus, the relay set is re-read this often. */
const RELAY_REFRESH_MS = 10 * 60_000;

/** "Is this Tor?" through tor's SOCKS port; the URL is fixed by the firmware (the test network's, when one is set), never input. */
export async function torCheck(
  testNetwork: TestNetwork | undefined,
): Promise<{ isTor: boolean; ip: string; url: string }> {
  const url = testNetwork?.checkUrl ?? DEFAULT_CHECK_URL;
  const result = await new TorCheck({ socks: { host: '127.0.0.1', port: TOR_PORTS.socks }, url }).run();
  return { ...result, url };
}

/** Phase `relay-seed`: the relay set, filled before the first apply (a fresh box must reach its directories). */
export function relaySeedPhase(deps: {
  config: ConfigStore;
  platform: Platform;
  firewall: Firewall;
  testNetwork: TestNetwork | undefined;
  log: Logger;
}): Phase<RelaySet> {
  const log = deps.log.child({ component: 'relays' });
  return {
    name: 'relay-seed',
    start: async () => {
      const { firewall } = deps;
      const set = new RelaySet({
        torrcLines: deps.testNetwork?.torrc ?? [],
        dataDir: deps.platform.tor.dataDir,
        // a new set into the kernel (the box's current mode keeps its rules)
        publish: async (relays, why) => {
          if (firewall.current() === null) return; // the first apply will carry them
          await firewall.refreshRelays(relays);
          log.debug({ relays: relays.length, why }, 'relay set refreshed');
        },
      });
      await set.seed(deps.config.get().tor);
      log.info(set.sizes(), 'relay set seeded (authorities, fallbacks, bridges, cached consensus)');
      return set;
    },
    stop: async () => undefined,
  };
}

/** Phase `tor-supervisor`: creates the supervisor; tor starts later. */
export function torSetupPhase(deps: {
  config: ConfigStore;
  bus: EventBus;
  platform: Platform;
  relays: RelaySet;
  stateDir: string;
  testNetwork: TestNetwork | undefined;
  /** tor in its own unit (onionbox-tor.service) on this control socket; absent: spawned here. */
  torControlSocket?: string | undefined;
  log: Logger;
}): Phase<TorSupervisor> {
  const { stateDir, platform } = deps;
  return {
    name: 'tor-supervisor',
    start: async () => {
      const cfg = deps.config.get();
      const torDir = join(stateDir, 'tor');
      await mkdir(torDir, { recursive: true, mode: 0o711 });
      // tor switches to debian-tor before it opens its data directory and re-reads its torrc as that
      // user on reload: the directories on the way must be traversable (not listable). Every file the
      // box keeps in them is 0600 (config, secrets) or tor's own.
      await chmod(stateDir, 0o711);
      await chmod(torDir, 0o711);
      const unit = deps.torControlSocket;
      const common = {
        dataDir: platform.tor.dataDir,
        socks: { host: '127.0.0.1', port: TOR_PORTS.socks },
        lanAddress: cfg.network.lanAddress,
        transPort: TOR_PORTS.trans,
        dnsPort: TOR_PORTS.dns,
        extraLines: deps.testNetwork?.torrc ?? [],
      };
      const runtime: TorRuntime =
        unit !== undefined
          ? {
              // tor's own unit runs it as debian-tor: no User switch, no owning PID (systemd owns it); the
              // control socket and cookie in its RuntimeDirectory, for its group (which onionboxd is in)
              ...common,
              control: { unix: unit },
              cookieFile: join(dirname(unit), 'control_auth_cookie'),
              controlGroup: true,
            }
          : {
              ...common,
              control: { host: '127.0.0.1', port: TOR_PORTS.control },
              user: platform.tor.user,
              owningPid: process.pid,
            };
      if (unit === undefined) await mkdir(runtime.dataDir, { recursive: true, mode: 0o700 });
      const tor = new TorSupervisor({
        bus: deps.bus,
        log: deps.log.child({ component: 'tor' }),
        settings: cfg.tor,
        torrcPath: join(torDir, 'torrc'),
        runtime,
        // new bridges must be in the relay set before tor dials them (else they roll back)
        beforeReload: (settings) => deps.relays.settingsChanged(settings),
        external: unit !== undefined ? { verifyDataDir: join(torDir, 'verify') } : undefined,
      });
      return tor;
    },
    stop: async () => undefined,
  };
}

/** Phase `tor-start`: starts tor in the background; the state machine opens the LAN only when tor is ready. */
export function torStartPhase(deps: { tor: TorSupervisor; log: Logger }): Phase<void> {
  const { tor } = deps;
  const log = deps.log.child({ component: 'tor' });
  let starting: Promise<void> | null = null;
  return {
    name: 'tor-start',
    start: async () => {
      starting = tor.start().catch((err: unknown) => {
        log.error({ err: describeError(err) }, 'tor did not start; the LAN stays closed');
      });
      // tor in its own unit starts after onionboxd is ready and reads the torrc: have it written by then
      // (start() resolves once the torrc is installed; the control socket is attached in the background)
      if (tor.external) await starting;
    },
    stop: async () => {
      await starting;
      await tor.stop();
    },
  };
}

/** Phase `relay-follow`: the relay set follows tor's consensus (each new one, on readiness, every 10 min). */
export function relayFollowPhase(deps: {
  tor: TorSupervisor;
  relays: RelaySet;
  bus: EventBus;
  log: Logger;
}): Phase<void> {
  const { tor, relays, bus } = deps;
  const log = deps.log.child({ component: 'relays' });
  let timer: NodeJS.Timeout | null = null;
  const refresh = async (why: string) => {
    if (tor.control === null) return;
    try {
      await relays.consensusChanged(await tor.relayEndpoints(), why);
    } catch (err) {
      log.warn({ err: describeError(err) }, 'relay set not refreshed');
    }
  };
  return {
    name: 'relay-follow',
    start: async () => {
      let wasReady = false;
      let wasUp = false;
      bus.on('tor:status', 'relays', (s) => {
        // a (re)started tor may hold a cached consensus whose guards the set lacks (onionboxd cannot read
        // tor's data directory when tor runs in its own unit): refresh as soon as its control answers
        const up = s.phase === 'bootstrapping' || s.phase === 'ready';
        if (up && !wasUp) void refresh('tor connected');
        else if (s.ready && !wasReady) void refresh('tor ready');
        wasReady = s.ready;
        wasUp = up;
      });
      bus.on('tor:consensus', 'relays', () => void refresh('new consensus'));
      timer = setInterval(() => void refresh('timer'), RELAY_REFRESH_MS);
      timer.unref();
    },
    stop: async () => {
      bus.removeOwner('relays');
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
