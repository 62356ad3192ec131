/**
 * The simulated world around an unchanged onionboxd: the one topology that `npm start`, the whole-box
 * tests and the firewall's end-to-end leak test all build.
 *
 *   <p>-lan                 <p>-box                                      <p>-inet ("the internet")
 *   LAN device ---------- wlan0 10.42.0.1  [onionboxd --simulate,     eth0 (DHCP) ------ modem0 198.18.0.1
 *   eth0 (DHCP: the box)   tor as debian-tor, nft, dnsmasq, the page on :80]         + .10-.18: private Tor network,
 *   (resolv.conf: the box)                                                           web.sim.test .16, DNS/DHCP .53
 *
 * - the internet: the private Tor network (3 authorities, 2 middles, 1 exit, optionally an obfs4 bridge
 *   and a webtunnel bridge behind a TLS front) on 198.18.0.10-.18, an HTTP server at web.sim.test (`GET
 *   /ip` answers the address it saw), and the modem: dnsmasq answering names under sim.test (the exit
 *   resolves through it; so does the box's lyrebird, for the webtunnel front's name) and leasing the box
 *   its WAN address, with itself as DNS server, for 2 minutes, so renewals happen while the
 *   world runs; optionally a censoring ISP (scripts/sim/censor.ts) that drops TCP to every relay, and
 *   a meek reflector (front.sim.test, .19) with a mock Moat (moat.sim.test, .20) behind it;
 *   optionally snowflake's test broker (.21), coturn (.22), a relay endpoint (.23) and Debian's
 *   snowflake-proxy in a namespace of its own (<p>-sfp, 198.18.1.2): scripts/sim/snowflake-world.ts;
 * - the box: the boot lockdown ruleset is loaded before any link exists (as the image's unit does), the
 *   box's sysctls from firmware/system/60-onionbox.conf, then a real DHCP client (dhclient) on the WAN,
 *   then onionboxd itself, started as on a Pi but with the simulated board, and pointed at the private
 *   network by a data file (--test-network). Its nmcli is a fake that reports dhclient's lease as
 *   NetworkManager would (the DNS servers among its DHCP options);
 * - a LAN device whose dhclient gets its address, router and DNS from the box's DHCP server; its
 *   /etc/netns/<p>-lan/resolv.conf is written from that lease (removed at stop).
 *
 * Every process is started here, tracked by PID and stopped by PID; every namespace and file is named
 * from the prefix, so a crashed run's leftovers can be found and removed by name. The host's firewall,
 * routes and addresses are never touched. Commands are argument arrays, never a shell.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { processAlive } from '../../firmware/cli/sim.js';
import { type Privnet, startPrivnet, testCert } from '../privnet/index.js';
import { onionServiceTorrc } from '../privnet/onion-service.js';
import {
  CENSOR_TABLE,
  censoredEndpoints,
  censorRuleset,
  droppedPackets,
  type Endpoint,
  uncensorRuleset,
} from './censor.js';
import { wireExternalBox } from './external-box.js';
import { HelperUnit } from './helper-units.js';
import { meekBridgeArgs } from './meek-bridge.js';
import { type SnowflakeWorld, snowflakeModemAddresses, startSnowflakeWorld } from './snowflake-world.js';
import { planUnit, type RunningUnit, replaceProgram, SYSTEMD_PATH, startUnit } from './units.js';

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const LOCKDOWN_FILE = join(ROOT, 'firmware/system/onionbox-lockdown.nft');
export const SYSCTL_FILE = join(ROOT, 'firmware/system/60-onionbox.conf');
export const SIM_BIN = join(ROOT, 'scripts/sim/bin');
const PAGE_RELAY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './page-relay.ts' : './page-relay.js', import.meta.url),
);
export const DHCLIENT_SCRIPT = join(ROOT, 'scripts/sim/dhclient-script');
/** The units the image installs; the world starts the box's processes from them (scripts/sim/units.ts). */
export const UNIT_DIR = join(ROOT, 'firmware/system/systemd');

/** The world's addresses. The LAN is the box's default (10.42.0.1/24); the internet is 198.18.0.0/24. */
export const ADDR = Object.freeze({
  boxLan: '10.42.0.1',
  lanPrefix: 24,
  lanDevice: '10.42.0.2',
  modem: '198.18.0.1',
  boxWan: '198.18.0.2',
  /** privnet: auth0-2, middle0-1, exit0, the HTTP server (web.sim.test), the obfs4 bridge, the webtunnel front */
  privnet: [
    '198.18.0.10',
    '198.18.0.11',
    '198.18.0.12',
    '198.18.0.13',
    '198.18.0.14',
    '198.18.0.15',
    '198.18.0.16',
    '198.18.0.17',
    '198.18.0.18',
  ],
  dns: '198.18.0.53',
  /** The box's address on its second WAN link (worlds with `secondWan`). */
  boxWan2: '198.18.0.3',
  /** The meek reflector's TLS front, with the mock Moat behind it (worlds with `moat`). */
  meekFront: '198.18.0.19',
  /** The mock Moat itself, moat.sim.test (worlds with `moat`): what tor's exit reaches once the box routes. */
  moat: '198.18.0.20',
});
export const EXIT_ADDR = ADDR.privnet[5] as string;
export const WEB_ADDR = ADDR.privnet[6] as string;
export const HOSTNAME = 'web.sim.test';
/** The webtunnel bridge's TLS front: its line's `url=` names this host, which the modem's resolver answers. */
export const WEBTUNNEL_HOST = 'webtunnel.sim.test';
export const WEBTUNNEL_ADDR = ADDR.privnet[8] as string;
/**
 * Moat in this world (`moat`): meek_lite's front by name (the modem's resolver answers it), the reflector
 * the HTTP Host names, and the mock Moat's own name inside the tunnel. Stands in for Tor Browser's
 * endpoint (firmware/tor/moat.ts MOAT_ENDPOINT) as the test network's `moat`.
 */
export const MOAT_FRONT_HOST = 'front.sim.test';
/** The mock Moat's own name (MOAT_SIM_ENDPOINT's service): the modem's resolver answers it for the exit. */
export const MOAT_HOST = 'moat.sim.test';
/** A line the mock Moat's `builtin` answer carries that the bridge grammar refuses (the box drops it). */
export const MOAT_BAD_BUILTIN_LINE = 'obfs4 198.18.0.17:4430 NOT-A-FINGERPRINT cert=x iat-mode=0';
export const MOAT_SIM_ENDPOINT = Object.freeze({
  service: `https://${MOAT_HOST}/moat`,
  url: 'https://meek.sim.test/',
  front: MOAT_FRONT_HOST,
});
export const BOX_WAN_IF = 'eth0';
export const BOX_LAN_IF = 'wlan0';
export const LAN_IF = 'eth0';
export const INET_IF = 'modem0';
/** Worlds with `secondWan`: the box's second WAN port (say, a USB Ethernet adapter) and its modem port. */
export const BOX_WAN2_IF = 'eth1';
export const INET2_IF = 'modem1';
/** Worlds with `secondWan`: the modem's bridge over both of its ports (the internet's addresses live here). */
export const INET_BRIDGE = 'modembr0';
/** The modem's lease time: short, so that the box renews while the world runs. */
export const LEASE_SECONDS = 120;

