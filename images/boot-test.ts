/**
 * npm run image:test: boots the built image in QEMU (-M virt -cpu cortex-a72, TCG) through U-Boot
 * (u-boot-qemu's qemu_arm64 build as -bios, copied out by the image build) and the image's own boot.scr,
 * the same script a Pi runs: it picks slot A, counts the try in onionbox.env and loads the slot's kernel,
 * initrd and device tree. On a qcow2 overlay (4 GiB: the first boot makes slot B and grows the data
 * partition), inside the simulator's world (images/journey.ts):
 *   WAN (eth0): a tap bridged to the world's modem (DHCP, DNS for sim.test) and private Tor network,
 *     whose authorities reach the image as firmware data (fw_cfg); every frame the box sends captured;
 *   LAN (eth1): a tap bridged to the world's LAN device, which takes its lease from the image's dnsmasq,
 *     fetches the page, probes the WAN side and, once tor routes, fetches http://web.sim.test/ip.
 * Nothing reaches the host's network: QEMU runs in the world's box namespace, where its taps are.
 * ONIONBOX_IMAGE_MEM sets the guest's memory in MB (default 1024; 512 is the Zero 2 W's).
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
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parsePcap, parseSerial, wanLeaks, wanLeaseAddress } from './boot-report.js';
import { checkManifest, parseImageManifest, parseSs, socketAllowed } from './check.js';
import {
  builtImage,
  failEarly,
  holdPowerButton,
  MEM_MB,
  type Qemu,
  Report,
  requireTools,
  sleep,
  startQemu,
} from './harness.js';
import { journeyAfterBoot, lanLease, startJourney, wanPageAnswers } from './journey.js';
import { formatStepTimes } from './journey-report.js';

const execFileP = promisify(execFile);
const { out, name, img, uboot } = builtImage();
const LAN_BOX = '10.42.0.1';
const PROBE_TARGET = '198.51.100.7'; // TEST-NET-2: never a relay, never reachable
const MODEM = '198.18.0.1'; // the world's modem: on the WAN's subnet, never reachable from the LAN
const BOOT_TIMEOUT_S = Number(process.env.ONIONBOX_IMAGE_BOOT_TIMEOUT ?? 2700);

const report = new Report();
const record = (name: string, pass: boolean, detail: string) => report.record(name, pass, detail);

async function run(cmd: string, args: string[], allowFail = false): Promise<{ stdout: string; ok: boolean }> {
  try {
    const r = await execFileP(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return { stdout: r.stdout, ok: true };
  } catch (err) {
    if (allowFail) return { stdout: (err as { stdout?: string }).stdout ?? '', ok: false };
    throw err;
  }
}
let LAN_NS = '';
const inNs = (args: string[], allowFail = true) => run('ip', ['netns', 'exec', LAN_NS, ...args], allowFail);
const fail = (message: string): never => failEarly('image:test', message);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('run as root (it makes network namespaces and tap devices)');
  if (!Number.isInteger(MEM_MB) || MEM_MB < 256 || MEM_MB > 4096) fail('ONIONBOX_IMAGE_MEM: 256-4096 (MB)');
  await requireTools('image:test', [
    ['qemu-system-aarch64', 'qemu-system-arm'],
    ['qemu-img', 'qemu-utils'],
    ['curl', 'curl'],
    ['tcpdump', 'tcpdump'],
    ['dhclient', 'isc-dhcp-client'],
    ['dnsmasq', 'dnsmasq-base'],
    ['tor', 'tor'],
  ]);
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
  await chmod(dir, 0o711); // the world's privnet tors (debian-tor) traverse it to their own directories
  const overlay = join(dir, 'overlay.qcow2');
  const serial = join(dir, 'serial.log');
  const monitor = join(dir, 'monitor.sock');
  let qemu: Qemu | null = null;
  let journey: Awaited<ReturnType<typeof startJourney>> | null = null;
  const cleanup = async () => {
    await qemu?.stop();
    await journey?.stop().catch(() => undefined);
    if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });
    else process.stdout.write(`# kept ${dir}\n`);
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    // a 4 GiB overlay: room for slot B (as large as A) and a grown data partition
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', img, '-F', 'raw', overlay, '4G']);
    // the world around the image: the modem, the private Tor network, the LAN device (images/journey.ts)
    const tw = Date.now();
    journey = await startJourney(join(dir, 'world'), (l) => process.stdout.write(`# world: ${l}\n`));
    const j = journey;
    LAN_NS = j.lanNs;
    process.stdout.write(`# the world is up in ${((Date.now() - tw) / 1000).toFixed(1)} s\n`);
    const t0 = Date.now();
    qemu = startQemu({
      journey: j,
      uboot,
      overlay,
      serial,
      monitor,
      memMb: MEM_MB,
      fwCfg: { 'opt/onionbox/selftest': '1' },
    });
    const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1);
    let leasing: Promise<void> | null = null;
    let leaseError = '';

    const readSerial = qemu.readSerial;
    let pageAt: string | undefined;
    let wanPageAnswered = false;
    let probed = false;
    let held = false;
    const deadline = t0 + BOOT_TIMEOUT_S * 1000;
    const seen = new Set<string>();
    while (Date.now() < deadline && qemu.running()) {
      const rep = parseSerial(readSerial());
      for (const c of rep.checks) {
        if (!seen.has(c.check)) {
          seen.add(c.check);
          process.stdout.write(
            `# [${elapsed()} s host, ${c.t.toFixed(1)} s box] ${c.check}: ${c.pass ? 'PASS' : 'FAIL'} ${c.detail}\n`,
          );
        }
      }
      // the LAN device asks for its lease once onionboxd (and its dnsmasq) has taken over
      if (leasing === null && seen.has('firewall-took-over')) {
        leasing = j.world.leaseLanDevice(600_000).catch((err: unknown) => {
          leaseError = String(err);
        });
      }
      if (pageAt === undefined && lanLease(j) !== null) {
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
          wanPageAnswered = await wanPageAnswers(j);
        }
      }
      if (pageAt !== undefined && !probed) {
        probed = true;
        // LAN-side probes towards the WAN: TCP, UDP (DNS to the outside), ICMP; none may appear on the WAN
        await inNs(['curl', '-s', '-m', '5', `http://${PROBE_TARGET}:7777/`]);
        await inNs(['curl', '-s', '-m', '5', `http://${MODEM}:7777/`]);
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
    // the journey: the first fetch through tor, the kill switch on the LAN device, the WAN capture
    const booted = parseSerial(readSerial());
    const journeyRun = qemu.running()
      ? await journeyAfterBoot(
          j,
          {
            elapsed: () => (Date.now() - t0) / 1000,
            holdPowerButton: (ms) => holdPowerButton(monitor, ms),
            log: (l) => process.stdout.write(`# [${elapsed()} s] ${l}\n`),
          },
          600,
        )
      : { results: [], firstFetchAt: undefined };
    if (leaseError !== '') process.stdout.write(`# LAN lease: ${leaseError}\n`);
    const rep = parseSerial(readSerial());
    const total = elapsed();
    const reported = new Set<string>();
    for (const c of rep.checks) {
      if (reported.has(c.check)) continue; // a line the journal echoed to the console again
      reported.add(c.check);
      if (c.check === 'onionboxd-rss') record('onionboxd RSS in the emulated box', true, c.detail);
      else if (c.check === 'box-rss')
        record(
          `box processes' RSS at routing (-m ${MEM_MB})`,
          c.pass && /\boom=0\b/.test(c.detail),
          c.detail,
        );
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
    for (const r of journeyRun.results) record(r.name, r.pass, r.detail);
    const boxT = (check: string) => booted.checks.find((c) => c.check === check && c.pass)?.t;
    process.stdout.write(
      `# steps: power-on -> ${formatStepTimes({
        lockdown: boxT('lockdown-before-links'),
        page: pageAt === undefined ? undefined : Number(pageAt),
        torRouting: boxT('tor-routing'),
        firstFetch: journeyRun.firstFetchAt,
      })}\n`,
    );
    if (existsSync(j.wanPcap)) {
      const p = parsePcap(await readFile(j.wanPcap));
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
    if (report.failed()) {
      const diag = serialText.split('\n').filter((l) => l.includes('OBX-DIAG') || /FAILED|Failed/.test(l));
      const tail = diag.length > 0 ? diag.slice(-200) : serialText.split('\n').slice(-60);
      for (const l of tail) process.stdout.write(`# | ${l.replace(/\r$/, '')}\n`);
    }
  } finally {
    await cleanup();
  }
  process.exit(report.summary());
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
