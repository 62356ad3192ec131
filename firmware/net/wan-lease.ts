/**
 * The WAN's DHCP lease as NetworkManager reports it, for the firewall's one exception: the box's DHCP
 * client may renew by unicast with the server that leased the address (UDP 68 -> 67).
 *
 *   nmcli -t -f DHCP4 device show eth0
 *   DHCP4.OPTION[3]:dhcp_server_identifier = 192.168.1.1
 *
 * and the DNS servers the DHCP server offered (`domain_name_servers = A B`), which NetworkManager asks for
 * and reports here even though the box's WAN profile has ignore-auto-dns (so IP4.DNS stays empty and
 * NetworkManager never uses them itself): they go only into tor's private resolv.conf.
 *
 * `parseDhcp4` is pure; `WanLeaseWatcher` asks nmcli (argument array, C locale in the child only, exit
 * code checked) at start and every interval, and reports a change of server, address or resolvers.
 * Anything unparsable counts as "no server known": the firewall then allows DHCP broadcasts only, and the
 * lease is still kept by the rebinding broadcast.
 */
import { isHostAddress, isIpv4 } from '../firewall/params.js';
import { nmcli } from './wifi.js';

export interface WanLease {
  serverId: string | null;
  address: string | null;
  /** The leased subnet's prefix length (from subnet_mask), or null. */
  prefix: number | null;
  /** The WAN's resolvers (domain_name_servers): only tor's uid may ask them, for its transports. */
  resolvers?: string[];
}

/** The resolv.conf tor's unit binds over /etc/resolv.conf: the WAN's own resolvers, nothing else. Pure. */
export function renderResolvConf(resolvers: readonly string[]): string {
  const lines = ['# Rendered by onionboxd from the WAN lease: for tor and its transports only.'];
  for (const r of resolvers) if (isIpv4(r) && isHostAddress(r)) lines.push(`nameserver ${r}`);
  lines.push('options edns0 timeout:2 attempts:2');
  return `${lines.join('\n')}\n`;
}

/** A dotted netmask as a prefix length, or null when it is not a contiguous mask. Pure. */
export function maskToPrefix(mask: string): number | null {
  if (!isIpv4(mask)) return null;
  const n = mask.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  for (let p = 0; p <= 32; p++) {
    if (n === (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0)) return p;
  }
  return null;
}

/** The leased address as A.B.C.D/N (null without an address; /32 when the mask is unknown). Pure. */
export function leaseCidr(lease: WanLease): string | null {
  return lease.address === null ? null : `${lease.address}/${lease.prefix ?? 32}`;
}

/** Parses `nmcli -t -f DHCP4 device show IF` (terse). Pure. */
export function parseDhcp4(text: string): WanLease {
  let serverId: string | null = null;
  let address: string | null = null;
  let prefix: number | null = null;
  const resolvers: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^DHCP4\.OPTION\[[0-9]+\]:([a-z0-9_]+) = (.*)$/.exec(line.trimEnd());
    if (!m) continue;
    const value = (m[2] ?? '').trim();
    if (m[1] === 'subnet_mask') {
      prefix = maskToPrefix(value);
      continue;
    }
    if (m[1] === 'domain_name_servers') {
      for (const r of value.split(/\s+/)) {
        if (isIpv4(r) && isHostAddress(r) && !resolvers.includes(r) && resolvers.length < 4)
          resolvers.push(r);
      }
      continue;
    }
    if (!isIpv4(value) || !isHostAddress(value)) continue;
    if (m[1] === 'dhcp_server_identifier') serverId = value;
    else if (m[1] === 'ip_address') address = value;
  }
  return { serverId, address, prefix, resolvers };
}

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** The WAN's lease from NetworkManager (nmcli called and judged as in wifi.ts: exit code and output). */
export async function readWanLease(wanIf: string, bin = 'nmcli'): Promise<WanLease> {
  if (!IFNAME.test(wanIf)) throw new Error(`bad interface name ${wanIf}`);
  return parseDhcp4(await nmcli(['-t', '-f', 'DHCP4', 'device', 'show', wanIf], { bin, timeoutMs: 10_000 }));
}

export interface WanLeaseWatcherOptions {
  wanIf: string;
  intervalMs?: number | undefined;
  nmcli?: string | undefined;
  onChange: (lease: WanLease) => void | Promise<void>;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export class WanLeaseWatcher {
  #timer: NodeJS.Timeout | null = null;
  #last = '';
  #warned = false;
  #lease: WanLease = { serverId: null, address: null, prefix: null };

  readonly #opts: WanLeaseWatcherOptions;

  constructor(opts: WanLeaseWatcherOptions) {
    this.#opts = opts;
  }

  get lease(): WanLease {
    return this.#lease;
  }

  async start(): Promise<void> {
    await this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#opts.intervalMs ?? 30_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async poll(): Promise<void> {
    let lease: WanLease;
    try {
      lease = await readWanLease(this.#opts.wanIf, this.#opts.nmcli);
      this.#warned = false;
    } catch (err) {
      if (!this.#warned) this.#opts.log.warn({ err: (err as Error).message }, 'WAN lease unknown');
      this.#warned = true;
      return;
    }
    // a new resolver alone is a change too: tor's resolv.conf and the firewall's DNS opening follow it
    const key = `${lease.serverId}|${lease.address}/${lease.prefix}|${(lease.resolvers ?? []).join(',')}`;
    if (key === this.#last) return;
    this.#last = key;
    this.#lease = lease;
    this.#opts.log.info({ ...lease }, 'WAN lease');
    await this.#opts.onChange(lease);
  }
}
