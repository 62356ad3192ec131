/**
 * A private, offline Tor network for tests, benchmarks and the simulator: 3 directory authorities,
 * 2 middle relays (the only Guards) and 1 exit with an explicit exit policy, all real `tor` processes,
 * TestingTorNetwork 1 and AssumeReachable 1. On loopback without root (dynamic free ports), or inside a
 * network namespace given by the caller (`ip netns exec`, each relay on its own address).
 *
 * startPrivnet() resolves when a probe client (its own tor, control and SOCKS on unix sockets so it works
 * across namespaces) has built a circuit ending at the exit, and, with the HTTP server, fetched /api/ip
 * through it with IsTor true. Start-up on this 2-core machine: see scripts/privnet/README.md.
 *
 * Teardown kills only the PIDs started here (SIGTERM, then SIGKILL), idempotently, also on process exit,
 * SIGINT and SIGTERM. Every tor also gets __OwningControllerProcess = our PID, so a tor outlives a
 * SIGKILLed harness by at most a few seconds.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectControl, type TorControl } from '../../firmware/tor/control.js';
import { parseBootstrap } from '../../firmware/tor/protocol.js';
import { socksHttpGet } from './socks.js';

const execFileP = promisify(execFile);

export interface PrivnetOptions {
  /** Working dir for data dirs/torrcs (caller creates/removes). No spaces or quotes. */
  dir: string;
  /** If set, every tor and the HTTP server run via `ip netns exec NETNS ...`. */
  netns?: string;
  /**
   * Addresses to bind (already configured in the namespace by the caller): relay i (auth0-2, middle0-1,
   * exit) uses addresses[i % n]; the HTTP server uses addresses[6] if given, else addresses[0].
   * Default: loopback 127.0.0.1 with dynamic free ports (the exit then sends from a random 127.x.y.z so the
   * IsTor stand-in can tell exit traffic from direct traffic).
   */
  addresses?: string[];
  /** Start the tiny "internet" HTTP server (/, /ip, /bytes/N, /api/ip). */
  httpServer?: boolean;
  /** Its port inside a namespace (default 8080). */
  httpPort?: number;
  /**
   * The exit's resolv.conf (tor's ServerDNSResolvConfFile): names that LAN devices resolve through tor
   * are answered by the nameserver it names (the simulator's DNS server for `sim.test`).
   */
  exitResolvConf?: string;
  /** Extra ports the exit accepts (besides the HTTP server's). Default [80, 443]. */
  exitPorts?: number[];
  /**
   * Also run an obfs4 bridge (BridgeRelay, unpublished, lyrebird as server transport) and
   * expose its bridge line: a client with UseBridges reaches the network through obfs4.
   */
  obfs4Bridge?: boolean;
  /**
   * Also run a webtunnel bridge: a BridgeRelay (unpublished) with webtunnel-server as server transport,
   * behind a TLS front (tls-front.ts) whose certificate a test CA made here signed, and expose its line
   * (`webtunnel 192.0.2.3:1 FP url=https://FRONT/SECRET ver=0.0.1`: the address is a placeholder, the
   * client dials the URL) and the CA's file, which a client must trust (SSL_CERT_FILE for lyrebird).
   */
  webtunnelBridge?: boolean;
  /**
   * The host name the webtunnel line's `url=` gives (`https://NAME/SECRET`), as a real webtunnel line
   * does; the client must resolve it to the front's address (the simulated world's resolver answers it).
   * The front's certificate names it. Default: the front's address itself, no name to resolve.
   */
  webtunnelHost?: string;
  /** Give up after this long (default 120 s). */
  timeoutMs?: number;
  /** Progress lines (default: silent). */
  log?: (line: string) => void;
  /** Told of every process started (name, PID), as it starts: a caller that may die can record them. */
  onSpawn?: (name: string, pid: number) => void;
}

export interface PrivnetRelay {
  nickname: string;
  role: 'authority' | 'middle' | 'exit';
  address: string;
  orPort: number;
  dirPort: number;
  fingerprint: string;
  pid: number;
}

