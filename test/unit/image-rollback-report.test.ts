import t from 'tap';
import {
  bootAttempts,
  fallbackByCounterProblems,
  killMoments,
  lastMilestone,
} from '../../images/rollback-report.js';

const uboot = 'U-Boot 2025.01\nOnionbox: slot states read from onionbox.env\n';
const booting = (slot: string, a: number, b: number) =>
  `${uboot}Onionbox: booting slot ${slot} (BOOT_A_LEFT=${a} BOOT_B_LEFT=${b} saved)\n[    0.000000] Booting Linux on physical CPU 0x0\n`;
const panic =
  '[    9.1] Run /init as init process\n[   12.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n[   12.4] Rebooting in 10 seconds..\n';

t.test('three panics of B, then A: the counter did its work', async (t) => {
  const serial = `${booting('B', 3, 2)}${panic}${booting('B', 3, 1)}${panic}${booting('B', 3, 0)}${panic}${booting('A', 2, 0)}systemd[1]: started\n`;
  const attempts = bootAttempts(serial);
  t.same(
    attempts.map((a) => [a.slot, a.aLeft, a.bLeft, a.panicked, a.rebooted, a.reset]),
    [
      ['B', 3, 2, true, true, true],
      ['B', 3, 1, true, true, true],
      ['B', 3, 0, true, true, true],
      ['A', 2, 0, false, false, false],
    ],
  );
  t.equal(attempts[0]?.panicReason, 'Attempted to kill init! exitcode=0x00000100');
  t.same(fallbackByCounterProblems(attempts), []);
});

t.test('what is wrong is said', async (t) => {
  // B booted twice only, the second without a panic; A came with B's tries left
  const serial = `${booting('B', 3, 2)}${panic}${booting('B', 3, 1)}nothing\n${booting('A', 2, 1)}`;
  const problems = fallbackByCounterProblems(bootAttempts(serial));
  t.ok(problems.some((p) => /first three boots were not slot B: B B A/.test(p)));
  t.ok(problems.some((p) => /B try 2: no kernel panic/.test(p)));
  t.ok(problems.some((p) => /B try 2: no reboot/.test(p)));
  t.ok(problems.some((p) => /never booted/.test(p)));
  t.same(fallbackByCounterProblems([]).length, 2, 'no boots at all: two problems');
  // a panic without the reboot into U-Boot is not a fallback by the counter
  const stuck = `${booting('B', 3, 2)}Kernel panic - not syncing: x\n`;
  t.ok(fallbackByCounterProblems(bootAttempts(stuck)).some((p) => /B try 1: no reboot/.test(p)));
  // a slot A that panics too, and boots after A's
  const more = `${booting('B', 3, 2)}${panic}${booting('B', 3, 1)}${panic}${booting('B', 3, 0)}${panic}${booting('A', 2, 0)}${panic}${booting('A', 1, 0)}`;
  const p2 = fallbackByCounterProblems(bootAttempts(more));
  t.ok(p2.includes('slot A panicked too') && p2.includes("1 more boots after slot A's"));
});

t.test('kill moments replay from their seed', async (t) => {
  const a = killMoments(42, 4, 5, 240);
  t.same(a, killMoments(42, 4, 5, 240), 'the same seed, the same moments');
  t.notSame(a, killMoments(43, 4, 5, 240));
  t.equal(a.length, 4);
  for (const x of a)
    t.ok(x >= 5 && x < 240 && Math.round(x * 10) === x * 10, `${x} in [5, 240), one decimal`);
});

t.test('how far a killed boot had come', async (t) => {
  t.equal(lastMilestone(''), 'nothing on the console');
  t.equal(lastMilestone(uboot), 'U-Boot');
  t.equal(lastMilestone(`${booting('A', 2, 3)}[ 1.0] Run /init as init process\n`), 'the initramfs');
  t.equal(
    lastMilestone(
      `${booting('A', 2, 3)}onionbox-firstboot: slot B at sector 1\nOBX-SELFTEST rollback-routing PASS t=200 x\n`,
    ),
    'routing',
  );
});
