/**
 * The board's lines and bus, handed to the firmware's user before onionboxd starts.
 *
 * onionboxd runs as its own user (never root). Linux's sysfs GPIO interface is root's: /sys/class/gpio/
 * export is 0200 root, and an exported line's direction, edge, value and active_low are 0644 root, so as
 * `onionbox` onoff can neither export the kill switch nor configure it, and GpioBoard (rightly) fails
 * closed: the switch reads "engaged" for good and the box never routes. Debian ships no udev rule that
 * gives the lines to a group (Raspberry Pi OS does, for every line of every chip, racing onoff's export).
 *
 * The narrowest hand-over is this root step (onionboxd.service's `ExecStartPre=+`, before the daemon
 * exists): it exports exactly the configured lines of the configured controller (the kill switch, the
 * claim button, the three LEDs) and makes their attribute files the firmware user's, and gives the OLED's
 * /dev/i2c-N to the firmware user's group (0660). Nothing else: no other line, no export/unexport file, no
 * other bus. The lines stay exported: onoff's unexport at the board's stop fails silently for the user.
 *
 * The plan is pure (planHandover); handOver is the thin adapter that writes sysfs and chowns.
 */
import { constants } from 'node:fs';
import { chmod, chown, open, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BoardConfig } from '../../firmware/config/schema.js';
import { describeError } from '../../firmware/errors.js';
import { type GpioChip, globalNumber, listChips, pickChip } from './chip.js';

/** An exported line's attribute files the firmware writes (onoff: direction, edge, active_low, value). */
export const LINE_ATTRIBUTES = ['direction', 'edge', 'active_low', 'value'] as const;

export interface LineHandover {
  role: 'kill switch' | 'claim button' | 'LED green' | 'LED amber' | 'LED red';
  pin: number;
  /** The line's global sysfs number (chip base + offset). */
  global: number;
}

export interface HandoverPlan {
  lines: LineHandover[];
  /** /dev/i2c-N of the OLED, or null when the OLED is off. */
  i2cDevice: string | null;
  /** Pins the plan could not place (not a line of the chip): the board logs them again when it starts. */
  problems: string[];
}

/** Which lines and which bus the firmware's user gets, for a board configuration and its controller. */
export function planHandover(config: BoardConfig, chip: GpioChip): HandoverPlan {
  const wanted: [LineHandover['role'], number][] = [
    ['kill switch', config.killSwitchPin],
    ['claim button', config.claimButtonPin],
    ['LED green', config.ledPins.green],
    ['LED amber', config.ledPins.amber],
    ['LED red', config.ledPins.red],
  ];
  const lines: LineHandover[] = [];
  const problems: string[] = [];
  for (const [role, pin] of wanted) {
    try {
      const global = globalNumber(chip, pin);
      if (!lines.some((l) => l.global === global)) lines.push({ role, pin, global });
    } catch (err) {
      problems.push(`${role}: ${describeError(err)}`);
    }
  }
  return { lines, i2cDevice: config.oled.enabled ? `/dev/i2c-${config.oled.bus}` : null, problems };
}

export interface HandoverOptions {
  config: BoardConfig;
  /** The firmware's user and group (from /etc/passwd). */
  uid: number;
  gid: number;
  sysfsRoot?: string;
  /** How long to wait for the kernel to create an exported line's directory. */
  exportWaitMs?: number;
  log: (line: string) => void;
}

export interface HandoverResult {
  chip: GpioChip;
  handed: LineHandover[];
  failed: string[];
  i2c: 'handed' | 'absent' | 'off' | 'failed';
}

/**
 * Exports the configured lines (those not exported yet) and gives their attribute files to uid:gid; gives
 * the OLED's bus to gid. Throws only when no controller is found; a line or bus that fails is reported in
 * `failed` and the others are still handed over (the board fails closed on what it cannot use).
 */
export async function handOver(opts: HandoverOptions): Promise<HandoverResult> {
  const sysfs = opts.sysfsRoot ?? '/sys';
  const chip = pickChip(await listChips(sysfs), opts.config.gpioChip);
  const plan = planHandover(opts.config, chip);
  const failed = [...plan.problems];
  const handed: LineHandover[] = [];
  for (const line of plan.lines) {
    const dir = join(sysfs, 'class/gpio', `gpio${line.global}`);
    try {
      if (!(await exists(dir))) {
        await writeFile(join(sysfs, 'class/gpio/export'), String(line.global));
        await waitFor(() => exists(join(dir, 'value')), opts.exportWaitMs ?? 2000);
      }
      for (const attr of LINE_ATTRIBUTES) {
        const file = join(dir, attr);
        // edge exists only on lines that can interrupt; a missing one is the board's to report
        if (attr === 'edge' && !(await exists(file))) continue;
        await chown(file, opts.uid, opts.gid);
      }
      handed.push(line);
      opts.log(`${line.role}: line ${line.pin} of ${chip.label} (gpio${line.global}) handed over`);
    } catch (err) {
      failed.push(`${line.role}: line ${line.pin} (gpio${line.global}): ${describeError(err)}`);
    }
  }
  let i2c: HandoverResult['i2c'] = 'off';
  if (plan.i2cDevice !== null) {
    try {
      const s = await stat(plan.i2cDevice);
      if (!s.isCharacterDevice()) throw new Error('not a character device');
      await chown(plan.i2cDevice, 0, opts.gid);
      await chmod(plan.i2cDevice, 0o660);
      i2c = 'handed';
      opts.log(`OLED bus ${plan.i2cDevice} handed over`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') i2c = 'absent';
      else {
        i2c = 'failed';
        failed.push(`OLED bus ${plan.i2cDevice}: ${describeError(err)}`);
      }
    }
  }
  for (const f of failed) opts.log(`not handed over: ${f}`);
  return { chip, handed, failed, i2c };
}

/**
 * Reads the board settings from the firmware's config file without following a link: the file belongs to
 * the firmware's user, and this runs as root (a link to another file is refused, never read).
 */
export async function readConfigFileNoFollow(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw new Error(`${path} is not a regular file`);
    if (s.size > 1024 * 1024) throw new Error(`${path} is larger than 1 MiB`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= end) throw new Error(`the kernel did not create the line within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
