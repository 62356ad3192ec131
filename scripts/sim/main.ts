/**
 * `npm start`: the whole box on one machine. Builds the simulated world (scripts/sim/world.ts) around
 * the unchanged onionboxd, relays the host's browser onto the simulated LAN, shows progress (each part
 * of the world, then tor's bootstrap), prints the page's address, and runs until Ctrl-C or SIGTERM,
 * which removes every namespace, process and file it made.
 *
 * One at a time: a second start while one runs says so and changes nothing. A previous run that died
 * (SIGKILL, power cut) is cleaned up first, by the PIDs it recorded and the names it made.
 *
 * Where things go: `--dir` (default `.onionbox-sim` in the checkout) holds only `sim.json`, the running
 * simulator's description that `onionbox sim info|exec` reads; the world itself (logs, leases, the
 * simulated box's state, tor's data) lives in `--work` (default /run/onionbox-sim-PREFIX), because the
 * box's tor runs as debian-tor and cannot traverse a checkout under a private home such as /root.
 *
 * `--censored`: the internet censors (scripts/sim/censor.ts): TCP to every relay's ORPort and DirPort is
 * dropped, bridges are not blocked, and the private network runs an obfs4 bridge and a webtunnel bridge
 * (behind a TLS front with a test CA) whose lines are printed, and a meek reflector with a mock Moat
 * behind it (front.sim.test:443), which also serves a meek_lite bridge (the obfs4 bridge's ORPort behind
 * the reflector meek-bridge.sim.test; its line is printed too).
 * The box has no bridge in its settings: its connection assist notices that tor is blocked and asks Moat
 * over meek_lite (onionbox-moat.service, as tor's user), whose answer names the obfs4 bridge, tries it,
 * stores it once it routes, and a LAN device's fetch through it is printed. `--configure-bridge` starts
 * the box with the obfs4 line already in its settings instead.
 *
 * Usage: tsx scripts/sim/main.ts [--dir .onionbox-sim] [--work DIR] [--port 8080] [--bridge]
 *        [--censored [--configure-bridge]]
 *        [--prefix obxsim] [--from-source]   (tests: their own namespace names; onionboxd from source)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { processAlive } from '../../firmware/cli/sim.js';
import { defaultConfig } from '../../firmware/config/schema.js';
import { ipcCall, socketPath } from '../../firmware/control/socket.js';
import { meekBridgeLine } from './meek-bridge.js';
import {
  buildWorld,
  HOSTNAME,
  MOAT_FRONT_HOST,
  namespacesOf,
  stopNamespaceProcesses,
  type World,
} from './world.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Each tool the world needs, and the Debian package that brings it. */
export const TOOLS: Record<string, string> = {
  ip: 'iproute2',
  nft: 'nftables',
  tor: 'tor',
  'tor-gencert': 'tor',
  lyrebird: 'lyrebird',
  'webtunnel-server': 'webtunnel',
  openssl: 'openssl',
  dnsmasq: 'dnsmasq-base',
  dhclient: 'isc-dhcp-client',
  tcpdump: 'tcpdump',
  conntrack: 'conntrack',
  curl: 'curl',
  setpriv: 'util-linux',
};

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', tool], { stdio: 'ignore' }).status === 0;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

interface Recorded {
  pid: number;
  dir: string;
  page?: { url: string | null };
  pids?: { name: string; pid: number }[];
}

