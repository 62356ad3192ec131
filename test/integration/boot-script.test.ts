/**
 * The image's boot script (images/boot/boot.cmd) in real U-Boot (Debian's u-boot-qemu, qemu_arm64) on
 * QEMU virt, on a small disk laid out as the image is (FAT with boot.scr and onionbox.env, slot A as
 * partition 2, slot B as 3). The slots' "kernels" are 80-byte arm64 Images that ask PSCI to reset (a slot
 * that crashes, as a kernel panic with panic=10 would) or to power off (a slot that boots): so each run
 * takes seconds and shows exactly what U-Boot decided, boot by boot, on the serial console.
 *
 * Proves: every boot takes a try before it starts the slot and saves it; a slot out of tries hands over
 * to the other; "B A" prefers B; a slot that cannot be loaded loses its tries; with both out, both get
 * three again; a torn onionbox.env (bad CRC) gives the defaults; and the file U-Boot saves is the one
 * libubootenv's fw_printenv reads (what RAUC uses).
 *
 * Needs qemu-system-aarch64, u-boot-qemu, u-boot-tools (mkimage, mkenvimage), dosfstools, mtools,
 * e2fsprogs, fdisk (scripts/setup installs them). Never skipped under CI.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import t from 'tap';

const exec = promisify(execFile);
const SCRIPT = new URL('../../images/boot/boot.cmd', import.meta.url).pathname;
const ENV_TXT = new URL('../../images/boot/onionbox.env.txt', import.meta.url).pathname;
const UBOOT = process.env.ONIONBOX_UBOOT_QEMU ?? '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
const TOOLS = ['qemu-system-aarch64', 'mkimage', 'mkenvimage', 'mkfs.fat', 'mcopy', 'mke2fs', 'sfdisk'];

/** A minimal arm64 Image (booti's header, magic ARM\x64) whose code makes one PSCI call over HVC. */
function psciImage(fn: 'reset' | 'off'): Buffer {
  const b = Buffer.alloc(128);
  b.writeUInt32LE(0x14000010, 0); // b +64
  b.writeBigUInt64LE(0n, 8); // text_offset
  b.writeBigUInt64LE(4096n, 16); // image_size
  b.writeBigUInt64LE(8n, 24); // flags: little endian, placed anywhere
  b.writeUInt32LE(0x644d5241, 56); // "ARM\x64"
  b.writeUInt32LE(fn === 'reset' ? 0x52800120 : 0x52800100, 64); // movz w0, #9 (SYSTEM_RESET) / #8 (SYSTEM_OFF)
  b.writeUInt32LE(0x72b08000, 68); // movk w0, #0x8400, lsl #16
  b.writeUInt32LE(0xd4000002, 72); // hvc #0
  b.writeUInt32LE(0x14000000, 76); // b .
  return b;
}

/** 'gzip-off': the powering-off Image gzip-compressed, as the image ships /boot/vmlinuz. */
type Slot = 'reset' | 'off' | 'gzip-off' | 'missing';
const MiB = 2048;

