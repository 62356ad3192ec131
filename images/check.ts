/**
 * The image manifest (onionbox-VERSION-arm64.manifest.json, beside the image) and the checker that
 * compares it with the recipe's allow lists: every enabled unit and every listening socket must be on a
 * list, every unit that must be masked is masked, and no package the box must never carry is installed.
 * Pure: the build and the emulated boot collect the raw text, these functions judge it.
 */
import { ALLOWED_ENABLED_UNITS, ALLOWED_SOCKETS, type AllowedSocket, BUILD_PACKAGES } from './recipe.js';
import { ImageRecipeError } from './render.js';
import { MASKED_UNITS } from './system-files.js';

export interface PackageEntry {
  name: string;
  version: string;
  arch: string;
  /** sha256 of the .deb that was installed (absent for packages apt did not download) */
  debSha256?: string | undefined;
}

export interface ListeningSocket {
  proto: 'tcp' | 'udp';
  address: string;
  port: number;
  program: string;
}

export interface ImageManifest {
  name: string;
  packages: PackageEntry[];
  enabledUnits: string[];
  maskedUnits: string[];
  /** from the emulated boot (empty when the image was only built) */
  listening: ListeningSocket[];
}

/** Packages that must never be in the image: they talk on their own, open a door, or build code. */
export const FORBIDDEN_PACKAGES: readonly string[] = [
  'openssh-server',
  'dropbear',
  'avahi-daemon',
  'cloud-init',
  'systemd-timesyncd',
  'chrony',
  'ntp',
  'ntpsec',
  'openntpd',
  'modemmanager',
  'ufw',
  'firewalld',
  'unattended-upgrades',
  'npm',
  'gcc',
  'cpp',
  ...BUILD_PACKAGES,
];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new ImageRecipeError(`manifest: ${what} must be a list of strings`);
  }
  return v as string[];
}

/** Validates a manifest read from JSON (the one schema for that input). */
export function parseImageManifest(v: unknown): ImageManifest {
  if (!isObject(v)) throw new ImageRecipeError('manifest: not a JSON object');
  if (typeof v.name !== 'string') throw new ImageRecipeError('manifest: name must be a string');
  if (!Array.isArray(v.packages)) throw new ImageRecipeError('manifest: packages must be a list');
  const packages = v.packages.map((p, i): PackageEntry => {
    if (
      !isObject(p) ||
      typeof p.name !== 'string' ||
      typeof p.version !== 'string' ||
      typeof p.arch !== 'string'
    ) {
      throw new ImageRecipeError(`manifest: packages[${i}] needs name, version and arch`);
    }
    if (
      p.debSha256 !== undefined &&
      (typeof p.debSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.debSha256))
    ) {
      throw new ImageRecipeError(`manifest: packages[${i}].debSha256 is not a sha256`);
    }
    const entry: PackageEntry = { name: p.name, version: p.version, arch: p.arch };
    if (typeof p.debSha256 === 'string') entry.debSha256 = p.debSha256;
    return entry;
  });
  const listeningRaw = v.listening === undefined ? [] : v.listening;
  if (!Array.isArray(listeningRaw)) throw new ImageRecipeError('manifest: listening must be a list');
  const listening = listeningRaw.map((s, i): ListeningSocket => {
    if (
      !isObject(s) ||
      (s.proto !== 'tcp' && s.proto !== 'udp') ||
      typeof s.address !== 'string' ||
      typeof s.port !== 'number' ||
      typeof s.program !== 'string'
    ) {
      throw new ImageRecipeError(`manifest: listening[${i}] needs proto, address, port and program`);
    }
    return { proto: s.proto, address: s.address, port: s.port, program: s.program };
  });
  return {
    name: v.name,
    packages,
    enabledUnits: strings(v.enabledUnits, 'enabledUnits'),
    maskedUnits: strings(v.maskedUnits, 'maskedUnits'),
    listening,
  };
}

/** `getty@tty1.service` is allowed by `getty@.service` (a template's instance). */
export function unitAllowed(unit: string, allowed: readonly string[] = ALLOWED_ENABLED_UNITS): boolean {
  if (allowed.includes(unit)) return true;
  const m = /^([^@]+@)[^.]*(\.[a-z]+)$/.exec(unit);
  return m !== null && allowed.includes(`${m[1]}${m[2]}`);
}