export interface WorldOptions {
  /** Namespace prefix (`obxsim` for `npm start`, unique per test run). [a-z0-9], 2-10 chars. */
  prefix: string;
  /** Absolute directory for everything the world writes (created; removed by the caller). */
  dir: string;
  log?: (line: string) => void;
  /** Run an obfs4 bridge on the private network (its line is in `privnet.obfs4Bridge`). */
  obfs4Bridge?: boolean;
  /**
   * Run a webtunnel bridge on the private network: webtunnel-server behind a TLS front on 198.18.0.18:443
   * whose certificate the network's test CA signed (its line is in `privnet.webtunnelBridge`). The line's
   * `url=` names the front by host name (webtunnel.sim.test), which the modem's resolver answers: the box's
   * lyrebird resolves it through tor's private resolv.conf (the WAN lease's DNS server). The box's
   * tor unit gets SSL_CERT_FILE naming that CA, so lyrebird's webtunnel client trusts the front: the one
   * difference from a Pi, where a real webtunnel bridge has a publicly trusted certificate.
   */
  webtunnelBridge?: boolean;
  /**
   * A censoring ISP (scripts/sim/censor.ts): from before the box starts, the internet drops TCP from the
   * box's side to every relay's ORPort and DirPort (the authorities' among them), never to bridges.
   * `World.censor` turns it off and on while the world runs. With `obfs4Bridge` too, that bridge's line
   * is the test network's `builtinBridges` (firmware/tor/test-network.ts): the box's connection assist
   * finds it by itself, as a real box tries the release's built-in lines.
   */
  censored?: boolean;
  /**
   * Whether the obfs4 bridge is the test network's built-in line (default: with `censored` and
   * `obfs4Bridge`). false: the box has only the release's lines, which this world cannot reach (a test of
   * the owner's own line, without the box's find racing it).
   */
  builtinBridge?: boolean;
  /**
   * Moat over meek_lite (issue 21): a meek reflector with a mock Moat behind it (scripts/privnet/
   * meek-moat.ts) on 198.18.0.19:443, named front.sim.test by the modem's resolver, behind a TLS
   * certificate of a test CA the box's Moat client (onionbox-moat.service) trusts through its environment
   * (SSL_CERT_FILE for lyrebird, NODE_EXTRA_CA_CERTS for node): the one difference from a Pi. Moat's
   * settings, defaults and builtin answers name the obfs4 bridge (needs `obfs4Bridge`); the test network
   * names this Moat and no built-in lines of its own (the release's, which this world cannot reach).
   * The mock Moat itself also listens on the simulated internet (moat.sim.test, 198.18.0.20:443), where
   * the private network's exit reaches it: a routing box refreshes its built-in lines there through tor
   * (onionboxd trusts the test CA through NODE_EXTRA_CA_CERTS). Its builtin answer adds one bad line.
   */
  moat?: boolean;
  /**
   * Snowflake as far as Debian's packages go (issue 21, scripts/sim/snowflake-world.ts): a test broker
   * (HTTPS, a test CA the box's tor trusts through SSL_CERT_FILE), coturn as STUN server, Debian's
   * snowflake-proxy in a namespace of its own and a relay endpoint that records what arrives. No
   * snowflake server exists in Debian: a box with the line gets as far as the relay, never bootstraps.
   */
  snowflake?: boolean;
  /** tcpdump on the modem's side of the box's WAN link from before the first link is up. */
  capture?: boolean;
  /** How to start onionboxd: the argv before its own flags (default: node on the built dist/). */
  daemonCommand?: string[];
  /** Written as the box's config.json before onionboxd starts (default: none, the box's defaults). */
  boxConfig?: (privnet: Privnet) => Record<string, unknown>;
  /** Extra environment for onionboxd. */
  daemonEnv?: Record<string, string>;
  /**
   * The box as the image ships it (default: sysctls from firmware/system/60-onionbox.conf, boot lockdown
   * before any link, WAN by DHCP, onionboxd started), or the firewall leak test's worst case: IPv6 and
   * forwarding left ON (the ruleset alone must hold), a static WAN address, the boot lockdown only when
   * `bootLockdown`, no onionboxd (the test drives tor and the firewall itself), and an IPv6 address on
   * the LAN device. Or an `external` box (the emulated image, scripts/sim/external-box.ts): the box
   * namespace only wires QEMU's taps to the world; the LAN device asks for its lease when the caller says
   * (`leaseLanDevice`), once the box is up.
   */
  box?: 'as-shipped' | 'worst-case' | 'external';
  /** With `box: 'worst-case'`: load the boot lockdown ruleset before the links exist. */
  bootLockdown?: boolean;
  /**
   * A second WAN port on the box (eth1, linked up but unconfigured: NetworkManager manages only the
   * WAN) wired to a second port of the modem (both ports bridged). `moveWan()` moves the modem's
   * cable; with `capture`, each modem port has its own capture (`captureFiles`).
   */
  secondWan?: boolean;
  /**
   * Updates (issue 20): a release server in the internet namespace (`serverDir`'s files on WEB_ADDR:8081)
   * behind an onion service of the private Tor network (its tor in the internet namespace too, its keys
   * prepared in `onionDir` by makeOnionKeys, so the box's configuration can name it), and the box's image
   * release files (`releaseDir`: release.json, release-keys/) given to onionboxd as --release-dir (an
   * external box has its own in its image).
   */
  updates?: { serverDir: string; onionDir: string; releaseDir?: string };
}

/** Where the simulated release server listens (its onion service's HiddenServicePort points here). */
export const UPDATE_SERVER_PORT = 8081;

export interface Timings {
  [part: string]: number;
}

export interface Tracked {
  name: string;
  pid: number;
  child: ChildProcess;
  log: string;
}

