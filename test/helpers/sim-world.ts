/**
 * What the whole-box e2e tests (test/e2e/sim-*.test.ts, web-real-box.test.ts) ask of the simulated world
 * (scripts/sim/world.ts) from outside: the box's status over its control socket, polling until
 * something holds, curl as the LAN device, the CLI as a child, and the frames on a WAN wire that are
 * not allowed there.
 */
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';
import { ipcCall, socketPath } from '../../firmware/control/socket.js';
import { buildWorld, uniquePrefix, type World, type WorldOptions } from '../../scripts/sim/world.js';
import type { Frame } from './netns.js';
import { nodeTsArgs } from './node-ts.js';
import { tmpDir } from './tmp.js';

const root = new URL('../../', import.meta.url).pathname;

/**
 * buildWorld with the unchanged onionboxd run from source and the world's progress as test comments.
 * The world is stopped at the test's teardown unless the test stopped it first (stop() runs once).
 */
export async function startWorld(
  t: { comment(text: string): void; teardown(fn: () => unknown): void },
  opts: Omit<WorldOptions, 'daemonCommand' | 'log'>,
): Promise<World> {
  const world = await buildWorld({
    ...opts,
    daemonCommand: [process.execPath, ...nodeTsArgs(), `${root}firmware/main.ts`],
    log: (l) => t.comment(l),
  });
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= world.stop();
    return stopping;
  };
  t.teardown(stop);
  return { ...world, stop };
}

/**
 * startWorld with a prefix and directory of its own (removed at the test's end) and the page exposed on
 * a free loopback port, the way the host's browser reaches it under `npm start` (the browser tests).
 */
export async function startWorldWithPage(
  t: Test,
  opts: Omit<WorldOptions, 'prefix' | 'dir' | 'daemonCommand' | 'log'> = {},
): Promise<{ world: World; address: string }> {
  const world = await startWorld(t, { prefix: uniquePrefix(), dir: tmpDir(t), ...opts });
  const address = await world.exposePage(0);
  return { world, address };
}

/** The box's status as onionboxd reports it (`onionbox status --json`). */
export async function boxStatus(w: World): Promise<Record<string, unknown>> {
  const r = await ipcCall(socketPath(w.boxStateDir), 'status', {}, 5000);
  if (!r.ok) throw new Error(`status: ${r.error}`);
  return r.result as Record<string, unknown>;
}

/** Polls fn every 300 ms until it gives a value; throws (with its last error) after ms. */
export async function until<T>(what: string, fn: () => Promise<T | null | false>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let lastErr = '';
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = String(e);
    }
    await sleep(300);
  }
  throw new Error(`timed out: ${what} ${lastErr}`);
}

let lastCurlError = '';

/** curl as the LAN device: the body, or null when it fails (refused, timed out; see lastCurlFailure). */
export async function lanCurl(w: World, url: string, seconds = 10): Promise<string | null> {
  try {
    return await w.exec(
      w.netns.lan,
      'curl',
      ['-s', '-S', '-m', String(seconds), '-o', '-', url],
      (seconds + 5) * 1000,
    );
  } catch (e) {
    lastCurlError = String(e).split('\n').slice(-2).join(' ');
    return null;
  }
}

/** Why the last lanCurl returned null. */
export function lastCurlFailure(): string {
  return lastCurlError;
}

function cliArgs(w: World, args: string[]): string[] {
  return [...nodeTsArgs(), `${root}firmware/cli/main.ts`, '--state-dir', w.boxStateDir, ...args];
}

/** `onionbox ARGS` against the world's box, to its end (30 s at most). */
export function cli(w: World, args: string[]) {
  return spawnSync(process.execPath, cliArgs(w, args), { encoding: 'utf8', timeout: 30_000 });
}

/** The CLI as a child: resolves with its exit code and output (stdout and stderr) when it ends. */
export function cliAsync(w: World, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, cliArgs(w, args), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out })));
}

/** The MAC address of an interface in one of the world's namespaces. */
export async function macOf(w: World, ns: string, ifname: string): Promise<string> {
  return (await w.exec(ns, 'cat', [`/sys/class/net/${ifname}/address`])).trim();
}

/**
 * The box's frames on a WAN wire that are not ARP about its address, its DHCP client (68 -> 67, to
 * broadcast or a known server), TCP from its address to a relay, or (given `resolvers`) DNS from its
 * address to one of those resolvers. Pure.
 */
export function wanLeaks(
  frames: Frame[],
  o: {
    mac: string;
    addr: string;
    relays: Set<string>;
    known: Set<string>;
    /** The WAN's resolvers tor's uid may ask (UDP or TCP 53), for its transports; none by default. */
    resolvers?: Set<string>;
  },
): Frame[] {
  const dns = (f: Frame) => f.src === o.addr && f.dport === 53 && (o.resolvers?.has(f.dst ?? '') ?? false);
  return frames.filter((f) => {
    if (f.srcMac !== o.mac) return false; // the internet's own frames
    if (f.etherType === 0x0806) return !(f.arpSender === o.addr && o.known.has(f.arpTarget ?? ''));
    if (f.etherType !== 0x0800) return true;
    if (f.proto === 17) {
      const dhcpClient = f.sport === 68 && f.dport === 67;
      return !(dhcpClient && (f.dst === '255.255.255.255' || o.known.has(f.dst ?? ''))) && !dns(f);
    }
    if (f.proto !== 6) return true;
    return !(f.src === o.addr && o.relays.has(`${f.dst}:${f.dport}`)) && !dns(f);
  });
}

/**
 * One DNS query (A record of `name`) to `server`:53 over UDP from namespace `ns`, as `user` (setpriv;
 * null: root), by a small node child: the address answered, or null when no answer came within 3 s
 * (the firewall dropped the query). Test code; the query goes only to the world's own resolver.
 */
export async function dnsQuery(
  w: World,
  ns: string,
  user: string | null,
  server: string,
  name: string,
): Promise<string | null> {
  if (!/^[a-z0-9.-]{1,200}$/.test(name) || !/^[0-9.]{7,15}$/.test(server)) throw new Error('bad query');
  const script = `
const dgram = require('node:dgram');
const labels = ${JSON.stringify(name)}.split('.');
const q = Buffer.concat([
  Buffer.from([0x4f, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
  Buffer.from([0, 0, 1, 0, 1]),
]);
const s = dgram.createSocket('udp4');
const timer = setTimeout(() => { console.log('silent'); s.close(); }, 3000);
s.on('message', (m) => {
  clearTimeout(timer);
  const an = m.readUInt16BE(6);
  console.log(an > 0 ? 'answer ' + [...m.subarray(m.length - 4)].join('.') : 'empty');
  s.close();
});
s.send(q, 53, ${JSON.stringify(server)});
`;
  const cmd = user === null ? process.execPath : 'setpriv';
  const args =
    user === null
      ? ['-e', script]
      : [`--reuid=${user}`, `--regid=${user}`, '--clear-groups', process.execPath, '-e', script];
  const out = (await w.exec(ns, cmd, args, 15_000)).trim();
  if (out === 'silent') return null;
  const m = /^answer ([0-9.]+)$/.exec(out);
  if (!m?.[1]) throw new Error(`dns probe: ${out}`);
  return m[1];
}
