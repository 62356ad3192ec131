/**
 * Pure renderers for the files the image build writes: the Pi firmware's config.txt and cmdline.txt,
 * fstab, and raspi-firmware's settings (/etc/default/raspi-firmware, -custom and raspi-extra-cmdline) so
 * that a later kernel update regenerates the same boot files. Every input is checked first; a bad value
 * throws ImageRecipeError and nothing is rendered.
 */
import { BOOT_LABEL, DATA_BINDS, DATA_LABEL, ROOT_LABEL } from './recipe.js';

/** U-Boot's file name on the FAT partition (Debian's u-boot-rpi rpi_arm64/u-boot.bin). */
export const UBOOT_BIN = 'u-boot.bin';

export class ImageRecipeError extends Error {
  override name = 'ImageRecipeError';
}

export interface BootOptions {
  /** Kernel release as in /lib/modules (e.g. 6.12.57+deb13-arm64); config.txt names its vmlinuz and initrd */
  kernelVersion: string;
  rootLabel: string;
  bootLabel: string;
  /** serial console first, screen second: the last console= is /dev/console (systemd's messages) */
  consoles: readonly string[];
  /** the lines of images/boot/config.txt (I2C, GPIO pulls); comments and blank lines are kept */
  bootConfigLines: string;
  /** extra kernel arguments (the emulated boot test adds its self-test flag itself, never the image) */
  extraCmdline: readonly string[];
}

export const DEFAULT_BOOT: Omit<BootOptions, 'kernelVersion' | 'bootConfigLines'> = {
  rootLabel: ROOT_LABEL,
  bootLabel: BOOT_LABEL,
  // ttyS1: the mini UART on GPIO 14/15 of the Pi 3/4/Zero 2 W with the mainline device trees
  consoles: ['tty0', 'ttyS1,115200'],
  extraCmdline: [],
};

const KERNEL_VERSION = /^[0-9]+\.[0-9]+(\.[0-9]+)?[-+~.a-z0-9]*$/;
const LABEL = /^[A-Z0-9_]{1,11}$/; // FAT labels: 11 characters; upper case so both file systems agree
const CONSOLE = /^(tty[0-9]{1,2}|ttyS[0-9]|ttyAMA[0-9])(,[0-9]{4,7}(n8)?)?$/;
const KERNEL_ARG = /^[a-z0-9_.-]+(=[A-Za-z0-9_.,:/=-]+)?$/;
/** Only these config.txt settings may come from images/boot/config.txt (the image's own are fixed). */
const BOOT_CONFIG_LINE =
  /^(dtparam=[a-z0-9_]+(=[a-z0-9_]+)?|dtoverlay=[a-z0-9_-]+(,[a-z0-9_=]+)*|gpio=[0-9]{1,2}(-[0-9]{1,2})?(,[0-9]{1,2})*=(ip|op)(,(pu|pd|pn|np|dh|dl))*)$/;
/** Kernel arguments that hide what a box does at boot: never in an Onionbox cmdline. */
const HIDING_ARGS = new Set([
  'quiet',
  'splash',
  'plymouth.enable=1',
  'loglevel=0',
  'vt.global_cursor_default=0',
]);

function check(value: string, re: RegExp, what: string): string {
  if (!re.test(value)) throw new ImageRecipeError(`${what} "${value}" is not allowed`);
  return value;
}

function checkBoot(o: BootOptions): void {
  check(o.kernelVersion, KERNEL_VERSION, 'kernel version');
  check(o.rootLabel, LABEL, 'root label');
  check(o.bootLabel, LABEL, 'boot label');
  if (o.rootLabel === o.bootLabel) throw new ImageRecipeError('root and boot labels must differ');
  if (o.consoles.length === 0) throw new ImageRecipeError('at least one console is needed');
  for (const c of o.consoles) check(c, CONSOLE, 'console');
  for (const a of o.extraCmdline) {
    check(a, KERNEL_ARG, 'kernel argument');
    if (HIDING_ARGS.has(a)) throw new ImageRecipeError(`kernel argument "${a}" hides the boot`);
    if (/^(root|console|init|rootfstype)=/.test(a)) {
      throw new ImageRecipeError(`kernel argument "${a}" is set by the image itself`);
    }
  }
}

