/**
 * npm run image:test: boots the built image in QEMU (-M virt -cpu cortex-a72, TCG) through U-Boot
 * (u-boot-qemu's qemu_arm64 build as -bios, copied out by the image build) and the image's own boot.scr,
 * the same script a Pi runs: it picks slot A, counts the try in onionbox.env and loads the slot's kernel,
 * initrd and device tree. On a qcow2 overlay (4 GiB: the first boot makes slot B and grows the data
 * partition), with two virtio NICs:
 *   WAN (eth0): QEMU's user network with restrict=on (its DHCP answers; nothing reaches the host's
 *     network or the internet), every frame the box sends captured by filter-dump;
 *   LAN (eth1): a tap device inside this test's own network namespace, where a LAN client (10.42.0.50)
 *     fetches the page and probes the WAN side.
 * The image's test-only units run because the test hands the guest the fw_cfg item opt/onionbox/selftest
 * (a device of the emulator: nothing on the SD card or in U-Boot's environment can switch them on); they
 * report over the serial console. Prints one line per check and "N passed, N failed".
 * The board is QEMU virt's PL061 GPIO controller (`acpi=off`: QEMU's power button is then its line 3, and
 * gpio-keys is kept off it), driven by the unchanged GpioBoard as the firmware's user: when the box asks
 * (`OBX-SELFTEST-HOLD power SECONDS` on the console), this side holds the power button, i.e. turns the kill
 * switch on, through QEMU's monitor.
 *
 *   tsx images/boot-test.ts [--keep]   (root; qemu-system-arm and qemu-utils installed)
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parsePcap, parseSerial, wanLeaks, wanLeaseAddress } from './boot-report.js';
import { checkManifest, parseImageManifest, parseSs, socketAllowed } from './check.js';

const execFileP = promisify(execFile);
const repo = resolve(new URL('..', import.meta.url).pathname);
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
const out = resolve(process.env.ONIONBOX_IMAGE_OUT ?? join(repo, 'images/out'));
const name = `onionbox-${version}-arm64`;
const NS = `obx-img-${process.pid}`;
const TAP = `obxlan${process.pid % 100000}`;
const LAN_BOX = '10.42.0.1';
const LAN_CLIENT = '10.42.0.50';
const PROBE_TARGET = '198.51.100.7'; // TEST-NET-2: never a relay, never reachable
const WAN_FWD_PORT = 18000 + (process.pid % 1000);
const BOOT_TIMEOUT_S = Number(process.env.ONIONBOX_IMAGE_BOOT_TIMEOUT ?? 1800);

interface Result {
  name: string;
  pass: boolean;
  detail: string;
}
const results: Result[] = [];
function record(name: string, pass: boolean, detail: string): void {
  results.push({ name, pass, detail });
  process.stdout.write(`${pass ? 'ok' : 'not ok'} ${results.length} - ${name}: ${detail}\n`);
}

async function run(cmd: string, args: string[], allowFail = false): Promise<{ stdout: string; ok: boolean }> {
  try {
    const r = await execFileP(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return { stdout: r.stdout, ok: true };
  } catch (err) {
    if (allowFail) return { stdout: (err as { stdout?: string }).stdout ?? '', ok: false };
    throw err;
  }
}
const inNs = (args: string[], allowFail = true) => run('ip', ['netns', 'exec', NS, ...args], allowFail);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Holds QEMU virt's power button: each `system_powerdown` raises PL061 line 3 for 100 ms (QEMU's gpio-key)
 * and restarts that time, so one every 30 ms keeps the line high for `ms`; then it falls by itself.
 */
async function holdPowerButton(socketPath: string, ms: number): Promise<void> {
  const sock = connect(socketPath);
  await new Promise<void>((ok, no) => {
    sock.once('connect', ok);
    sock.once('error', no);
  });
  sock.on('data', () => undefined); // the monitor's echo and prompts
  const end = Date.now() + ms;
  while (Date.now() < end) {
    sock.write('system_powerdown\n');
    await sleep(30);
  }
  sock.end();
}

