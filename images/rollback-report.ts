/**
 * Pure helpers of the emulated-image rollback test (images/rollback-test.ts): the boots U-Boot's script
 * started and how each ended, the check that a slot which panics falls back by the counter, the replayable
 * kill moments, and how far a killed boot had come.
 */

/** One boot U-Boot's script started: its console from the "booting slot" line to the next one. */
export interface BootAttempt {
  slot: 'A' | 'B';
  /** the tries U-Boot saved before booting it */
  aLeft: number;
  bLeft: number;
  /** the kernel panicked ("Kernel panic - not syncing") */
  panicked: boolean;
  /** the panic line's reason, e.g. "Attempted to kill init! exitcode=0x00000100" */
  panicReason: string;
  /** the kernel said it reboots ("Rebooting in N seconds") */
  rebooted: boolean;
  /** U-Boot's script ran again after it (the board reset) */
  reset: boolean;
}

const BOOTING = /Onionbox: booting slot ([AB]) \(BOOT_A_LEFT=([0-9]) BOOT_B_LEFT=([0-9]) saved\)/g;
const UBOOT_AGAIN = /Onionbox: slot states read from|Onionbox: onionbox\.env is missing or damaged/;

/** Every boot the script started, in order. */
export function bootAttempts(serial: string): BootAttempt[] {
  const marks = [...serial.matchAll(BOOTING)];
  return marks.map((m, i) => {
    const end = marks[i + 1]?.index ?? serial.length;
    const text = serial.slice((m.index ?? 0) + m[0].length, end);
    const panic = /Kernel panic - not syncing: ([^\r\n]*)/.exec(text);
    return {
      slot: m[1] === 'B' ? 'B' : 'A',
      aLeft: Number(m[2]),
      bLeft: Number(m[3]),
      panicked: panic !== null,
      panicReason: (panic?.[1] ?? '').trim(),
      rebooted: /Rebooting in [0-9]+ seconds/.test(text),
      reset: UBOOT_AGAIN.test(text),
    };
  });
}

/**
 * Whether the boots after slot B was made preferred (BOOT_ORDER "B A", BOOT_B_LEFT 3) went as the counter
 * says: B three times (tries saved 2, 1, 0), each a kernel panic, a reboot and U-Boot again, then slot A
 * with B at 0. Returns what is wrong, or an empty list.
 */
export function fallbackByCounterProblems(attempts: readonly BootAttempt[]): string[] {
  const problems: string[] = [];
  const b = attempts.slice(0, 3);
  if (b.length < 3 || b.some((x) => x.slot !== 'B')) {
    problems.push(
      `the first three boots were not slot B: ${attempts.map((x) => x.slot).join(' ') || 'none'}`,
    );
  }
  b.forEach((x, i) => {
    if (x.slot !== 'B') return;
    if (x.bLeft !== 2 - i) problems.push(`B try ${i + 1}: BOOT_B_LEFT=${x.bLeft} saved, not ${2 - i}`);
    if (!x.panicked) problems.push(`B try ${i + 1}: no kernel panic`);
    if (!x.rebooted || !x.reset) problems.push(`B try ${i + 1}: no reboot into U-Boot after it`);
  });
  const a = attempts[3];
  if (!a) problems.push('slot A never booted after them');
  else if (a.slot !== 'A' || a.bLeft !== 0) {
    problems.push(`the fourth boot: slot ${a.slot} with BOOT_B_LEFT=${a.bLeft}, not A with 0`);
  } else if (a.panicked) problems.push('slot A panicked too');
  if (attempts.length > 4) problems.push(`${attempts.length - 4} more boots after slot A's`);
  return problems;
}

/** A small seeded generator (mulberry32): the same seed, the same kill moments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `k` kill moments, seconds after QEMU's start, uniform in [from, to), one decimal. */
export function killMoments(seed: number, k: number, from: number, to: number): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: k }, () => Math.round((from + r() * (to - from)) * 10) / 10);
}

/** How far a boot had come, from its console: the last milestone it printed. */
export function lastMilestone(serial: string): string {
  const steps: [RegExp, string][] = [
    [/U-Boot /, 'U-Boot'],
    [/Onionbox: booting slot [AB]/, 'the boot script chose a slot'],
    [/Booting Linux on physical CPU/, 'the kernel'],
    [/Run \/init as init process/, 'the initramfs'],
    [/systemd\[1\]: /, 'systemd'],
    [/onionbox-firstboot: /, 'the first boot grows the card'],
    [/OBX-SELFTEST lockdown-before-links/, 'the boot lockdown'],
    [/OBX-SELFTEST rollback-boot /, 'the self-test'],
    [/OBX-SELFTEST rollback-secret /, "the box's secret checked"],
    [/OBX-SELFTEST rollback-routing PASS/, 'routing'],
    [/OBX-SELFTEST rollback-marked-good PASS/, 'marked good'],
    [/OBX-SELFTEST rollback-setting-made PASS/, "the owner's setting made"],
    [/OBX-SELFTEST ROLLBACK-DONE/, 'the self-test done'],
  ];
  let last = 'nothing on the console';
  let at = -1;
  for (const [re, name] of steps) {
    const m = [...serial.matchAll(new RegExp(re.source, 'g'))].pop();
    if (m?.index !== undefined && m.index >= at) {
      at = m.index;
      last = name;
    }
  }
  return last;
}
