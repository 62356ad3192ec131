/**
 * The root hand-over of the board's lines and bus (board/gpio/handover.ts): the plan names exactly the
 * configured lines, and on a sysfs tree (a temp dir with a small stand-in for the kernel's export) it
 * exports only those, gives their attribute files to the firmware's user and nothing else.
 */
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  handOver,
  LINE_ATTRIBUTES,
  planHandover,
  readConfigFileNoFollow,
} from '../../board/gpio/handover.js';
import { defaultConfig } from '../../firmware/config/schema.js';
import { tmpDir } from '../helpers/tmp.js';

const PI4 = { name: 'gpiochip512', label: 'pinctrl-bcm2711', base: 512, ngpio: 58 };
const PL061 = { name: 'gpiochip512', label: '9030000.pl061', base: 512, ngpio: 8 };
const board = () => defaultConfig().board;
// as root the files go to another user; as anyone else to oneself (chown to another uid needs root)
const root = process.getuid?.() === 0;
const owner = root
  ? { uid: 4321, gid: 4322 }
  : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** A sysfs tree with chips; a writer to `export` makes the line's directory, as the kernel would. */
function sysfs(t: Test, chips: (typeof PI4)[], preExported: number[] = []) {
  const dir = tmpDir(t, 'onionbox-handover-');
  const cls = join(dir, 'class/gpio');
  mkdirSync(cls, { recursive: true });
  for (const c of chips) {
    mkdirSync(join(cls, c.name));
    writeFileSync(join(cls, c.name, 'label'), `${c.label}\n`);
    writeFileSync(join(cls, c.name, 'base'), `${c.base}\n`);
    writeFileSync(join(cls, c.name, 'ngpio'), `${c.ngpio}\n`);
  }
  writeFileSync(join(cls, 'export'), '');
  const exported: number[] = [];
  const makeLine = (n: number) => {
    mkdirSync(join(cls, `gpio${n}`));
    for (const a of LINE_ATTRIBUTES) writeFileSync(join(cls, `gpio${n}`, a), a === 'value' ? '0\n' : 'in\n');
  };
  for (const n of preExported) makeLine(n);
  let last = '';
  const kernel = setInterval(() => {
    const v = readFileSync(join(cls, 'export'), 'utf8');
    if (v !== '' && v !== last) {
      last = v;
      exported.push(Number(v));
      makeLine(Number(v));
    }
  }, 2);
  t.teardown(() => clearInterval(kernel));
  return { dir, cls, exported };
}

t.test('the plan: the five configured lines at base + offset, the OLED bus, problems named', async (t) => {
  const plan = planHandover(board(), PI4);
  t.same(
    plan.lines.map((l) => [l.role, l.global]),
    [
      ['kill switch', 529],
      ['claim button', 539],
      ['LED green', 534],
      ['LED amber', 535],
      ['LED red', 536],
    ],
  );
  t.equal(plan.i2cDevice, '/dev/i2c-1');
  t.same(plan.problems, []);
  // the emulator's PL061 has 8 lines: the Pi's default pins are not its lines
  const pl = planHandover(board(), PL061);
  t.same(pl.lines, []);
  t.equal(pl.problems.length, 5);
  t.match(pl.problems[0], /kill switch: .*BCM 17 is not a line of 9030000\.pl061/);
  const cfg = { ...board(), gpioChip: '9030000.pl061', killSwitchPin: 3, claimButtonPin: 53 };
  cfg.ledPins = { green: 0, amber: 1, red: 1 };
  cfg.oled = { ...cfg.oled, enabled: false };
  const p = planHandover(cfg, PL061);
  t.same(
    p.lines.map((l) => l.global),
    [515, 512, 513],
    'a line named twice is handed over once',
  );
  t.equal(p.problems.length, 1, 'the button beyond the chip is a problem');
  t.equal(p.i2cDevice, null, 'no OLED: no bus');
});