/** `wanAddress`: the box's WAN lease (for `wan` entries); unknown, they match nothing. */
export function socketAllowed(
  s: ListeningSocket,
  allowed: readonly AllowedSocket[] = ALLOWED_SOCKETS,
  wanAddress?: string,
): boolean {
  return allowed.some(
    (a) =>
      a.proto === s.proto &&
      a.port === s.port &&
      a.program === s.program &&
      (a.address === 'wan' ? wanAddress !== undefined && s.address === wanAddress : a.address === s.address),
  );
}

/** Everything in the manifest that is off the allow lists, one plain sentence each (empty: all good). */
export function checkManifest(m: ImageManifest): string[] {
  const problems: string[] = [];
  for (const u of m.enabledUnits) {
    if (m.maskedUnits.includes(u)) problems.push(`unit ${u} is both enabled and masked`);
    else if (!unitAllowed(u)) problems.push(`unit ${u} is enabled`);
  }
  for (const u of MASKED_UNITS) {
    if (!m.maskedUnits.includes(u)) problems.push(`unit ${u} is not masked`);
  }
  for (const p of m.packages) {
    if (FORBIDDEN_PACKAGES.includes(p.name) || /^(gcc|g\+\+|cpp)-[0-9]+$/.test(p.name)) {
      problems.push(`package ${p.name} is installed`);
    } else if (p.name.endsWith('-dev')) {
      problems.push(`development package ${p.name} is installed`);
    }
  }
  for (const s of m.listening) {
    if (!socketAllowed(s)) problems.push(`${s.program} listens on ${s.proto} ${s.address}:${s.port}`);
  }
  return problems;
}

/**
 * Enabled and masked units from the symlinks under /etc/systemd/system, as
 * `find etc/systemd/system -type l -printf '%P\t%l\n'` prints them (relative path, link target).
 * A link to /dev/null masks its unit; a link in a *.wants/ or *.requires/ directory, or an alias, enables
 * the unit it is named after.
 */
export function unitsFromLinks(text: string): { enabled: string[]; masked: string[] } {
  const enabled = new Set<string>();
  const masked = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [path, target] = line.split('\t');
    if (path === undefined || target === undefined) {
      throw new ImageRecipeError(`unit link line "${line}" is not PATH<TAB>TARGET`);
    }
    const name = path.split('/').pop() ?? '';
    if (!/^[A-Za-z0-9@._:-]+\.(service|socket|timer|target|path|mount|automount|swap|slice)$/.test(name))
      continue;
    if (target === '/dev/null') masked.add(name);
    else enabled.add(name);
  }
  return { enabled: [...enabled].sort(), masked: [...masked].sort() };
}

/**
 * Listening sockets from `ss -Hlntup` (no header; numeric; TCP and UDP; with processes). Lines look like
 * `tcp   LISTEN 0      511      10.42.0.1:80        0.0.0.0:*    users:(("node",pid=412,fd=21))`.
 */
export function parseSs(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const proto = f[0];
    if (proto !== 'tcp' && proto !== 'udp') throw new ImageRecipeError(`ss line "${line}": unknown protocol`);
    const local = f[4];
    const m = local === undefined ? null : /^(.*):([0-9]{1,5})$/.exec(local);
    if (m === null || m[1] === undefined || m[2] === undefined) {
      throw new ImageRecipeError(`ss line "${line}": no local address`);
    }
    let address = m[1].replace(/^\[(.*)\]$/, '$1');
    address = address.replace(/%[A-Za-z0-9_.-]+$/, ''); // 0.0.0.0%eth0 (bound to a device)
    const prog = /users:\(\("([^"]+)"/.exec(line);
    out.push({ proto, address, port: Number(m[2]), program: prog?.[1] ?? '?' });
  }
  return out;
}

/** dpkg-query lines (`name<TAB>version<TAB>arch`) and sha256sum lines of the .debs into package entries. */
export function packagesFrom(dpkgTsv: string, debSums: string): PackageEntry[] {
  const sums = new Map<string, string>();
  for (const line of debSums.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+\.deb)$/.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined) continue;
    // apt names a .deb NAME_VERSION_ARCH.deb with ':' in the version escaped as %3a
    const parts = m[2].replace(/\.deb$/, '').split('_');
    if (parts.length !== 3) continue;
    sums.set(`${parts[0]}_${decodeURIComponent(parts[1] ?? '')}_${parts[2]}`, m[1]);
  }
  const out: PackageEntry[] = [];
  for (const line of dpkgTsv.split('\n')) {
    if (line.trim() === '') continue;
    const [name, version, arch] = line.split('\t');
    if (!name || !version || !arch)
      throw new ImageRecipeError(`dpkg-query line "${line}" is not NAME VERSION ARCH`);
    out.push({ name, version, arch, debSha256: sums.get(`${name}_${version}_${arch}`) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
