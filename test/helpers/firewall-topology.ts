/**
 * The end-to-end topology for the firewall leak test and the firewall benchmarks: the simulator's world
 * (scripts/sim/world.ts, the one topology `npm start` and the whole-box test build too), in its worst
 * case for the ruleset: the box with IPv6 and forwarding left ON, a static WAN address, no onionboxd (the
 * test drives the firewall and the box's tor itself):
 *
 *   lan ns                 box ns                                  inet ns
 *   client 10.42.0.2 ----- 10.42.0.1 [nft, tor as debian-tor] 198.18.0.2 ---- 198.18.0.1 (+ .10-.18)
 *   (IPv6 on)              (IPv6 on, forwarding ON: worst case)      private Tor network + HTTP server
 *
 * Order is fail-closed from the first packet: the box loads the static boot lockdown ruleset before any
 * link exists, the capture on the inet side of the WAN wire runs before the box's end goes up, and only
 * then do links come up. The inet namespace has IPv6 off so that every IPv6 frame on the wire is the
 * box's. Every name is unique per run; everything is removed through the given Teardown.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FirewallParams } from '../../firmware/firewall/params.js';
import type { Privnet } from '../../scripts/privnet/index.js';
import {
  ADDR,
  BOX_LAN_IF,
  BOX_WAN_IF,
  buildWorld,
  INET_IF,
  LAN_IF,
  uniquePrefix,
  LOCKDOWN_FILE as WORLD_LOCKDOWN_FILE,
} from '../../scripts/sim/world.js';
import { describeFrame, type Frame, nsRun, parsePcap, type Teardown } from './netns.js';

export interface Capture {
  file: string;
  stop(): Promise<void>;
}

export const PROBES = fileURLToPath(new URL('./bin/probes.py', import.meta.url));
export const LOCKDOWN_FILE = WORLD_LOCKDOWN_FILE;
export const PYTHON = '/usr/bin/python3';

export const LAN_CLIENT = ADDR.lanDevice;
export const BOX_LAN = ADDR.boxLan;
export const BOX_WAN = ADDR.boxWan;
export const INET_GW = ADDR.modem;
/** privnet: auth0-2, middle0-1, exit0 on .10-.15, the HTTP server on .16 (port 80), a bridge on .17 */
export const INET_ADDRS = ADDR.privnet;
export const HTTP_ADDR = ADDR.privnet[6] as string;
export const HTTP_PORT = 80;
export const TRANS_PORT = 9040;
export const DNS_PORT = 5353;
export const SOCKS_PORT = 9050;
export const WEB_PORT = 80;

export interface ProbeResult {
  probe: string;
  ok: boolean;
  [k: string]: unknown;
}

export interface BoxTor {
  pid: number;
  dataDir: string;
  /** Waits for "Bootstrapped 100%" in tor's log (after `since` bytes of it). */
  bootstrapped(timeoutMs?: number): Promise<void>;
  hup(): void;
  /** SIGKILL by pid; resolves when gone. */
  kill(): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
}

export interface Topology {
  lan: string;
  box: string;
  inet: string;
  lanIf: string;
  boxLanIf: string;
  boxWanIf: string;
  inetIf: string;
  dir: string;
  capture: Capture;
  privnet: Privnet;
  torUid: number;
  torGid: number;
  params: FirewallParams;
  /** The box's IPv6 link-local address on the LAN (IPv6 is left on in the box: the rules must hold). */
  boxLinkLocal: string;
  /** Starts the box's tor as debian-tor in the box namespace (TransPort, DNSPort on the LAN address). */
  startTor(opts?: { portFlags?: string; extraLines?: string[] }): Promise<BoxTor>;
  /** Runs probes.py in a namespace; one JSON line back. */
  probe(ns: string, args: string[], timeoutMs?: number): Promise<ProbeResult>;
  /** Frames captured so far on the WAN wire. */
  frames(): Frame[];
  /** The frames not sent by the inet side that are not TCP from the box's WAN address to a relay. */
  leaks(frames: Frame[]): Frame[];
}

function idOf(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`no user ${name} (install the tor package)`);
}

/**
 * Every frame on the WAN wire that the inet side did not send itself (the box's, or anything bridged or
 * forwarded from the LAN) must be TCP from the box's WAN address to a relay's address AND port. ARP is
 * link-level and carries no payload: it is allowed only about the box's WAN address, the relays'
 * addresses and the gateway. Anything else is a leak.
 */
export function findLeaks(
  frames: Frame[],
  w: { inetMac: string; relayEndpoints: Set<string>; relayAddrs: Set<string> },
): Frame[] {
  return frames.filter((f) => {
    if (f.srcMac === w.inetMac) return false;
    if (f.etherType === 0x0806) {
      const ok = (a?: string) => a === BOX_WAN || a === INET_GW || (a !== undefined && w.relayAddrs.has(a));
      return !(ok(f.arpSender) && ok(f.arpTarget));
    }
    if (f.etherType !== 0x0800 || f.proto !== 6) return true;
    return !(f.src === BOX_WAN && w.relayEndpoints.has(`${f.dst}:${f.dport}`));
  });
}

export async function macOf(ns: string, ifName: string): Promise<string> {
  const j = JSON.parse(await nsRun(ns, 'ip', ['-j', 'link', 'show', ifName])) as { address?: string }[];
  const m = j[0]?.address;
  if (!m) throw new Error(`no MAC for ${ifName}`);
  return m;
}

