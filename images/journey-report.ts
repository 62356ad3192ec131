/**
 * Pure helpers of the journey inside the emulated image (images/journey.ts): what the image's WAN NIC
 * may send, and the per-step times.
 */
import type { PcapSummary } from './boot-report.js';

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * Every frame the image sent on its WAN must be ARP, DHCP (UDP 68 -> 67) or TCP to a relay's ORPort (tor,
 * through the firewall's relay set). Returns what was not, at most `max` lines.
 */
export function wanNotTorOrDhcp(p: PcapSummary, relays: readonly Endpoint[], max = 10): string[] {
  const allowed = new Set(relays.map((r) => `${r.address}:${r.port}`));
  const out: string[] = [];
  for (const f of p.ipv4) {
    if (f.protocol === 17 && f.srcPort === 68 && f.dstPort === 67) continue;
    if (f.protocol === 6 && allowed.has(`${f.dst}:${f.dstPort}`)) continue;
    out.push(`${f.src}:${f.srcPort ?? '-'} -> ${f.dst}:${f.dstPort ?? '-'} proto ${f.protocol}`);
  }
  for (const e of p.otherEtherTypes) {
    if (e !== 0x0806) out.push(`EtherType 0x${e.toString(16).padStart(4, '0')}`);
  }
  return out.slice(0, max);
}

/** Counts of what the WAN capture held: ARP, DHCP, TCP to relays. */
export function wanSummary(p: PcapSummary): string {
  const dhcp = p.ipv4.filter((f) => f.protocol === 17 && f.srcPort === 68 && f.dstPort === 67).length;
  const tcp = p.ipv4.filter((f) => f.protocol === 6).length;
  const arp = p.otherEtherTypes.filter((e) => e === 0x0806).length;
  return `${p.frames} frames: ${arp} ARP, ${dhcp} DHCP, ${tcp} TCP`;
}

export interface StepTimes {
  /** seconds on the box (since its kernel started) */
  lockdown?: number | undefined;
  /** seconds on the host (since QEMU started) */
  page?: number | undefined;
  /** seconds on the box */
  torRouting?: number | undefined;
  /** seconds on the host */
  firstFetch?: number | undefined;
}

/** One line: power-on -> lockdown -> page -> tor bootstrapped (routing) -> the LAN device's first fetch. */
export function formatStepTimes(t: StepTimes): string {
  const s = (v: number | undefined, where: string) =>
    v === undefined ? 'never' : `${v.toFixed(1)} s (${where})`;
  return [
    `lockdown ${s(t.lockdown, 'box')}`,
    `page ${s(t.page, 'host')}`,
    `tor routing ${s(t.torRouting, 'box')}`,
    `first LAN fetch ${s(t.firstFetch, 'host')}`,
  ].join(' -> ');
}