async function disk(dir: string, slots: { A: Slot; B: Slot }, env: string | 'torn'): Promise<string> {
  const fat = join(dir, 'fat');
  await mkdir(fat, { recursive: true });
  await exec('mkimage', [
    '-q',
    '-A',
    'arm64',
    '-O',
    'linux',
    '-T',
    'script',
    '-C',
    'none',
    '-d',
    SCRIPT,
    join(fat, 'boot.scr'),
  ]);
  await writeFile(
    join(dir, 'env.txt'),
    env === 'torn' ? 'BOOT_ORDER=B A\nBOOT_A_LEFT=0\nBOOT_B_LEFT=1\n' : env,
  );
  await exec('mkenvimage', ['-s', '0x4000', '-o', join(fat, 'onionbox.env'), join(dir, 'env.txt')]);
  if (env === 'torn') {
    // a write cut short: the second half of the file never reached the card (zeros): the CRC fails
    const e = await readFile(join(fat, 'onionbox.env'));
    e.fill(0, 8);
    e.write('BOOT_ORDER=B A', 4); // the start of the new contents made it
    await writeFile(join(fat, 'onionbox.env'), e);
  }
  await exec('mkfs.fat', ['-F', '32', '-n', 'ONIONBOOT', '-C', join(dir, 'fat.vfat'), String(64 * 1024)]);
  await exec('mcopy', [
    '-s',
    '-m',
    '-i',
    join(dir, 'fat.vfat'),
    join(fat, 'boot.scr'),
    join(fat, 'onionbox.env'),
    '::/',
  ]);
  const parts: string[] = [];
  for (const name of ['A', 'B'] as const) {
    const root = join(dir, `slot${name}`);
    await mkdir(join(root, 'boot'), { recursive: true });
    if (slots[name] !== 'missing') {
      const slot = slots[name];
      await writeFile(
        join(root, 'boot/vmlinuz'),
        slot === 'gzip-off' ? gzipSync(psciImage('off')) : psciImage(slot === 'reset' ? 'reset' : 'off'),
      );
      await writeFile(join(root, 'boot/initrd.img'), Buffer.alloc(512, 1));
    }
    await exec('mke2fs', ['-q', '-t', 'ext4', '-d', root, join(dir, `slot${name}.ext4`), '8M']);
    parts.push(join(dir, `slot${name}.ext4`));
  }
  const img = join(dir, 'disk.img');
  await writeFile(img, '');
  await exec('truncate', ['-s', `${(8192 + 64 * MiB + 16 * MiB) * 512}`, img]);
  const table = [
    'label: dos',
    'label-id: 0x6f6e6962',
    'unit: sectors',
    '',
    `${img}1 : start=8192, size=${64 * MiB}, type=c, bootable`,
    `${img}2 : start=${8192 + 64 * MiB}, size=${8 * MiB}, type=83`,
    `${img}3 : start=${8192 + 72 * MiB}, size=${8 * MiB}, type=83`,
    '',
  ].join('\n');
  await new Promise<void>((ok, no) => {
    const p = execFile('sfdisk', ['--quiet', img], (err) => (err ? no(err) : ok()));
    p.stdin?.end(table);
  });
  const dd = (src: string, sector: number) =>
    exec('dd', [`if=${src}`, `of=${img}`, 'bs=512', `seek=${sector}`, 'conv=notrunc', 'status=none']);
  await dd(join(dir, 'fat.vfat'), 8192);
  await dd(parts[0] ?? '', 8192 + 64 * MiB);
  await dd(parts[1] ?? '', 8192 + 72 * MiB);
  return img;
}

/** Boots the disk until a slot powers off (or the time is up); U-Boot's and the script's lines. */
async function boot(img: string, seconds = 240): Promise<{ lines: string[]; off: boolean }> {
  const serial = `${img}.serial`;
  let off = true;
  try {
    await exec(
      'timeout',
      [
        String(seconds),
        'qemu-system-aarch64',
        ...['-M', 'virt,acpi=off', '-cpu', 'cortex-a72', '-m', '512', '-nic', 'none', '-display', 'none'],
        ...['-monitor', 'none', '-serial', `file:${serial}`, '-bios', UBOOT],
        ...['-drive', `if=none,id=hd,file=${img},format=raw`, '-device', 'virtio-blk-pci,drive=hd'],
      ],
      { timeout: (seconds + 10) * 1000 },
    );
  } catch {
    off = false;
  }
  const text = existsSync(serial) ? await readFile(serial, 'utf8') : '';
  return {
    lines: text
      .split('\n')
      .filter((l) => l.startsWith('Onionbox: '))
      .map((l) => l.trimEnd()),
    off,
  };
}

/** The slot each boot chose, with the tries it left: "A2" = slot A, BOOT_A_LEFT now 2. */
function choices(lines: string[]): string[] {
  return lines.flatMap((l) => {
    const m = /^Onionbox: booting slot ([AB]) \(BOOT_A_LEFT=([0-9]) BOOT_B_LEFT=([0-9]) saved\)$/.exec(l);
    if (!m) return [];
    return [`${m[1]}${m[1] === 'A' ? m[2] : m[3]}`];
  });
}

async function envOf(img: string, dir: string): Promise<string> {
  await exec('dd', [
    `if=${img}`,
    `of=${join(dir, 'fat-after.vfat')}`,
    'bs=512',
    'skip=8192',
    `count=${64 * MiB}`,
    'status=none',
  ]);
  await exec('mcopy', [
    '-o',
    '-i',
    join(dir, 'fat-after.vfat'),
    '::/onionbox.env',
    join(dir, 'env-after.bin'),
  ]);
  await writeFile(join(dir, 'fw_env.config'), `${join(dir, 'env-after.bin')} 0x0000 0x4000\n`);
  return (await exec('fw_printenv', ['-c', join(dir, 'fw_env.config')])).stdout;
}

