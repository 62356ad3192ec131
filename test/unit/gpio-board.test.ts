/**
 * The real GPIO board (board/gpio) with the REAL onoff module, run against a fake of the kernel's sysfs
 * GPIO interface and epoll (test/helpers/fake-gpio.ts): chip base discovery, fail-closed switch
 * reading, debounce, button press and hold, LEDs, pin release.
 */
import t, { type Test } from 'tap';
import { GpioBoard, type GpioBoardOptions } from '../../board/gpio/board.js';
import { globalNumber, listChips, pickChip } from '../../board/gpio/chip.js';
import type { ButtonEvent, SwitchPosition } from '../../board/types.js';
import { defaultConfig } from '../../firmware/config/schema.js';
import { type FakeChip, FakeGpioKernel, loadOnoffOn } from '../helpers/fake-gpio.js';
import { tmpDir } from '../helpers/tmp.js';

const PI4: FakeChip = { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 };
const PI5: FakeChip[] = [
  { label: 'raspberrypi-exp-gpio', base: 504, ngpio: 8 },
  { label: 'pinctrl-rp1', base: 571, ngpio: 54 },
];

interface Logged {
  level: string;
  msg: string;
  obj: object;
}

function logger() {
  const lines: Logged[] = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, obj });
  };
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

function setup(t: Test, chips: FakeChip[] = [PI4], opts: Partial<GpioBoardOptions> = {}) {
  const root = tmpDir(t, 'onionbox-sysfs-');
  const kernel = new FakeGpioKernel(root, chips);
  const { lines, log } = logger();
  const config = { ...defaultConfig().board, oled: { ...defaultConfig().board.oled, enabled: false } };
  const make = () =>
    new GpioBoard({
      config,
      log,
      sysfsRoot: root,
      Gpio: () => loadOnoffOn(kernel),
      debounceMs: 5,
      holdMs: 40,
      blinkMs: 10,
      pollMs: 20,
      ...opts,
    });
  const board = make();
  t.teardown(() => board.stop());
  return { kernel, board, lines, root };
}

function nextSwitch(board: GpioBoard): Promise<SwitchPosition> {
  return new Promise((resolve) => {
    const off = board.onSwitch((p) => {
      off();
      resolve(p);
    });
  });
}

function nextButton(board: GpioBoard, kind: ButtonEvent['kind']): Promise<ButtonEvent> {
  return new Promise((resolve) => {
    const off = board.onButton((e) => {
      if (e.kind !== kind) return;
      off();
      resolve(e);
    });
  });
}

t.test(
  'chip base: from the label, never hard-coded (Pi 4 at 512, Pi 5 at 571 beside an expander)',
  async (t) => {
    const r4 = tmpDir(t);
    new FakeGpioKernel(r4, [PI4]);
    const pi4 = pickChip(await listChips(r4));
    t.equal(pi4.base, 512);
    t.equal(globalNumber(pi4, 17), 529);
    const r5 = tmpDir(t);
    new FakeGpioKernel(r5, PI5);
    const pi5 = pickChip(await listChips(r5));
    t.equal(pi5.label, 'pinctrl-rp1');
    t.equal(globalNumber(pi5, 17), 588);
    t.throws(() => globalNumber(pi5, 54), /not a line/);
    const other = tmpDir(t);
    new FakeGpioKernel(other, [{ label: 'gpio-mockup-A', base: 0, ngpio: 32 }]);
    t.throws(
      () => pickChip([{ name: 'gpiochip0', label: 'gpio-mockup-A', base: 0, ngpio: 32 }]),
      /gpio-mockup-A/,
    );
  },
);

t.test('a board config naming its controller (the PL061 of the emulated image) uses that chip', async (t) => {
  const PL061: FakeChip = { label: '9030000.pl061', base: 512, ngpio: 8 };
  const config = {
    ...defaultConfig().board,
    gpioChip: '9030000.pl061',
    killSwitchPin: 3,
    claimButtonPin: 53,
    ledPins: { green: 0, amber: 1, red: 2 },
    oled: { ...defaultConfig().board.oled, enabled: false },
  };
  const { kernel, board, lines } = setup(t, [PI4, PL061], { config });
  kernel.setInput(515, 0);
  await board.start();
  t.equal(board.readSwitch(), 'released', 'line 3 of the PL061 (base 512 + 3)');
  t.same(kernel.exportedLines(), [512, 513, 514, 515], 'switch and LEDs; the button is not a line of it');
  t.ok(lines.some((l) => l.level === 'warn' && /claim button pin cannot be used/.test(l.msg)));
  // the Pi's default pins on a machine whose only controller is the PL061: no Pi controller, engaged
  const other = setup(t, [PL061]);
  await other.board.start();
  t.equal(other.board.readSwitch(), 'unreadable');
  t.ok(other.lines.some((l) => /GPIO controller not found/.test(l.msg)));
});

