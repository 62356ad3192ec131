/**
 * The OLED: the real driver (board/oled/ssd1306.ts) against a fake I2C bus that answers like i2c-dev
 * (ENOENT, EBUSY, EREMOTEIO on a missing address, injected EIO) with an SSD1306/SH1106 model that decodes
 * the command stream; the screens against golden PNGs (UPDATE_GOLDEN=1 rewrites them, then look at them).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Framebuffer, HEIGHT, WIDTH } from '../../board/oled/framebuffer.js';
import { framebufferToPng, pngPixels } from '../../board/oled/png.js';
import { renderScreen } from '../../board/oled/screens.js';
import { initCommands, type OledController, Ssd1306 } from '../../board/oled/ssd1306.js';
import type { Screen } from '../../board/types.js';
import { initialState, type MachineInput, step, type TorStatus, view } from '../../firmware/state/machine.js';
import { FakeI2cBus, FakeOledDevice } from '../helpers/fake-i2c.js';

const GOLDEN = join(import.meta.dirname, '../fixtures/board/golden');

function logger() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, obj });
  };
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

function sameAsDevice(fb: Framebuffer, dev: FakeOledDevice): boolean {
  for (let y = 0; y < HEIGHT; y++)
    for (let x = 0; x < WIDTH; x++) if (fb.getPixel(x, y) !== dev.pixel(x, y)) return false;
  return true;
}

const READY: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };
const released: MachineInput = { type: 'switch', position: 'released' };

/** Each screen comes from the state machine's own view, so the goldens show what the box would show. */
function screenOf(inputs: MachineInput[], claimCode: string | null = null): Screen {
  return { ...view(inputs.reduce(step, initialState())).screen, lanAddress: '10.42.0.1', claimCode };
}

const base = screenOf([released, { type: 'tor', status: READY }]);

export const SCREENS: Record<string, Screen> = {
  booting: screenOf([released], '482913'),
  connecting: screenOf(
    [
      released,
      {
        type: 'tor',
        status: { phase: 'bootstrapping', progress: 45, summary: 'Loading relay descriptors', ready: false },
      },
    ],
    '482913',
  ),
  routing: base,
  // the connection assist's line while tor connects (firmware/tor/assist.ts assistOledLine)
  'connecting-blocked': {
    ...screenOf([
      released,
      { type: 'tor', status: { phase: 'bootstrapping', progress: 10, summary: 'Connecting', ready: false } },
    ]),
    assist: 'blocked: try 2/4',
  },
  'connecting-no-network': {
    ...screenOf([
      released,
      { type: 'tor', status: { phase: 'bootstrapping', progress: 5, summary: 'Connecting', ready: false } },
    ]),
    assist: 'no network: cable?',
  },
  'connecting-clock': {
    ...screenOf([
      released,
      { type: 'tor', status: { phase: 'bootstrapping', progress: 14, summary: 'Handshaking', ready: false } },
    ]),
    assist: 'clock wrong: fixing',
  },
  killed: screenOf([
    { type: 'switch', position: 'engaged' },
    { type: 'tor', status: READY },
  ]),
  'killed-unreadable': screenOf([
    { type: 'switch', position: 'unreadable' },
    { type: 'tor', status: READY },
  ]),
  'killed-web': screenOf([released, { type: 'tor', status: READY }, { type: 'soft-kill', engaged: true }]),
  'tor-down': screenOf([
    released,
    { type: 'tor', status: READY },
    {
      type: 'tor',
      status: { phase: 'crashed', progress: 100, summary: 'tor exited (code 1)', ready: false },
    },
  ]),
  error: screenOf([
    released,
    { type: 'tor', status: READY },
    { type: 'fault', source: 'firewall', message: 'apply routing failed' },
  ]),
};

t.test('each screen shows its state', async (t) => {
  for (const [name, screen] of Object.entries(SCREENS))
    t.equal(screen.state, name.replace(/-(unreadable|web|blocked|no-network|clock)$/, ''));
});

