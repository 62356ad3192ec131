/**
 * The image's boot files: config.txt, cmdline.txt, fstab and raspi-firmware's settings, rendered from the
 * recipe; bad values are refused before anything is written.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { BOOT_LABEL, DATA_BINDS, DATA_LABEL, ROOT_LABEL } from '../../images/recipe.js';
import {
  type BootOptions,
  bootConfigSettings,
  bootSettings,
  DEFAULT_BOOT,
  ImageRecipeError,
  renderCmdlineTxt,
  renderConfigTxt,
  renderFile,
  renderFstab,
  renderRaspiExtraCmdline,
  renderRaspiFirmwareCustom,
  renderRaspiFirmwareDefault,
} from '../../images/render.js';

const boardLines = readFileSync(new URL('../../images/boot/config.txt', import.meta.url), 'utf8');
const boot: BootOptions = {
  ...DEFAULT_BOOT,
  kernelVersion: '6.12.57+deb13-arm64',
  bootConfigLines: boardLines,
};

function settings(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

t.test('config.txt: 64-bit, UART, U-Boot as the kernel, then the board lines', async (t) => {
  const s = settings(renderConfigTxt(boot));
  t.equal(s[0], 'arm_64bit=1');
  t.ok(s.includes('arm_64bit=1'));
  t.ok(s.includes('enable_uart=1'));
  t.ok(s.includes('kernel=u-boot.bin'));
  // the slot's kernel and initrd are U-Boot's to load (boot.scr): the firmware loads neither
  t.notOk(s.some((l) => l.startsWith('initramfs') || l.includes('vmlinuz')));
  // the lines of images/boot/config.txt: I2C for the OLED, pulls for switch and button, LEDs low
  for (const line of ['dtparam=i2c_arm=on', 'gpio=17=ip,pu', 'gpio=27=ip,pu', 'gpio=22,23,24=op,dl']) {
    t.ok(s.includes(line), line);
  }
  // the board lines come after the image's own (a later line wins in config.txt)
  t.ok(s.indexOf('gpio=17=ip,pu') > s.indexOf('enable_uart=1'));
  t.equal(new Set(s).size, s.length, 'no setting twice');
});

t.test('config.txt board lines: only dtparam, dtoverlay and gpio settings pass', async (t) => {
  t.same(bootConfigSettings('# c\n\ngpio=5=ip,pd\ndtoverlay=i2c-rtc,ds3231\n'), [
    'gpio=5=ip,pd',
    'dtoverlay=i2c-rtc,ds3231',
  ]);
  for (const bad of [
    'kernel=evil.img',
    'arm_64bit=0',
    'start_file=x.elf',
    'gpio=17=ip,pu\ninitramfs other',
    'dtparam=i2c_arm=on; rm -rf /',
    'gpio=17=xx',
    'include extra.txt',
  ]) {
    t.throws(() => bootConfigSettings(bad), ImageRecipeError, bad);
    t.throws(() => renderConfigTxt({ ...boot, bootConfigLines: bad }), ImageRecipeError);
  }
  t.throws(() => bootConfigSettings('gpio=1=ip\nkernel=x'), /line 2/);
});

t.test('cmdline.txt: one line, the root by label, consoles, nothing that hides the boot', async (t) => {
  const text = renderCmdlineTxt(boot);
  t.equal(text.split('\n').length, 2, 'one line and its newline');
  t.ok(text.endsWith('\n'));
  const args = text.trim().split(' ');
  t.ok(args.includes(`root=LABEL=${ROOT_LABEL}`));
  t.ok(args.includes('console=ttyS1,115200'));
  t.ok(args.includes('console=tty0'));
  t.ok(args.includes('rw'));
  t.ok(args.includes('rootwait'));
  t.ok(args.includes('net.ifnames=0'), 'eth0/wlan0 as the firmware config names them');
  for (const hidden of ['quiet', 'splash']) t.notOk(args.includes(hidden), hidden);
  t.notOk(
    args.some((a) => a.startsWith('onionbox.')),
    'the self-test flag is never in the image',
  );
  t.equal(args.filter((a) => a.startsWith('root=')).length, 1);
  // the serial console is last: it becomes /dev/console, where systemd and the self-test report
  t.equal(args.filter((a) => a.startsWith('console=')).pop(), 'console=ttyS1,115200');
});

t.test('cmdline.txt refuses bad consoles, labels, kernels and hiding or overriding arguments', async (t) => {
  const bad: Partial<BootOptions>[] = [
    { extraCmdline: ['quiet'] },
    { extraCmdline: ['splash'] },
    { extraCmdline: ['root=/dev/sda1'] },
    { extraCmdline: ['init=/bin/sh'] },
    { extraCmdline: ['a b'] },
    { extraCmdline: ['x;reboot'] },
    { consoles: [] },
    { consoles: ['ttyS1,115200 init=/bin/sh'] },
    { rootLabel: 'root fs' },
    { rootLabel: 'WAYTOOLONGLABEL' },
    { rootLabel: BOOT_LABEL },
    { kernelVersion: '6.12 ; rm' },
    { kernelVersion: '../../etc' },
  ];
  for (const b of bad)
    t.throws(() => renderCmdlineTxt({ ...boot, ...b }), ImageRecipeError, JSON.stringify(b));
  t.match(renderCmdlineTxt({ ...boot, extraCmdline: ['cma=64M'] }), / cma=64M\n$/);
});

t.test(
  'fstab: no root line (read-only from the command line), FAT and data by label, binds from /data',
  async (t) => {
    const lines = settings(renderFstab(boot)).map((l) => l.split(/\s+/));
    t.notOk(
      lines.some((f) => f[1] === '/'),
      'the root is not in fstab: nothing remounts it writable',
    );
    t.same(lines[0]?.slice(0, 3), [`LABEL=${BOOT_LABEL}`, '/boot/firmware', 'vfat']);
    t.same(lines[1]?.slice(0, 3), [`LABEL=${DATA_LABEL}`, '/data', 'ext4']);
    t.match(lines[1]?.[3] ?? '', /nosuid/);
    t.match(lines[1]?.[3] ?? '', /nodev/);
    t.match(lines[1]?.[3] ?? '', /noexec/);
    // both partitions are waited for longer than systemd's 90 s default (a slow first boot)
    for (const l of [lines[0], lines[1]]) t.match(l?.[3] ?? '', /(^|,)x-systemd\.device-timeout=300s(,|$)/);
    const binds = lines.filter((f) => f[2] === 'none');
    t.same(
      binds.map((f) => [f[0], f[1]]),
      DATA_BINDS.map((b) => [`/data/${b.dir}`, `/${b.mountPoint}`]),
    );
    for (const f of binds) t.match(f[3] ?? '', /^bind,x-systemd\.requires-mounts-for=\/data$/);
    // everything the box writes: the firmware's state, tor's, NetworkManager's profiles, RAUC, the journal
    for (const mp of [
      '/var/lib/onionbox',
      '/var/lib/tor',
      '/etc/NetworkManager/system-connections',
      '/var/lib/rauc',
      '/var/log/journal',
    ]) {
      t.ok(
        binds.some((f) => f[1] === mp),
        mp,
      );
    }
    // PrivateTmp= needs a writable /var/tmp
    t.same(lines.find((f) => f[1] === '/var/tmp')?.slice(0, 3), ['tmpfs', '/var/tmp', 'tmpfs']);
    t.throws(() => renderFstab({ rootLabel: 'a b', bootLabel: BOOT_LABEL }), ImageRecipeError);
  },
);

t.test("raspi-firmware's settings make a kernel update write the same boot files", async (t) => {
  const def = renderRaspiFirmwareDefault(boot);
  t.match(def, new RegExp(`^ROOTPART=LABEL=${ROOT_LABEL}$`, 'm'));
  t.match(def, /^CONSOLES="tty0 ttyS1,115200"$/m);
  t.match(def, /^CMA=0$/m, 'no cma= (a Pi 4 may not boot with it)');
  t.match(def, /^KERNEL_ARCH="arm64"$/m);
  const custom = settings(renderRaspiFirmwareCustom(boardLines));
  t.same(custom, bootConfigSettings(boardLines));
  t.equal(
    renderRaspiExtraCmdline(boot),
    '\n',
    'the hook writes rw, fsck.repair, net.ifnames and rootwait itself',
  );
  t.equal(renderRaspiExtraCmdline({ ...boot, extraCmdline: ['cma=32M'] }), 'cma=32M\n');
  t.throws(() => renderRaspiFirmwareCustom('kernel=x'), ImageRecipeError);
});

t.test('renderFile: the build asks by name; an unknown name is an error', async (t) => {
  for (const name of [
    'config.txt',
    'cmdline.txt',
    'fstab',
    'raspi-firmware',
    'raspi-firmware-custom',
    'raspi-extra-cmdline',
  ]) {
    t.ok(
      renderFile(name, { bootConfigLines: boardLines, kernelVersion: '6.12.1-arm64' }).endsWith('\n'),
      name,
    );
  }
  t.match(
    renderFile('config.txt', { bootConfigLines: boardLines, kernelVersion: '6.12.1-arm64' }),
    /^kernel=u-boot\.bin$/m,
  );
  t.throws(() => renderFile('passwd', { bootConfigLines: '' }), /no renderer/);
});

// What raspi-firmware 1.20240424+ds-6 (trixie) wrote in a chroot from our /etc/default files, by hand
// from its z50-raspi-firmware hook: ours must carry the same settings in the same order. (config.txt is
// no longer the hook's: the firmware starts U-Boot.)
t.test("our cmdline.txt carries the same settings as raspi-firmware's hook", async (t) => {
  const hookCmdline =
    ' console=tty0 console=ttyS1,115200 root=LABEL=ONIONROOT rw fsck.repair=yes net.ifnames=0  rootwait \n';
  t.same(bootSettings(renderCmdlineTxt(boot), 'cmdline.txt'), bootSettings(hookCmdline, 'cmdline.txt'));
});
