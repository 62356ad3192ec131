/**
 * The first-boot script's pure parts: which disk and partition number a device is, for the device names a
 * Pi (SD card, USB disk) and the emulator (virtio) give it, and where slot B and the grown data partition
 * go on a card of a given size: slot A's entry grown to a whole slot, the data partition moved after it
 * (never onto itself), slot B at the end. Runs the script itself.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { SLOT_MB } from '../../images/recipe.js';

const script = new URL('../../images/system/onionbox-firstboot', import.meta.url).pathname;

function plan(dev: string): { out: string; status: number | null; err: string } {
  const r = spawnSync('bash', [script, '--plan', dev], { encoding: 'utf8' });
  return { out: r.stdout.trim(), status: r.status, err: r.stderr };
}

t.test('disk and partition of the root device', async (t) => {
  const cases: [string, string][] = [
    ['/dev/mmcblk0p2', '/dev/mmcblk0 2'],
    ['/dev/mmcblk1p12', '/dev/mmcblk1 12'],
    ['/dev/nvme0n1p2', '/dev/nvme0n1 2'],
    ['/dev/sda2', '/dev/sda 2'],
    ['/dev/vda2', '/dev/vda 2'],
    ['/dev/xvdb3', '/dev/xvdb 3'],
  ];
  for (const [dev, want] of cases) {
    const r = plan(dev);
    t.equal(r.status, 0, dev);
    t.equal(r.out, want, dev);
  }
});

t.test('anything else is refused with a message, never guessed', async (t) => {
  for (const dev of [
    '',
    '/dev/mmcblk0',
    '/dev/sda',
    'LABEL=ONIONROOT',
    '/dev/mapper/root',
    '/dev/sda2; reboot',
    '/dev/md0p1x',
  ]) {
    const r = plan(dev);
    t.equal(r.status, 1, JSON.stringify(dev));
    t.equal(r.out, '');
    t.match(r.err, /cannot tell the disk and partition/);
  }
});

function layout(...args: string[]): { out: string; status: number | null; err: string } {
  const r = spawnSync('bash', [script, '--layout', ...args], { encoding: 'utf8' });
  return { out: r.stdout.trim(), status: r.status, err: r.stderr };
}

const MiB = 2048; // sectors
const SLOT = SLOT_MB * MiB;
// the flashed image: FAT at 4 MiB (64 MiB), slot A after it sized to its file system, data after A
const astart = 68 * MiB;
const a = 452 * MiB;
const dstart = astart + a;
const dsize = 32 * MiB;

t.test('slot A grows to a whole slot, data follows it, slot B ends the card', async (t) => {
  const disk = 31116288; // a 16 GB card as sold (15.9 GB)
  const r = layout(String(disk), String(astart), String(a), String(dstart), String(dsize));
  t.equal(r.status, 0, r.err);
  const [anew, dnew, dnewSize, bstart, bsize] = r.out.split(' ').map(Number);
  t.equal(anew, SLOT, "slot A's entry is a whole slot (images/recipe.ts SLOT_MB)");
  t.equal(bsize, SLOT, 'B is a whole slot too');
  t.equal(dnew, astart + SLOT, 'data starts where the grown slot A ends');
  t.ok((dnew ?? 0) >= dstart + dsize, 'the copy never writes over the flashed data partition');
  t.equal((bstart ?? 0) % 8192, 0, 'B starts 4 MiB aligned');
  t.ok((bstart ?? 0) + SLOT <= disk, 'B ends on the card');
  t.ok(disk - ((bstart ?? 0) + SLOT) < 8192, 'less than 4 MiB wasted at the end');
  t.equal((dnew ?? 0) + (dnewSize ?? 0), bstart, 'data ends where B begins');
});

t.test(
  'a card too small for both slots and 256 MiB of data keeps the flashed layout and says why',
  async (t) => {
    // exactly the flashed image: no room at all
    t.match(
      layout(String(dstart + dsize), String(astart), String(a), String(dstart), String(dsize)).out,
      /^none /,
    );
    // room for two slots but not for 256 MiB of data
    t.match(
      layout(String(astart + 2 * SLOT + 100 * MiB), String(astart), String(a), String(dstart), String(dsize))
        .out,
      /^none .*256 MiB/,
    );
    // just enough
    const ok = layout(
      String(astart + 2 * SLOT + 256 * MiB + 8192),
      String(astart),
      String(a),
      String(dstart),
      String(dsize),
    );
    t.match(ok.out, /^[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$/);
  },
);

t.test('a layout the copy could damage is refused', async (t) => {
  const disk = 31116288;
  // a slot A so large that the data partition after it reaches into its place after a whole slot
  const big = SLOT - 16 * MiB;
  t.match(
    layout(String(disk), String(astart), String(big), String(astart + big), String(dsize)).out,
    /^none .*overlaps/,
  );
  t.match(
    layout(
      String(disk),
      String(astart),
      String(SLOT + 4 * MiB),
      String(astart + SLOT + 4 * MiB),
      String(dsize),
    ).out,
    /^none .*larger than a slot/,
  );
  t.match(
    layout(String(disk), String(astart), String(a), String(astart), String(dsize)).out,
    /^none .*not after slot A/,
  );
  // an image laid out the old way (slot A a whole slot already): data stays, only B and the grow
  const old = layout(String(disk), String(astart), String(SLOT), String(astart + SLOT), String(dsize));
  t.equal(old.out.split(' ')[1], String(astart + SLOT));
});

t.test('numbers only', async (t) => {
  for (const bad of [
    ['', '1', '2', '3', '4'],
    ['1; reboot', '1', '2', '3', '4'],
    ['-5', '1', '2', '3', '4'],
    ['1', '2', '3', '4', '0x10'],
    ['1', '2', '3', '4'],
  ]) {
    const r = layout(...bad);
    t.equal(r.status, 1, JSON.stringify(bad));
    t.match(r.err, /is not a sector count/);
  }
});

t.test("the script's slot size is the recipe's", async (t) => {
  const text = readFileSync(script, 'utf8');
  t.match(text, new RegExp(`^SLOT=\\$\\(\\(${SLOT_MB} \\* 2048\\)\\)`, 'm'));
});