/** The checked, non-comment lines of images/boot/config.txt, in order. */
export function bootConfigSettings(text: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!BOOT_CONFIG_LINE.test(line)) {
      throw new ImageRecipeError(`images/boot/config.txt line ${i + 1}: "${line}" is not an allowed setting`);
    }
    out.push(line);
  });
  return out;
}

/**
 * config.txt on the FAT partition: 64-bit, the UART on, U-Boot as the "kernel" (it runs boot.scr, which
 * picks slot A or B and loads that slot's own kernel, initrd and device tree), then our lines. Nothing
 * rewrites it on a box: the root is read-only and a new kernel comes as a whole slot.
 */
export function renderConfigTxt(o: BootOptions): string {
  checkBoot(o);
  const settings = bootConfigSettings(o.bootConfigLines);
  return [
    '# Onionbox: Raspberry Pi firmware settings (written by the image build). The firmware starts U-Boot,',
    "# whose boot script (boot.scr) boots slot A or B with that slot's kernel, initrd and device tree.",
    'arm_64bit=1',
    'enable_uart=1',
    'upstream_kernel=1',
    `kernel=${UBOOT_BIN}`,
    '',
    '# Onionbox board: I2C for the OLED, pulls for the kill switch and the claim button, LEDs off',
    ...settings,
    '',
  ].join('\n');
}

function cmdlineArgs(o: BootOptions): string[] {
  return [
    ...o.consoles.map((c) => `console=${c}`),
    `root=LABEL=${o.rootLabel}`,
    'rw',
    'fsck.repair=yes',
    // eth0/wlan0 as the firmware's defaults name them (network.* in config.json)
    'net.ifnames=0',
    'rootwait',
    ...o.extraCmdline,
  ];
}

/**
 * cmdline.txt: one line. The root by label, every console, nothing that hides the boot; the arguments of
 * raspi-firmware's hook in its order (no cma=: a headless box needs none, and on a Pi 4 it can stop the boot).
 */
export function renderCmdlineTxt(o: BootOptions): string {
  checkBoot(o);
  return `${cmdlineArgs(o).join(' ')}\n`;
}

/** How long systemd waits for the FAT and data partitions to appear (fstab x-systemd.device-timeout=). */
export const DEVICE_TIMEOUT_S = 300;

/**
 * /etc/fstab. No line for the root: U-Boot's script names the slot (root=PARTUUID=...) and mounts it `ro`,
 * and nothing remounts it writable. The FAT partition (U-Boot's slot states, written by RAUC through
 * fw_setenv) and the data partition by label; everything the box writes is bound from /data into the
 * places the programs expect it; /var/tmp (PrivateTmp= needs it writable) is a small tmpfs.
 */
