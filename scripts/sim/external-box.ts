/**
 * The simulated world around an external box: the emulated image (a QEMU guest) instead of onionboxd in
 * the box namespace. The box namespace then holds no box, only the wiring closet: two bridges, each
 * joining one of QEMU's tap devices to the veth that leads to the world (WAN: the modem's namespace,
 * `<p>-inet`; LAN: the LAN device's, `<p>-lan`). Nothing there has an address; IPv6 is off, so the
 * closet itself sends nothing. QEMU runs inside the box namespace (`ip netns exec`), the only place
 * where the tap devices exist: the guest reaches the world's namespaces and nothing else.
 *
 *   QEMU eth0 (WAN) -- tap obxwan -- bridge obxbrwan -- eth0 (veth) -- modem0 (<p>-inet)
 *   QEMU eth1 (LAN) -- tap obxlan -- bridge obxbrlan -- wlan0 (veth) -- eth0 (<p>-lan, the LAN device)
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const EXTERNAL_TAPS = Object.freeze({ wan: 'obxwan', lan: 'obxlan' });
export const EXTERNAL_BRIDGES = Object.freeze({ wan: 'obxbrwan', lan: 'obxbrlan' });

async function ipIn(ns: string, args: string[]): Promise<void> {
  await execFileP('ip', ['-n', ns, ...args], { timeout: 15_000 });
}

/**
 * The closet's wiring in namespace `ns`: taps (owned by root, for QEMU's `-netdev tap,ifname=...`), one
 * bridge per side without STP (ports forward at once), the world's veth ends as the other ports.
 */
export async function wireExternalBox(ns: string, links: { wan: string; lan: string }): Promise<void> {
  for (const side of ['wan', 'lan'] as const) {
    const tap = EXTERNAL_TAPS[side];
    const bridge = EXTERNAL_BRIDGES[side];
    await ipIn(ns, ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await ipIn(ns, ['link', 'add', bridge, 'type', 'bridge', 'stp_state', '0']);
    for (const port of [tap, links[side]]) {
      await ipIn(ns, ['link', 'set', port, 'master', bridge]);
      await ipIn(ns, ['link', 'set', port, 'up']);
    }
    await ipIn(ns, ['link', 'set', bridge, 'up']);
  }
}

/**
 * QEMU's arguments for the external box's two NICs (virtio, the image's eth0 = WAN and eth1 = LAN, on
 * the closet's taps) and, when given, the test network as firmware data (fw_cfg). Pure.
 */
export function externalBoxQemuArgs(o: { testNetworkFile?: string }): string[] {
  // QEMU splits its option values at commas: the path must not hold one (or anything odd)
  if (o.testNetworkFile !== undefined && !/^\/[A-Za-z0-9_./-]+$/.test(o.testNetworkFile)) {
    throw new Error(`sim: test network path not usable in a QEMU option: ${o.testNetworkFile}`);
  }
  return [
    '-netdev',
    `tap,id=wan,ifname=${EXTERNAL_TAPS.wan},script=no,downscript=no`,
    '-device',
    'virtio-net-pci,netdev=wan,mac=52:54:00:0b:00:01,romfile=',
    '-netdev',
    `tap,id=lan,ifname=${EXTERNAL_TAPS.lan},script=no,downscript=no`,
    '-device',
    'virtio-net-pci,netdev=lan,mac=52:54:00:0b:00:02,romfile=',
    ...(o.testNetworkFile === undefined
      ? []
      : ['-fw_cfg', `name=opt/onionbox/test-network,file=${o.testNetworkFile}`]),
  ];
}