export interface Privnet {
  relays: PrivnetRelay[];
  exit: PrivnetRelay;
  /** The address exit traffic comes from (what the IsTor stand-in treats as Tor). */
  exitOutboundAddress: string;
  /** torrc lines a client needs to join: DirAuthority ..., TestingTorNetwork 1, ... (no ports). */
  clientTorrcLines: string[];
  http?: { address: string; port: number; url: string };
  /**
   * With `obfs4Bridge`: the bridge's line for a client (`obfs4 ADDR:PORT FP cert=... iat-mode=N`, cert and
   * iat-mode from lyrebird's pt_state/obfs4_bridgeline.txt), the address and obfs4 port a client dials,
   * the bridge's ORPort (never dialled by a client: a censor does not know it) and fingerprint.
   */
  obfs4Bridge?: {
    line: string;
    address: string;
    port: number;
    orPort: number;
    fingerprint: string;
    pid: number;
  };
  /** With `webtunnelBridge`: its line, the TLS front's address and port, and the test CA a client trusts. */
  webtunnelBridge?: {
    line: string;
    url: string;
    address: string;
    port: number;
    fingerprint: string;
    /** The test CA's certificate (PEM, world-readable in `dir`): SSL_CERT_FILE for the client's lyrebird. */
    caFile: string;
    pid: number;
  };
  /** Milliseconds from startPrivnet() to ready. */
  startupMs: number;
  /** every relay ip:port a client may connect to (ORPorts; clients tunnel directory requests over them). */
  relayEndpoints(): { address: string; port: number }[];
  /** SIGHUP every relay (by PID): resets their download schedules. */
  hupRelays(): void;
  stop(): Promise<void>;
}

const ROLES: { nickname: string; role: PrivnetRelay['role'] }[] = [
  { nickname: 'auth0', role: 'authority' },
  { nickname: 'auth1', role: 'authority' },
  { nickname: 'auth2', role: 'authority' },
  { nickname: 'middle0', role: 'middle' },
  { nickname: 'middle1', role: 'middle' },
  { nickname: 'exit0', role: 'exit' },
];

const SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;
const IPV4 =
  /^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/;
const NETNS = /^[A-Za-z0-9_.-]{1,64}$/;

/** PIDs of every live privnet child, killed synchronously if the process exits without stop(). */
const livePids = new Set<number>();
let handlersInstalled = false;

