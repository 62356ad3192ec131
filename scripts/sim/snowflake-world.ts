/**
 * Snowflake in the simulated world (issue 21, WorldOptions.snowflake), as far as Debian's packages go:
 *
 *   <p>-inet  the broker (scripts/privnet/snowflake-broker.ts: HTTPS on 198.18.0.21:443, a test CA's
 *             certificate for snowflake-broker.sim.test and its front snowflake-front.sim.test), coturn as
 *             the STUN server (stun.sim.test, 198.18.0.22:3478, STUN only), and the relay endpoint the
 *             broker names to proxies (ws://snowflake-relay.sim.test/, 198.18.0.23:80), which records
 *             what arrives and answers nothing;
 *   <p>-sfp   Debian's snowflake-proxy (2.5.1), a volunteer proxy elsewhere on the internet: its own
 *             namespace with one address, 198.18.1.2, routed through the internet namespace (which
 *             forwards), so its ICE candidates name only that address; it resolves names through the
 *             modem. Its NAT check asks snowflake-broker.torproject.net, which the modem answers "no
 *             such domain": nothing leaves the test's namespaces, and its NAT type stays "unknown".
 *
 * The box needs only a snowflake line (SNOWFLAKE_SIM_LINE): lyrebird's client resolves the front and the
 * STUN host through tor's resolver, asks the broker over TLS to the front (Host: the broker), and opens
 * a WebRTC data channel to the proxy over UDP; the proxy opens a WebSocket to the relay and forwards the
 * client's turbotunnel bytes. There it stops: no snowflake server (turbotunnel's KCP and smux over
 * WebSocket to a bridge's ORPort) is packaged in Debian, so nothing answers and tor never bootstraps.
 * The box's tor trusts the test CA through SSL_CERT_FILE: the one difference from a Pi.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { testCert } from '../privnet/index.js';

const execFileP = promisify(execFile);

export const SNOWFLAKE_ADDR = Object.freeze({
  broker: '198.18.0.21',
  stun: '198.18.0.22',
  relay: '198.18.0.23',
  /** The volunteer proxy, in a namespace of its own behind the internet namespace. */
  proxy: '198.18.1.2',
  /** The internet namespace's side of the proxy's link. */
  proxyGateway: '198.18.1.1',
});
export const SNOWFLAKE_BROKER_HOST = 'snowflake-broker.sim.test';
/** The CDN the client fronts through (TLS SNI); the broker answers on the same address. */
export const SNOWFLAKE_FRONT_HOST = 'snowflake-front.sim.test';
export const SNOWFLAKE_STUN_HOST = 'stun.sim.test';
export const SNOWFLAKE_RELAY_HOST = 'snowflake-relay.sim.test';
export const SNOWFLAKE_RELAY_URL = `ws://${SNOWFLAKE_RELAY_HOST}/`;
/** Tor Browser's snowflake bridge fingerprint: the broker would choose the relay by it (this one has one). */
export const SNOWFLAKE_FINGERPRINT = '2B280B23E1107BB62ABFC40DDCC8824814F80A72';
/** The box's line, as Tor Browser's built-in ones are shaped (a placeholder address, url=, fronts=, ice=). */
export const SNOWFLAKE_SIM_LINE = `snowflake 192.0.2.3:80 ${SNOWFLAKE_FINGERPRINT} fingerprint=${SNOWFLAKE_FINGERPRINT} url=https://${SNOWFLAKE_BROKER_HOST}/ fronts=${SNOWFLAKE_FRONT_HOST} ice=stun:${SNOWFLAKE_STUN_HOST}:3478 utls-imitate=hellorandomizedalpn`;
/** The first 8 bytes a snowflake client sends on a new data channel: turbotunnel's token. */
export const TURBOTUNNEL_TOKEN_HEX = '1293605d278175f5';

/** The modem's dnsmasq answers for snowflake's names (modemArgs). */
export function snowflakeModemAddresses(): string[] {
  return [
    `--address=/${SNOWFLAKE_BROKER_HOST}/${SNOWFLAKE_ADDR.broker}`,
    `--address=/${SNOWFLAKE_FRONT_HOST}/${SNOWFLAKE_ADDR.broker}`,
    `--address=/${SNOWFLAKE_STUN_HOST}/${SNOWFLAKE_ADDR.stun}`,
    `--address=/${SNOWFLAKE_RELAY_HOST}/${SNOWFLAKE_ADDR.relay}`,
  ];
}

/** The proxy's argv: the world's broker, STUN server and relay (plain ws:, allowed by pattern). */
export function snowflakeProxyArgs(): string[] {
  return [
    '-broker',
    `https://${SNOWFLAKE_BROKER_HOST}/`,
    '-stun',
    `stun:${SNOWFLAKE_STUN_HOST}:3478`,
    '-relay',
    SNOWFLAKE_RELAY_URL,
    '-allow-non-tls-relay',
    '-allowed-relay-hostname-pattern',
    'sim.test$',
    '-verbose',
    // the world's addresses are no one's: log them (the test reads which proxy and relay were used)
    '-unsafe-logging',
  ];
}

/** coturn as a plain STUN server on one address (no TURN, no TLS, no CLI). */
export function coturnArgs(logFile: string): string[] {
  return [
    '--stun-only',
    '--no-auth',
    '--listening-ip',
    SNOWFLAKE_ADDR.stun,
    '--listening-port',
    '3478',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--simple-log',
    '--log-file',
    logFile,
    '--pidfile',
    `${logFile}.pid`,
  ];
}