function fail(message: string): never {
  process.stderr.write(`image:test: ${message}\n`);
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('run as root (it makes a network namespace and a tap device)');
  for (const [tool, pkg] of [
    ['qemu-system-aarch64', 'qemu-system-arm'],
    ['qemu-img', 'qemu-utils'],
    ['curl', 'curl'],
  ]) {
    const r = await run('sh', ['-c', `command -v ${tool}`], true);
    if (!r.ok) fail(`${tool} is missing: apt-get install ${pkg} (or run images/setup)`);
  }
  const img = join(out, `${name}.img`);
  const uboot = join(out, `${name}.u-boot-qemu.bin`);
  for (const f of [img, uboot]) {
    if (!existsSync(f)) fail(`${f} is missing: build the image first (npm run image)`);
  }
  const manifest = parseImageManifest(JSON.parse(await readFile(join(out, `${name}.manifest.json`), 'utf8')));
  const built = checkManifest(manifest);
  record(
    'image manifest inside the allow list',
    built.length === 0,
    built.join('; ') || `${manifest.enabledUnits.length} enabled units, ${manifest.packages.length} packages`,
  );

  const dir = await mkdtemp(join(tmpdir(), 'onionbox-image-test-'));
  const overlay = join(dir, 'overlay.qcow2');
  const serial = join(dir, 'serial.log');
  const pcap = join(dir, 'wan.pcap');
  const monitor = join(dir, 'monitor.sock');
  let qemu: ChildProcess | null = null;
  const cleanup = async () => {
    if (qemu?.pid !== undefined && qemu.exitCode === null) {
      process.kill(qemu.pid, 'SIGTERM');
      await sleep(1000);
      if (qemu.exitCode === null) process.kill(qemu.pid, 'SIGKILL');
    }
    await run('ip', ['netns', 'del', NS], true);
    if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });
    else process.stdout.write(`# kept ${dir}\n`);
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    // a 4 GiB overlay: room for slot B (as large as A) and a grown data partition
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', img, '-F', 'raw', overlay, '4G']);
    await run('ip', ['netns', 'add', NS]);
    await inNs(['ip', 'link', 'set', 'lo', 'up'], false);
    const args = [
      'netns',
      'exec',
      NS,
      'qemu-system-aarch64',
      '-M',
      'virt,acpi=off',
      '-cpu',
      'cortex-a72',
      '-smp',
      '2',
      '-m',
      '1024',
      '-accel',
      'tcg,thread=multi',
      // U-Boot, then the image's boot.scr (the kernel command line is the script's, as on a Pi)
      '-bios',
      uboot,
      '-fw_cfg',
      'name=opt/onionbox/selftest,string=1',
      '-drive',
      `if=none,id=hd,file=${overlay},format=qcow2`,
      '-device',
      'virtio-blk-pci,drive=hd',
      // WAN: user network, restricted (DHCP only, nothing leaves); the page must not answer through it
      '-netdev',
      `user,id=wan,restrict=on,hostfwd=tcp:127.0.0.1:${WAN_FWD_PORT}-10.0.2.15:80`,
      '-device',
      'virtio-net-pci,netdev=wan,mac=52:54:00:0b:00:01,romfile=',
      '-object',
      `filter-dump,id=wandump,netdev=wan,queue=rx,file=${pcap}`,
      // LAN: a tap in this test's namespace
      '-netdev',
      `tap,id=lan,ifname=${TAP},script=no,downscript=no`,
      '-device',
      'virtio-net-pci,netdev=lan,mac=52:54:00:0b:00:02,romfile=',
      '-display',
      'none',
      '-monitor',
      `unix:${monitor},server=on,wait=off`,
      '-serial',
      `file:${serial}`,
    ];
    const t0 = Date.now();
    qemu = spawn('nice', ['-n', '10', 'ip', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1);
    // the LAN client: the tap's host side in our namespace
    for (let i = 0; i < 50 && !(await inNs(['ip', 'link', 'show', TAP])).ok; i++) await sleep(200);
    await inNs(['ip', 'addr', 'add', `${LAN_CLIENT}/24`, 'dev', TAP], false);
    await inNs(['ip', 'link', 'set', TAP, 'up'], false);
    await inNs(['ip', 'route', 'add', 'default', 'via', LAN_BOX], false);

    const readSerial = () => (existsSync(serial) ? readFileSync(serial, 'utf8') : '');
    let pageAt: string | undefined;
    let wanPageAnswered = false;
    let probed = false;
    let held = false;
    const deadline = t0 + BOOT_TIMEOUT_S * 1000;
    const seen = new Set<string>();
    while (Date.now() < deadline && qemu.exitCode === null) {
      const rep = parseSerial(readSerial());
      for (const c of rep.checks) {
        if (!seen.has(c.check)) {
          seen.add(c.check);
          process.stdout.write(
            `# [${elapsed()} s host, ${c.t.toFixed(1)} s box] ${c.check}: ${c.pass ? 'PASS' : 'FAIL'} ${c.detail}\n`,
          );
        }
      }
      if (pageAt === undefined) {
        const r = await inNs([
          'curl',
          '-s',
          '-o',
          '/dev/null',
          '-m',
          '5',
          '-w',
          '%{http_code}',
          '-H',
          `Host: ${LAN_BOX}`,
          `http://${LAN_BOX}/`,
        ]);
        if (r.ok && /^[1-4][0-9][0-9]$/.test(r.stdout.trim())) {
          pageAt = elapsed();
          process.stdout.write(`# [${pageAt} s] the page answers on the LAN (HTTP ${r.stdout.trim()})\n`);
          const w = await inNs([
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '-m',
            '10',
            '-w',
            '%{http_code}',
            `http://127.0.0.1:${WAN_FWD_PORT}/`,
          ]);
          wanPageAnswered = w.ok && /^[1-5][0-9][0-9]$/.test(w.stdout.trim());
        }
      }
      if (pageAt !== undefined && !probed) {
        probed = true;
        // LAN-side probes towards the WAN: TCP, UDP (DNS to the outside), ICMP; none may appear on the WAN
        await inNs(['curl', '-s', '-m', '5', `http://${PROBE_TARGET}:7777/`]);
        await inNs(['curl', '-s', '-m', '5', 'http://10.0.2.2:7777/']);
        await inNs(['ping', '-c', '2', '-W', '2', PROBE_TARGET]);
        await inNs(['sh', '-c', `exec 3<>/dev/udp/${PROBE_TARGET}/53; printf probe >&3`]);
        await inNs(['bash', '-c', `printf probe > /dev/udp/${PROBE_TARGET}/53`]);
      }
      const hold = /OBX-SELFTEST-HOLD power ([0-9]+)/.exec(readSerial());
      if (hold && !held) {
        held = true;
        process.stdout.write(`# [${elapsed()} s] holding the power button (PL061 line 3) for ${hold[1]} s\n`);
        await holdPowerButton(monitor, Number(hold[1]) * 1000);
      }
      if (rep.done && probed) break;
      await sleep(2000);
    }
    const rep = parseSerial(readSerial());
    const total = elapsed();
    const reported = new Set<string>();
    for (const c of rep.checks) {
      if (reported.has(c.check)) continue; // a line the journal echoed to the console again
      reported.add(c.check);
      if (c.check === 'onionboxd-rss') record('onionboxd RSS in the emulated box', true, c.detail);
      else record(`box: ${c.check}`, c.pass, `${c.detail} (t=${c.t} s on the box)`);
    }
    const ubootLine = /Onionbox: booting slot ([AB]) \(BOOT_A_LEFT=([0-9]) BOOT_B_LEFT=([0-9]) saved\)/.exec(
      readSerial(),
    );
    record(
      "U-Boot ran the image's boot.scr and counted the try",
      ubootLine !== null,
      ubootLine === null
        ? 'no "Onionbox: booting slot" line from U-Boot on the console'
        : `slot ${ubootLine[1]}, BOOT_A_LEFT=${ubootLine[2]} BOOT_B_LEFT=${ubootLine[3]} saved before booting`,
    );
    record(
      'self-test finished',
      rep.done,
      rep.done ? `at ${rep.doneAt} s on the box, ${total} s on the host` : `not within ${BOOT_TIMEOUT_S} s`,
    );
    record(
      'page answers on the LAN NIC',
      pageAt !== undefined,
      pageAt === undefined ? 'never answered' : `${pageAt} s after QEMU started`,
    );
    record(
      'page does not answer on the WAN NIC',
      pageAt !== undefined && !wanPageAnswered,
      wanPageAnswered ? 'answered through the WAN' : 'no answer through the WAN',
    );
    const sockets = parseSs(rep.ss.join('\n'));
    const wanAddress = wanLeaseAddress(rep);
    const off = sockets.filter((s) => !socketAllowed(s, undefined, wanAddress));
    record(
      'listening sockets inside the allow list',
      rep.ss.length > 0 && off.length === 0,
      off.length > 0
        ? off.map((s) => `${s.program} ${s.proto} ${s.address}:${s.port}`).join(', ')
        : `${sockets.length} sockets`,
    );
    if (existsSync(pcap)) {
      const p = parsePcap(await readFile(pcap));
      const dhcp = p.ipv4.filter((f) => f.srcPort === 68 && f.dstPort === 67).length;
      const leaks = wanLeaks(p, { lanNet: '10.42.0.0', probeTarget: PROBE_TARGET });
      record('WAN capture works (DHCP from the box seen)', dhcp > 0, `${p.frames} frames, ${dhcp} DHCP`);
      record(
        'LAN probe does not reach the WAN',
        probed && leaks.length === 0,
        probed
          ? leaks.slice(0, 5).join('; ') ||
              `${p.ipv4.length} IPv4 frames on the WAN, none from the LAN or to ${PROBE_TARGET}`
          : 'the probe never ran',
      );
    } else {
      record('WAN capture works', false, 'no pcap');
    }
    process.stdout.write(`# total ${total} s\n`);
    // the console beside the image, for the next reader; on a failure, the box's own diagnostics too
    const serialText = readSerial();
    await writeFile(join(out, `${name}.serial.log`), serialText);
    process.stdout.write(`# serial console: ${join(out, `${name}.serial.log`)}\n`);
    if (results.some((r) => !r.pass)) {
      const diag = serialText.split('\n').filter((l) => l.includes('OBX-DIAG') || /FAILED|Failed/.test(l));
      const tail = diag.length > 0 ? diag.slice(-200) : serialText.split('\n').slice(-60);
      for (const l of tail) process.stdout.write(`# | ${l.replace(/\r$/, '')}\n`);
    }
  } finally {
    await cleanup();
  }
  const passed = results.filter((r) => r.pass).length;
  process.stdout.write(`${passed} passed, ${results.length - passed} failed\n`);
  process.exit(results.length - passed === 0 ? 0 : 1);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