function killAllSync(): void {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  livePids.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const handler = () => {
      killAllSync();
      process.off(sig, handler);
      // Re-raise so the default behaviour (or other handlers) still apply.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** Free TCP ports on 127.0.0.1, held open together so they are distinct, then released. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, host, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    return a && typeof a === 'object' ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function spawnIn(
  netns: string | undefined,
  cmd: string,
  args: string[],
  onSpawn?: (name: string, pid: number) => void,
): ChildProcess {
  const child = netns
    ? spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  if (child.pid) livePids.add(child.pid);
  if (child.pid) onSpawn?.(`privnet-${cmd === 'tor' ? 'tor' : 'http'}`, child.pid);
  child.once('exit', () => {
    if (child.pid) livePids.delete(child.pid);
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function fingerprintOf(dataDir: string, nickname: string): Promise<string> {
  const { stdout } = await execFileP('tor', [
    '--quiet',
    '--ignore-missing-torrc',
    '-f',
    '/dev/null',
    '--list-fingerprint',
    '--DataDirectory',
    dataDir,
    '--ORPort',
    '1',
    '--Nickname',
    nickname,
    '--DirAuthority',
    'x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff',
  ]);
  const m = /^\S+ ((?:[0-9A-F]{4} ?){10})$/m.exec(stdout.trim());
  if (!m?.[1]) throw new Error(`privnet: no fingerprint for ${nickname}: ${stdout}`);
  return m[1].replace(/ /g, '');
}

async function authorityCert(dataDir: string, address: string, dirPort: number): Promise<string> {
  const keys = join(dataDir, 'keys');
  await mkdir(keys, { recursive: true, mode: 0o700 });
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      'tor-gencert',
      [
        '--create-identity-key',
        '-m',
        '12',
        '-a',
        `${address}:${dirPort}`,
        '-i',
        join(keys, 'authority_identity_key'),
        '-s',
        join(keys, 'authority_signing_key'),
        '-c',
        join(keys, 'authority_certificate'),
        '--passphrase-fd',
        '0',
      ],
      (err) => (err ? reject(err) : resolve()),
    );
    child.stdin?.end('\n');
  });
  const cert = await readFile(join(keys, 'authority_certificate'), 'utf8');
  const m = /^fingerprint ([0-9A-F]{40})$/m.exec(cert);
  if (!m?.[1]) throw new Error('privnet: authority certificate without fingerprint');
  return m[1];
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Counts relays an authority's microdescriptor consensus lists as usable (only a consensus written
 * since `since`: a file left by an earlier run in the same directory does not count): Running+Valid+Stable, and
 * Guard for the middles, Exit for the exit.
 */
function consensusRunning(path: string, since = 0): number {
  if (!existsSync(path) || statSync(path).mtimeMs < since) return 0;
  let running = 0;
  let nick = '';
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('r ')) nick = line.split(' ')[1] ?? '';
    else if (line.startsWith('s ') && nick) {
      const flags = line.split(' ');
      const need = ['Running', 'Valid', 'Stable'];
      if (nick.startsWith('middle')) need.push('Guard');
      if (nick.startsWith('exit')) need.push('Exit');
      if (need.every((f) => flags.includes(f))) running++;
      nick = '';
    }
  }
  return running;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPrivnet(opts: PrivnetOptions): Promise<Privnet> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  if (!SAFE_PATH.test(opts.dir)) throw new Error(`privnet: dir must be an absolute path of [A-Za-z0-9_./-]`);
  if (opts.netns !== undefined && !NETNS.test(opts.netns)) throw new Error('privnet: bad netns name');
  const addresses = opts.addresses?.length ? opts.addresses : ['127.0.0.1'];
  for (const a of addresses) if (!IPV4.test(a)) throw new Error(`privnet: bad address ${a}`);
  const loopback = !opts.addresses?.length;
  installHandlers();

  const children: ChildProcess[] = [];
  const names: string[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => {
              try {
                c.kill('SIGKILL');
              } catch {
                // gone
              }
            }, 3000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  };

  try {
    // Ports: dynamic on loopback; fixed per relay index inside a namespace (each namespace is the test's own).
    const ports = loopback
      ? await freePorts(ROLES.length * 2)
      : ROLES.flatMap((_, i) => [5000 + i, 7000 + i]);
    const exitOutboundAddress = addresses[(ROLES.length - 1) % addresses.length] ?? '127.0.0.1';

    // The "internet" first: the exit policy needs its port.
    let http: Privnet['http'];
    let httpChild: ChildProcess | null = null;
    if (opts.httpServer) {
      const host = loopback ? '127.0.0.1' : (addresses[6] ?? addresses[0] ?? '127.0.0.1');
      const script = new URL(
        import.meta.url.endsWith('.ts') ? './http-server.ts' : './http-server.js',
        import.meta.url,
      ).pathname;
      const nodeArgs = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), script] : [script];
      const child = spawnIn(
        opts.netns,
        process.execPath,
        [
          ...nodeArgs,
          '--host',
          host,
          '--port',
          loopback ? '0' : String(opts.httpPort ?? 8080),
          '--exit',
          loopback ? '-' : exitOutboundAddress,
        ],
        opts.onSpawn,
      );
      children.push(child);
      names.push('http server');
      httpChild = child;
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('privnet: HTTP server did not start')), 20_000);
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /LISTENING ([0-9]+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`privnet: HTTP server exited with ${code}`));
        });
      });
      http = { address: host, port, url: `http://${host}:${port}` };
      log(`http server on ${http.url}`);
    }

    const relays: (PrivnetRelay & { dataDir: string; v3ident?: string | undefined })[] = await Promise.all(
      ROLES.map(async (r, i) => {
        const dataDir = join(opts.dir, r.nickname);
        await mkdir(dataDir, { recursive: true, mode: 0o700 });
        const address = addresses[i % addresses.length] ?? '127.0.0.1';
        const orPort = ports[i * 2] ?? 0;
        const dirPort = ports[i * 2 + 1] ?? 0;
        const v3ident = r.role === 'authority' ? await authorityCert(dataDir, address, dirPort) : undefined;
        const fingerprint = await fingerprintOf(dataDir, r.nickname);
        return { ...r, address, orPort, dirPort, fingerprint, pid: 0, dataDir, v3ident };
      }),
    );
    const dirAuthorityLines = relays
      .filter((r) => r.role === 'authority')
      .map(
        (r) =>
          `DirAuthority ${r.nickname} orport=${r.orPort} v3ident=${r.v3ident} ${r.address}:${r.dirPort} ${r.fingerprint}`,
      );
    const guards = relays.filter((r) => r.role === 'middle').map((r) => r.fingerprint);
    const exitRelay = relays.find((r) => r.role === 'exit');
    if (!exitRelay) throw new Error('privnet: no exit');
    const exitPorts = [...new Set([...(opts.exitPorts ?? [80, 443]), ...(http ? [http.port] : [])])];
    const networkLines = [
      'TestingTorNetwork 1',
      ...dirAuthorityLines,
      'TestingMinExitFlagThreshold 0',
      'ExtendAllowPrivateAddresses 1',
      'EnforceDistinctSubnets 0',
    ];

    for (const r of relays) {
      const lines = [
        ...networkLines,
        `DataDirectory ${r.dataDir}`,
        `Nickname ${r.nickname}`,
        'RunAsDaemon 0',
        'ShutdownWaitLength 0',
        'SafeLogging 0',
        'ProtocolWarnings 1',
        `Log notice file ${join(r.dataDir, 'notice.log')}`,
        `PidFile ${join(r.dataDir, 'pid')}`,
        'ContactInfo privnet@onionbox.test',
        'AssumeReachable 1',
        `Address ${r.address}`,
        `ORPort ${r.address}:${r.orPort} IPv4Only`,
        `DirPort ${r.address}:${r.dirPort}`,
        'SocksPort 0',
        'ExitPolicyRejectPrivate 0',
        'ExitPolicyRejectLocalInterfaces 0',
        'DirAllowPrivateAddresses 1',
        'CountPrivateBandwidth 1',
        'ConnLimit 60',
        // In a namespace each relay has its own address: send from it too (the exit's traffic then comes
        // from the exit's address, which the IsTor stand-in checks). Loopback needs no binding.
        ...(loopback ? [] : [`OutboundBindAddress ${r.address}`]),
        `__OwningControllerProcess ${process.pid}`,
      ];
      if (r.role === 'authority') {
        lines.push(
          'AuthoritativeDirectory 1',
          'V3AuthoritativeDirectory 1',
          'TestingV3AuthInitialVotingInterval 5',
          'TestingV3AuthInitialVoteDelay 2',
          'TestingV3AuthInitialDistDelay 2',
          'V3AuthVotingInterval 20',
          'V3AuthVoteDelay 4',
          'V3AuthDistDelay 4',
          `TestingDirAuthVoteGuard ${guards.join(',')}`,
          'TestingDirAuthVoteGuardIsStrict 1',
          `TestingDirAuthVoteExit ${exitRelay.fingerprint}`,
          'TestingDirAuthVoteExitIsStrict 1',
          // Every relay an HSDir from the first consensus: onion services (the update server's) publish
          // their descriptors at once instead of waiting hours of uptime for the flag.
          'TestingDirAuthVoteHSDir *',
          // Relays that all started together have about the median uptime: without these, the guards
          // may miss the Stable flag, and circuits that need uptime (conflux legs) find no first hop.
          'AuthDirVoteStableGuaranteeMinUptime 0',
          'AuthDirVoteStableGuaranteeMTBF 0',
          'ExitPolicy reject *:*',
        );
      } else if (r.role === 'exit') {
        lines.push('ExitRelay 1', 'IPv6Exit 0');
        if (opts.exitResolvConf !== undefined) {
          if (!SAFE_PATH.test(opts.exitResolvConf)) throw new Error('privnet: bad exitResolvConf path');
          lines.push(
            `ServerDNSResolvConfFile ${opts.exitResolvConf}`,
            'ServerDNSDetectHijacking 0',
            'ServerDNSAllowBrokenConfig 1',
          );
        }
        if (http) lines.push(`ExitPolicy accept ${http.address}:${http.port}`);
        for (const p of exitPorts) lines.push(`ExitPolicy accept *:${p}`);
        lines.push('ExitPolicy reject *:*');
      } else {
        lines.push('ExitRelay 0', 'ExitPolicy reject *:*');
      }
      const torrc = join(r.dataDir, 'torrc');
      await writeFile(torrc, `${lines.join('\n')}\n`, { mode: 0o600 });
      const child = spawnIn(opts.netns, 'tor', ['-f', torrc, '--ignore-missing-torrc'], opts.onSpawn);
      children.push(child);
      names.push(r.nickname);
      r.pid = child.pid ?? 0;
      if (r.role === 'exit') httpChild?.stdin?.write(`EXIT-PID ${r.pid}\n`);
      child.once('exit', (code, signal) => {
        if (!stopped)
          log(`${r.nickname} exited (${code ?? signal}):\n${tail(join(r.dataDir, 'notice.log'))}`);
      });
    }
    log(`started ${relays.length} relays after ${Date.now() - t0} ms`);

    // a bridge relay of the network: its torrc (the same for every transport but the transport's own
    // lines), then its tor
    const startBridge = async (
      dataDir: string,
      nickname: string,
      address: string,
      orPort: number,
      transportLines: string[],
    ) => {
      const lines = [
        ...networkLines,
        `DataDirectory ${dataDir}`,
        `Nickname ${nickname}`,
        'RunAsDaemon 0',
        'ShutdownWaitLength 0',
        'SafeLogging 0',
        `Log notice file ${join(dataDir, 'notice.log')}`,
        `PidFile ${join(dataDir, 'pid')}`,
        'AssumeReachable 1',
        `Address ${address}`,
        `ORPort ${address}:${orPort} IPv4Only`,
        'SocksPort 0',
        'BridgeRelay 1',
        'PublishServerDescriptor 0',
        'ExitRelay 0',
        'ExitPolicy reject *:*',
        ...transportLines,
        'ExtORPort auto',
        ...(loopback ? [] : [`OutboundBindAddress ${address}`]),
        `__OwningControllerProcess ${process.pid}`,
      ];
      await writeFile(join(dataDir, 'torrc'), `${lines.join('\n')}\n`, { mode: 0o600 });
      const child = spawnIn(
        opts.netns,
        'tor',
        ['-f', join(dataDir, 'torrc'), '--ignore-missing-torrc'],
        opts.onSpawn,
      );
      children.push(child);
      names.push(nickname);
      return child;
    };

    let bridge: (NonNullable<Privnet['obfs4Bridge']> & { dataDir: string }) | null = null;
    if (opts.obfs4Bridge) {
      const dataDir = join(opts.dir, 'bridge0');
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const address = loopback ? '127.0.0.1' : (addresses[7] ?? addresses[0] ?? '127.0.0.1');
      const [orPort, ptPort] = loopback ? await freePorts(2) : [5010, 5011];
      const fingerprint = await fingerprintOf(dataDir, 'bridge0');
      const child = await startBridge(dataDir, 'bridge0', address, orPort ?? 0, [
        'ServerTransportPlugin obfs4 exec /usr/bin/lyrebird',
        `ServerTransportListenAddr obfs4 ${address}:${ptPort}`,
      ]);
      bridge = {
        line: '',
        address,
        port: ptPort ?? 0,
        orPort: orPort ?? 0,
        fingerprint,
        pid: child.pid ?? 0,
        dataDir,
      };
    }

    let webtunnel: (NonNullable<Privnet['webtunnelBridge']> & { dataDir: string }) | null = null;
    if (opts.webtunnelBridge) {
      if (!existsSync('/usr/bin/webtunnel-server'))
        throw new Error('privnet: /usr/bin/webtunnel-server is missing (scripts/setup-lyrebird installs it)');
      const dataDir = join(opts.dir, 'bridge1');
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const address = loopback ? '127.0.0.1' : (addresses[8] ?? addresses[0] ?? '127.0.0.1');
      const [orPort, wtPort, frontPort] = loopback ? await freePorts(3) : [5012, 15000, 443];
      const fingerprint = await fingerprintOf(dataDir, 'bridge1');
      const host = opts.webtunnelHost ?? address;
      if (
        !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(host)
      )
        throw new Error(`privnet: bad webtunnel host ${host}`);
      const pki = await testPki(opts.dir, address, host);
      const url = `https://${host}${frontPort === 443 ? '' : `:${frontPort}`}/${randomBytes(12).toString('hex')}`;
      const child = await startBridge(dataDir, 'bridge1', address, orPort ?? 0, [
        'ServerTransportPlugin webtunnel exec /usr/bin/webtunnel-server',
        `ServerTransportListenAddr webtunnel 127.0.0.1:${wtPort}`,
        `ServerTransportOptions webtunnel url=${url}`,
      ]);
      const script = new URL(
        import.meta.url.endsWith('.ts') ? './tls-front.ts' : './tls-front.js',
        import.meta.url,
      ).pathname;
      const nodeArgs = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), script] : [script];
      const front = spawnIn(
        opts.netns,
        process.execPath,
        [
          ...nodeArgs,
          '--host',
          address,
          '--port',
          String(frontPort),
          '--cert',
          pki.certFile,
          '--key',
          pki.keyFile,
          '--backend',
          `127.0.0.1:${wtPort}`,
        ],
        opts.onSpawn,
      );
      children.push(front);
      names.push('tls front');
      await listening(front, 'the TLS front');
      webtunnel = {
        line: `webtunnel 192.0.2.3:1 ${fingerprint} url=${url} ver=0.0.1`,
        url,
        address,
        port: frontPort ?? 0,
        fingerprint,
        caFile: pki.caFile,
        pid: child.pid ?? 0,
        dataDir,
      };
    }

    const deadline = t0 + timeoutMs;
    const assertAlive = () => {
      for (const [i, c] of children.entries()) {
        if (c.exitCode !== null || c.signalCode !== null) {
          const name = names[i] ?? '?';
          throw new Error(
            `privnet: ${name} died (${c.exitCode ?? c.signalCode}):\n${name === 'http server' ? '' : tail(join(opts.dir, name, 'notice.log'))}`,
          );
        }
      }
    };
    const hupRelays = () => {
      for (const r of [...relays, ...(bridge ? [bridge] : []), ...(webtunnel ? [webtunnel] : [])]) {
        try {
          process.kill(r.pid, 'SIGHUP');
        } catch {
          // gone
        }
      }
    };

    // 0. The bridges' transports registered before any SIGHUP: a reload while tor still launches its
    // managed proxy has left a bridge without its transport.
    for (const [b, transport] of [
      [bridge, 'obfs4'],
      [webtunnel, 'webtunnel'],
    ] as const) {
      if (!b) continue;
      const file = join(b.dataDir, 'notice.log');
      const registered = new RegExp(`Registered server transport '${transport}'`);
      while (!(existsSync(file) && registered.test(readFileSync(file, 'utf8')))) {
        assertAlive();
        if (Date.now() > deadline)
          throw new Error(`privnet: the ${transport} bridge never registered its transport`);
        await sleep(200);
      }
    }

    // 1. Wait for a consensus listing every relay Running+Valid (in every authority).
    const consensusFiles = relays
      .filter((r) => r.role === 'authority')
      .map((r) => join(r.dataDir, 'cached-microdesc-consensus'));
    while (!consensusFiles.every((f) => consensusRunning(f, t0) >= relays.length)) {
      assertAlive();
      if (Date.now() > deadline) throw new Error('privnet: no complete consensus in time');
      await sleep(250);
    }
    log(`consensus with all relays after ${Date.now() - t0} ms`);
    // Relays that asked before the first consensus existed back off for up to ~20 s: reset them.
    hupRelays();

    if (bridge) {
      const file = join(bridge.dataDir, 'pt_state', 'obfs4_bridgeline.txt');
      let line: string | null = null;
      while (line === null) {
        assertAlive();
        if (Date.now() > deadline) throw new Error('privnet: obfs4 bridge line never appeared');
        line = existsSync(file) ? obfs4BridgeLine(readFileSync(file, 'utf8'), bridge) : null;
        if (line === null) await sleep(200);
      }
      bridge.line = line;
      log(`obfs4 bridge: ${bridge.line}`);
    }

    if (webtunnel) log(`webtunnel bridge: ${webtunnel.line}`);
    // A bridge is a new client's only directory: it must serve a consensus with every relay, not one it
    // fetched while the authorities still listed a few (a client then has no exit until the bridge
    // fetches again, tens of seconds later).
    for (const b of [bridge, webtunnel]) {
      if (!b) continue;
      const file = join(b.dataDir, 'cached-microdesc-consensus');
      let lastHup = Date.now();
      while (consensusRunning(file, t0) < relays.length) {
        assertAlive();
        if (Date.now() > deadline) throw new Error(`privnet: a bridge has no complete consensus (${file})`);
        if (Date.now() - lastHup > 8000) {
          process.kill(b.pid, 'SIGHUP');
          lastHup = Date.now();
        }
        await sleep(250);
      }
    }
    if (bridge || webtunnel) log(`bridges hold the complete consensus after ${Date.now() - t0} ms`);

    const clientTorrcLines = [
      ...networkLines,
      'ClientRejectInternalAddresses 0',
      'ClientDNSRejectInternalAddresses 0',
    ];

    // 2. A probe client must build a circuit to the exit (and fetch /api/ip through it).
    const probeDir = join(opts.dir, 'probe');
    await mkdir(probeDir, { recursive: true, mode: 0o700 });
    const probeLines = [
      ...clientTorrcLines,
      `DataDirectory ${probeDir}`,
      `ControlPort unix:${join(probeDir, 'control')}`,
      `SocksPort unix:${join(probeDir, 'socks')}`,
      'CookieAuthentication 1',
      `CookieAuthFile ${join(probeDir, 'control_auth_cookie')}`,
      `Log notice file ${join(probeDir, 'notice.log')}`,
      `__OwningControllerProcess ${process.pid}`,
    ];
    await writeFile(join(probeDir, 'torrc'), `${probeLines.join('\n')}\n`, { mode: 0o600 });
    const probe = spawnIn(
      opts.netns,
      'tor',
      ['-f', join(probeDir, 'torrc'), '--ignore-missing-torrc'],
      opts.onSpawn,
    );
    let control: TorControl | null = null;
    try {
      control = await connectControl(
        {
          endpoint: { path: join(probeDir, 'control') },
          cookieFile: join(probeDir, 'control_auth_cookie'),
        },
        20_000,
      );
      let lastHup = Date.now();
      for (;;) {
        if (probe.exitCode !== null)
          throw new Error(`privnet: probe tor died:\n${tail(join(probeDir, 'notice.log'))}`);
        assertAlive();
        if (Date.now() > deadline) {
          throw new Error(
            `privnet: probe could not reach the exit in time:\n${tail(join(probeDir, 'notice.log'))}`,
          );
        }
        const phase = (await control.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] ?? '';
        if (parseBootstrap(phase).progress === 100) {
          const ok = await exitCircuit(control, exitRelay.fingerprint).catch((err: Error) => {
            log(`probe circuit: ${err.message}`);
            return false;
          });
          log(`probe exit circuit: ${ok}`);
          if (ok && http) {
            const got = await socksHttpGet(
              { path: join(probeDir, 'socks') },
              http.address,
              http.port,
              '/api/ip',
              {
                timeoutMs: 10_000,
              },
            ).catch((err: Error) => {
              log(`probe fetch: ${err.message}`);
              return null;
            });
            log(`probe fetch: ${got?.status} ${got?.body.toString()}`);
            if (got && got.status === 200 && (JSON.parse(got.body.toString()) as { IsTor: boolean }).IsTor)
              break;
          } else if (ok) break;
        }
        if (Date.now() - lastHup > 8000) {
          hupRelays();
          lastHup = Date.now();
        }
        await sleep(500);
      }
    } finally {
      control?.close();
      probe.kill('SIGTERM');
    }
    const startupMs = Date.now() - t0;
    log(`ready after ${startupMs} ms`);

    const publicRelays: PrivnetRelay[] = relays.map(({ dataDir: _d, v3ident: _v, ...r }) => r);
    const exit = publicRelays.find((r) => r.role === 'exit') as PrivnetRelay;
    return {
      relays: publicRelays,
      exit,
      exitOutboundAddress,
      clientTorrcLines,
      ...(http ? { http } : {}),
      ...(bridge
        ? {
            obfs4Bridge: {
              line: bridge.line,
              address: bridge.address,
              port: bridge.port,
              orPort: bridge.orPort,
              fingerprint: bridge.fingerprint,
              pid: bridge.pid,
            },
          }
        : {}),
      ...(webtunnel
        ? {
            webtunnelBridge: {
              line: webtunnel.line,
              url: webtunnel.url,
              address: webtunnel.address,
              port: webtunnel.port,
              fingerprint: webtunnel.fingerprint,
              caFile: webtunnel.caFile,
              pid: webtunnel.pid,
            },
          }
        : {}),
      startupMs,
      relayEndpoints: () => publicRelays.map((r) => ({ address: r.address, port: r.orPort })),
      hupRelays,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves with the port once a child (tls-front.ts, http-server.ts) prints `LISTENING <port>`. */
function listening(child: ChildProcess, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`privnet: ${what} did not start`)), 20_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /LISTENING ([0-9]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`privnet: ${what} exited with ${code}`));
    });
  });
}

