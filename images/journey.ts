/**
 * The whole journey inside the emulated image (npm run image:test): the image's two NICs in the
 * simulator's world (scripts/sim/world.ts with an external box, scripts/sim/external-box.ts) instead of
 * QEMU's user network, and the private Tor network's authorities handed to the image as firmware data
 * (fw_cfg). The image's tor must bootstrap from an empty data directory through its firewall's relay set;
 * a LAN device takes its lease from the image's dnsmasq and fetches http://web.sim.test/ip through it,
 * which answers the exit's address; the real kill switch (QEMU's power button on PL061 line 3, driven by
 * the unchanged GpioBoard) cuts it while held and lets it fetch again once released. Every frame the
 * image sends on its WAN is captured on its tap: only ARP, DHCP and TCP to relays may be there.
 *
 * The guest reaches only the namespaces this test made: QEMU runs inside the world's box namespace,
 * where its taps are bridged to the world's veths.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { EXTERNAL_TAPS, externalBoxQemuArgs } from '../scripts/sim/external-box.js';
import {
  ADDR,
  buildWorld,
  EXIT_ADDR,
  HOSTNAME,
  leasedAddress,
  uniquePrefix,
  type World,
  type WorldOptions,
} from '../scripts/sim/world.js';
import { parsePcap } from './boot-report.js';
import { wanNotTorOrDhcp, wanSummary } from './journey-report.js';

const execFileP = promisify(execFile);

export interface JourneyResult {
  name: string;
  pass: boolean;
  detail: string;
}

export interface Journey {
  world: World;
  /** The namespace QEMU runs in (its taps are there). */
  qemuNs: string;
  /** The LAN device's namespace, and the world's internet. */
  lanNs: string;
  inetNs: string;
  /** The box's WAN address as the modem leases it. */
  boxWan: string;
  /** QEMU's NIC and fw_cfg arguments. */
  qemuArgs: string[];
  /** Every frame the image sent on its WAN NIC. */
  wanPcap: string;
  stop(): Promise<void>;
}

/** Builds the world around the image and starts the WAN capture on its tap; QEMU is the caller's. */
export async function startJourney(
  dir: string,
  log: (l: string) => void,
  options: Pick<WorldOptions, 'updates'> = {},
): Promise<Journey> {
  const world = await buildWorld({ prefix: uniquePrefix(), dir, box: 'external', log, ...options });
  try {
    const testNetworkFile = join(dir, 'fw-cfg-test-network.json');
    writeFileSync(
      testNetworkFile,
      `${JSON.stringify({ torrc: world.privnet.clientTorrcLines, checkUrl: `http://${HOSTNAME}/api/ip` })}\n`,
    );
    const wanPcap = join(dir, 'box-wan.pcap');
    // frames the guest sends arrive on its tap ("in" from the kernel's side)
    const cap = world.spawn('capture-box-wan', world.netns.box, 'tcpdump', [
      '-i',
      EXTERNAL_TAPS.wan,
      '-Q',
      'in',
      '-n',
      '-s',
      '128',
      '-U',
      '-w',
      wanPcap,
    ]);
    for (let i = 0; i < 100 && !(existsSync(wanPcap) && readFileSync(wanPcap).length >= 24); i++) {
      if (cap.child.exitCode !== null) throw new Error(`tcpdump exited: ${readFileSync(cap.log, 'utf8')}`);
      await sleep(50);
    }
    return {
      world,
      qemuNs: world.netns.box,
      lanNs: world.netns.lan,
      inetNs: world.netns.inet,
      boxWan: ADDR.boxWan,
      qemuArgs: externalBoxQemuArgs({ testNetworkFile }),
      wanPcap,
      stop: () => world.stop(),
    };
  } catch (err) {
    await world.stop();
    throw err;
  }
}

async function inNs(ns: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; stdout: string }> {
  try {
    const r = await execFileP('ip', ['netns', 'exec', ns, ...args], { timeout: timeoutMs });
    return { ok: true, stdout: r.stdout };
  } catch (err) {
    return { ok: false, stdout: (err as { stdout?: string }).stdout ?? '' };
  }
}

/** The LAN device's fetch of web.sim.test/ip through the box (names through tor's DNSPort too). */
export async function lanFetch(j: Journey, maxSeconds: number): Promise<{ ok: boolean; body: string }> {
  const r = await inNs(
    j.lanNs,
    ['curl', '-s', '-m', String(maxSeconds), `http://${HOSTNAME}/ip`],
    (maxSeconds + 5) * 1000,
  );
  return { ok: r.ok, body: r.stdout.trim() };
}

/** Whether the page answers from the world's internet on the box's WAN address (it must not). */
export async function wanPageAnswers(j: Journey): Promise<boolean> {
  const r = await inNs(
    j.inetNs,
    ['curl', '-s', '-o', '/dev/null', '-m', '10', '-w', '%{http_code}', `http://${j.boxWan}/`],
    20_000,
  );
  return r.ok && /^[1-5][0-9][0-9]$/.test(r.stdout.trim());
}