export interface World {
  prefix: string;
  dir: string;
  netns: { inet: string; box: string; lan: string };
  privnet: Privnet;
  boxStateDir: string;
  /** Milliseconds each part took to come up. */
  timings: Timings;
  /** The censoring ISP (on from the start with `censored`; any world can turn it on later). */
  censor: Censor;
  /** Worlds with `snowflake`: the broker, STUN server, proxy and relay, their logs and the box's line. */
  snowflake: SnowflakeWorld | null;
  /** The pcap file when capturing. */
  captureFile: string | null;
  /** Every capture, by the box interface whose wire it watches (eth0, and eth1 with `secondWan`). */
  captureFiles: Record<string, string>;
  /**
   * `secondWan` worlds: the modem's cable moves to the box's `ifname` port: the current WAN's DHCP
   * client stops and its address goes (as NetworkManager does when the carrier goes), the old modem
   * port goes down, and a DHCP client starts on the new port. Resolves with the new lease's address.
   */
  moveWan(ifname: string): Promise<string>;
  processes(): Tracked[];
  /** Runs a command in a namespace; stdout. */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<string>;
  /** Starts a tracked process (in a namespace, or on the host with ns null); stopped by PID at stop(). */
  spawn(name: string, ns: string | null, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Tracked;
  /** onionboxd's process. */
  daemon(): Tracked | null;
  /**
   * The LAN device asks the box's DHCP server for its address, router and DNS (worlds with an `external`
   * box, once it is up); resolves when it has its lease, rejects after `timeoutMs`.
   */
  leaseLanDevice(timeoutMs: number): Promise<void>;
  /**
   * Lets the host's browser reach the page as a LAN device would: a relay in the LAN device's namespace
   * (a Unix socket in `dir`) and a listener on 127.0.0.1:port (0: any free port) that pipes into it.
   * Closed at stop().
   */
  exposePage(port: number): Promise<string>;
  /** The whole description `onionbox sim info --json` prints. */
  info(): WorldInfo;
  stop(): Promise<void>;
}

export interface Censor {
  /** What it blocks when on: every relay's ORPort and DirPort (bridges are not among them). */
  blocked: readonly Endpoint[];
  /** Whether the internet censors now. */
  active(): boolean;
  /** Censor (true) or stop censoring (false): the internet namespace's table loaded or removed. */
  set(on: boolean): Promise<void>;
  /** Packets it dropped since it was last turned on (0 when off). */
  dropped(): Promise<number>;
}

export interface WorldInfo {
  pid: number;
  startedAt: string;
  dir: string;
  lan: { netns: string; interface: string; address: string };
  box: {
    netns: string;
    lanAddress: string;
    lanInterface: string;
    wanInterface: string;
    webPort: number;
    stateDir: string;
    pid: number;
  };
  internet: { netns: string; hostname: string; exitAddress: string; modem: string; censored: boolean };
  page: { url: string | null; socket: string | null };
  pids: { name: string; pid: number }[];
}

const PREFIX = /^[a-z][a-z0-9]{1,9}$/;

/** A namespace prefix unique to this process and call (tests run several worlds at once). */
export function uniquePrefix(): string {
  return `ob${(process.pid % 46656).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

async function ip(args: string[]): Promise<void> {
  await execFileP('ip', args, { timeout: 15_000 });
}

/**
 * Stops, by PID, whatever still runs in one of the world's own namespaces before it is deleted: a
 * SIGKILLed onionboxd leaves its children (dnsmasq, hostapd) behind, which outlive the namespace.
 * Returns the PIDs it found.
 */
export async function stopNamespaceProcesses(ns: string): Promise<number[]> {
  let out = '';
  try {
    out = (await execFileP('ip', ['netns', 'pids', ns], { timeout: 15_000 })).stdout;
  } catch {
    return [];
  }
  const pids = out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[0-9]+$/.test(l))
    .map(Number)
    .filter((pid) => pid !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (let i = 0; i < 50 && pids.some(processAlive); i++) await sleep(100);
  return pids;
}

export async function nsExec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, cmd, ...args], {
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Namespaces of a prefix that exist now. */
export async function namespacesOf(prefix: string): Promise<string[]> {
  const { stdout } = await execFileP('ip', ['netns', 'list'], { timeout: 10_000 });
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}

/** The sysctl lines of a sysctl.d file that are per network namespace (net.*). Pure. */
export function netSysctls(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(-?)(net\.[a-z0-9_.*-]+)\s*=\s*(\S+)$/.exec(line);
    if (m?.[2] && m[3] !== undefined && !m[2].includes('*')) out.push([m[2], m[3]]);
  }
  return out;
}

/** The modem's dnsmasq arguments: DNS for sim.test only, and one 2-minute lease for the box. Pure. */
export function modemArgs(o: {
  dir: string;
  iface: string;
  leaseSeconds: number;
  /** The last address it leases (default: only ADDR.boxWan). */
  lastAddress?: string;
}): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    `--pid-file=${join(o.dir, 'modem.pid')}`,
    `--dhcp-leasefile=${join(o.dir, 'modem.leases')}`,
    `--interface=${o.iface}`,
    '--bind-interfaces',
    `--listen-address=${ADDR.dns}`,
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--log-facility=-',
    `--address=/${HOSTNAME}/${WEB_ADDR}`,
    `--address=/${WEBTUNNEL_HOST}/${WEBTUNNEL_ADDR}`,
    `--address=/${MOAT_FRONT_HOST}/${ADDR.meekFront}`,
    `--address=/${MOAT_HOST}/${ADDR.moat}`,
    ...snowflakeModemAddresses(),
    // every other name under sim.test, and everything else: no such domain (never forwarded anywhere)
    '--address=/#/',
    `--dhcp-range=${ADDR.boxWan},${o.lastAddress ?? ADDR.boxWan},255.255.255.0,${o.leaseSeconds}s`,
    `--dhcp-option=option:router,${ADDR.modem}`,
    `--dhcp-option=option:dns-server,${ADDR.dns}`,
    '--dhcp-authoritative',
  ];
}

/** The LAN device's dhclient.conf: an ordinary device, which also wants its DNS servers. */
export const LAN_DHCLIENT_CONF = `# onionbox simulator: the LAN device
request subnet-mask, broadcast-address, routers, domain-name-servers, dhcp-lease-time,
        dhcp-server-identifier, dhcp-renewal-time, dhcp-rebinding-time;
`;

/**
 * The box's dhclient.conf: sends no host name or vendor id, and asks for the DNS servers as
 * NetworkManager's DHCP client always does (its option table requests domain_name_servers whatever the
 * profile's ignore-auto-dns says; the box's profile ignores them for its own resolv.conf, and onionboxd
 * reads them from `nmcli -t -f DHCP4 device show` for tor's private resolv.conf only).
 */
export const DHCLIENT_CONF = `# onionbox simulator: the box's DHCP client sends nothing about itself
request subnet-mask, broadcast-address, routers, domain-name-servers, dhcp-lease-time,
        dhcp-server-identifier, dhcp-renewal-time, dhcp-rebinding-time;
send dhcp-client-identifier = hardware;
`;

/** One part of the world: it starts or makes its part and keeps what it made in the build. */
type Step = (b: Build) => Promise<void> | void;

/**
 * The world's parts in the order they come up. The options choose which parts there are (the box as
 * shipped or the leak test's worst case, the boot lockdown, captures); a timing step closes the span of
 * the parts before it (`World.timings`).
 */
function worldSteps(opts: WorldOptions): Step[] {
  const worst = opts.box === 'worst-case';
  if (opts.box === 'external') {
    return [
      makeNamespaces,
      ipv6OffOn('inet', 'lan', 'box'),
      makeLinks,
      ipv6OffOnLinks,
      addressTheInternet,
      ...(opts.capture ? [startCaptures] : []),
      (b) => wireExternalBox(b.netns.box, { wan: BOX_WAN_IF, lan: BOX_LAN_IF }),
      makeLanNetnsDir,
      timing('namespaces'),
      startModem,
      startPrivateTorNetwork,
      privateTorNetworkReady,
      ...(opts.censored ? [censorOn] : []),
      timing('private Tor network'),
      // the emulated image's update test: the release server and its onion service (images/update-test.ts)
      ...(opts.updates ? [startUpdateServer, timing('update server and its onion service')] : []),
    ];
  }
  return [
    // 1. namespaces and links; the box closed before any link exists
    makeNamespaces,
    ...(!worst || opts.bootLockdown ? [loadBootLockdown] : []),
    worst ? forwardOnTheBox : applyBoxSysctls,
    worst ? ipv6OffOn('inet') : ipv6OffOn('inet', 'lan'),
    makeLinks,
    ...(worst ? [] : [ipv6OffOnLinks]),
    addressTheInternet,
    ...(opts.capture ? [startCaptures] : []),
    timing('namespaces'),
    // 2. the internet: the modem (DNS + DHCP), then the private Tor network (in the background)
    startModem,
    startPrivateTorNetwork,
    // 3. the box's links, its DHCP client on the WAN, the LAN device
    raiseBoxLinks,
    worst ? staticBoxAddresses : startBoxWanDhcp,
    makeLanNetnsDir,
    ...(worst
      ? [staticLanDevice, timing('box links (static WAN)')]
      : [waitForWanLease, timing('box WAN lease (DHCP)')]),
    privateTorNetworkReady,
    ...(opts.moat ? [startMeekMoat] : []),
    ...(opts.snowflake ? [startSnowflake] : []),
    // the ISP censors before the box's first packet to a relay
    ...(opts.censored ? [censorOn] : []),
    timing('private Tor network'),
    ...(opts.updates ? [startUpdateServer, timing('update server and its onion service')] : []),
    // 4. the box: onionboxd as on a Pi, with the simulated board, joining the private network
    // 5. the LAN device asks the box's DHCP server for its address, router and DNS
    ...(worst
      ? []
      : [
          startOnionboxd,
          timing('onionboxd'),
          startWeb,
          timing('onionbox-web'),
          lanDeviceByDhcp,
          timing("LAN device lease (the box's DHCP)"),
        ]),
  ];
}

export async function buildWorld(opts: WorldOptions): Promise<World> {
  const b = newBuild(opts);
  try {
    for (const step of worldSteps(opts)) await step(b);
  } catch (err) {
    await stopWorld(b);
    throw err;
  }
  return worldOf(b);
}

/** The world while it is built, then run: its names and options, and everything started so far. */
interface Build {
  opts: WorldOptions;
  prefix: string;
  dir: string;
  /** `moat` worlds: the meek front's and mock Moat's test CA, where debian-tor can read it. */
  moatCa?: string;
  /** `snowflake` worlds */
  snowflake?: SnowflakeWorld;
  log: (line: string) => void;
  netns: { inet: string; box: string; lan: string };
  /** `secondWan` worlds */
  second: boolean;
  /** Where the internet's addresses live: the modem's port, or the bridge over both ports. */
  inetIf: string;
  tracked: Tracked[];
  /** The private network's processes (started by startPrivnet, recorded in pids.json too). */
  others: { name: string; pid: number }[];
  cleanups: (() => Promise<void> | void)[];
  timings: Timings;
  t0: number;
  /** When the last timing closed. */
  mark: number;
  privnetStarting: Promise<Privnet> | null;
  privnet: Privnet | null;
  daemon: Tracked | null;
  captureFile: string | null;
  captureFiles: Record<string, string>;
  /** The box's WAN port now (moveWan changes it) and its DHCP client. */
  wanIf: string;
  wanClient: Tracked | null;
  pageUrl: string | null;
  leaseFile: string;
  lanLeaseFile: string;
  boxStateDir: string;
  /** The box's units started through the unit runner (stopped from restarting first at stop()). */
  units: RunningUnit[];
  /** Whether the censor's table is loaded in the internet namespace. */
  censoring: boolean;
}

/** Checks the prefix and the directory (made, traversable by the box's tor); starts nothing. */
function newBuild(opts: WorldOptions): Build {
  if (!PREFIX.test(opts.prefix)) throw new Error(`sim: bad prefix ${opts.prefix}`);
  const { prefix, dir } = opts;
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  // the box's tor runs as debian-tor and must traverse (not list) its way to its data directory
  chmodSync(dir, 0o711);
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `sim: ${d} is not traversable by other users: the box's tor (debian-tor) could not reach ${dir} (chmod o+x ${d}, or choose another directory)`,
      );
    }
  }
  const second = opts.secondWan === true;
  const t0 = Date.now();
  return {
    opts,
    prefix,
    dir,
    log: opts.log ?? (() => undefined),
    netns: { inet: `${prefix}-inet`, box: `${prefix}-box`, lan: `${prefix}-lan` },
    second,
    inetIf: second ? INET_BRIDGE : INET_IF,
    tracked: [],
    others: [],
    cleanups: [],
    timings: {},
    t0,
    mark: t0,
    privnetStarting: null,
    privnet: null,
    daemon: null,
    captureFile: null,
    captureFiles: {},
    wanIf: BOX_WAN_IF,
    wanClient: null,
    pageUrl: null,
    leaseFile: wanLeaseFile(dir, BOX_WAN_IF),
    lanLeaseFile: join(dir, 'lan-lease.env'),
    boxStateDir: join(dir, 'box'),
    units: [],
    censoring: false,
  };
}