for (const controller of ['ssd1306', 'sh1106'] as OledController[]) {
  t.test(`${controller}: init sequence and a frame land in the panel's RAM as drawn`, async (t) => {
    const i2c = new FakeI2cBus();
    const dev = i2c.attach(0x3c, new FakeOledDevice(controller));
    const { log } = logger();
    const oled = new Ssd1306({ bus: 1, address: 0x3c, controller, open: i2c.open, log, retryMs: 5 });
    await oled.start();
    t.equal(oled.state, 'ready');
    t.equal(dev.on, true, 'display on');
    t.equal(dev.chargePump, true, 'charge pump / DC-DC on');
    t.same(dev.unknownCommands, [], 'every byte of the init sequence is a command the controller knows');
    const fb = renderScreen(SCREENS.connecting as Screen);
    oled.show(fb);
    await oled.idle();
    t.ok(sameAsDevice(fb, dev), 'the panel shows the framebuffer pixel for pixel');
    await oled.stop();
    t.equal(dev.on, false, 'display off at stop');
    t.equal(i2c.closed, i2c.opened, 'bus closed');
  });
}

t.test('init sequence: SSD1306 uses the charge pump and horizontal mode, SH1106 neither', async (t) => {
  t.ok(initCommands('ssd1306').includes(0x8d));
  t.notOk(initCommands('sh1106').includes(0x8d));
  t.equal(initCommands('ssd1306')[0], 0xae);
  t.equal(initCommands('ssd1306').at(-1), 0xaf);
});

t.test(
  'missing display is not an error: no device (EREMOTEIO), no bus (ENOENT), address taken (EBUSY)',
  async (t) => {
    for (const make of [
      () => new FakeI2cBus(),
      () => Object.assign(new FakeI2cBus(), { exists: false }),
      () => {
        const b = new FakeI2cBus();
        b.attach(0x3c, new FakeOledDevice('ssd1306'));
        b.claimed.add(0x3c);
        return b;
      },
    ]) {
      const i2c = make();
      const { lines, log } = logger();
      const oled = new Ssd1306({
        bus: 1,
        address: 0x3c,
        controller: 'ssd1306',
        open: i2c.open,
        log,
        retryMs: 5,
      });
      await oled.start();
      t.equal(oled.state, 'absent');
      oled.show(new Framebuffer());
      await new Promise((r) => setTimeout(r, 30)); // several retries happen
      t.equal(
        lines.filter((l) => /no OLED display found/.test(l.msg)).length,
        1,
        'logged once, not every retry',
      );
      t.equal(lines.filter((l) => l.level === 'error').length, 0);
      await oled.stop();
    }
  },
);

t.test('a display plugged in later is found by the retry', async (t) => {
  const i2c = new FakeI2cBus();
  const { log } = logger();
  const oled = new Ssd1306({ bus: 1, address: 0x3c, controller: 'ssd1306', open: i2c.open, log, retryMs: 5 });
  await oled.start();
  const fb = renderScreen(SCREENS.routing as Screen);
  oled.show(fb);
  const dev = i2c.attach(0x3c, new FakeOledDevice('ssd1306'));
  while (oled.framesDrawn === 0) await new Promise((r) => setTimeout(r, 5));
  t.ok(sameAsDevice(fb, dev));
  await oled.stop();
});

t.test(
  'I2C error mid-run: logged, bus reopened, display re-initialised and the latest frame redrawn',
  async (t) => {
    const i2c = new FakeI2cBus();
    const dev = i2c.attach(0x3c, new FakeOledDevice('ssd1306'));
    const { lines, log } = logger();
    const oled = new Ssd1306({
      bus: 1,
      address: 0x3c,
      controller: 'ssd1306',
      open: i2c.open,
      log,
      retryMs: 5,
    });
    await oled.start();
    oled.show(renderScreen(SCREENS.connecting as Screen));
    await oled.idle();
    // A glitch that also reset the panel (brown-out): RAM and settings gone.
    dev.reset();
    i2c.failNext(2, 'EIO');
    const killed = renderScreen(SCREENS.killed as Screen);
    oled.show(killed);
    await oled.idle();
    t.equal(oled.state, 'retrying');
    while (!sameAsDevice(killed, dev) || !dev.on) await new Promise((r) => setTimeout(r, 5));
    t.equal(oled.state, 'ready');
    t.ok(lines.some((l) => l.level === 'warn' && /OLED write failed/.test(l.msg)));
    t.ok(i2c.opened >= 2, 'the bus was reopened');
    t.ok(oled.errors >= 1);
    await oled.stop();
  },
);