/** Leftovers of a run that died: its processes (by recorded PID, only if they are still ours) and names. */
async function cleanStale(
  prefix: string,
  dir: string,
  work: string,
  say: (l: string) => void,
): Promise<void> {
  const file = join(dir, 'sim.json');
  const pidsFile = join(work, 'pids.json');
  if (existsSync(file) || existsSync(pidsFile)) {
    const read = <T>(f: string): T | null => {
      try {
        return JSON.parse(readFileSync(f, 'utf8')) as T;
      } catch {
        return null;
      }
    };
    const pids = [
      ...(read<Recorded>(file)?.pids ?? []),
      ...(read<{ name: string; pid: number }[]>(pidsFile) ?? []),
    ];
    for (const p of pids) {
      // only a process whose command line names this simulator's directory is one we started
      if (Number.isInteger(p.pid) && p.pid > 1 && processAlive(p.pid) && cmdline(p.pid).includes(work)) {
        say(`removing a previous run's ${p.name} (pid ${p.pid})`);
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    // SIGKILL is not instant: the old processes must be gone before their paths are used again
    for (let i = 0; i < 50 && pids.some((p) => processAlive(p.pid) && cmdline(p.pid).includes(work)); i++) {
      await sleep(100);
    }
    rmSync(file, { force: true });
    rmSync(pidsFile, { force: true });
  }
  for (const ns of await namespacesOf(prefix)) {
    say(`removing a previous run's namespace ${ns}`);
    const left = await stopNamespaceProcesses(ns);
    if (left.length > 0) say(`stopped ${left.length} process(es) it left running (pids ${left.join(' ')})`);
    spawnSync('ip', ['netns', 'del', ns]);
  }
  for (const n of ['lan', 'box', 'inet'])
    rmSync(`/etc/netns/${prefix}-${n}`, { recursive: true, force: true });
}

async function status(stateDir: string): Promise<Record<string, unknown> | null> {
  try {
    const r = await ipcCall(socketPath(stateDir), 'status', {}, 3000);
    return r.ok ? (r.result as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The bridge the box's connection assist found and stored (its config.json's `assist.found`), if any. */
function foundBridge(stateDir: string): { source: string; lines: string[] } | null {
  try {
    const c = JSON.parse(readFileSync(join(stateDir, 'config.json'), 'utf8')) as {
      assist?: { found?: { source?: unknown; lines?: unknown } | null };
    };
    const f = c.assist?.found;
    if (!f || typeof f.source !== 'string' || !Array.isArray(f.lines)) return null;
    return { source: f.source, lines: f.lines.filter((l): l is string => typeof l === 'string') };
  } catch {
    return null;
  }
}

/** The LAN device's first fetch through the box (tried for up to a minute): the address the site saw. */
async function lanFetch(world: World): Promise<string | null> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const body = await world
      .exec(world.netns.lan, 'curl', ['-s', '-m', '10', `http://${HOSTNAME}/ip`], 15_000)
      .catch(() => '');
    if (body.trim()) return body.trim();
    await sleep(500);
  }
  return null;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: '.onionbox-sim' },
      work: { type: 'string' },
      port: { type: 'string', default: '8080' },
      bridge: { type: 'boolean', default: false },
      censored: { type: 'boolean', default: false },
      'configure-bridge': { type: 'boolean', default: false },
      prefix: { type: 'string', default: 'obxsim' },
      'from-source': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const dir = resolve(values.dir ?? '.onionbox-sim');
  const port = Number(values.port);
  const prefix = values.prefix ?? 'obxsim';
  if (!/^[a-z][a-z0-9]{1,9}$/.test(prefix)) {
    process.stdout.write('onionbox sim: --prefix must be 2-10 lower-case letters and digits\n');
    return 2;
  }
  const fromSource = values['from-source'] === true;
  const censored = values.censored === true;
  const configureBridge = values['configure-bridge'] === true;
  if (configureBridge && !censored) {
    process.stdout.write('onionbox sim: --configure-bridge goes with --censored\n');
    return 2;
  }
  const work = resolve(values.work ?? `/run/onionbox-sim-${prefix}`);
  const say = (l: string) => process.stdout.write(`onionbox sim: ${l}\n`);
  if (process.getuid?.() !== 0) {
    say('needs root: it makes network namespaces and loads the real firewall inside them (run as root)');
    return 1;
  }
  const missing = Object.keys(TOOLS).filter((t) => !have(t));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((t) => TOOLS[t]))].join(' ');
    say(`missing ${missing.join(', ')}: run scripts/setup (or apt-get install ${pkgs})`);
    return 1;
  }
  if (!fromSource && !existsSync(new URL('../../dist/firmware/main.js', import.meta.url))) {
    say('onionboxd is not built: run `npm run build` (npm start does it)');
    return 1;
  }
  const existing = (() => {
    try {
      return JSON.parse(readFileSync(join(dir, 'sim.json'), 'utf8')) as Recorded;
    } catch {
      return null;
    }
  })();
  if (existing && processAlive(existing.pid) && cmdline(existing.pid).includes('scripts/sim/main')) {
    say(`already running (pid ${existing.pid}), page at ${existing.page?.url ?? '?'}; nothing changed`);
    return 1;
  }
  await cleanStale(prefix, dir, work, say);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  mkdirSync(work, { recursive: true, mode: 0o711 });

  const started = Date.now();
  let world: World | null = null;
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    say(`${why}: stopping`);
    await world?.stop();
    // everything it wrote (logs, leases, the simulated box's state) goes with it, unless the start failed
    if (why === 'failure') {
      rmSync(join(dir, 'sim.json'), { force: true });
      say(`logs kept in ${work} until the next start`);
    } else {
      rmSync(work, { recursive: true, force: true });
      rmSync(join(dir, 'sim.json'), { force: true });
      try {
        rmdirSync(dir); // only when empty: nothing else of the checkout's is ever removed
      } catch {
        // not empty, or gone
      }
    }
    say('stopped; every namespace and process it made is gone');
  };
  process.on('SIGINT', () => void stop('Ctrl-C').then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));

  try {
    say(
      `building the world: namespaces, the modem, the private Tor network${censored ? ' (behind a censoring ISP, with an obfs4 and a webtunnel bridge and Moat over meek)' : ''}, the box, a LAN device`,
    );
    world = await buildWorld({
      prefix,
      dir: work,
      ...(fromSource
        ? { daemonCommand: [process.execPath, ...process.execArgv, join(ROOT, 'firmware/main.ts')] }
        : {}),
      obfs4Bridge: values.bridge === true || censored,
      webtunnelBridge: censored,
      censored,
      moat: censored,
      ...(configureBridge
        ? {
            boxConfig: (privnet) => {
              const cfg = defaultConfig();
              const line = privnet.obfs4Bridge?.line ?? '';
              return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [line] } };
            },
          }
        : {}),
      log: (l) => {
        if (!l.startsWith('privnet: ') || /ready after|consensus with all/.test(l)) say(l);
      },
    });
    const url = await world.exposePage(port);
    const info = world.info();
    writeFileSync(join(dir, 'sim.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });

    const bridge = world.privnet.obfs4Bridge;
    const tellPage = () => {
      say('');
      say(`the page:        ${url}   (your browser reaches it as a LAN device would)`);
      say(`a LAN device:    onionbox sim exec -- curl http://${HOSTNAME}/ip   (prints the exit's address)`);
      say(`kill switch:     onionbox board switch on|off`);
      if (bridge) {
        say(`an obfs4 bridge: ${bridge.line}`);
        say('                 (paste it under Settings > Bridges to reach the network through obfs4)');
      }
      const webtunnel = world?.privnet.webtunnelBridge;
      if (webtunnel) {
        say(`a webtunnel bridge: ${webtunnel.line}`);
        say(
          "                 (behind a TLS front whose test CA the box's tor trusts in this simulator only)",
        );
      }
      if (censored && bridge) {
        say(`a meek_lite bridge: ${meekBridgeLine(bridge, MOAT_FRONT_HOST)}`);
        say('                 (the obfs4 bridge again, reached through the meek front; test CA as above)');
      }
      say(`logs:            ${work}/*.log      Ctrl-C stops everything`);
    };
    // behind the censor with no bridge in its settings, the box finds one by itself: that takes minutes
    // (tor must stall first), so the page's address comes first and the box's own words while it works
    const findsItself = censored && !configureBridge;
    if (findsItself) {
      tellPage();
      say('');
      say(
        "the internet censors: TCP to every relay's ORPort and DirPort is dropped, bridges are not blocked",
      );
      say(
        'the box has no bridge: its connection assist should notice that Tor is blocked, ask Moat over meek',
      );
      say(
        '(the mock Moat of this world names the obfs4 bridge above) and try that; this takes a minute or two',
      );
    } else if (censored) {
      say('the internet censors; the box has the obfs4 bridge in its settings');
    }

    // tor's bootstrap and the assist's words, as the box reports them
    let last = -1;
    let lastTor = '';
    let lastAssist = '';
    const deadline = Date.now() + (findsItself ? 480_000 : 180_000);
    let routing = false;
    for (;;) {
      const s = await status(world.boxStateDir);
      const progress = Number(s?.torProgress ?? 0);
      if (progress !== last) {
        say(`box tor bootstrap ${progress}%`);
        last = progress;
      }
      const tor = String(s?.tor ?? '');
      if (/^(failed|crashed)/.test(tor) && tor !== lastTor) {
        say(`box tor: ${tor} (see ${join(work, 'onionboxd.log')})`);
      }
      lastTor = tor;
      const assist = String(s?.assist ?? '');
      if (findsItself && s && assist !== lastAssist && assist !== 'not started') {
        say(`the box says: ${assist}`);
        lastAssist = assist;
      }
      if (s?.state === 'routing') {
        routing = true;
        break;
      }
      if (Date.now() > deadline) break;
      await sleep(300);
    }
    if (!routing) {
      say(`the box is not routing yet; see ${join(work, 'onionboxd.log')}`);
      if (censored) {
        say(`give it a bridge line yourself:  onionbox tor bridges "${bridge?.line ?? 'LINE'}"`);
      }
      if (!findsItself) tellPage();
    } else {
      say(`the box is routing after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (findsItself) {
        // the assist stores the bridge just after tor routes with it
        let found = foundBridge(world.boxStateDir);
        for (let i = 0; i < 50 && !found; i++) {
          await sleep(300);
          found = foundBridge(world.boxStateDir);
        }
        say(
          found
            ? `the box found its bridge by itself (${found.source}) and stored it: ${found.lines.join(' | ')}`
            : 'the box routes, but it stored no bridge it found (see onionboxd.log)',
        );
      }
      if (!findsItself) tellPage();
      const seen = await lanFetch(world);
      say(
        seen
          ? `a LAN device fetched http://${HOSTNAME}/ip through the box: ${seen} (the exit's address)`
          : `a LAN device could not fetch http://${HOSTNAME}/ip yet; try: onionbox sim exec -- curl http://${HOSTNAME}/ip`,
      );
    }
  } catch (err) {
    say(`failed: ${(err as Error).message}`);
    await stop('failure');
    return 1;
  }
  // keep running until a signal
  await new Promise(() => undefined);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`onionbox sim: ${String(err)}\n`);
    process.exit(1);
  },
);