/** A step that records how long the parts since the last timing took. */
function timing(part: string): Step {
  return (b) => {
    const now = Date.now();
    b.timings[part] = now - b.mark;
    b.mark = now;
    b.log(`${part} ready (${((now - b.t0) / 1000).toFixed(1)} s)`);
  };
}

function recordPids(b: Build): void {
  writeFileSync(
    join(b.dir, 'pids.json'),
    `${JSON.stringify([...b.tracked.map((x) => ({ name: x.name, pid: x.pid })), ...b.others])}\n`,
  );
}

/** Starts a process (in a namespace, or on the host with ns null) with its log in the world's directory. */
function track(
  b: Build,
  name: string,
  ns: string | null,
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Tracked {
  const logFile = join(b.dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) throw new Error(`sim: bad process name ${name}`);
  const argv = ns ? ['netns', 'exec', ns, cmd, ...args] : args;
  const child = spawn(ns ? 'ip' : cmd, argv, {
    stdio: ['pipe', fd, fd],
    env: env ?? process.env,
  });
  const t: Tracked = { name, pid: child.pid ?? 0, child, log: logFile };
  b.tracked.push(t);
  // recorded as they start: a run that dies half-way can still be cleaned up by PID
  recordPids(b);
  return t;
}

async function stopTracked(t: Tracked, graceMs = 5000): Promise<void> {
  const c = t.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  try {
    process.kill(t.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(t.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, graceMs);
  await gone;
  clearTimeout(timer);
}

/** A real DHCP client (dhclient) with its own files, our hook script, and no host name sent. */
function startDhclient(
  b: Build,
  name: string,
  ns: string,
  ifname: string,
  conf: string,
  vars: Record<string, string>,
): Tracked {
  const confFile = join(b.dir, `${name}.conf`);
  writeFileSync(confFile, conf);
  // dhclient runs its script with a clean environment: -e passes the variables it needs
  const env = Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  return track(b, name, ns, 'dhclient', [
    '-d',
    '-4',
    '-v',
    ...env,
    '-cf',
    confFile,
    '-sf',
    DHCLIENT_SCRIPT,
    '-lf',
    join(b.dir, `${name}.leases`),
    '-pf',
    join(b.dir, `${name}.pid`),
    ifname,
  ]);
}

/** Waits (30 s by default) until a file exists: a lease recorded by the DHCP client's hook script. */
async function waitForFile(file: string, what: string, timeoutMs = 30_000): Promise<void> {
  for (let i = 0; !existsSync(file); i++) {
    if (i * 100 > timeoutMs) throw new Error(`sim: ${what} in ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

async function stopWorld(b: Build): Promise<void> {
  for (const u of b.units) u.stop();
  // the page relay and the daemon first (the daemon's tor goes with it), then the rest, by PID
  for (const t of [...b.tracked].reverse()) await stopTracked(t, t === b.daemon ? 15_000 : 5000);
  await b.privnet?.stop().catch(() => undefined);
  for (const c of b.cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  for (const ns of Object.values(b.netns)) {
    await stopNamespaceProcesses(ns);
    await ip(['netns', 'del', ns]).catch(() => undefined);
  }
  rmSync(`/etc/netns/${b.netns.lan}`, { recursive: true, force: true });
}

// ---- the steps, in the order worldSteps lists them ----

async function makeNamespaces(b: Build): Promise<void> {
  for (const ns of Object.values(b.netns)) {
    await ip(['netns', 'add', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }
}

/** The box closed before any link exists, as the image's unit does. */
async function loadBootLockdown(b: Build): Promise<void> {
  await nsExec(b.netns.box, 'nft', ['-f', LOCKDOWN_FILE]);
}

/** The worst case: forwarding left on (the ruleset alone must hold). */
async function forwardOnTheBox(b: Build): Promise<void> {
  await nsExec(b.netns.box, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
}

/** The box's sysctls from firmware/system/60-onionbox.conf. */
async function applyBoxSysctls(b: Build): Promise<void> {
  for (const [k, v] of netSysctls(readFileSync(SYSCTL_FILE, 'utf8'))) {
    await nsExec(b.netns.box, 'sysctl', ['-q', '-w', `${k}=${v}`]).catch(() => undefined);
  }
}

/** IPv6 off in the namespaces around the box. */
function ipv6OffOn(...which: ('inet' | 'lan' | 'box')[]): Step {
  return async (b) => {
    for (const ns of which.map((w) => b.netns[w])) {
      await nsExec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
      await nsExec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
  };
}

/** Two veth pairs (three with `secondWan`), each end created straight in its namespace (the host never sees the names). */
async function makeLinks(b: Build): Promise<void> {
  const { netns } = b;
  for (const [boxIf, peer, peerNs] of [
    [BOX_WAN_IF, INET_IF, netns.inet],
    [BOX_LAN_IF, LAN_IF, netns.lan],
    ...(b.second ? ([[BOX_WAN2_IF, INET2_IF, netns.inet]] as const) : []),
  ] as const) {
    await ip([
      'link',
      'add',
      boxIf,
      'netns',
      netns.box,
      'type',
      'veth',
      'peer',
      'name',
      peer,
      'netns',
      peerNs,
    ]);
  }
}

/** The sysctl file's IPv6-off applies to interfaces made after it: say it for the links too. */
async function ipv6OffOnLinks(b: Build): Promise<void> {
  const { netns } = b;
  for (const [ns, ifname] of [
    [netns.box, BOX_WAN_IF],
    [netns.box, BOX_LAN_IF],
    [netns.lan, LAN_IF],
    ...(b.second ? ([[netns.box, BOX_WAN2_IF]] as const) : []),
  ] as const) {
    await nsExec(ns, 'sysctl', ['-q', '-w', `net.ipv6.conf.${ifname}.disable_ipv6=1`]).catch(() => undefined);
  }
}

/** The modem's port(s) (bridged with `secondWan`) carrying the internet's addresses, up. */
async function addressTheInternet(b: Build): Promise<void> {
  const { netns, inetIf } = b;
  if (b.second) {
    // the modem's two ports on one bridge (no STP: ports forward at once)
    await ip(['-n', netns.inet, 'link', 'add', INET_BRIDGE, 'type', 'bridge', 'stp_state', '0']);
    for (const port of [INET_IF, INET2_IF]) {
      await ip(['-n', netns.inet, 'link', 'set', port, 'master', INET_BRIDGE]);
    }
  }
  // The exit's address first: it becomes the subnet's primary address, which the kernel uses as the
  // source of the exit's connections to the (local) HTTP server, so the server sees the exit's address.
  await ip(['-n', netns.inet, 'addr', 'add', `${EXIT_ADDR}/24`, 'dev', inetIf]);
  for (const a of [
    ADDR.modem,
    ADDR.dns,
    ...ADDR.privnet.filter((x) => x !== EXIT_ADDR),
    ADDR.meekFront,
    ADDR.moat,
  ]) {
    await ip(['-n', netns.inet, 'addr', 'add', `${a}/24`, 'dev', inetIf]);
  }
  for (const l of b.second ? [INET_BRIDGE, INET_IF, INET2_IF] : [INET_IF]) {
    await ip(['-n', netns.inet, 'link', 'set', l, 'up']);
  }
}

/** tcpdump on the modem's side of each WAN wire, capturing before the box's links are up. */
async function startCaptures(b: Build): Promise<void> {
  for (const [boxIf, port, name] of [
    [BOX_WAN_IF, INET_IF, 'wan'],
    ...(b.second ? ([[BOX_WAN2_IF, INET2_IF, 'wan2']] as const) : []),
  ] as const) {
    const file = join(b.dir, `${name}.pcap`);
    b.captureFiles[boxIf] = file;
    const cap = track(b, name === 'wan' ? 'capture' : `capture-${name}`, b.netns.inet, 'tcpdump', [
      '-i',
      port,
      '-n',
      '-s',
      '128',
      '-U',
      '-w',
      file,
    ]);
    // tcpdump is capturing once the file has its header
    for (let i = 0; i < 100 && !(existsSync(file) && readFileSync(file).length >= 24); i++) {
      if (cap.child.exitCode !== null) throw new Error(`tcpdump exited: ${readFileSync(cap.log, 'utf8')}`);
      await sleep(50);
    }
  }
  b.captureFile = b.captureFiles[BOX_WAN_IF] ?? null;
}

/** The modem: dnsmasq answering names under sim.test and leasing the box its WAN address. */
function startModem(b: Build): void {
  track(
    b,
    'modem',
    b.netns.inet,
    'dnsmasq',
    modemArgs({
      dir: b.dir,
      iface: b.inetIf,
      leaseSeconds: LEASE_SECONDS,
      ...(b.second ? { lastAddress: ADDR.boxWan2 } : {}),
    }),
  );
}

/** The private Tor network, started in the background (privateTorNetworkReady waits for it). */
function startPrivateTorNetwork(b: Build): void {
  const resolvConf = join(b.dir, 'exit-resolv.conf');
  writeFileSync(resolvConf, `nameserver ${ADDR.dns}\n`);
  const privnetDir = join(b.dir, 'privnet');
  rmSync(privnetDir, { recursive: true, force: true });
  mkdirSync(privnetDir, { recursive: true, mode: 0o700 });
  b.privnetStarting = startPrivnet({
    dir: privnetDir,
    netns: b.netns.inet,
    addresses: [...ADDR.privnet],
    httpServer: true,
    httpPort: 80,
    exitResolvConf: resolvConf,
    obfs4Bridge: b.opts.obfs4Bridge === true,
    webtunnelBridge: b.opts.webtunnelBridge === true,
    webtunnelHost: WEBTUNNEL_HOST,
    log: (l) => b.log(`privnet: ${l}`),
    onSpawn: (name, pid) => {
      b.others.push({ name, pid });
      recordPids(b);
    },
  });
  b.privnetStarting.catch(() => undefined);
}

async function raiseBoxLinks(b: Build): Promise<void> {
  for (const ifname of [BOX_WAN_IF, BOX_LAN_IF, ...(b.second ? [BOX_WAN2_IF] : [])]) {
    await ip(['-n', b.netns.box, 'link', 'set', ifname, 'up']);
  }
}

/** The worst case: a static WAN address and the LAN address, with the modem as the default route. */
async function staticBoxAddresses(b: Build): Promise<void> {
  const box = b.netns.box;
  await ip(['-n', box, 'addr', 'add', `${ADDR.boxWan}/24`, 'dev', BOX_WAN_IF]);
  await ip(['-n', box, 'addr', 'add', `${ADDR.boxLan}/${ADDR.lanPrefix}`, 'dev', BOX_LAN_IF]);
  await ip(['-n', box, 'route', 'add', 'default', 'via', ADDR.modem]);
}

/** The box's DHCP client on the WAN (what the simulated nmcli reports). */
function startBoxWanDhcp(b: Build): void {
  rmSync(b.leaseFile, { force: true });
  b.wanClient = startDhclient(b, 'dhclient', b.netns.box, BOX_WAN_IF, DHCLIENT_CONF, {
    OBX_SIM_LEASE: b.leaseFile,
  });
}

/** The LAN device's /etc/netns directory, where its resolv.conf goes. */
function makeLanNetnsDir(b: Build): void {
  mkdirSync(`/etc/netns/${b.netns.lan}`, { recursive: true });
}

/** The leak test's client: a static address, IPv6 on, the box as router and DNS. */
async function staticLanDevice(b: Build): Promise<void> {
  const lan = b.netns.lan;
  await ip(['-n', lan, 'addr', 'add', `${ADDR.lanDevice}/${ADDR.lanPrefix}`, 'dev', LAN_IF]);
  await ip(['-n', lan, 'link', 'set', LAN_IF, 'up']);
  await ip(['-n', lan, 'route', 'add', 'default', 'via', ADDR.boxLan]);
  await ip(['-n', lan, 'addr', 'add', '2001:db8:200::2/64', 'dev', LAN_IF]);
  await ip(['-n', lan, '-6', 'route', 'add', 'default', 'dev', LAN_IF]);
  writeFileSync(`/etc/netns/${lan}/resolv.conf`, `nameserver ${ADDR.boxLan}\n`);
}

async function waitForWanLease(b: Build): Promise<void> {
  await waitForFile(b.leaseFile, 'the box got no WAN lease from the modem');
}

async function privateTorNetworkReady(b: Build): Promise<void> {
  if (!b.privnetStarting) throw new Error('sim: the private Tor network was never started');
  b.privnet = await b.privnetStarting;
}

/**
 * The meek reflector and the mock Moat behind it (WorldOptions.moat), in the internet namespace: its
 * certificates from a test CA of its own, its answers naming the obfs4 bridge.
 */
async function startMeekMoat(b: Build): Promise<void> {
  const bridge = b.privnet?.obfs4Bridge;
  if (!bridge) throw new Error('sim: moat needs the obfs4 bridge (obfs4Bridge)');
  const dir = join(b.dir, 'meek');
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const front = await testCert(dir, 'front', [`DNS:${MOAT_FRONT_HOST}`, 'DNS:meek.sim.test']);
  const moat = await testCert(dir, 'moat', [`DNS:${MOAT_HOST}`]);
  const setting = {
    settings: [{ bridges: { type: 'obfs4', source: 'bridgedb', bridge_strings: [bridge.line] } }],
  };
  const answers = join(dir, 'answers.json');
  writeFileSync(
    answers,
    // builtin: the network's bridge (not one of the release's lines) and one line the grammar refuses
    JSON.stringify({
      settings: setting,
      defaults: setting,
      builtin: { obfs4: [bridge.line, MOAT_BAD_BUILTIN_LINE] },
    }),
  );
  // where the box's Moat client (debian-tor) can read the CA
  const ca = join(b.dir, 'moat-test-ca.pem');
  writeFileSync(ca, readFileSync(front.caFile), { mode: 0o644 });
  b.moatCa = ca;
  const script = join(ROOT, 'scripts/privnet/meek-moat.ts');
  const t = track(b, 'meek-moat', b.netns.inet, process.execPath, [
    '--import',
    import.meta.resolve('tsx'),
    script,
    '--host',
    ADDR.meekFront,
    '--port',
    '443',
    '--cert',
    front.certFile,
    '--key',
    front.keyFile,
    '--moat-cert',
    moat.certFile,
    '--moat-key',
    moat.keyFile,
    '--answers',
    answers,
    // Moat itself on the simulated internet, as bridges.torproject.org is: reached through tor's exit
    '--moat-public',
    `${ADDR.moat}:443`,
    // and a meek_lite bridge: the obfs4 bridge's ORPort behind a second reflector name (./meek-bridge.ts)
    ...meekBridgeArgs(bridge),
  ]);
  await waitForLog(t, /LISTENING 443/, 60_000);
  b.log(`meek reflector and mock Moat on ${ADDR.meekFront}:443 (${MOAT_FRONT_HOST})`);
}

/** Snowflake's broker, STUN server, proxy and relay (WorldOptions.snowflake; scripts/sim/snowflake-world.ts). */
async function startSnowflake(b: Build): Promise<void> {
  b.snowflake = await startSnowflakeWorld(
    {
      prefix: b.prefix,
      dir: b.dir,
      inetNs: b.netns.inet,
      inetIf: b.inetIf,
      track: (name, ns, cmd, args, env) => track(b, name, ns, cmd, args, env),
      waitForLog: (t, re, ms) => waitForLog(t as Tracked, re, ms),
      cleanup: (fn) => b.cleanups.push(fn),
      stopNamespace: stopNamespaceProcesses,
      log: b.log,
    },
    ROOT,
  );
}

/** The censoring ISP, on from the start (WorldOptions.censored). */
async function censorOn(b: Build): Promise<void> {
  await setCensor(b, true);
  b.log(`the internet censors: TCP to ${b.privnet?.relays.length ?? 0} relays' ORPorts and DirPorts dropped`);
}

/** Loads or removes the censor's table in the internet namespace (scripts/sim/censor.ts). */
async function setCensor(b: Build, on: boolean): Promise<void> {
  if (!b.privnet) throw new Error('sim: the censor needs the private Tor network');
  const file = join(b.dir, 'censor.nft');
  writeFileSync(file, on ? censorRuleset(censoredEndpoints(b.privnet)) : uncensorRuleset());
  await nsExec(b.netns.inet, 'nft', ['-f', file]);
  b.censoring = on;
}

async function censorDropped(b: Build): Promise<number> {
  if (!b.censoring) return 0;
  return droppedPackets(
    await nsExec(b.netns.inet, 'nft', ['list', 'counter', 'inet', CENSOR_TABLE, 'censored']),
  );
}

/** The release server and its onion service, both in the internet namespace (WorldOptions.updates). */
async function startUpdateServer(b: Build): Promise<void> {
  const u = b.opts.updates;
  if (!u || !b.privnet) throw new Error('sim: the update server needs the private Tor network');
  const script = new URL(
    import.meta.url.endsWith('.ts') ? './update-server.ts' : './update-server.js',
    import.meta.url,
  ).pathname;
  const nodeArgs = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), script] : [script];
  track(b, 'update-server', b.netns.inet, process.execPath, [
    ...nodeArgs,
    '--host',
    WEB_ADDR,
    '--port',
    String(UPDATE_SERVER_PORT),
    '--dir',
    u.serverDir,
  ]);
  const torDir = join(b.dir, 'update-onion');
  mkdirSync(torDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(torDir, 'torrc'),
    onionServiceTorrc({
      dir: torDir,
      hsDir: u.onionDir,
      networkLines: b.privnet.clientTorrcLines,
      target: `${WEB_ADDR}:${UPDATE_SERVER_PORT}`,
    }),
  );
  track(b, 'update-onion', b.netns.inet, 'tor', ['-f', join(torDir, 'torrc'), '--ignore-missing-torrc']);
}

/** onionboxd as on a Pi, with the simulated board, pointed at the private network (--test-network). */
async function startOnionboxd(b: Build): Promise<void> {
  const { opts, boxStateDir } = b;
  const privnet = b.privnet;
  if (!privnet) throw new Error('sim: onionboxd needs the private Tor network first');
  mkdirSync(boxStateDir, { recursive: true, mode: 0o711 });
  if (opts.boxConfig)
    writeFileSync(join(boxStateDir, 'config.json'), JSON.stringify(opts.boxConfig(privnet)), {
      mode: 0o600,
    });
  const testNetwork = join(b.dir, 'test-network.json');
  // behind the censor, the network's obfs4 bridge stands in for the release's built-in lines (data the
  // box reads as a real box reads its own; the release's would dial addresses this world does not have)
  const builtin = opts.builtinBridge ?? (opts.censored === true && opts.moat !== true);
  const builtinBridges = builtin && privnet.obfs4Bridge ? [privnet.obfs4Bridge.line] : undefined;
  writeFileSync(
    testNetwork,
    `${JSON.stringify(
      {
        torrc: privnet.clientTorrcLines,
        checkUrl: `http://${HOSTNAME}/api/ip`,
        ...(builtinBridges ? { builtinBridges } : {}),
        ...(opts.moat ? { moat: MOAT_SIM_ENDPOINT } : {}),
      },
      null,
      2,
    )}\n`,
  );
  // dnsmasq's own unit, as systemd runs it on a Pi (its user, capabilities, restart on a new config):
  // onionboxd only writes the config (issue 23)
  const dnsmasq = new HelperUnit({
    name: 'dnsmasq',
    pathMap: simPathMap(b),
    credentialsDir: join(b.dir, 'credentials-dnsmasq'),
    spawn: (name, argv, env) => track(b, name, b.netns.box, argv[0] ?? '', argv.slice(1), env),
  });
  dnsmasq.start();
  b.cleanups.push(() => dnsmasq.stop());
  // the connection assist's Moat client, as tor's user, when onionboxd writes a job (issue 21)
  const moat = new HelperUnit({
    name: 'moat',
    pathMap: simPathMap(b),
    spawn: (name, argv, env) => track(b, name, b.netns.box, argv[0] ?? '', argv.slice(1), env),
    ...(opts.daemonCommand
      ? {
          program: {
            marker: 'dist/firmware/cli/main.js',
            argv: opts.daemonCommand.map((a) => a.replace(/firmware\/main\.ts$/, 'firmware/cli/main.ts')),
          },
        }
      : {}),
    ...(b.moatCa ? { env: { SSL_CERT_FILE: b.moatCa, NODE_EXTRA_CA_CERTS: b.moatCa } } : {}),
  });
  moat.start();
  b.cleanups.push(() => moat.stop());
  // as systemd starts it: onionboxd.service's command line, user, capabilities and directories
  const plan = planUnit(readFileSync(join(UNIT_DIR, 'onionboxd.service'), 'utf8'), {
    name: 'onionboxd',
    pathMap: simPathMap(b),
    extraArgs: [
      '--simulate',
      '--test-network',
      testNetwork,
      // systemd's runtime root (%t) in the world: where dnsmasq's and hostapd's units keep their files
      '--run-dir',
      join(b.dir, 'runroot'),
      ...(opts.updates?.releaseDir ? ['--release-dir', opts.updates.releaseDir] : []),
    ],
  });
  if (opts.daemonCommand) plan.main = replaceProgram(plan.main, 'dist/firmware/main.js', opts.daemonCommand);
  // what Debian's tor package leaves for the unit: /var/lib/tor, debian-tor's, 2700
  mkdirSync(join(b.dir, 'tor-data'), { recursive: true });
  chownSync(join(b.dir, 'tor-data'), ...userIds('debian-tor'));
  chmodSync(join(b.dir, 'tor-data'), 0o2700);
  const unit = startUnit(
    plan,
    (name, argv, env) => track(b, name, b.netns.box, argv[0] ?? '', argv.slice(1), env),
    {
      ...opts.daemonEnv,
      ...runnerEnv(),
      // the mock Moat's test CA (the built-in lines' refresh over tor): the one difference from a Pi
      ...(b.moatCa ? { NODE_EXTRA_CA_CERTS: b.moatCa } : {}),
      PATH: `${SIM_BIN}:${SYSTEMD_PATH}`,
      OBX_SIM_WAN_LEASE: b.leaseFile,
    },
  );
  b.units.push(unit);
  await unit.started;
  b.daemon = b.tracked.findLast((x) => x.name === 'onionboxd') ?? null;
  if (!b.daemon) throw new Error('sim: onionboxd did not start');
  await waitForLog(b.daemon, /"msg":"onionboxd ready"/, 180_000);
  // the webtunnel front's, the meek front's and the snowflake broker's test CAs in one bundle
  // (SSL_CERT_FILE names one file), where debian-tor can read it (the private network's directory is
  // 0700): lyrebird in tor's unit trusts them, the one difference from a Pi
  const torEnv: Record<string, string> = {};
  const torCas = [
    ...(privnet.webtunnelBridge ? [readFileSync(privnet.webtunnelBridge.caFile, 'utf8')] : []),
    ...(b.moatCa ? [readFileSync(b.moatCa, 'utf8')] : []),
    ...(b.snowflake ? [readFileSync(b.snowflake.caFile, 'utf8')] : []),
  ];
  if (torCas.length > 0) {
    const ca = join(b.dir, 'tor-test-cas.pem');
    writeFileSync(ca, torCas.join(''), { mode: 0o644 });
    torEnv.SSL_CERT_FILE = ca;
  }
  // tor's own unit, ordered after onionboxd's readiness (it reads the torrc onionboxd wrote): as
  // debian-tor with no capability, restarted by the runner as systemd would (Restart=always)
  const tor = startUnit(
    planUnit(readFileSync(join(UNIT_DIR, 'onionbox-tor.service'), 'utf8'), {
      name: 'onionbox-tor',
      pathMap: simPathMap(b),
    }),
    (name, argv, env) => track(b, name, b.netns.box, argv[0] ?? '', argv.slice(1), env),
    torEnv,
  );
  b.units.push(tor);
  await tor.started;
}

/**
 * The page as on a Pi: onionbox-web.service's process (its own user, only CAP_NET_BIND_SERVICE) on the
 * box's LAN address, talking to onionboxd only through its page socket. Run from source like onionboxd
 * when the world runs onionboxd from source (daemonCommand).
 */
async function startWeb(b: Build): Promise<void> {
  const plan = planUnit(readFileSync(join(UNIT_DIR, 'onionbox-web.service'), 'utf8'), {
    name: 'onionbox-web',
    pathMap: simPathMap(b),
  });
  const source = b.opts.daemonCommand?.map((a) => a.replace(/firmware\/main\.ts$/, 'web/main.ts'));
  if (source) plan.main = replaceProgram(plan.main, 'dist/web/main.js', source);
  const unit = startUnit(
    plan,
    (name, argv, env) => track(b, name, b.netns.box, argv[0] ?? '', argv.slice(1), env),
    { ...runnerEnv(), PATH: SYSTEMD_PATH },
  );
  b.units.push(unit);
  await unit.started;
  const web = b.tracked.findLast((x) => x.name === 'onionbox-web');
  if (!web) throw new Error('sim: onionbox-web did not start');
  // from source under tap's loader on a loaded machine this has taken 55 s
  await waitForLog(web, /"msg":"onionbox-web listening"/, 180_000);
}

/** Where the units' absolute paths live in this world. */
function simPathMap(b: Build): Record<string, string> {
  return {
    '/opt/onionbox': ROOT.replace(/\/$/, ''),
    '/usr/bin/node': process.execPath,
    '/var/lib/onionbox': b.boxStateDir,
    '/var/lib/tor': join(b.dir, 'tor-data'),
    '/run/onionbox': join(b.dir, 'run'),
    // every other runtime directory (onionbox-dhcp, onionbox-ap): not inside onionboxd's own
    '/run': join(b.dir, 'runroot'),
    '/run/onionbox-tor': join(b.dir, 'run-tor'),
  };
}

/** uid and gid of a system user (the units' users exist on the host: scripts/setup). */
function userIds(name: string): [number, number] {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return [Number(f[2]), Number(f[3])];
  }
  throw new Error(`sim: no user ${name} on this machine (scripts/setup creates it)`);
}

/**
 * The test runner's variables (tap's TypeScript loader and coverage), for a daemon run from source under
 * tap: the unit's own environment is systemd's, and knows nothing of them.
 */
function runnerEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && /^(NODE_V8_COVERAGE$|NODE_OPTIONS$|TS_NODE_|_TAPJS|TAP)/.test(k)) out[k] = v;
  }
  // Under tap with coverage, the units' processes (their own users, not root) write their coverage and
  // process info where the runner's root-owned directories are: open those two, sticky, to them.
  if (out.NODE_V8_COVERAGE !== undefined || Object.keys(out).some((k) => k.startsWith('_TAPJS'))) {
    for (const d of [out.NODE_V8_COVERAGE, join(process.cwd(), '.tap/processinfo')]) {
      if (d === undefined) continue;
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o1777);
    }
  }
  return out;
}

/** The LAN device asks the box's DHCP server for its address, router and DNS. */
async function lanDeviceByDhcp(b: Build, timeoutMs = 30_000): Promise<void> {
  const resolv = `/etc/netns/${b.netns.lan}/resolv.conf`;
  startDhclient(b, 'lan-dhclient', b.netns.lan, LAN_IF, LAN_DHCLIENT_CONF, {
    OBX_SIM_LEASE: b.lanLeaseFile,
    OBX_SIM_RESOLV: resolv,
  });
  await waitForFile(resolv, "the LAN device got no lease from the box's DHCP server", timeoutMs);
}

// ---- the built world ----

function worldOf(b: Build): World {
  const { privnet } = b;
  if (!privnet) throw new Error('sim: the world has no private Tor network');
  return {
    prefix: b.prefix,
    dir: b.dir,
    netns: b.netns,
    privnet,
    boxStateDir: b.boxStateDir,
    snowflake: b.snowflake ?? null,
    censor: {
      blocked: censoredEndpoints(privnet),
      active: () => b.censoring,
      set: (on) => setCensor(b, on),
      dropped: () => censorDropped(b),
    },
    timings: b.timings,
    captureFile: b.captureFile,
    captureFiles: b.captureFiles,
    moveWan: (ifname) => moveWan(b, ifname),
    processes: () => [...b.tracked],
    exec: (ns, cmd, args, timeoutMs) => nsExec(ns, cmd, args, timeoutMs),
    spawn: (name, ns, cmd, args, env) => track(b, name, ns, cmd, args, env),
    exposePage: (port) => exposePage(b, port),
    daemon: () => b.daemon,
    leaseLanDevice: (timeoutMs) => lanDeviceByDhcp(b, timeoutMs),
    info: () => worldInfo(b),
    stop: () => stopWorld(b),
  };
}

async function moveWan(b: Build, ifname: string): Promise<string> {
  const { netns } = b;
  if (!b.second || (ifname !== BOX_WAN_IF && ifname !== BOX_WAN2_IF)) {
    throw new Error(`sim: moveWan needs a secondWan world and ${BOX_WAN_IF} or ${BOX_WAN2_IF}`);
  }
  if (ifname === b.wanIf) throw new Error(`sim: the modem is already on ${ifname}`);
  const oldPort = b.wanIf === BOX_WAN_IF ? INET_IF : INET2_IF;
  const newPort = ifname === BOX_WAN_IF ? INET_IF : INET2_IF;
  // the cable out: the DHCP client goes, the address and route with it, no carrier on the old port
  if (b.wanClient) await stopTracked(b.wanClient);
  rmSync(wanLeaseFile(b.dir, b.wanIf), { force: true });
  await ip(['-n', netns.box, 'addr', 'flush', 'dev', b.wanIf]);
  await ip(['-n', netns.inet, 'link', 'set', oldPort, 'down']);
  // the cable in: carrier on the new port, a DHCP client there
  await ip(['-n', netns.inet, 'link', 'set', newPort, 'up']);
  const file = wanLeaseFile(b.dir, ifname);
  rmSync(file, { force: true });
  b.wanClient = startDhclient(b, `dhclient-${ifname}`, netns.box, ifname, DHCLIENT_CONF, {
    OBX_SIM_LEASE: file,
  });
  b.wanIf = ifname;
  await waitForFile(file, `the box got no WAN lease on ${ifname}`);
  return leasedAddress(file) ?? '';
}

async function exposePage(b: Build, port: number): Promise<string> {
  const sock = join(b.dir, 'page.sock');
  const relay = track(b, 'page-relay', b.netns.lan, process.execPath, [
    ...process.execArgv,
    PAGE_RELAY,
    '--socket',
    sock,
    '--target',
    `${ADDR.boxLan}:80`,
  ]);
  // 60 s: under load (two cores, tap's loader) the relay's start alone has taken more than 15 s
  for (let i = 0; !existsSync(sock); i++) {
    if (i > 600 || relay.child.exitCode !== null) {
      throw new Error(`sim: the page relay did not start: ${readFileSync(relay.log, 'utf8')}`);
    }
    await sleep(100);
  }
  const server = await hostRelay(port, sock);
  b.cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const a = server.address();
  b.pageUrl = `http://127.0.0.1:${a && typeof a === 'object' ? a.port : port}/`;
  return b.pageUrl;
}

function worldInfo(b: Build): WorldInfo {
  const { netns } = b;
  return {
    pid: process.pid,
    startedAt: new Date(b.t0).toISOString(),
    dir: b.dir,
    lan: { netns: netns.lan, interface: LAN_IF, address: leasedAddress(b.lanLeaseFile) ?? ADDR.lanDevice },
    box: {
      netns: netns.box,
      lanAddress: ADDR.boxLan,
      lanInterface: BOX_LAN_IF,
      wanInterface: b.wanIf,
      webPort: 80,
      stateDir: b.boxStateDir,
      pid: b.daemon?.pid ?? 0,
    },
    internet: {
      netns: netns.inet,
      hostname: HOSTNAME,
      exitAddress: EXIT_ADDR,
      modem: ADDR.modem,
      censored: b.censoring,
    },
    page: { url: b.pageUrl, socket: b.pageUrl ? join(b.dir, 'page.sock') : null },
    pids: b.tracked.map((t) => ({ name: t.name, pid: t.pid })),
  };
}

/**
 * Where the box's DHCP client records the lease of a WAN interface (what the simulated nmcli reports
 * for it): wan-lease.env for eth0, wan-lease.IF.env for another port.
 */
export function wanLeaseFile(dir: string, ifname: string): string {
  return join(dir, ifname === BOX_WAN_IF ? 'wan-lease.env' : `wan-lease.${ifname}.env`);
}

/** The address in a lease recorded by scripts/sim/dhclient-script, or null. */
export function leasedAddress(file: string): string | null {
  try {
    const m = /^ip_address=([0-9.]{7,15})$/m.exec(readFileSync(file, 'utf8'));
    return m?.[1] ?? null;
  } catch {
    return null;
  }
}

/** The host end of the page relay: 127.0.0.1:PORT -> the LAN device's Unix socket. */
function hostRelay(port: number, sock: string): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const server = createServer((c) => {
      const u = netConnect(sock);
      c.pipe(u).pipe(c);
      const close = () => {
        c.destroy();
        u.destroy();
      };
      for (const x of [c, u]) {
        x.once('error', close);
        x.once('close', close);
      }
    });
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveServer(server));
  });
}

/** Waits until a tracked process's log matches; fails if it exits first. */
export async function waitForLog(t: Tracked, re: RegExp, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(t.log) ? readFileSync(t.log, 'utf8') : '';
    const m = re.exec(text);
    if (m) return m[0];
    if (t.child.exitCode !== null || t.child.signalCode !== null) {
      throw new Error(
        `${t.name} exited (${t.child.exitCode ?? t.child.signalCode}):\n${text.split('\n').slice(-15).join('\n')}`,
      );
    }
    if (Date.now() > end)
      throw new Error(`${t.name}: no ${re} in ${timeoutMs} ms:\n${text.split('\n').slice(-15).join('\n')}`);
    await sleep(100);
  }
}