t.test('golden PNG per state', async (t) => {
  const update = process.env.UPDATE_GOLDEN === '1';
  if (update) mkdirSync(GOLDEN, { recursive: true });
  for (const [name, screen] of Object.entries(SCREENS)) {
    const png = framebufferToPng(renderScreen(screen));
    const file = join(GOLDEN, `${name}.png`);
    if (update || !existsSync(file)) {
      if (process.env.CI === 'true' && !update) {
        t.fail(`golden image ${file} missing`);
        continue;
      }
      writeFileSync(file, png);
    }
    const want = pngPixels(readFileSync(file));
    const got = pngPixels(png);
    let diff = 0;
    for (let y = 0; y < got.height; y++)
      for (let x = 0; x < got.width; x++) if (want.on(x, y) !== got.on(x, y)) diff++;
    t.equal(diff, 0, `${name}: no pixel differs from the golden image`);
  }
  // The screens differ from each other (a renderer that draws nothing would pass the comparison above).
  const a = framebufferToPng(renderScreen(SCREENS.routing as Screen));
  const b = framebufferToPng(renderScreen(SCREENS.killed as Screen));
  t.notSame(a, b);
});

t.test('text: characters the font lacks become "?", long lines are cut with "."', async (t) => {
  const fb = new Framebuffer();
  const end = fb.drawText('Aé', 0, 0);
  t.equal(end, 12);
  const q = new Framebuffer();
  q.drawText('A?', 0, 0);
  t.same([...fb.bytes.subarray(0, 12)], [...q.bytes.subarray(0, 12)]);
  const long = renderScreen({ ...base, detail: 'x'.repeat(40) });
  const want = new Framebuffer();
  want.drawText(`${'x'.repeat(20)}.`, 0, 19);
  let same = true;
  for (let y = 19; y < 26; y++)
    for (let x = 0; x < WIDTH; x++) if (long.getPixel(x, y) !== want.getPixel(x, y)) same = false;
  t.ok(same, 'the detail line is cut to 20 characters and "."');
});

t.test('an adapter that reports a NACK as EIO: warned once, retried, never thrown', async (t) => {
  const i2c = new FakeI2cBus();
  i2c.failNext(50, 'EIO');
  const { lines, log } = logger();
  const oled = new Ssd1306({ bus: 1, address: 0x3c, controller: 'ssd1306', open: i2c.open, log, retryMs: 1 });
  await oled.start();
  t.equal(oled.state, 'retrying');
  while (oled.errors < 5) await new Promise((r) => setTimeout(r, 2));
  t.equal(lines.filter((l) => /initialisation failed/.test(l.msg)).length, 1);
  await oled.stop();
  t.equal(oled.state, 'stopped');
});

/** Whether rows y..y+7 of `fb` hold exactly `text` drawn at x 0. */
function rowShows(fb: Framebuffer, y: number, text: string): boolean {
  const want = new Framebuffer();
  want.drawText(text, 0, y);
  for (let yy = y; yy < y + 8; yy++)
    for (let x = 0; x < WIDTH; x++) if (fb.getPixel(x, yy) !== want.getPixel(x, yy)) return false;
  return true;
}

t.test(
  'the 8-character claim code and its id fit one line; a refused press is said in their place',
  async (t) => {
    const claim = { ...base, claimCode: 'K7P2QXWM', claimId: 'K7P2' };
    const fb = renderScreen(claim);
    t.ok(rowShows(fb, 55, 'code K7P2QXWM id K7P2'), 'whole, not cut with a dot');
    t.ok(rowShows(fb, 46, 'web: 10.42.0.1'));
    const refused = renderScreen({ ...claim, claimNotice: 'press refused: more than one claim' });
    t.ok(rowShows(refused, 46, 'press refused:'));
    t.ok(rowShows(refused, 55, 'more than one claim'));
    const claimedBox = renderScreen({
      ...base,
      claimCode: null,
      claimNotice: 'press refused: more than one claim',
    });
    t.ok(rowShows(claimedBox, 46, 'web: 10.42.0.1'), 'no notice once claimed');
  },
);