export function renderFstab(o: Pick<BootOptions, 'rootLabel' | 'bootLabel'>): string {
  check(o.rootLabel, LABEL, 'root label');
  check(o.bootLabel, LABEL, 'boot label');
  check(DATA_LABEL, LABEL, 'data label');
  // systemd waits 90 s for a device by default; a first boot under heavy load (emulated, or a slow card
  // while the first boot moves the data partition) once took longer and fell into emergency mode
  const wait = `x-systemd.device-timeout=${DEVICE_TIMEOUT_S}s`;
  const row = (what: string, where: string, type: string, opts: string, pass: number) =>
    `${what.padEnd(23)} ${where.padEnd(40)} ${type.padEnd(6)} ${opts.padEnd(48)} 0 ${pass}`;
  return [
    '# Onionbox file systems. The root (slot A or B) is mounted read-only from the kernel command line.',
    '# <file system>        <mount point>                            <type> <options>                                        <dump> <pass>',
    row(
      `LABEL=${o.bootLabel}`,
      '/boot/firmware',
      'vfat',
      `rw,noatime,nosuid,nodev,noexec,umask=0077,${wait}`,
      2,
    ),
    row(`LABEL=${DATA_LABEL}`, '/data', 'ext4', `rw,noatime,nosuid,nodev,noexec,${wait}`, 2),
    ...DATA_BINDS.map((b) =>
      row(`/data/${b.dir}`, `/${b.mountPoint}`, 'none', 'bind,x-systemd.requires-mounts-for=/data', 0),
    ),
    row('tmpfs', '/var/tmp', 'tmpfs', 'rw,nosuid,nodev,mode=1777,size=16m', 0),
    '',
  ].join('\n');
}

/** /etc/default/raspi-firmware: what raspi-firmware's hook puts in cmdline.txt on kernel updates. */
export function renderRaspiFirmwareDefault(o: BootOptions): string {
  checkBoot(o);
  return [
    '# Onionbox: read by raspi-firmware when a kernel update rewrites /boot/firmware (written by the image',
    '# build from images/render.ts).',
    `ROOTPART=LABEL=${o.rootLabel}`,
    `CONSOLES="${o.consoles.join(' ')}"`,
    // no cma= on the command line (headless; a Pi 4 may not boot with the 64M default)
    'CMA=0',
    'KERNEL_ARCH="arm64"',
    '',
  ].join('\n');
}

/** /etc/default/raspi-firmware-custom: appended to config.txt by raspi-firmware (our board lines). */
export function renderRaspiFirmwareCustom(bootConfigLines: string): string {
  return [
    '# Onionbox board lines, appended to config.txt by raspi-firmware on kernel updates.',
    ...bootConfigSettings(bootConfigLines),
    '',
  ].join('\n');
}

/**
 * /etc/default/raspi-extra-cmdline: appended to cmdline.txt by raspi-firmware on kernel updates (the hook
 * already writes rw, fsck.repair=yes, net.ifnames=0 and rootwait itself).
 */
export function renderRaspiExtraCmdline(o: BootOptions): string {
  checkBoot(o);
  return `${o.extraCmdline.join(' ')}\n`;
}

/** The settings of a config.txt or the arguments of a cmdline.txt, to compare ours with the hook's. */
export function bootSettings(text: string, kind: 'config.txt' | 'cmdline.txt'): string[] {
  if (kind === 'cmdline.txt')
    return text
      .trim()
      .split(/\s+/)
      .filter((a) => a !== '');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export type RenderedFile =
  | 'config.txt'
  | 'cmdline.txt'
  | 'fstab'
  | 'raspi-firmware'
  | 'raspi-firmware-custom'
  | 'raspi-extra-cmdline';

/** One entry point for the build: the file by name, from the defaults plus the kernel version. */
export function renderFile(what: string, o: { bootConfigLines: string; kernelVersion?: string }): string {
  const boot: BootOptions = {
    ...DEFAULT_BOOT,
    kernelVersion: o.kernelVersion ?? '0.0.0',
    bootConfigLines: o.bootConfigLines,
  };
  switch (what as RenderedFile) {
    case 'config.txt':
      return renderConfigTxt(boot);
    case 'cmdline.txt':
      return renderCmdlineTxt(boot);
    case 'fstab':
      return renderFstab(boot);
    case 'raspi-firmware':
      return renderRaspiFirmwareDefault(boot);
    case 'raspi-firmware-custom':
      return renderRaspiFirmwareCustom(boot.bootConfigLines);
    case 'raspi-extra-cmdline':
      return renderRaspiExtraCmdline(boot);
    default:
      throw new ImageRecipeError(`no renderer for "${what}"`);
  }
}
