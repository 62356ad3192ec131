/**
 * Global GPIO numbers for the sysfs interface. Since Linux 6.6 the Raspberry Pi's GPIO chip no longer
 * starts at 0 (512 on Pi 0-4, 571 on Pi 5), so the number onoff needs is the chip's base plus the BCM
 * offset. The base is read from /sys/class/gpio/gpiochip<base>/{label,base,ngpio}, never hard-coded.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface GpioChip {
  name: string;
  label: string;
  base: number;
  ngpio: number;
}

/** Labels of the Pi's main GPIO controller (Pi 0-3, Pi 4, Pi 5). */
export const PI_GPIO_LABELS: readonly string[] = ['pinctrl-bcm2835', 'pinctrl-bcm2711', 'pinctrl-rp1'];

export async function listChips(sysfsRoot = '/sys'): Promise<GpioChip[]> {
  const dir = join(sysfsRoot, 'class/gpio');
  const names = (await readdir(dir)).filter((n) => /^gpiochip\d+$/.test(n)).sort();
  const chips: GpioChip[] = [];
  for (const name of names) {
    const read = async (f: string) => (await readFile(join(dir, name, f), 'utf8')).trim();
    const label = await read('label');
    const base = Number(await read('base').catch(() => name.slice('gpiochip'.length)));
    const ngpio = Number(await read('ngpio'));
    if (!Number.isInteger(base) || !Number.isInteger(ngpio)) continue;
    chips.push({ name, label, base, ngpio });
  }
  return chips;
}

/**
 * Picks the board's GPIO controller: the one whose label is `label` when the configuration names one (a
 * board other than a Pi, or the emulated image's PL061), else the Pi's main controller. Throws with the
 * labels found when there is none.
 */
export function pickChip(chips: readonly GpioChip[], label?: string): GpioChip {
  const labels = label === undefined ? PI_GPIO_LABELS : [label];
  for (const l of labels) {
    const chip = chips.find((c) => c.label === l);
    if (chip) return chip;
  }
  throw new Error(
    `no ${label === undefined ? 'Raspberry Pi ' : ''}GPIO controller (${labels.join(', ')}) among ${chips.length === 0 ? 'no chips' : chips.map((c) => `${c.name}=${c.label}`).join(', ')}`,
  );
}

export function globalNumber(chip: GpioChip, offset: number): number {
  if (!Number.isInteger(offset) || offset < 0 || offset >= chip.ngpio) {
    throw new Error(`BCM ${offset} is not a line of ${chip.label} (0-${chip.ngpio - 1})`);
  }
  return chip.base + offset;
}