t.test('real U-Boot runs the image boot script', { timeout: 1_800_000 }, async (t) => {
  const missing: string[] = [];
  for (const tool of TOOLS) {
    try {
      await exec('sh', ['-c', `command -v ${tool}`]);
    } catch {
      missing.push(tool);
    }
  }
  if (!existsSync(UBOOT)) missing.push(UBOOT);
  if (missing.length > 0) {
    if (process.env.CI === 'true') throw new Error(`missing: ${missing.join(', ')}: run scripts/setup`);
    t.plan(0, `missing: ${missing.join(', ')} (scripts/setup installs them)`);
    return;
  }
  const base = await mkdtemp(join(tmpdir(), 'obx-bootscr-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const flashed = await readFile(ENV_TXT, 'utf8');

  await t.test('a slot that crashes uses its three tries, then the other slot boots', async (t) => {
    const dir = join(base, 'rollback');
    const img = await disk(dir, { A: 'reset', B: 'off' }, flashed);
    const r = await boot(img);
    t.same(choices(r.lines), ['A2', 'A1', 'A0', 'B2'], r.lines.join('\n'));
    t.ok(r.off, 'slot B ran (it powered the machine off)');
    if (existsSync('/usr/bin/fw_printenv')) {
      // the file U-Boot saved, read the way RAUC reads it (libubootenv)
      const env = await envOf(img, dir);
      t.match(env, /^BOOT_ORDER=A B$/m);
      t.match(env, /^BOOT_A_LEFT=0$/m);
      t.match(env, /^BOOT_B_LEFT=2$/m);
    }
  });

  await t.test('"B A" prefers B; a slot that cannot be loaded loses its tries at once', async (t) => {
    const img = await disk(
      join(base, 'order'),
      { A: 'off', B: 'missing' },
      'BOOT_ORDER=B A\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n',
    );
    const r = await boot(img);
    t.same(choices(r.lines), ['B2', 'A2'], r.lines.join('\n'));
    t.ok(r.lines.some((l) => /slot B could not be loaded or booted: it gets no more tries/.test(l)));
    t.ok(r.off);
  });

  await t.test('both out of tries: both get three again, and the preferred slot boots', async (t) => {
    const img = await disk(
      join(base, 'exhausted'),
      { A: 'off', B: 'off' },
      'BOOT_ORDER=B A\nBOOT_A_LEFT=0\nBOOT_B_LEFT=0\n',
    );
    const r = await boot(img);
    t.ok(
      r.lines.some((l) => /no slot has tries left: both get 3 again/.test(l)),
      r.lines.join('\n'),
    );
    t.same(choices(r.lines), ['B2']);
  });

  await t.test("a gzip-compressed kernel is unpacked by U-Boot's booti and boots", async (t) => {
    const img = await disk(join(base, 'gzip'), { A: 'gzip-off', B: 'reset' }, flashed);
    const r = await boot(img);
    t.same(choices(r.lines), ['A2'], r.lines.join('\n'));
    t.ok(r.off, 'slot A ran from its compressed Image (it powered the machine off)');
    t.notOk(r.lines.some((l) => /could not be loaded or booted/.test(l)));
  });

  await t.test('a torn onionbox.env gives the defaults: A first, three tries each', async (t) => {
    // the torn file would have said "B A" with A bad; its CRC fails, so nothing of it is used
    const img = await disk(join(base, 'torn'), { A: 'off', B: 'off' }, 'torn');
    const r = await boot(img);
    t.ok(
      r.lines.some((l) => /onionbox\.env is missing or damaged: the defaults/.test(l)),
      r.lines.join('\n'),
    );
    t.same(choices(r.lines), ['A2']);
  });

  await t.test('values the script does not know are replaced by the defaults', async (t) => {
    const img = await disk(
      join(base, 'odd'),
      { A: 'off', B: 'off' },
      'BOOT_ORDER=C\nBOOT_A_LEFT=99\nBOOT_B_LEFT=x\n',
    );
    const r = await boot(img);
    t.ok(r.lines.includes('Onionbox: BOOT_ORDER=A B BOOT_A_LEFT=3 BOOT_B_LEFT=3'), r.lines.join('\n'));
    t.same(choices(r.lines), ['A2']);
  });
});