/**
 * A test CA and a certificate it signed for the webtunnel bridge's TLS front (its address, the name
 * webtunnel.sim.test, and the line's host when that is another name), made with openssl in `dir/pki`.
 * The CA's certificate is world-readable (a client running as another user, the box's tor, must read
 * it); the keys are not. Nothing here is a secret.
 */
async function testPki(
  dir: string,
  address: string,
  host: string,
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  return testCert(dir, 'front', [
    `IP:${address}`,
    'DNS:webtunnel.sim.test',
    ...(host !== address && host !== 'webtunnel.sim.test' ? [`DNS:${host}`] : []),
  ]);
}

/**
 * A certificate named `name` for the subject alternative names `sans` (`DNS:x`, `IP:a`), signed by the
 * test CA in `dir/pki` (made on first use, then shared by every certificate of that directory).
 */
export async function testCert(
  dir: string,
  name: string,
  sans: readonly string[],
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) throw new Error(`privnet: bad certificate name ${name}`);
  const pki = join(dir, 'pki');
  await mkdir(pki, { recursive: true, mode: 0o711 });
  const f = (n: string) => join(pki, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (!existsSync(f('ca.pem'))) {
    await execFileP('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
      '-days',
      '30',
      '-subj',
      '/CN=onionbox privnet test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  const cn = (sans.find((x) => x.startsWith('DNS:')) ?? `DNS:${name}`).slice(4);
  await execFileP('openssl', [
    'req',
    ...ec,
    '-keyout',
    f(`${name}.key`),
    '-out',
    f(`${name}.csr`),
    '-subj',
    `/CN=${cn}`,
  ]);
  await writeFile(
    f(`${name}.ext`),
    `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`,
  );
  await execFileP('openssl', [
    'x509',
    '-req',
    '-in',
    f(`${name}.csr`),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f(`${name}.pem`),
    '-days',
    '30',
    '-extfile',
    f(`${name}.ext`),
  ]);
  await chmod(f('ca.pem'), 0o644);
  return { caFile: f('ca.pem'), certFile: f(`${name}.pem`), keyFile: f(`${name}.key`) };
}

const OBFS4_CERT = /^[A-Za-z0-9+/]{70}(==)?$/;

/**
 * A client's bridge line from lyrebird's `pt_state/obfs4_bridgeline.txt` (its `Bridge obfs4 <IP
 * ADDRESS>:<PORT> <FINGERPRINT> cert=... iat-mode=N` template): the placeholders filled with the bridge's
 * address, its obfs4 port and its fingerprint, cert= and iat-mode= as lyrebird wrote them. Null while the
 * file holds no complete line yet (lyrebird writes it once it has its keys). Pure.
 */
export function obfs4BridgeLine(
  fileText: string,
  bridge: { address: string; port: number; fingerprint: string },
): string | null {
  if (!IPV4.test(bridge.address)) throw new Error(`privnet: bad bridge address ${bridge.address}`);
  if (!Number.isInteger(bridge.port) || bridge.port < 1 || bridge.port > 65535)
    throw new Error(`privnet: bad bridge port ${bridge.port}`);
  if (!/^[0-9A-F]{40}$/.test(bridge.fingerprint))
    throw new Error(`privnet: bad bridge fingerprint ${bridge.fingerprint}`);
  for (const raw of fileText.split('\n')) {
    const m = /^Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=(\S+) iat-mode=([0-2])$/.exec(raw.trim());
    if (!m?.[1] || !m[2]) continue;
    if (!OBFS4_CERT.test(m[1])) return null;
    return `obfs4 ${bridge.address}:${bridge.port} ${bridge.fingerprint} cert=${m[1]} iat-mode=${m[2]}`;
  }
  return null;
}

/** Asks tor for a fresh general-purpose circuit and reports whether it was built ending at `exitFp`. */
async function exitCircuit(control: TorControl, exitFp: string): Promise<boolean> {
  const reply = await control.command('EXTENDCIRCUIT 0');
  const id = /^EXTENDED ([0-9]+)$/.exec(reply.lines[0]?.text ?? '')?.[1];
  if (!id) return false;
  for (let i = 0; i < 40; i++) {
    const circ = (await control.circuits()).find((c) => c.id === id);
    if (!circ) return false; // closed: failed
    if (circ.status === 'BUILT') {
      if (circ.hops[circ.hops.length - 1]?.fingerprint === exitFp) return true;
      throw new Error(`built but not to the exit: ${circ.hops.map((h) => h.nickname).join(',')}`);
    }
    if (circ.status === 'FAILED' || circ.status === 'CLOSED') return false;
    await sleep(250);
  }
  return false;
}
