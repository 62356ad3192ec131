/**
 * The leak self-test's probes: thin adapters that try to send from onionboxd (not tor's user) straight
 * to the internet side, read the sysctls and ask conntrack whether a probe's packet left the box. They
 * report raw outcomes; judge.ts says what they mean. Targets are only the box's own modem or WAN DHCP
 * server (never a host on the internet), and only port 53.
 */

import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { isIpv4 } from '../firewall/params.js';
import { exec } from '../lib/exec.js';
import type { ProbeResult, SysctlValues } from './judge.js';

export interface ProbeOptions {
  /** How long to wait for an answer (ms). */
  timeoutMs?: number;
  /** conntrack binary (tests: a path). */
  conntrackPath?: string;
}

const PORT = 53;
const DEFAULT_TIMEOUT_MS = 1500;

function errCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code : 'EUNKNOWN';
}

/**
 * Whether conntrack holds a confirmed entry for this probe (proto, destination, source port): the
 * packet passed the output hook and left. null when conntrack cannot be run, does not track in this
 * namespace, or its answer is unclear.
 */
export async function probeTracked(
  proto: 'tcp' | 'udp',
  target: string,
  sport: number,
  conntrackPath = 'conntrack',
): Promise<boolean | null> {
  if (!(await conntrackWorks(conntrackPath))) return null;
  return listedEntries(proto, target, PORT, sport, conntrackPath);
}

function listedEntries(
  proto: 'tcp' | 'udp',
  target: string,
  dport: number,
  sport: number,
  conntrackPath: string,
): Promise<boolean | null> {
  if (!isIpv4(target)) return Promise.resolve(null);
  const args = ['-L', '-p', proto, '--orig-dst', target, '--dport', String(dport), '--sport', String(sport)];
  return exec(conntrackPath, args, {
    timeoutMs: 5000,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin' },
  }).then(({ ok, stdout, stderr }) => {
    if (!ok) return null;
    // stdout: one line per entry; stderr: "... N flow entries have been shown."
    const m = /([0-9]+) flow entr(?:y|ies) ha(?:s|ve) been shown/.exec(stderr);
    const lines = stdout.split('\n').filter((l) => l.trim() !== '').length;
    if (!m) return lines > 0 ? true : null;
    return Number(m[1]) > 0 || lines > 0;
  });
}

/**
 * Whether this network namespace tracks connections at all (the kernel tracks only where a rule uses
 * conntrack; the box's table always does): a loopback connection of our own must show in the table.
 * Without this control, "no entry for the probe" would mean nothing.
 */
export async function conntrackWorks(conntrackPath = 'conntrack'): Promise<boolean> {
  const server = createServer((s) => s.destroy());
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
    const sport = await new Promise<number>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port }, () => {
        const p = c.localPort ?? 0;
        c.destroy();
        resolve(p);
      });
      c.once('error', reject);
    });
    return (await listedEntries('tcp', '127.0.0.1', port, sport, conntrackPath)) === true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** A TCP connection to target:53 from a random source port. */
export async function tcpProbe(target: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  for (let attempt = 0; attempt < 5; attempt++) {
    const localPort = randomInt(40_000, 60_000);
    const r = await new Promise<ProbeResult | 'busy'>((resolve) => {
      const sock = connect({ host: target, port: PORT, localPort, family: 4 });
      const timer = setTimeout(() => {
        sock.destroy();
        resolve({ kind: 'silent', tracked: null });
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.destroy();
        resolve({ kind: 'connected' });
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        sock.destroy();
        const code = errCode(err);
        resolve(code === 'EADDRINUSE' ? 'busy' : { kind: 'error', code });
      });
    });
    if (r === 'busy') continue;
    if (r.kind === 'silent')
      return { kind: 'silent', tracked: await probeTracked('tcp', target, localPort, opts.conntrackPath) };
    return r;
  }
  return { kind: 'error', code: 'EADDRINUSE' };
}

/** A DNS query (A record of a name under .invalid) sent by UDP to target:53. */
export function dnsQuery(id: number): Buffer {
  const labels = ['leak-test', 'onionbox', 'invalid'];
  const qname = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4); // one question
  return Buffer.concat([header, qname, Buffer.from([0, 1, 0, 1])]); // type A, class IN
}

export async function udpProbe(target: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sock = createSocket('udp4');
  try {
    const localPort = await new Promise<number>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, () => resolve(sock.address().port));
    });
    const r = await new Promise<ProbeResult>((resolve) => {
      const timer = setTimeout(() => resolve({ kind: 'silent', tracked: null }), timeoutMs);
      sock.on('message', () => {
        clearTimeout(timer);
        resolve({ kind: 'answered' });
      });
      sock.send(dnsQuery(randomInt(0, 0x10000)), PORT, target, (err) => {
        if (!err) return;
        clearTimeout(timer);
        resolve({ kind: 'error', code: errCode(err) });
      });
    });
    if (r.kind === 'silent')
      return { kind: 'silent', tracked: await probeTracked('udp', target, localPort, opts.conntrackPath) };
    return r;
  } catch (err) {
    return { kind: 'error', code: errCode(err) };
  } finally {
    sock.close();
  }
}

async function readSysctl(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** The sysctls the box sets (firmware/system/60-onionbox.conf), read from /proc/sys. */
export async function readSysctls(root = '/proc/sys'): Promise<SysctlValues> {
  const [ipForward, allForwarding, ipv6Disabled] = await Promise.all([
    readSysctl(`${root}/net/ipv4/ip_forward`),
    readSysctl(`${root}/net/ipv4/conf/all/forwarding`),
    readSysctl(`${root}/net/ipv6/conf/all/disable_ipv6`),
  ]);
  const ipv6Present =
    ipv6Disabled !== null || (await readSysctl(`${root}/net/ipv6/conf/all/forwarding`)) !== null;
  return { ipForward, allForwarding, ipv6Disabled, ipv6Present };
}

/** The WAN's default gateways, from /proc/net/route. */
export async function readRouteTable(path = '/proc/net/route'): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}
