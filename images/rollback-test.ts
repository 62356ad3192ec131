/**
 * npm run image:rollback-test: the A/B layout's fallbacks inside the emulated image (issues 24 and 20),
 * in the same world as npm run image:test (images/journey.ts) and with the same QEMU (images/harness.ts).
 * The image's self-test runs its rollback part (onionbox-selftest-rollback.service, switched on by QEMU's
 * fw_cfg item opt/onionbox/selftest-rollback; images/system/onionbox-selftest, rollback_checks).
 *
 * 1. A slot that panics falls back by the counter ("panic"). On a fresh overlay, the first boot routes on
 *    slot A and is marked good; the owner's update policy is set to "ask" through the page socket; then
 *    the box copies slot A's file system into slot B with an /sbin/init that exits at once (PID 1 dies:
 *    "Kernel panic - not syncing: Attempted to kill init!"), sets BOOT_ORDER "B A" and BOOT_B_LEFT 3 with
 *    fw_setenv, as RAUC does after an install, and powers off. Powered on again, the console must show
 *    U-Boot booting slot B three times (tries saved 2, 1, 0), each a kernel panic and a reboot (panic=10),
 *    then slot A with B at 0; slot A routes (a LAN device fetches through tor), is marked good again, the
 *    owner's setting is still there, and the environment says A has 3 tries, B none.
 * 2. Power cuts during the first boot ("kill"). On another fresh overlay QEMU is SIGKILLed (by its PID)
 *    at K random moments after its start (ONIONBOX_ROLLBACK_KILLS, default 3; the seed is printed and
 *    ONIONBOX_ROLLBACK_SEED replays it), each time on the same overlay; then it boots through. The box must
 *    route on a slot marked good, the first boot's work intact (slot B made, the data partition grown, the
 *    U-Boot environment readable, no file-system errors), its own secret (the page's session key) made
 *    once and never changed, and the owner's setting kept if a boot before the last made it.
 * Every frame the image sent on its WAN through all boots must be ARP, DHCP or TCP to relays.
 *
 *   tsx images/rollback-test.ts [--only panic|kill] [--keep]   (root; qemu-system-arm, qemu-utils; a built
 *   image in ONIONBOX_IMAGE_OUT, default images/out)
 */

import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EXIT_ADDR } from '../scripts/sim/world.js';
import { parseSerial, type SelftestLine } from './boot-report.js';
import {
  builtImage,
  diagnostics,
  failEarly,
  MEM_MB,
  type Qemu,
  Report,
  requireTools,
  sleep,
  startQemu,
} from './harness.js';
import { type Journey, lanFetch, startJourney, wanOnlyTorCheck } from './journey.js';
import { bootAttempts, fallbackByCounterProblems, killMoments, lastMilestone } from './rollback-report.js';
import { uniqueChecks } from './update-report.js';

const TEST = 'image:rollback-test';
const execFileP = promisify(execFile);
const { out, name, img, uboot } = builtImage();
/** One boot's limit (a first boot to routing takes 3-6 minutes under TCG). */
const BOOT_TIMEOUT_S = Number(process.env.ONIONBOX_ROLLBACK_BOOT_TIMEOUT ?? 2400);
const KILLS = Number(process.env.ONIONBOX_ROLLBACK_KILLS ?? 3);
const SEED = process.env.ONIONBOX_ROLLBACK_SEED
  ? Number(process.env.ONIONBOX_ROLLBACK_SEED)
  : randomInt(1, 2 ** 31);
/**
 * The kill moments fall in [5, KILL_WINDOW) seconds after QEMU's start: U-Boot, the kernel, the first
 * boot's partitioning (about 40-65 s), onionboxd's first start and its secret, tor's bootstrap (a first
 * boot routes at about 140 s at load 4; with 240 s, two of three cuts of one run fell after it).
 */
const KILL_WINDOW = Number(process.env.ONIONBOX_ROLLBACK_KILL_WINDOW ?? 120);

const report = new Report();
const record = (n: string, pass: boolean, detail: string) => report.record(n, pass, detail);
const log = (l: string) => process.stdout.write(`# ${l}\n`);

