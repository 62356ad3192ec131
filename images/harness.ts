/**
 * What the emulated-image tests share (npm run image:test, image:update-test, image:rollback-test): their
 * report lines ("ok N - name: detail", then "N passed, N failed"), the host tools they need, and QEMU
 * itself: the image on a qcow2 overlay booted through U-Boot (-bios, the image's boot.scr) inside the
 * world's box namespace (images/journey.ts), its serial console in a file, its monitor on a Unix socket.
 * QEMU's network is only the taps in that namespace: the guest never reaches the host's network.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Journey } from './journey.js';

const execFileP = promisify(execFile);

/** The built image's files: ONIONBOX_IMAGE_OUT (default images/out), named by package.json's version. */
export function builtImage(): { out: string; name: string; img: string; uboot: string; manifest: string } {
  const repo = resolve(new URL('..', import.meta.url).pathname);
  const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string })
    .version;
  const out = resolve(process.env.ONIONBOX_IMAGE_OUT ?? join(repo, 'images/out'));
  const name = `onionbox-${version}-arm64`;
  return {
    out,
    name,
    img: join(out, `${name}.img`),
    uboot: join(out, `${name}.u-boot-qemu.bin`),
    manifest: join(out, `${name}.manifest.json`),
  };
}

/** The guest's memory in MB: ONIONBOX_IMAGE_MEM (default 1024; 512 is the Zero 2 W's). */
export const MEM_MB = Number(process.env.ONIONBOX_IMAGE_MEM ?? 1024);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface CheckResult {
  name: string;
  pass: boolean;
  detail: string;
}

/** One line per check as it is recorded; `summary()` is the last line and the exit code. */
export class Report {
  readonly results: CheckResult[] = [];
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(l)) {}

  record(name: string, pass: boolean, detail: string): void {
    this.results.push({ name, pass, detail });
    this.write(`${pass ? 'ok' : 'not ok'} ${this.results.length} - ${name}: ${detail}\n`);
  }

  failed(): boolean {
    return this.results.some((r) => !r.pass);
  }

  /** Prints "N passed, N failed" and returns the exit code (0 only when every check passed). */
  summary(): number {
    const passed = this.results.filter((r) => r.pass).length;
    this.write(`${passed} passed, ${this.results.length - passed} failed\n`);
    return this.results.length > 0 && passed === this.results.length ? 0 : 1;
  }
}

/** Stops the test before it starts: the reason on stderr, "0 passed, 1 failed", exit 1. */
export function failEarly(test: string, message: string): never {
  process.stderr.write(`${test}: ${message}\n`);
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
}

/** Every tool must be on PATH; else the package that has it is named. */
export async function requireTools(
  test: string,
  tools: readonly (readonly [string, string])[],
): Promise<void> {
  for (const [tool, pkg] of tools) {
    try {
      await execFileP('sh', ['-c', `command -v ${tool}`]);
    } catch {
      failEarly(test, `${tool} is missing: apt-get install ${pkg} (or run images/setup)`);
    }
  }
}

/** The box's own diagnostics (its OBX-DIAG console lines, the last `max`), for a failed run's output. */
export function diagnostics(serial: string, max = 150): string[] {
  return serial
    .split('\n')
    .filter((l) => l.includes('OBX-DIAG'))
    .slice(-max)
    .map((l) => `| ${l.replace(/\r$/, '')}`);
}

export interface QemuOptions {
  journey: Journey;
  /** U-Boot for QEMU virt (the image build copies it out beside the image). */
  uboot: string;
  /** The qcow2 overlay over the image. */
  overlay: string;
  /** The serial console's file (QEMU truncates it at start). */
  serial: string;
  /** The monitor's Unix socket (holdPowerButton), if wanted. */
  monitor?: string;
  memMb: number;
  /** fw_cfg string items, by name (opt/onionbox/...): the test's switches, never on the SD card. */
  fwCfg: Record<string, string>;
}

/** QEMU's arguments: virt with its PL061 (acpi=off), two cores under TCG, U-Boot, the world's NICs. */
export function qemuArgs(o: QemuOptions): string[] {
  return [
    '-M',
    'virt,acpi=off',
    '-cpu',
    'cortex-a72',
    '-smp',
    '2',
    '-m',
    String(o.memMb),
    '-accel',
    'tcg,thread=multi',
    // U-Boot, then the image's boot.scr (the kernel command line is the script's, as on a Pi)
    '-bios',
    o.uboot,
    ...Object.entries(o.fwCfg).flatMap(([name, value]) => ['-fw_cfg', `name=${name},string=${value}`]),
    '-drive',
    `if=none,id=hd,file=${o.overlay},format=qcow2`,
    '-device',
    'virtio-blk-pci,drive=hd',
    // WAN and LAN: taps in the world's box namespace; the test network as firmware data (fw_cfg)
    ...o.journey.qemuArgs,
    '-display',
    'none',
    ...(o.monitor === undefined ? [] : ['-monitor', `unix:${o.monitor},server=on,wait=off`]),
    '-serial',
    `file:${o.serial}`,
  ];
}

export interface Qemu {
  /** QEMU's own PID (nice and `ip netns exec` exec it in place). */
  pid: number;
  child: ChildProcess;
  /** Seconds since QEMU started. */
  elapsed(): number;
  running(): boolean;
  /** Resolves with the exit code (null after a signal) once QEMU is gone. */
  exited: Promise<number | null>;
  readSerial(): string;
  /** SIGTERM, then SIGKILL after a second if it is still there. */
  stop(): Promise<void>;
  /** Power cut: SIGKILL to QEMU's PID, then waits until it is gone. */
  kill9(): Promise<void>;
}

/** Starts QEMU (nice 10) in the world's box namespace. */
export function startQemu(o: QemuOptions): Qemu {
  const t0 = Date.now();
  const child = spawn(
    'nice',
    ['-n', '10', 'ip', 'netns', 'exec', o.journey.qemuNs, 'qemu-system-aarch64', ...qemuArgs(o)],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('QEMU did not start');
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid,
    child,
    elapsed: () => (Date.now() - t0) / 1000,
    running,
    exited,
    readSerial: () => (existsSync(o.serial) ? readFileSync(o.serial, 'utf8') : ''),
    stop: async () => {
      if (!running()) return;
      process.kill(pid, 'SIGTERM');
      await Promise.race([exited, sleep(1000)]);
      if (running()) process.kill(pid, 'SIGKILL');
      await exited;
    },
    kill9: async () => {
      if (running()) process.kill(pid, 'SIGKILL');
      await exited;
    },
  };
}

/**
 * Holds QEMU virt's power button: each `system_powerdown` raises PL061 line 3 for 100 ms (QEMU's gpio-key)
 * and restarts that time, so one every 30 ms keeps the line high for `ms`; then it falls by itself.
 */
export async function holdPowerButton(socketPath: string, ms: number): Promise<void> {
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