t.test('the switch is read first, before any other pin is exported', async (t) => {
  const { kernel, board } = setup(t);
  kernel.setInput(529, 0); // contact closed: released
  await board.start();
  t.equal(board.readSwitch(), 'released');
  const exports = kernel.log.filter((l) => l.startsWith('write /sys/class/gpio/export'));
  t.equal(exports[0], 'write /sys/class/gpio/export 529', 'kill switch (BCM 17 + 512) first');
  t.same(kernel.exportedLines(), [529, 534, 535, 536, 539], 'switch, LEDs 22/23/24 and button 27');
});

t.test('on a Pi 5 the same BCM pins land at base 571', async (t) => {
  const { kernel, board } = setup(t, PI5);
  await board.start();
  t.equal(board.readSwitch(), 'engaged', 'nothing pulls the pin low: engaged');
  t.ok(kernel.isExported(588));
});

t.test('edges: a bouncing contact ends in one change to its final position', async (t) => {
  const { kernel, board } = setup(t);
  await board.start();
  t.equal(board.readSwitch(), 'engaged');
  const seen: SwitchPosition[] = [];
  board.onSwitch((p) => seen.push(p));
  const released = nextSwitch(board);
  kernel.bounce(529, [0, 1, 0, 1, 0]);
  t.equal(await released, 'released');
  const engaged = nextSwitch(board);
  kernel.setInput(529, 1);
  t.equal(await engaged, 'engaged');
  t.same(seen, ['released', 'engaged'], 'no intermediate positions were reported');
});

t.test('export delay (udev permissions): onoff retries and the pin works', async (t) => {
  const { kernel, board } = setup(t);
  kernel.permissionDelay = 500;
  kernel.setInput(529, 0);
  await board.start();
  t.equal(board.readSwitch(), 'released');
});

t.test('fail closed: permission never granted (EACCES) -> engaged, with a clear log', async (t) => {
  const { kernel, board, lines } = setup(t);
  kernel.permissionDelay = 20_000;
  kernel.setInput(529, 0);
  await board.start();
  t.equal(board.readSwitch(), 'unreadable');
  t.ok(
    lines.some((l) => l.level === 'error' && /kill switch pin cannot be used: counts as engaged/.test(l.msg)),
  );
  t.match(JSON.stringify(lines), /EACCES/);
});

t.test('fail closed: pin taken by a kernel driver (EBUSY) -> engaged', async (t) => {
  const { kernel, board, lines } = setup(t);
  kernel.claimByDriver(529);
  kernel.setInput(529, 0);
  await board.start();
  t.equal(board.readSwitch(), 'unreadable');
  t.match(JSON.stringify(lines), /EBUSY/);
  t.ok(kernel.isExported(539), 'the other pins still open');
});

t.test('fail closed: a line without interrupts (edge EIO) -> engaged', async (t) => {
  const { kernel, board, lines } = setup(t);
  kernel.withoutInterrupts(529);
  kernel.setInput(529, 0);
  await board.start();
  t.equal(board.readSwitch(), 'unreadable');
  t.match(JSON.stringify(lines), /EIO/);
});

t.test(
  'fail closed: exported before with edge "none" and no interrupts (onoff swallows it) -> engaged',
  async (t) => {
    const { kernel, board, lines } = setup(t);
    kernel.preExport(529, { edge: 'none' });
    kernel.withoutInterrupts(529);
    kernel.setInput(529, 0);
    await board.start();
    t.equal(board.readSwitch(), 'unreadable', 'a switch that can never report a change is not trusted');
    t.match(JSON.stringify(lines), /no interrupts/);
  },
);

t.test(
  'fail closed: the line breaks mid-run (EIO) -> unreadable, no crash; it recovers when it reads again',
  async (t) => {
    const { kernel, board, lines } = setup(t);
    kernel.setInput(529, 0);
    await board.start();
    t.equal(board.readSwitch(), 'released');
    const broken = nextSwitch(board);
    kernel.breakLine(529);
    kernel.setInput(529, 1); // an interrupt arrives; onoff's handler reads the value and gets EIO
    t.equal(await broken, 'unreadable');
    t.ok(lines.some((l) => /kill switch pin unreadable: counts as engaged/.test(l.msg)));
    const back = nextSwitch(board);
    kernel.breakLine(529, false);
    kernel.setInput(529, 0);
    t.equal(await back, 'released');
  },
);

t.test('fail closed: no Raspberry Pi GPIO controller -> engaged', async (t) => {
  const { board, lines } = setup(t, [{ label: 'gpio-mockup-A', base: 0, ngpio: 64 }]);
  await board.start();
  t.equal(board.readSwitch(), 'unreadable');
  t.ok(lines.some((l) => /GPIO controller not found/.test(l.msg)));
});