export { describeFrame };

export async function buildTopology(
  t: Teardown,
  opts: { bootLockdown: boolean; log?: (s: string) => void },
): Promise<Topology> {
  const log = opts.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'onionbox-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { uid: torUid, gid: torGid } = idOf('debian-tor');
  const world = await buildWorld({
    prefix: uniquePrefix(),
    dir,
    box: 'worst-case',
    bootLockdown: opts.bootLockdown,
    capture: true,
    log,
  });
  t.teardown(() => world.stop());
  const { lan, box, inet } = world.netns;
  const captureProc = world.processes().find((p) => p.name === 'capture');
  const capture: Capture = {
    file: world.captureFile ?? '',
    stop: async () => {
      const c = captureProc?.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGINT');
      await gone;
    },
  };
  const inetMac = await macOf(inet, INET_IF);
  const addrs = JSON.parse(await nsRun(box, 'ip', ['-j', '-6', 'addr', 'show', 'dev', BOX_LAN_IF])) as {
    addr_info?: { local?: string; scope?: string }[];
  }[];
  const boxLinkLocal = addrs[0]?.addr_info?.find((a) => a.scope === 'link')?.local ?? 'fe80::1';
  const privnet = world.privnet;
  const relayEndpoints = new Set(privnet.relayEndpoints().map((r) => `${r.address}:${r.port}`));
  const relayAddrs = new Set(privnet.relayEndpoints().map((r) => r.address));
  const lanIf = LAN_IF;
  const boxLanIf = BOX_LAN_IF;
  const boxWanIf = BOX_WAN_IF;
  const inetIf = INET_IF;

  const params: FirewallParams = {
    lanIf: boxLanIf,
    wanIf: boxWanIf,
    lanAddr: BOX_LAN,
    lanPrefix: ADDR.lanPrefix,
    torUid,
    transPort: TRANS_PORT,
    dnsPort: DNS_PORT,
    webPort: WEB_PORT,
    relays: privnet.relayEndpoints(),
  };

  const probe = async (ns: string, args: string[], timeoutMs = 40_000): Promise<ProbeResult> => {
    const out = await nsRun(ns, PYTHON, [PROBES, ...args], { timeoutMs });
    const line = out.trim().split('\n').pop() ?? '';
    return JSON.parse(line) as ProbeResult;
  };

  const startTor = async (o: { portFlags?: string; extraLines?: string[] } = {}): Promise<BoxTor> => {
    const flags = o.portFlags ? ` ${o.portFlags}` : '';
    const dataDir = mkdtempSync(join(tmpdir(), 'onionbox-boxtor-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const torrc = join(dataDir, 'torrc');
    const logFile = join(dataDir, 'notice.log');
    writeFileSync(
      torrc,
      `${[
        ...privnet.clientTorrcLines,
        `DataDirectory ${dataDir}`,
        `SocksPort 127.0.0.1:${SOCKS_PORT}${flags}`,
        `TransPort ${BOX_LAN}:${TRANS_PORT}${flags}`,
        `DNSPort ${BOX_LAN}:${DNS_PORT}`,
        'AutomapHostsOnResolve 1',
        'VirtualAddrNetworkIPv4 172.16.0.0/12',
        'ClientUseIPv6 0',
        'AvoidDiskWrites 1',
        `Log notice file ${logFile}`,
        `__OwningControllerProcess ${process.pid}`,
        ...(o.extraLines ?? []),
      ].join('\n')}\n`,
    );
    chownSync(dataDir, torUid, torGid);
    chownSync(torrc, torUid, torGid);
    const child: ChildProcess = spawn(
      'ip',
      [
        'netns',
        'exec',
        box,
        'setpriv',
        `--reuid=${torUid}`,
        `--regid=${torGid}`,
        '--clear-groups',
        'tor',
        '-f',
        torrc,
        '--ignore-missing-torrc',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const pid = child.pid ?? 0;
    const kill = async (sig: NodeJS.Signals = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, sig);
      await exited;
    };
    t.teardown(() => kill('SIGKILL'));
    const logTail = () =>
      existsSync(logFile)
        ? readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-12).join('\n')
        : '(no log)';
    return {
      pid,
      dataDir,
      logTail,
      hup: () => process.kill(pid, 'SIGHUP'),
      kill: () => kill('SIGKILL'),
      stop: () => kill('SIGTERM'),
      async bootstrapped(timeoutMs = 60_000) {
        const end = Date.now() + timeoutMs;
        while (Date.now() < end) {
          if (child.exitCode !== null) throw new Error(`box tor exited:\n${logTail()}`);
          if (existsSync(logFile) && /Bootstrapped 100%/.test(readFileSync(logFile, 'utf8'))) return;
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error(`box tor did not bootstrap:\n${logTail()}`);
      },
    };
  };

  return {
    lan,
    box,
    inet,
    lanIf,
    boxLanIf,
    boxWanIf,
    inetIf,
    dir,
    capture,
    privnet,
    boxLinkLocal,
    torUid,
    torGid,
    params,
    startTor,
    probe,
    frames: () => parsePcap(readFileSync(capture.file)),
    leaks: (frames) => findLeaks(frames, { inetMac, relayEndpoints, relayAddrs }),
  };
}
