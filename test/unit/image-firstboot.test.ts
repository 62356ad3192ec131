/**
 * The first-boot grow script's pure part: which disk and partition number the root lives on, for the
 * device names a Pi (SD card, USB disk) and the emulator (virtio) give it. Runs the script itself.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';

const script = new URL('../../images/system/onionbox-growroot', import.meta.url).pathname;

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