/** What a world needs to give: its names, a way to start tracked processes, and its cleanups. */
export interface SnowflakeHost {
  prefix: string;
  dir: string;
  inetNs: string;
  /** The internet namespace's interface carrying its addresses. */
  inetIf: string;
  track(
    name: string,
    ns: string | null,
    cmd: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
  ): { log: string; child: { exitCode: number | null; signalCode: NodeJS.Signals | null } };
  waitForLog(t: unknown, re: RegExp, timeoutMs: number): Promise<string>;
  cleanup(fn: () => Promise<void>): void;
  /** Stops every process left in a namespace (by PID). */
  stopNamespace(ns: string): Promise<unknown>;
  log(line: string): void;
}

export interface SnowflakeWorld {
  /** The box's bridge line. */
  line: string;
  /** The test CA the broker's certificate chains to (world-readable: the box's tor reads it). */
  caFile: string;
  /** The proxy's namespace. */
  proxyNs: string;
  brokerLog: string;
  proxyLog: string;
  stunLog: string;
}

async function ip(args: string[]): Promise<void> {
  await execFileP('ip', args, { timeout: 15_000 });
}

/** Starts the broker, coturn and snowflake-proxy (the world's private Tor network is up already). */
export async function startSnowflakeWorld(h: SnowflakeHost, root: string): Promise<SnowflakeWorld> {
  const dir = join(h.dir, 'snowflake');
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const proxyNs = `${h.prefix}-sfp`;
  // the internet's new addresses, and the proxy's namespace routed behind it
  for (const a of [SNOWFLAKE_ADDR.broker, SNOWFLAKE_ADDR.stun, SNOWFLAKE_ADDR.relay]) {
    await ip(['-n', h.inetNs, 'addr', 'add', `${a}/24`, 'dev', h.inetIf]);
  }
  await ip(['netns', 'add', proxyNs]);
  h.cleanup(async () => {
    await h.stopNamespace(proxyNs);
    await ip(['netns', 'del', proxyNs]).catch(() => undefined);
    rmSync(`/etc/netns/${proxyNs}`, { recursive: true, force: true });
  });
  await ip(['-n', proxyNs, 'link', 'set', 'lo', 'up']);
  await ip([
    'link',
    'add',
    'sfp0',
    'netns',
    proxyNs,
    'type',
    'veth',
    'peer',
    'name',
    'sfp1',
    'netns',
    h.inetNs,
  ]);
  await ip(['-n', h.inetNs, 'addr', 'add', `${SNOWFLAKE_ADDR.proxyGateway}/24`, 'dev', 'sfp1']);
  await ip(['-n', h.inetNs, 'link', 'set', 'sfp1', 'up']);
  await ip(['-n', proxyNs, 'addr', 'add', `${SNOWFLAKE_ADDR.proxy}/24`, 'dev', 'sfp0']);
  await ip(['-n', proxyNs, 'link', 'set', 'sfp0', 'up']);
  await ip(['-n', proxyNs, 'route', 'add', 'default', 'via', SNOWFLAKE_ADDR.proxyGateway]);
  for (const [ns, key] of [
    [h.inetNs, 'net.ipv4.ip_forward=1'],
    [proxyNs, 'net.ipv6.conf.all.disable_ipv6=1'],
  ] as const) {
    await execFileP('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', key]);
  }
  // `ip netns exec` binds this over /etc/resolv.conf for the proxy: the modem's resolver
  mkdirSync(`/etc/netns/${proxyNs}`, { recursive: true });
  writeFileSync(`/etc/netns/${proxyNs}/resolv.conf`, 'nameserver 198.18.0.53\n');

  const cert = await testCert(dir, 'broker', [`DNS:${SNOWFLAKE_BROKER_HOST}`, `DNS:${SNOWFLAKE_FRONT_HOST}`]);
  const broker = h.track('snowflake-broker', h.inetNs, process.execPath, [
    '--import',
    import.meta.resolve('tsx'),
    join(root, 'scripts/privnet/snowflake-broker.ts'),
    '--host',
    SNOWFLAKE_ADDR.broker,
    '--port',
    '443',
    '--cert',
    cert.certFile,
    '--key',
    cert.keyFile,
    '--relay-host',
    SNOWFLAKE_ADDR.relay,
    '--relay-port',
    '80',
    '--relay-url',
    SNOWFLAKE_RELAY_URL,
  ]);
  await h.waitForLog(broker, /LISTENING 443/, 60_000);
  const stunLog = join(dir, 'coturn.log');
  h.track('coturn', h.inetNs, 'turnserver', coturnArgs(stunLog));
  const proxy = h.track('snowflake-proxy', proxyNs, 'snowflake-proxy', snowflakeProxyArgs(), {
    ...process.env,
    SSL_CERT_FILE: cert.caFile,
  });
  // it checks its NAT first (unknown here), then polls the broker
  await h.waitForLog(proxy, /NAT type: /, 60_000);
  h.log(
    `snowflake: broker ${SNOWFLAKE_ADDR.broker}:443, STUN ${SNOWFLAKE_ADDR.stun}:3478, proxy ${SNOWFLAKE_ADDR.proxy}`,
  );
  const caFile = join(h.dir, 'snowflake-test-ca.pem');
  writeFileSync(caFile, readFileSync(cert.caFile), { mode: 0o644 });
  return { line: SNOWFLAKE_SIM_LINE, caFile, proxyNs, brokerLog: broker.log, proxyLog: proxy.log, stunLog };
}