t.test('fail closed: onoff cannot be loaded -> engaged', async (t) => {
  const { board, lines } = setup(t, [PI4], {
    Gpio: () => {
      throw new Error('Cannot find module epoll');
    },
  });
  await board.start();
  t.equal(board.readSwitch(), 'unreadable');
  t.ok(lines.some((l) => /onoff cannot be loaded/.test(l.msg)));
});

t.test('claim button: press on the way down, hold after the hold time, held through boot', async (t) => {
  const { kernel, board } = setup(t);
  await board.start();
  const press = nextButton(board, 'press');
  kernel.setInput(539, 0);
  const p = await press;
  t.equal(p.sinceBoot, false);
  const hold = nextButton(board, 'hold');
  const h = await hold;
  t.equal(h.at, p.at);
  t.ok(h.heldMs >= 40);
  kernel.setInput(539, 1);

  const second = setup(t);
  second.kernel.setInput(539, 0);
  const bootHold = nextButton(second.board, 'hold');
  await second.board.start();
  t.equal((await bootHold).sinceBoot, true);
});

t.test('a short press gives no hold', async (t) => {
  const { kernel, board } = setup(t, [PI4], { holdMs: 2000 });
  await board.start();
  const events: string[] = [];
  board.onButton((e) => events.push(e.kind));
  const press = nextButton(board, 'press');
  kernel.setInput(539, 0);
  await press;
  kernel.setInput(539, 1);
  await new Promise((r) => setTimeout(r, 300));
  t.same(events, ['press']);
});

t.test('LEDs: steady and blinking; a broken LED pin is logged once and the rest work', async (t) => {
  const { kernel, board, lines } = setup(t);
  await board.start();
  board.setLeds({ green: 'on', amber: 'off', red: 'off' });
  t.equal(kernel.outputLevel(534), 1);
  t.equal(kernel.outputLevel(535), 0);
  board.setLeds({ green: 'off', amber: 'blink', red: 'on' });
  const seen = new Set<number | undefined>();
  while (seen.size < 2) {
    seen.add(kernel.outputLevel(535));
    await new Promise((r) => setTimeout(r, 3));
  }
  t.same([...seen].sort(), [0, 1], 'amber blinks');
  t.equal(kernel.outputLevel(536), 1);
  kernel.breakLine(536);
  board.setLeds({ green: 'on', amber: 'off', red: 'on' });
  board.setLeds({ green: 'on', amber: 'off', red: 'off' });
  t.equal(lines.filter((l) => l.msg === 'LED write failed').length, 1);
  t.equal(kernel.outputLevel(534), 1);
});

t.test('stop releases every pin and closes every file', async (t) => {
  const { kernel, board } = setup(t);
  await board.start();
  board.setLeds({ green: 'blink', amber: 'on', red: 'off' });
  await board.stop();
  t.same(kernel.exportedLines(), []);
  t.equal(kernel.openFds(), 0);
  t.equal(board.readSwitch(), 'unreadable');
});

t.test(
  'the real board draws screens on the I2C display; a missing display changes nothing else',
  async (t) => {
    const { FakeI2cBus, FakeOledDevice } = await import('../helpers/fake-i2c.js');
    const { renderScreen } = await import('../../board/oled/screens.js');
    const root = tmpDir(t, 'onionbox-sysfs-');
    const kernel = new FakeGpioKernel(root, [PI4]);
    const i2c = new FakeI2cBus();
    const dev = i2c.attach(0x3c, new FakeOledDevice('sh1106'));
    const { log } = logger();
    const config = {
      ...defaultConfig().board,
      oled: { ...defaultConfig().board.oled, controller: 'sh1106' as const },
    };
    const board = new GpioBoard({
      config,
      log,
      sysfsRoot: root,
      Gpio: () => loadOnoffOn(kernel),
      openI2c: i2c.open,
    });
    t.teardown(() => board.stop());
    kernel.setInput(529, 0);
    await board.start();
    const screen = {
      state: 'routing' as const,
      progress: null,
      detail: 'all traffic via tor',
      killSwitch: 'released' as const,
      softKill: false,
      lanAddress: '10.42.0.1',
      claimCode: null,
    };
    board.showScreen(screen);
    await board.oled?.idle();
    const fb = renderScreen(screen);
    let same = true;
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 128; x++) if (fb.getPixel(x, y) !== dev.pixel(x, y)) same = false;
    t.ok(same, 'the SH1106 shows the screen (column offset 2)');

    const bare = setup(t);
    bare.kernel.setInput(529, 0);
    const noDisplay = new GpioBoard({
      config: defaultConfig().board,
      log,
      sysfsRoot: bare.root,
      Gpio: () => loadOnoffOn(bare.kernel),
      openI2c: new FakeI2cBus().open,
    });
    t.teardown(() => noDisplay.stop());
    await noDisplay.start();
    noDisplay.showScreen(screen);
    t.equal(noDisplay.readSwitch(), 'released');
    t.equal(noDisplay.oled?.state, 'absent');
  },
);