interface Ctx {
  dir: string;
  uboot: string;
  img: string;
  j: Journey;
  /** the LAN device asked for its lease (once per world: it keeps its address across the box's boots) */
  leased: boolean;
  /** every run's console, for the file beside the image */
  consoles: string[];
}

function boot(ctx: Ctx, overlay: string, label: string, mode: 'panic' | 'kill'): Qemu {
  return startQemu({
    journey: ctx.j,
    uboot: ctx.uboot,
    overlay,
    serial: join(ctx.dir, `${label}.serial.log`),
    memMb: MEM_MB,
    fwCfg: { 'opt/onionbox/selftest': '1', 'opt/onionbox/selftest-rollback': mode },
  });
}

/** Follows one QEMU run's console: prints what the box reports and when U-Boot boots a slot. */
class Watcher {
  #shown = 0;
  readonly bootSeenAt: number[] = [];
  routingAt: number | undefined;
  text = '';
  checks: SelftestLine[] = [];
  constructor(
    private readonly ctx: Ctx,
    readonly q: Qemu,
    private readonly label: string,
  ) {}

  /** Until `stop` says so, QEMU exits, or `timeoutS` (since QEMU's start) pass; true when QEMU exited. */
  async until(stop: (w: Watcher) => boolean, timeoutS = BOOT_TIMEOUT_S): Promise<boolean> {
    for (;;) {
      const alive = this.q.running();
      this.#read();
      if (!alive) return true;
      if (stop(this)) return false;
      if (this.q.elapsed() > timeoutS) {
        log(`[${this.label}] no end within ${timeoutS} s`);
        return false;
      }
      await sleep(1000);
    }
  }

  /** The run's console into the test's record (once, at its end). */
  keep(): void {
    this.#read();
    this.ctx.consoles.push(`===== ${this.label} =====\n${this.text}`);
  }

  #read(): void {
    const t = this.q.elapsed();
    this.text = this.q.readSerial();
    this.checks = uniqueChecks(parseSerial(this.text).checks);
    for (const c of this.checks.slice(this.#shown)) {
      log(
        `[${this.label} ${t.toFixed(1)} s host, ${c.t.toFixed(1)} s box] ${c.check}: ${c.pass ? 'PASS' : 'FAIL'} ${c.detail}`,
      );
    }
    this.#shown = this.checks.length;
    const attempts = bootAttempts(this.text);
    while (this.bootSeenAt.length < attempts.length) {
      const a = attempts[this.bootSeenAt.length];
      this.bootSeenAt.push(t);
      log(
        `[${this.label} ${t.toFixed(1)} s host] U-Boot boots slot ${a?.slot} (BOOT_A_LEFT=${a?.aLeft} BOOT_B_LEFT=${a?.bLeft} saved)`,
      );
    }
    if (this.routingAt === undefined && this.checks.some((c) => c.check === 'rollback-routing' && c.pass)) {
      this.routingAt = t;
      if (!this.ctx.leased) {
        this.ctx.leased = true;
        this.ctx.j.world.leaseLanDevice(600_000).catch((err: unknown) => log(`LAN lease: ${String(err)}`));
      }
    }
  }
}

const lastOf = (checks: readonly SelftestLine[], name: string) =>
  checks.filter((c) => c.check === name).pop();
const done = (text: string) => text.includes('OBX-SELFTEST ROLLBACK-DONE');

/** The LAN device's fetch through the box, until it answers or `withinS` pass. */
async function fetchThroughTor(
  ctx: Ctx,
  q: Qemu,
  withinS: number,
): Promise<{ ok: boolean; detail: string; at?: number }> {
  const end = Date.now() + withinS * 1000;
  let last = { ok: false, body: '' };
  while (Date.now() < end && q.running()) {
    last = await lanFetch(ctx.j, 30);
    if (last.ok && last.body === EXIT_ADDR) {
      return { ok: true, detail: `http://web.sim.test/ip answered ${last.body} (the exit)`, at: q.elapsed() };
    }
    await sleep(3000);
  }
  return { ok: false, detail: `no answer through tor within ${withinS} s (last: '${last.body}')` };
}

