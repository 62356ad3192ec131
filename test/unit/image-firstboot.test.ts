/**
 * The first-boot script's pure parts: which disk and partition number a device is, for the device names a
 * Pi (SD card, USB disk) and the emulator (virtio) give it, and where slot B and the grown data partition
 * go on a card of a given size. Runs the script itself.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';

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

t.test('slot B at the end of the card, as large as A; data fills the space between', async (t) => {
  // a 16 GB card (as sold: 15.9 GB), slot A 1024 MiB at 68 MiB, data 32 MiB after it
  const disk = 31116288;
  const a = 1024 * MiB;
  const dstart = 68 * MiB + a;
  const r = layout(String(disk), String(a), String(dstart), String(32 * MiB));
  t.equal(r.status, 0);
  const [bstart, bsize, dsize] = r.out.split(' ').map(Number);
  t.equal(bsize, a, 'B is exactly as large as A');
  t.equal((bstart ?? 0) % 8192, 0, 'B starts 4 MiB aligned');
  t.ok((bstart ?? 0) + a <= disk, 'B ends on the card');
  t.ok(disk - ((bstart ?? 0) + a) < 8192, 'less than 4 MiB wasted at the end');
  t.equal((dstart ?? 0) + (dsize ?? 0), bstart, 'data ends where B begins');
});

t.test('a card too small for B keeps A alone and says why', async (t) => {
  const a = 1024 * MiB;
  const dstart = 68 * MiB + a;
  // exactly the flashed image: no room at all
  t.match(layout(String(dstart + 32 * MiB), String(a), String(dstart), String(32 * MiB)).out, /^none /);
  // room for B but not for 256 MiB of data
  t.match(
    layout(String(dstart + a + 100 * MiB), String(a), String(dstart), String(32 * MiB)).out,
    /^none .*256 MiB/,
  );
  // just enough
  const ok = layout(String(dstart + a + 256 * MiB + 8192), String(a), String(dstart), String(32 * MiB));
  t.match(ok.out, /^[0-9]+ [0-9]+ [0-9]+$/);
});

t.test('numbers only', async (t) => {
  for (const bad of [
    ['', '1', '2', '3'],
    ['1; reboot', '1', '2', '3'],
    ['-5', '1', '2', '3'],
    ['1', '2', '3', '0x10'],
  ]) {
    const r = layout(...bad);
    t.equal(r.status, 1, JSON.stringify(bad));
    t.match(r.err, /is not a sector count/);
  }
});
