/**
 * Where the firmware's system files (firmware/system/, the one copy the firmware's own tests check) go in
 * the image, and which NetworkManager files the image carries (rendered by firmware/net's renderers from
 * the default configuration). The build copies nothing by hand: a file in firmware/system/ without a
 * place here stops the build, so a new unit or ruleset cannot be left out of the image unnoticed.
 * Pure but for MASKED_UNITS (read once from firmware/system/masked-units.txt); the build's adapter
 * (images/cli.ts install-system) reads and writes the files.
 */
import { readFileSync } from 'node:fs';
import { defaultConfig } from '../firmware/config/schema.js';
import {
  ethernetProfileId,
  renderEthernetKeyfile,
  renderNetworkManagerConf,
} from '../firmware/net/render.js';
import { IMAGE_MASKED_UNITS } from './recipe.js';
import { ImageRecipeError } from './render.js';

/** Units that bring an interface up or talk on one: each gets the "requires the lockdown" drop-in. */
export const NETWORK_UNITS: readonly string[] = [
  'NetworkManager.service',
  'hostapd.service',
  'dnsmasq.service',
  'systemd-networkd.service',
  'wpa_supplicant.service',
  'tor@default.service',
];

/** One file to write into the root: path relative to the root, mode, and where its text comes from. */
export interface Placement {
  /** relative to the image's root, no leading slash */
  dest: string;
  mode: number;
}

/**
 * The places of one file of firmware/system/ (its path relative to that directory). `[]` means the file
 * is read by the build itself (masked-units.txt: the list of units to mask). Throws for a file with no
 * place.
 */
export function placeSystemFile(rel: string): Placement[] {
  if (rel === 'masked-units.txt') return [];
  if (rel === 'onionbox-lockdown.nft') return [{ dest: 'etc/onionbox/lockdown.nft', mode: 0o644 }];
  if (/^[0-9]{2}-[a-z0-9-]+\.conf$/.test(rel)) return [{ dest: `etc/sysctl.d/${rel}`, mode: 0o644 }];
  const module = /^modules-load\.d\/([a-z0-9-]+\.conf)$/.exec(rel);
  if (module?.[1] !== undefined) return [{ dest: `etc/modules-load.d/${module[1]}`, mode: 0o644 }];
  const unit = /^systemd\/([a-z0-9@-]+\.(service|timer|socket|target|path))$/.exec(rel);
  if (unit?.[1] !== undefined) return [{ dest: `etc/systemd/system/${unit[1]}`, mode: 0o644 }];
  // RAUC's D-Bus service: user onionbox may call exactly InstallBundle (firmware/update/rauc.ts)
  const dbus = /^dbus-1\/([a-z0-9-]+\.conf)$/.exec(rel);
  if (dbus?.[1] !== undefined) return [{ dest: `etc/dbus-1/system.d/${dbus[1]}`, mode: 0o644 }];
  if (rel === 'systemd/onionbox-network-requires-lockdown.conf') {
    return NETWORK_UNITS.map((u) => ({
      dest: `etc/systemd/system/${u}.d/onionbox-lockdown.conf`,
      mode: 0o644,
    }));
  }
  throw new ImageRecipeError(
    `firmware/system/${rel} has no place in the image: add it to images/system-files.ts (placeSystemFile)`,
  );
}

/** Every placement of a list of firmware/system files; two files aiming at one path is an error. */
export function placeSystemFiles(rels: readonly string[]): { src: string; dest: string; mode: number }[] {
  const out: { src: string; dest: string; mode: number }[] = [];
  const seen = new Map<string, string>();
  for (const rel of [...rels].sort()) {
    for (const p of placeSystemFile(rel)) {
      const other = seen.get(p.dest);
      if (other !== undefined) throw new ImageRecipeError(`${rel} and ${other} would both be ${p.dest}`);
      seen.set(p.dest, rel);
      out.push({ src: rel, ...p });
    }
  }
  return out;
}

/** `#` comments and blank lines dropped: firmware/system/masked-units.txt's format. */
export function parseUnitList(text: string): string[] {
  const units = text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
  for (const u of units) {
    if (!/^[A-Za-z0-9@._-]+\.(service|socket|timer|target|path)$/.test(u)) {
      throw new ImageRecipeError(`"${u}" is not a unit name`);
    }
  }
  return units;
}

export interface RenderedFile {
  dest: string;
  mode: number;
  text: string;
}

/**
 * NetworkManager's files as the firmware's renderers write them, for the default configuration: the
 * conf.d drop-in (no connectivity check, no DNS or hostname handling, no automatic profiles, the LAN
 * interface unmanaged) and the WAN's Ethernet keyfile (DHCP, no hostname, no IPv6). Keyfiles must be
 * 0600 or NetworkManager ignores them.
 */
export function networkManagerFiles(
  net: { lanInterface: string; wanInterface: string } = defaultConfig().network,
): RenderedFile[] {
  return [
    {
      dest: 'etc/NetworkManager/conf.d/60-onionbox.conf',
      mode: 0o644,
      text: renderNetworkManagerConf({ unmanaged: [net.lanInterface] }),
    },
    {
      dest: `etc/NetworkManager/system-connections/${ethernetProfileId(net.wanInterface)}.nmconnection`,
      mode: 0o600,
      text: renderEthernetKeyfile({ interface: net.wanInterface }),
    },
  ];
}

/** The image's masked units: the firmware's list (firmware/system/masked-units.txt) and the image's own. */
export function maskedUnits(
  firmwareList: string,
  imageOwn: readonly string[] = IMAGE_MASKED_UNITS,
): string[] {
  return [...new Set([...parseUnitList(firmwareList), ...imageOwn])].sort();
}

export const MASKED_UNITS: readonly string[] = maskedUnits(
  readFileSync(new URL('../firmware/system/masked-units.txt', import.meta.url), 'utf8'),
);