function checkDetail(c: SelftestLine | undefined, missing: string): string {
  return c ? `${c.detail} (t=${c.t} s on the box)` : missing;
}

async function panicScenario(ctx: Ctx): Promise<void> {
  const overlay = join(ctx.dir, 'panic.qcow2');
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', ctx.img, '-F', 'raw', overlay, '4G']);
  // 1. the first boot: routes on A, marked good, the owner's setting, slot B made to panic, power off
  const w1 = new Watcher(ctx, boot(ctx, overlay, 'panic-1', 'panic'), 'panic 1');
  // prepared, the box powers itself off; else it says it is done and keeps running
  let off = await w1.until((w) => done(w.text) && !w.text.includes('rollback-panic-prepared PASS'));
  if (!off && w1.text.includes('rollback-panic-prepared PASS')) {
    await Promise.race([w1.q.exited, sleep(180_000)]);
    off = !w1.q.running();
  }
  w1.keep();
  const offAt = w1.q.elapsed();
  await w1.q.stop();
  const c1 = w1.checks;
  const routing1 = lastOf(c1, 'rollback-routing');
  record(
    'panic: the first boot routes on slot A',
    routing1?.pass === true && /slot A routes/.test(routing1.detail),
    checkDetail(routing1, 'never reported'),
  );
  const good1 = lastOf(c1, 'rollback-marked-good');
  record('panic: slot A marked good at routing', good1?.pass === true, checkDetail(good1, 'never reported'));
  const made = lastOf(c1, 'rollback-setting-made');
  record(
    "panic: the owner's setting made through the page",
    made?.pass === true,
    checkDetail(made, 'never reported'),
  );
  const prepared = lastOf(c1, 'rollback-panic-prepared');
  record(
    'panic: slot B made a system whose kernel panics, preferred with 3 tries (fw_setenv), then powered off',
    prepared?.pass === true && off,
    `${checkDetail(prepared, 'never reported')}; QEMU ${off ? `exited by itself at ${offAt.toFixed(1)} s` : 'still running: no power-off'}`,
  );
  if (prepared?.pass !== true || !off) return;

  // 2. power on again: B three times, each a panic; then A
  const w2 = new Watcher(ctx, boot(ctx, overlay, 'panic-2', 'panic'), 'panic 2');
  await w2.until((w) => lastOf(w.checks, 'rollback-routing') !== undefined);
  const attempts = bootAttempts(w2.text);
  const problems = fallbackByCounterProblems(attempts);
  record(
    'panic: U-Boot tried slot B 3 times, each a kernel panic and a reboot, then booted slot A',
    problems.length === 0,
    problems.join('; ') ||
      `${attempts
        .slice(0, 3)
        .map(
          (a) => `B (BOOT_B_LEFT=${a.bLeft} saved): "Kernel panic - not syncing: ${a.panicReason}", rebooted`,
        )
        .join('; ')}; then A with BOOT_B_LEFT=0`,
  );
  const seen = w2.bootSeenAt;
  const panicTimes = seen.slice(1, 4).map((t, i) => t - (seen[i] ?? 0));
  if (panicTimes.length > 0) {
    log(
      `bench: each panic boot of B (from U-Boot's choice to its next): ${panicTimes.map((t) => `${t.toFixed(1)} s`).join(', ')}`,
    );
  }
  const routing2 = lastOf(w2.checks, 'rollback-routing');
  record(
    'panic: slot A routes again after the fallback',
    routing2?.pass === true && /slot A routes/.test(routing2.detail),
    checkDetail(routing2, `never reported within ${BOOT_TIMEOUT_S} s`),
  );
  const fetch: { ok: boolean; detail: string; at?: number } =
    routing2?.pass === true ? await fetchThroughTor(ctx, w2.q, 600) : { ok: false, detail: 'not routing' };
  record('panic: a LAN device fetches through tor after the fallback', fetch.ok, fetch.detail);
  const aAt = seen[3];
  if (aAt !== undefined && w2.routingAt !== undefined) {
    log(
      `bench: power-on -> slot A chosen ${aAt.toFixed(1)} s -> routing ${w2.routingAt.toFixed(1)} s${
        fetch.at !== undefined ? ` -> LAN fetch ${fetch.at.toFixed(1)} s` : ''
      } (host, since QEMU's start)`,
    );
  }
  await w2.until((w) => done(w.text), BOOT_TIMEOUT_S + 600);
  w2.keep();
  await w2.q.stop();
  const good2 = lastOf(w2.checks, 'rollback-marked-good');
  record('panic: slot A marked good again', good2?.pass === true, checkDetail(good2, 'never reported'));
  const kept = lastOf(w2.checks, 'rollback-setting-kept');
  record(
    "panic: the owner's setting is still there",
    kept?.pass === true,
    checkDetail(kept, 'never reported'),
  );
  const env = lastOf(w2.checks, 'rollback-env');
  record(
    "panic: U-Boot's environment: slot A 3 tries, slot B none",
    env?.pass === true && /BOOT_A_LEFT=3 BOOT_B_LEFT=0/.test(env.detail),
    checkDetail(env, 'never reported'),
  );
  const secret = lastOf(w2.checks, 'rollback-secret');
  record(
    "panic: the box's own secret unchanged",
    secret?.pass === true,
    checkDetail(secret, 'never reported'),
  );
}