/** Every frame the image sent on its WAN (`during`: through what) is ARP, DHCP or TCP to a relay. */
export function wanOnlyTorCheck(j: Journey, during: string): JourneyResult {
  if (!existsSync(j.wanPcap)) return { name: "the image's WAN capture", pass: false, detail: 'no pcap' };
  const p = parsePcap(readFileSync(j.wanPcap));
  const bad = wanNotTorOrDhcp(p, j.world.privnet.relayEndpoints());
  return {
    name: `the image's WAN carried only ARP, DHCP and TCP to relays ${during}`,
    pass: bad.length === 0 && p.frames > 0,
    detail: bad.join('; ') || wanSummary(p),
  };
}

/** The LAN device's lease address, once it has one. */
export function lanLease(j: Journey): string | null {
  return leasedAddress(join(j.world.dir, 'lan-lease.env'));
}

export interface AfterBoot {
  /** Seconds since QEMU started. */
  elapsed(): number;
  /** Holds QEMU's power button (the kill switch, PL061 line 3) for `ms`. */
  holdPowerButton(ms: number): Promise<void>;
  log(line: string): void;
}

/**
 * The journey once the image has booted: the first fetch through tor, then the kill switch held and
 * released, then the WAN capture. Returns the checks (and the first fetch's time in `firstFetchAt`).
 */
export async function journeyAfterBoot(
  j: Journey,
  a: AfterBoot,
  fetchWithinS: number,
): Promise<{ results: JourneyResult[]; firstFetchAt: number | undefined }> {
  const results: JourneyResult[] = [];
  const lease = lanLease(j);
  results.push({
    name: "LAN device's lease from the image's dnsmasq",
    pass: lease !== null,
    detail: lease ?? 'no lease',
  });
  // 1. the first fetch: polled until tor routes (the box reports routing before this runs)
  let first: { ok: boolean; body: string } = { ok: false, body: '' };
  let firstFetchAt: number | undefined;
  const end = Date.now() + fetchWithinS * 1000;
  while (lease !== null && Date.now() < end) {
    first = await lanFetch(j, 30);
    if (first.ok && first.body !== '') {
      firstFetchAt = a.elapsed();
      break;
    }
    await sleep(5000);
  }
  results.push({
    name: 'LAN device fetches http://web.sim.test/ip through tor',
    pass: first.ok && first.body === EXIT_ADDR,
    detail: first.ok
      ? `answered ${first.body} (the exit is ${EXIT_ADDR}) at ${firstFetchAt?.toFixed(1)} s`
      : `no answer within ${fetchWithinS} s`,
  });
  // 2. the kill switch: held for 60 s; the LAN device is cut while it is held, and fetches again after
  if (first.ok) {
    const holdMs = 60_000;
    a.log(`holding the kill switch (power button, PL061 line 3) for ${holdMs / 1000} s`);
    const holding = a.holdPowerButton(holdMs);
    const heldAt = Date.now();
    await sleep(20_000); // the emulated box reacts within seconds; leave it room under TCG
    const during = await lanFetch(j, 25);
    const duringMs = Date.now() - heldAt;
    await holding;
    const releasedAt = Date.now();
    let after: { ok: boolean; body: string } = { ok: false, body: '' };
    while (Date.now() - releasedAt < 600_000) {
      after = await lanFetch(j, 30);
      if (after.ok && after.body !== '') break;
      await sleep(3000);
    }
    results.push({
      name: 'kill switch held: the LAN device is cut',
      pass: !during.ok && duringMs < holdMs,
      detail: during.ok
        ? `fetched ${during.body} while the switch was held`
        : `no answer from ${HOSTNAME} 20-${(duringMs / 1000).toFixed(0)} s into the hold`,
    });
    results.push({
      name: 'kill switch released: the LAN device fetches again',
      pass: after.ok && after.body === EXIT_ADDR,
      detail: after.ok
        ? `answered ${after.body} ${((Date.now() - releasedAt) / 1000).toFixed(1)} s after release`
        : 'no answer within 600 s of release',
    });
  }
  // 3. what the image sent on its WAN, from its first frame on
  const p = parsePcap(readFileSync(j.wanPcap));
  const bad = wanNotTorOrDhcp(p, j.world.privnet.relayEndpoints());
  const tcp = p.ipv4.filter((f) => f.protocol === 6).length;
  results.push({
    name: "image's WAN carries only ARP, DHCP and TCP to relays",
    pass: bad.length === 0 && tcp > 0,
    detail:
      bad.length > 0
        ? bad.join('; ')
        : `${wanSummary(p)} (${j.world.privnet.relayEndpoints().length} relay ORPorts)`,
  });
  return { results, firstFetchAt };
}
