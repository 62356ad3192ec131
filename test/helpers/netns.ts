/**
 * Network namespaces for tests: unique names per run (pid + random suffix), removed in teardown even on
 * failure. Every command is an argument array (execFile), never a shell.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

/** Anything that runs cleanups at the end: a tap Test, or a bench's own list. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

const execFileP = promisify(execFile);

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Under CI=true the test must run (and fail if a tool is missing); outside CI it may skip when not root. */
export function rootSkipReason(tools: string[] = ['ip', 'nft']): string | false {
  if (process.env.CI === 'true') return false;
  if (!isRoot()) return 'needs root (network namespaces); runs under CI=true';
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', 'command -v "$0"', tool]).status !== 0) return `${tool} not installed`;
  }
  return false;
}

/** A short unique suffix: 4 hex chars of randomness plus the pid in base 36. */
export function uniqueSuffix(): string {
  return `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

export async function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await execFileP(cmd, args, {
    timeout: opts.timeoutMs ?? 30_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Runs a command inside a namespace. */
export function nsRun(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number } = {}) {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Creates a namespace with lo up; deleted in teardown. */
export async function makeNetns(t: Teardown, base: string): Promise<string> {
  const name = `obx-${base}-${uniqueSuffix()}`;
  await run('ip', ['netns', 'add', name]);
  t.teardown(async () => {
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  });
  await nsRun(name, 'ip', ['link', 'set', 'lo', 'up']);
  return name;
}

/** A veth pair between two namespaces (names <= 15 chars), both ends left DOWN. */
export async function makeVeth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  if (ifA.length > 15 || ifB.length > 15) throw new Error(`veth name too long: ${ifA} ${ifB}`);
  await run('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
}

export async function addAddr(ns: string, ifName: string, cidr: string): Promise<void> {
  await nsRun(ns, 'ip', ['addr', 'add', cidr, 'dev', ifName]);
}

export async function linkUp(ns: string, ifName: string): Promise<void> {
  await nsRun(ns, 'ip', ['link', 'set', ifName, 'up']);
}

export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await nsRun(ns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
}

export interface Capture {
  file: string;
  /** Stops tcpdump (SIGINT by pid) and waits until the file is complete. */
  stop(): Promise<void>;
}

/**
 * tcpdump on one interface of a namespace, small snaplen, packet-buffered (-U), written to `file`.
 * Resolves once tcpdump says it is listening. The interface must be up (bring the capture side up while
 * its peer is still down: nothing can cross the wire before the capture runs).
 */
export function startCapture(
  t: Teardown,
  ns: string,
  ifName: string,
  file: string,
  snaplen = 128,
): Promise<Capture> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'tcpdump', '-i', ifName, '-nn', '-s', String(snaplen), '-U', '-w', file],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stopped = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGINT');
    }
    await exited;
  };
  t.teardown(stop);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      err += d;
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        resolve({ file, stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}): ${err}`));
    });
  });
}

export interface Frame {
  /** ethertype: 0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP, ... */
  etherType: number;
  srcMac: string;
  dstMac: string;
  /** IPv4/IPv6 only */
  src?: string;
  dst?: string;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...) */
  proto?: number;
  sport?: number;
  dport?: number;
  tcpFlags?: number;
  /** ARP: sender and target protocol addresses */
  arpOp?: number;
  arpSender?: string;
  arpTarget?: string;
}

const mac = (b: Buffer, o: number) =>
  [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ip4 = (b: Buffer, o: number) => [...b.subarray(o, o + 4)].join('.');
const ip6 = (b: Buffer, o: number) =>
  Array.from({ length: 8 }, (_, i) => b.readUInt16BE(o + i * 2).toString(16)).join(':');

/** Parses a classic pcap file (Ethernet link type) into frames. No tcpdump text parsing. */
export function parsePcap(data: Buffer): Frame[] {
  if (data.length < 24) return [];
  const magic = data.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && data.readUInt32BE(0) !== 0xa1b2c3d4 && data.readUInt32BE(0) !== 0xa1b23c4d) {
    throw new Error('not a pcap file');
  }
  const u32 = (o: number) => (le ? data.readUInt32LE(o) : data.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`unexpected link type ${u32(20)}`);
  const frames: Frame[] = [];
  let o = 24;
  while (o + 16 <= data.length) {
    const incl = u32(o + 8);
    const p = data.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    if (p.length < 14) continue;
    let etherType = p.readUInt16BE(12);
    let l3 = 14;
    if (etherType === 0x8100 && p.length >= 18) {
      etherType = p.readUInt16BE(16);
      l3 = 18;
    }
    const f: Frame = { etherType, dstMac: mac(p, 0), srcMac: mac(p, 6) };
    if (etherType === 0x0800 && p.length >= l3 + 20) {
      const ihl = (p[l3]! & 0x0f) * 4;
      f.proto = p[l3 + 9]!;
      f.src = ip4(p, l3 + 12);
      f.dst = ip4(p, l3 + 16);
      const l4 = l3 + ihl;
      if ((f.proto === 6 || f.proto === 17) && p.length >= l4 + 4) {
        f.sport = p.readUInt16BE(l4);
        f.dport = p.readUInt16BE(l4 + 2);
      }
      if (f.proto === 6 && p.length >= l4 + 14) f.tcpFlags = p[l4 + 13]!;
    } else if (etherType === 0x86dd && p.length >= l3 + 40) {
      f.proto = p[l3 + 6]!;
      f.src = ip6(p, l3 + 8);
      f.dst = ip6(p, l3 + 24);
    } else if (etherType === 0x0806 && p.length >= l3 + 28) {
      f.arpOp = p.readUInt16BE(l3 + 6);
      f.arpSender = ip4(p, l3 + 14);
      f.arpTarget = ip4(p, l3 + 24);
    }
    frames.push(f);
  }
  return frames;
}

export function describeFrame(f: Frame): string {
  if (f.etherType === 0x0806) return `ARP op ${f.arpOp} ${f.arpSender} -> ${f.arpTarget} (${f.srcMac})`;
  const proto =
    { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 2: 'IGMP' }[f.proto ?? -1] ?? `proto ${f.proto}`;
  const ports = f.sport !== undefined ? `:${f.sport} -> ` : ' -> ';
  return `${f.etherType === 0x86dd ? 'IPv6' : f.etherType === 0x0800 ? 'IPv4' : `ether 0x${f.etherType.toString(16)}`} ${proto} ${f.src ?? f.srcMac}${ports}${f.dst ?? f.dstMac}${f.dport !== undefined ? `:${f.dport}` : ''}`;
}