t.test('hands over exactly the configured lines, exporting only those not exported yet', async (t) => {
  const { dir, cls, exported } = sysfs(t, [PI4], [529]);
  // a line nobody configured, exported by someone else: left alone
  mkdirSync(join(cls, 'gpio530'));
  writeFileSync(join(cls, 'gpio530', 'value'), '0\n');
  const lines: string[] = [];
  const cfg = { ...board(), oled: { ...board().oled, enabled: false } };
  const r = await handOver({ config: cfg, ...owner, sysfsRoot: dir, log: (l) => lines.push(l) });
  t.equal(r.chip.label, 'pinctrl-bcm2711');
  t.same(
    r.handed.map((l) => l.global),
    [529, 539, 534, 535, 536],
  );
  t.same(r.failed, []);
  t.equal(r.i2c, 'off');
  t.same(exported.sort(), [534, 535, 536, 539], 'the switch was exported already: not again');
  for (const n of [529, 534, 535, 536, 539]) {
    for (const a of LINE_ATTRIBUTES) {
      const s = statSync(join(cls, `gpio${n}`, a));
      t.equal(s.uid, owner.uid, `gpio${n}/${a} is the firmware user's`);
      t.equal(s.gid, owner.gid);
    }
  }
  if (root) {
    t.equal(statSync(join(cls, 'gpio530', 'value')).uid, 0, 'an unconfigured line stays root');
    t.equal(statSync(join(cls, 'export')).uid, 0, 'the export file stays root');
  }
  t.equal(lines.length, 5);
});

t.test('a named controller; a missing one throws; a line the kernel never makes is reported', async (t) => {
  const { dir } = sysfs(t, [PI4]);
  const cfg = { ...board(), gpioChip: '9030000.pl061', oled: { ...board().oled, enabled: false } };
  await t.rejects(
    handOver({ config: cfg, ...owner, sysfsRoot: dir, log: () => undefined }),
    /no GPIO controller \(9030000\.pl061\) among gpiochip512=pinctrl-bcm2711/,
  );
  // a tree whose "kernel" never creates the line (the export is refused silently)
  const quiet = tmpDir(t, 'onionbox-handover-');
  mkdirSync(join(quiet, 'class/gpio/gpiochip512'), { recursive: true });
  writeFileSync(join(quiet, 'class/gpio/gpiochip512/label'), 'pinctrl-bcm2711\n');
  writeFileSync(join(quiet, 'class/gpio/gpiochip512/base'), '512\n');
  writeFileSync(join(quiet, 'class/gpio/gpiochip512/ngpio'), '58\n');
  writeFileSync(join(quiet, 'class/gpio/export'), '');
  const r = await handOver({
    config: { ...board(), oled: { ...board().oled, enabled: true, bus: 31 } },
    ...owner,
    sysfsRoot: quiet,
    exportWaitMs: 50,
    log: () => undefined,
  });
  t.same(r.handed, []);
  t.equal(r.failed.length, 5);
  t.match(r.failed[0], /kill switch: line 17 \(gpio529\): the kernel did not create the line within 50 ms/);
  t.equal(r.i2c, 'absent', '/dev/i2c-31 does not exist');
});

t.test('the config file is read without following a link', async (t) => {
  const dir = tmpDir(t, 'onionbox-handover-');
  writeFileSync(join(dir, 'other'), '{"secret": true}');
  symlinkSync(join(dir, 'other'), join(dir, 'config.json'));
  await t.rejects(readConfigFileNoFollow(join(dir, 'config.json')), { code: 'ELOOP' });
  mkdirSync(join(dir, 'adir'));
  await t.rejects(readConfigFileNoFollow(join(dir, 'adir')), /not a regular file/);
  writeFileSync(join(dir, 'plain.json'), '{"a":1}');
  t.equal(await readConfigFileNoFollow(join(dir, 'plain.json')), '{"a":1}');
});
