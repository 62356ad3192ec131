/**
 * What the whole-box e2e tests (test/e2e/sim-*.test.ts) ask of the simulated world
 * (scripts/sim/world.ts) from outside: the box's status over its control socket, polling until
 * something holds, curl as the LAN device, the CLI as a child, and the frames on a WAN wire that are
 * not allowed there.
 */
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipcCall, socketPath } from '../../firmware/control/socket.js';
import { buildWorld, type World, type WorldOptions } from '../../scripts/sim/world.js';
import type { Frame } from './netns.js';
import { nodeTsArgs } from './node-ts.js';

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
 * broadcast or a known server), or TCP from its address to a relay. Pure.
 */
export function wanLeaks(
  frames: Frame[],
  o: { mac: string; addr: string; relays: Set<string>; known: Set<string> },
): Frame[] {
  return frames.filter((f) => {
    if (f.srcMac !== o.mac) return false; // the internet's own frames
    if (f.etherType === 0x0806) return !(f.arpSender === o.addr && o.known.has(f.arpTarget ?? ''));
    if (f.etherType !== 0x0800) return true;
    if (f.proto === 17) {
      const dhcpClient = f.sport === 68 && f.dport === 67;
      return !(dhcpClient && (f.dst === '255.255.255.255' || o.known.has(f.dst ?? '')));
    }
    if (f.proto !== 6) return true;
    return !(f.src === o.addr && o.relays.has(`${f.dst}:${f.dport}`));
  });
}
