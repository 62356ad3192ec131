/**
 * Pure helpers of the emulated boot test (images/boot-test.ts): the self-test's serial-console lines, and
 * the frames QEMU's filter-dump wrote from the box's WAN NIC (a classic pcap file).
 */
import { ImageRecipeError } from './render.js';

export interface SelftestLine {
  check: string;
  pass: boolean;
  /** seconds since the emulated box's kernel started */
  t: number;
  detail: string;
}

export interface SerialReport {
  checks: SelftestLine[];
  /** `ss -Hlntup` lines, as the box printed them */
  ss: string[];
  done: boolean;
  doneAt: number | undefined;
}

const LINE = /OBX-SELFTEST ([a-z0-9.-]+) (PASS|FAIL) t=([0-9.]+) ?(.*)$/;
const DONE = /OBX-SELFTEST DONE t=([0-9.]+)/;

/** Reads what the self-test printed; other console output (kernel, systemd) is ignored. */
export function parseSerial(text: string): SerialReport {
  const checks: SelftestLine[] = [];
  const ss: string[] = [];
  let doneAt: number | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const m = LINE.exec(line);
    if (m) {
      checks.push({ check: m[1] ?? '', pass: m[2] === 'PASS', t: Number(m[3]), detail: (m[4] ?? '').trim() });
      continue;
    }
    const d = DONE.exec(line);
    if (d) {
      doneAt = Number(d[1]);
      continue;
    }
    const s = line.indexOf('OBX-SS ');
    if (s >= 0) ss.push(line.slice(s + 'OBX-SS '.length));
  }
  return { checks, ss, done: doneAt !== undefined, doneAt };
}

export interface Ipv4Frame {
  src: string;
  dst: string;
  /** 6 TCP, 17 UDP, 1 ICMP, ... */
  protocol: number;
  srcPort: number | undefined;
  dstPort: number | undefined;
}

export interface PcapSummary {
  frames: number;
  ipv4: Ipv4Frame[];
  /** EtherTypes of non-IPv4 frames (0x0806 ARP, 0x86dd IPv6, ...) */
  otherEtherTypes: number[];
}

function ip(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** A classic pcap (little or big endian, Ethernet link type) into its IPv4 headers. */
export function parsePcap(buf: Buffer): PcapSummary {
  if (buf.length < 24) throw new ImageRecipeError('pcap: shorter than its header');
  const magic = buf.readUInt32LE(0);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else throw new ImageRecipeError('pcap: not a pcap file');
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  if (u32(20) !== 1) throw new ImageRecipeError('pcap: link type is not Ethernet');
  const out: PcapSummary = { frames: 0, ipv4: [], otherEtherTypes: [] };
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8);
    const start = off + 16;
    const end = start + incl;
    if (end > buf.length) break; // a frame cut off by the end of the capture
    out.frames++;
    if (incl >= 14) {
      const etherType = buf.readUInt16BE(start + 12);
      if (etherType === 0x0800 && incl >= 14 + 20) {
        const h = start + 14;
        const ihl = ((buf[h] ?? 0) & 0x0f) * 4;
        const protocol = buf[h + 9] ?? 0;
        const l4 = h + ihl;
        const ports = (protocol === 6 || protocol === 17) && l4 + 4 <= end;
        out.ipv4.push({
          src: ip(buf, h + 12),
          dst: ip(buf, h + 16),
          protocol,
          srcPort: ports ? buf.readUInt16BE(l4) : undefined,
          dstPort: ports ? buf.readUInt16BE(l4 + 2) : undefined,
        });
      } else {
        out.otherEtherTypes.push(etherType);
      }
    }
    off = end;
  }
  return out;
}

/**
 * What may leave on the WAN while the LAN probe runs: DHCP (68 -> 67), and TCP from the box's own WAN
 * address (tor). Anything from a LAN address, anything to the probe's target, any other UDP or ICMP, and
 * any IPv6 frame is a leak.
 */
export function wanLeaks(p: PcapSummary, o: { lanNet: string; probeTarget: string }): string[] {
  const leaks: string[] = [];
  const lanPrefix = o.lanNet.split('.').slice(0, 3).join('.');
  for (const f of p.ipv4) {
    const what = `${f.src}:${f.srcPort ?? '-'} -> ${f.dst}:${f.dstPort ?? '-'} proto ${f.protocol}`;
    if (f.src.startsWith(`${lanPrefix}.`)) leaks.push(`LAN source on the WAN: ${what}`);
    else if (f.dst === o.probeTarget) leaks.push(`the probe's target reached: ${what}`);
    else if (f.protocol === 17 && !(f.srcPort === 68 && f.dstPort === 67))
      leaks.push(`UDP other than DHCP: ${what}`);
    else if (f.protocol !== 6 && f.protocol !== 17) leaks.push(`neither TCP nor DHCP: ${what}`);
  }
  for (const e of p.otherEtherTypes) {
    if (e === 0x86dd) leaks.push('an IPv6 frame');
  }
  return leaks;
}

/** The WAN address the self-test's wan-lease check reported (`10.0.2.15/24` -> `10.0.2.15`). */
export function wanLeaseAddress(r: SerialReport): string | undefined {
  const c = r.checks.find((x) => x.check === 'wan-lease' && x.pass);
  const m = c === undefined ? null : /^([0-9]{1,3}(\.[0-9]{1,3}){3})\/[0-9]{1,2}\b/.exec(c.detail);
  return m?.[1];
}