async function killScenario(ctx: Ctx): Promise<void> {
  const overlay = join(ctx.dir, 'kill.qcow2');
  await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', ctx.img, '-F', 'raw', overlay, '4G']);
  const moments = killMoments(SEED, KILLS, 5, KILL_WINDOW);
  log(
    `kill: seed ${SEED}: QEMU SIGKILLed ${moments.map((m) => `${m} s`).join(', ')} after its start (replay: ONIONBOX_ROLLBACK_SEED=${SEED} ONIONBOX_ROLLBACK_KILLS=${KILLS} ONIONBOX_ROLLBACK_KILL_WINDOW=${KILL_WINDOW} tsx images/rollback-test.ts --only kill)`,
  );
  const reached: string[] = [];
  const booted: string[] = [];
  for (const [i, at] of moments.entries()) {
    const label = `kill ${i + 1}`;
    const w = new Watcher(ctx, boot(ctx, overlay, `kill-${i + 1}`, 'kill'), label);
    const exited = await w.until((x) => x.q.elapsed() >= at, at + 60);
    const pid = w.q.pid;
    const comm = existsSync(`/proc/${pid}/comm`) ? readFileSync(`/proc/${pid}/comm`, 'utf8').trim() : 'gone';
    await w.q.kill9();
    const killedAt = w.q.elapsed();
    w.keep();
    const where = lastMilestone(w.text);
    reached.push(`${killedAt.toFixed(1)} s: ${where}`);
    const slots = bootAttempts(w.text).map((a) => `${a.slot} (A ${a.aLeft}, B ${a.bLeft} left)`);
    booted.push(...bootAttempts(w.text).map((a) => a.slot));
    log(
      `[${label}] ${exited ? 'QEMU had exited by itself before the kill' : `SIGKILL to QEMU (pid ${pid}, ${comm})`} at ${killedAt.toFixed(1)} s: the box had reached ${where}; U-Boot booted ${slots.join(', ') || 'nothing yet'}`,
    );
  }
  const w = new Watcher(ctx, boot(ctx, overlay, 'kill-final', 'kill'), 'kill final');
  await w.until((x) => lastOf(x.checks, 'rollback-routing') !== undefined);
  const routing = lastOf(w.checks, 'rollback-routing');
  const fetch =
    routing?.pass === true ? await fetchThroughTor(ctx, w.q, 600) : { ok: false, detail: 'not routing' };
  await w.until((x) => done(x.text), BOOT_TIMEOUT_S + 600);
  w.keep();
  await w.q.stop();
  booted.push(...bootAttempts(w.text).map((a) => a.slot));
  record(
    `kill: after ${KILLS} power cuts (seed ${SEED}) the box boots through and routes`,
    routing?.pass === true,
    `${checkDetail(routing, `never reported within ${BOOT_TIMEOUT_S} s`)}; cut at ${reached.join('; ')}; U-Boot booted ${booted.join(' ')}`,
  );
  if (w.routingAt !== undefined)
    log(`bench: the last boot after the cuts: routing at ${w.routingAt.toFixed(1)} s`);
  record('kill: a LAN device fetches through tor', fetch.ok, fetch.detail);
  const good = lastOf(w.checks, 'rollback-marked-good');
  record(
    'kill: the slot it routes on is marked good',
    good?.pass === true,
    checkDetail(good, 'never reported'),
  );
  const fb = lastOf(w.checks, 'rollback-firstboot');
  record(
    "kill: the first boot's work intact (slot B, data partition, U-Boot environment)",
    fb?.pass === true,
    checkDetail(fb, 'never reported'),
  );
  const secret = lastOf(w.checks, 'rollback-secret');
  record(
    "kill: the box's own secret made once, never changed",
    secret?.pass === true,
    checkDetail(secret, 'never reported'),
  );
  const kept = lastOf(w.checks, 'rollback-setting-kept');
  const made = lastOf(w.checks, 'rollback-setting-made');
  record(
    "kill: the owner's setting kept where a boot before made it (else made now)",
    kept?.pass === true || (kept === undefined && made?.pass === true),
    kept ? checkDetail(kept, '') : `no boot before reached it; ${checkDetail(made, 'never reported')}`,
  );
  const env = lastOf(w.checks, 'rollback-env');
  if (env) log(`kill: ${env.detail}`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) failEarly(TEST, 'run as root (network namespaces, tap devices)');
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  if (only !== undefined && only !== 'panic' && only !== 'kill')
    failEarly(TEST, '--only panic or --only kill');
  if (!Number.isInteger(KILLS) || KILLS < 1 || KILLS > 20) failEarly(TEST, 'ONIONBOX_ROLLBACK_KILLS: 1-20');
  if (!Number.isInteger(SEED)) failEarly(TEST, 'ONIONBOX_ROLLBACK_SEED: an integer');
  if (!(KILL_WINDOW > 5)) failEarly(TEST, 'ONIONBOX_ROLLBACK_KILL_WINDOW: seconds, more than 5');
  await requireTools(TEST, [
    ['qemu-system-aarch64', 'qemu-system-arm'],
    ['qemu-img', 'qemu-utils'],
    ['curl', 'curl'],
    ['tcpdump', 'tcpdump'],
    ['dhclient', 'isc-dhcp-client'],
    ['tor', 'tor'],
  ]);
  for (const f of [img, uboot]) if (!existsSync(f)) failEarly(TEST, `${f} is missing: build the image first`);
  const dir = await mkdtemp(join(tmpdir(), 'onionbox-rollback-test-'));
  await chmod(dir, 0o711); // the world's tors (debian-tor) traverse it
  let ctx: Ctx | null = null;
  let journey: Journey | null = null;
  const cleanup = async () => {
    await journey?.stop().catch(() => undefined);
    if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  const t0 = Date.now();
  try {
    journey = await startJourney(join(dir, 'world'), (l) => log(`world: ${l}`));
    ctx = { dir, uboot, img, j: journey, leased: false, consoles: [] };
    if (only !== 'kill') await panicScenario(ctx);
    if (only !== 'panic') await killScenario(ctx);
    const wan = wanOnlyTorCheck(journey, 'through every boot');
    record(wan.name, wan.pass, wan.detail);
    log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    if (ctx) {
      const file = join(out, `${name}.rollback-serial.log`);
      await writeFile(file, ctx.consoles.join('\n')).catch(() => undefined);
      log(`serial consoles: ${file}`);
      if (report.failed()) for (const l of diagnostics(ctx.consoles.join('\n'))) log(l);
    }
    await cleanup();
  }
  process.exit(report.summary());
}

main().catch((err: unknown) => failEarly(TEST, err instanceof Error ? err.message : String(err)));
