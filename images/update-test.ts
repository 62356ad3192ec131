/**
 * npm run image:update-test: a signed update installed, kept, and a bad one rolled back by itself, all
 * inside the emulated image (issue 20), in the same world as npm run image:test (images/journey.ts).
 *
 * 1. Throwaway keys in a temporary directory (never in the repository): a minisign key pair (`minisign -G`)
 *    and a self-signed RAUC signing certificate with the codeSigning purpose (openssl).
 * 2. A raw copy of the built image (the image file itself stays as built) whose slot A, loop-mounted at
 *    its offset in the partition table, gets the public key as /etc/onionbox/release-keys/current.pub and
 *    the certificate as /etc/rauc/keyring.pem: v1, the image's own version.
 * 3. From that slot: v2 (release.json's version raised) and v3 (raised again, its
 *    /opt/onionbox/dist/firmware/main.js replaced by one that throws, so its onionboxd never starts), each
 *    made a release by `npm run release -- --rootfs` (RAUC bundle, minisign-signed manifest) while the box
 *    boots (it asks again until v2 is there).
 * 4. The world's release server (`updates` world option) serves v2; its onion service of the private Tor
 *    network is named in the box's test configuration (fw_cfg opt/onionbox/selftest-update-onion).
 * 5. QEMU boots v1 with the update part of the self-test (onionbox-selftest-update.service, fw_cfg
 *    opt/onionbox/selftest-update "V1 V2 V3"; the trial watchdog's timer shortened to TRIAL_MINUTES by
 *    opt/onionbox/selftest-trial-minutes). The box checks, downloads v2 through tor, RAUC writes slot B,
 *    it restarts into B, routes on v2 and marks B good; it says so, this side publishes v3; the box takes
 *    it into slot A and restarts; v3 never routes; the trial watchdog marks A bad and restarts; the box
 *    routes on v2 from B again with the owner's configuration unchanged and refuses v3 from then on.
 * A LAN device fetches through the box every few seconds from v1's routing on: the longest cut is the
 * LAN's downtime of the v1 -> v2 update. The WAN capture must hold only ARP, DHCP and TCP to relays.
 *
 *   tsx images/update-test.ts [--keep]   (root; qemu-system-arm, qemu-utils, rauc, minisign, openssl,
 *   squashfs-tools; a built image in ONIONBOX_IMAGE_OUT, default images/out)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { makeOnionKeys } from '../scripts/privnet/onion-service.js';
import { parseSerial } from './boot-report.js';
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
import { lanFetch, startJourney, wanOnlyTorCheck } from './journey.js';
import {
  bootedSlots,
  type FetchSample,
  longestCut,
  missingOrFailed,
  requiredUpdateChecks,
  uniqueChecks,
} from './update-report.js';

const execFileP = promisify(execFile);
const { out, name, img, uboot } = builtImage();
const repo = resolve(new URL('..', import.meta.url).pathname);
const TIMEOUT_S = Number(process.env.ONIONBOX_UPDATE_TEST_TIMEOUT ?? 7200);
/** The trial watchdog's timer in this test (15 minutes in the image): a routed boot takes 3-4 minutes here. */
const TRIAL_MINUTES = 7;

const report = new Report();
const record = (name: string, pass: boolean, detail: string) => report.record(name, pass, detail);
const log = (l: string) => process.stdout.write(`# ${l}\n`);

async function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await execFileP(cmd, args, {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 60 * 60_000,
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  return r.stdout;
}

const fail = (message: string): never => failEarly('image:update-test', message);

/** Slot A's place in the image (sfdisk's JSON: its second partition). */
async function slotA(img: string): Promise<{ offset: number; size: number }> {
  const table = JSON.parse(await run('sfdisk', ['-J', img])) as {
    partitiontable: { sectorsize?: number; partitions: { start: number; size: number }[] };
  };
  const p = table.partitiontable.partitions[1];
  if (!p) throw new Error('the image has no second partition (slot A)');
  const sector = table.partitiontable.sectorsize ?? 512;
  return { offset: p.start * sector, size: p.size * sector };
}

/** Runs `edit` on a filesystem image (or a part of a disk image at `offset`) loop-mounted read-write. */
async function withMounted(
  file: string,
  offset: number,
  edit: (root: string) => Promise<void>,
): Promise<void> {
  const mnt = await mkdtemp(join(tmpdir(), 'onionbox-slot-'));
  await run('mount', ['-o', `loop,offset=${offset}`, file, mnt]);
  try {
    await edit(mnt);
  } finally {
    await run('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  }
}

async function setVersion(root: string, v: string): Promise<{ compatible: string }> {
  const path = join(root, 'etc/onionbox/release.json');
  const doc = JSON.parse(await readFile(path, 'utf8')) as { version: string; compatible: string };
  doc.version = v;
  await writeFile(path, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
  return doc;
}

function bump(v: string, n: number): string {
  const [a, b, c] = v.split('.').map(Number);
  return `${a}.${b}.${(c ?? 0) + n}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('run as root (loop mounts, network namespaces, tap devices)');
  await requireTools('image:update-test', [
    ['qemu-system-aarch64', 'qemu-system-arm'],
    ['qemu-img', 'qemu-utils'],
    ['rauc', 'rauc'],
    ['minisign', 'minisign'],
    ['openssl', 'openssl'],
    ['mksquashfs', 'squashfs-tools'],
    ['tcpdump', 'tcpdump'],
    ['tor', 'tor'],
  ]);
  for (const f of [img, uboot]) if (!existsSync(f)) fail(`${f} is missing: build the image first`);

  const dir = await mkdtemp(join(tmpdir(), 'onionbox-update-test-'));
  await chmod(dir, 0o711); // the world's tors (debian-tor) traverse it
  let qemu: Qemu | null = null;
  let journey: Awaited<ReturnType<typeof startJourney>> | null = null;
  const cleanup = async () => {
    await qemu?.stop();
    await journey?.stop().catch(() => undefined);
    if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    // 1. throwaway keys
    const keys = join(dir, 'keys');
    await mkdir(keys, { mode: 0o700 });
    await run('minisign', ['-G', '-W', '-p', join(keys, 'release.pub'), '-s', join(keys, 'release.key')]);
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(keys, 'rauc.key.pem'),
      '-out',
      join(keys, 'rauc.cert.pem'),
      '-days',
      '30',
      '-subj',
      '/CN=onionbox update test release',
      '-addext',
      'extendedKeyUsage=codeSigning',
      '-addext',
      'keyUsage=digitalSignature',
    ]);
    // 2. v1: a raw copy of the image with the test's keys in slot A
    const v1img = join(dir, 'v1.img');
    await run('cp', ['--sparse=always', img, v1img]);
    const a = await slotA(v1img);
    let v1 = '';
    let board = '';
    await withMounted(v1img, a.offset, async (root) => {
      const rel = JSON.parse(await readFile(join(root, 'etc/onionbox/release.json'), 'utf8')) as {
        version: string;
        compatible: string;
      };
      v1 = rel.version;
      board = rel.compatible;
      await mkdir(join(root, 'etc/onionbox/release-keys'), { recursive: true, mode: 0o755 });
      await copyFile(join(keys, 'release.pub'), join(root, 'etc/onionbox/release-keys/current.pub'));
      await chmod(join(root, 'etc/onionbox/release-keys/current.pub'), 0o644);
      await copyFile(join(keys, 'rauc.cert.pem'), join(root, 'etc/rauc/keyring.pem'));
      await chmod(join(root, 'etc/rauc/keyring.pem'), 0o644);
    });
    const v = { v1, v2: bump(v1, 1), v3: bump(v1, 2) };
    log(`v1 ${v.v1} (the image, board ${board}), v2 ${v.v2}, v3 ${v.v3} (its onionboxd never starts)`);
    // 3. v2 and v3 from that slot, as releases
    const rootfs = (n: string) => join(dir, `${n}.rootfs`);
    await run('dd', [
      `if=${v1img}`,
      `of=${rootfs('v2')}`,
      'bs=4M',
      'iflag=skip_bytes,count_bytes',
      `skip=${a.offset}`,
      `count=${a.size}`,
      'conv=sparse',
      'status=none',
    ]);
    await withMounted(rootfs('v2'), 0, async (root) => {
      await setVersion(root, v.v2);
    });
    await run('cp', ['--sparse=always', rootfs('v2'), rootfs('v3')]);
    await withMounted(rootfs('v3'), 0, async (root) => {
      await setVersion(root, v.v3);
      await writeFile(
        join(root, 'opt/onionbox/dist/firmware/main.js'),
        "throw new Error('onionbox update test: this release never starts');\n",
      );
    });
    const releases = join(dir, 'releases');
    await mkdir(releases);
    const bundles: Record<string, { bundle: string; manifest: string; size: number; seconds: number }> = {};
    const makeRelease = async (n: 'v2' | 'v3', ver: string) => {
      const notes = join(dir, `${n}.notes`);
      await writeFile(notes, `Update test release ${ver}.`);
      const t = Date.now();
      const printed = await run('nice', [
        '-n',
        '10',
        process.execPath,
        '--import',
        import.meta.resolve('tsx'),
        join(repo, 'scripts/release/sign-manifest.ts'),
        '--rootfs',
        rootfs(n),
        '--board',
        board,
        '--version',
        ver,
        '--notes',
        notes,
        '--out',
        releases,
        '--key',
        join(keys, 'release.key'),
        '--cert',
        join(keys, 'rauc.cert.pem'),
        '--rauc-key',
        join(keys, 'rauc.key.pem'),
      ]);
      const manifest = printed.trim().split('\n')[0] ?? '';
      const bundle = manifest.replace(/\.manifest\.json$/, '');
      bundles[n] = { bundle, manifest, size: (await stat(bundle)).size, seconds: (Date.now() - t) / 1000 };
      log(`${n}: ${bundle} ${bundles[n]?.size} bytes, made in ${bundles[n]?.seconds.toFixed(1)} s`);
      await rm(rootfs(n));
    };
    const serverDir = join(dir, 'server');
    await mkdir(serverDir);
    await chmod(serverDir, 0o755);
    const publish = async (n: 'v2' | 'v3') => {
      const b = bundles[n];
      if (!b) throw new Error(`no ${n}`);
      const target = join(serverDir, b.bundle.split('/').pop() ?? '');
      if (!existsSync(target)) await link(b.bundle, target);
      await copyFile(`${b.manifest}.minisig`, join(serverDir, `${board}.manifest.json.minisig.new`));
      await copyFile(b.manifest, join(serverDir, `${board}.manifest.json`));
      await run('mv', [
        join(serverDir, `${board}.manifest.json.minisig.new`),
        join(serverDir, `${board}.manifest.json.minisig`),
      ]);
      log(`published ${n} on the world's release server`);
    };
    // 4. the world with its release server and onion service
    const onionDir = join(dir, 'onion-hs');
    const onion = await makeOnionKeys(onionDir);
    const overlay = join(dir, 'overlay.qcow2');
    const serial = join(dir, 'serial.log');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', v1img, '-F', 'raw', overlay, '4G']);
    journey = await startJourney(join(dir, 'world'), (l) => log(`world: ${l}`), {
      updates: { serverDir, onionDir },
    });
    const j = journey;
    // 5. the box
    const t0 = Date.now();
    const elapsed = () => (Date.now() - t0) / 1000;
    qemu = startQemu({
      journey: j,
      uboot,
      overlay,
      serial,
      memMb: MEM_MB,
      fwCfg: {
        'opt/onionbox/selftest': '1',
        'opt/onionbox/selftest-update': `${v.v1} ${v.v2} ${v.v3}`,
        'opt/onionbox/selftest-update-onion': `http://${onion}/`,
        'opt/onionbox/selftest-trial-minutes': String(TRIAL_MINUTES),
      },
    });
    // the releases are made while the box boots (it asks the onion service again until v2 is there); v3 is
    // published only when the box, on v2, says so
    const v3Made = (async () => {
      await makeRelease('v2', v.v2);
      await publish('v2');
      await makeRelease('v3', v.v3);
    })();
    v3Made.catch((err: unknown) => log(`making the releases failed: ${String(err)}`));
    const readSerial = qemu.readSerial;
    const samples: FetchSample[] = [];
    let fetching: Promise<void> | null = null;
    let stopFetching = false;
    let published = false;
    let shown = 0;
    let v2KeptAt: number | null = null;
    const deadline = t0 + TIMEOUT_S * 1000;
    while (Date.now() < deadline && qemu.running()) {
      const text = readSerial();
      const checks = uniqueChecks(parseSerial(text).checks);
      for (const c of checks.slice(shown)) {
        log(
          `[${elapsed().toFixed(1)} s host, ${c.t.toFixed(1)} s box] ${c.check}: ${c.pass ? 'PASS' : 'FAIL'} ${c.detail}`,
        );
      }
      shown = checks.length;
      // the LAN device: from v1's routing on, a fetch through the box every few seconds
      if (fetching === null && checks.some((c) => c.check === `update-routing-${v.v1}` && c.pass)) {
        fetching = (async () => {
          await j.world.leaseLanDevice(600_000).catch((err: unknown) => log(`LAN lease: ${String(err)}`));
          while (!stopFetching) {
            const t = elapsed();
            const r = await lanFetch(j, 4);
            samples.push({ t, ok: r.ok && r.body !== '' });
            await sleep(2000);
          }
        })();
      }
      if (v2KeptAt === null && checks.some((c) => c.check === 'update-kept')) v2KeptAt = elapsed();
      if (!published && text.includes(`OBX-SELFTEST-PUBLISH ${v.v3}`)) {
        published = true;
        await v3Made;
        await publish('v3');
      }
      if (text.includes('OBX-SELFTEST UPDATE-DONE') && (published || checks.some((c) => !c.pass))) break;
      await sleep(3000);
    }
    stopFetching = true;
    await fetching;
    await v3Made.catch(() => undefined);
    const text = readSerial();
    const checks = uniqueChecks(parseSerial(text).checks);
    await writeFile(join(out, `${name}.update-serial.log`), text);
    log(`serial console: ${join(out, `${name}.update-serial.log`)}`);
    for (const c of checks) record(`box: ${c.check}`, c.pass, `${c.detail} (t=${c.t} s on the box)`);
    const missing = missingOrFailed(checks, requiredUpdateChecks(v));
    record(
      'v1 -> v2 -> bad v3 -> back on v2, every step reported',
      missing.length === 0,
      missing.join('; ') || `${requiredUpdateChecks(v).length} steps passed`,
    );
    const slots = bootedSlots(text);
    record(
      'U-Boot booted A (v1), B (v2), A (v3 on trial), B (v2 again)',
      slots.join(' ') === 'A B A B',
      `booted: ${slots.join(' ') || 'none'}`,
    );
    for (const n of ['v2', 'v3'] as const) {
      const b = bundles[n];
      if (b)
        log(
          `bench: ${n} bundle ${b.size} bytes (${(b.size / 1e6).toFixed(1)} MB), made in ${b.seconds.toFixed(1)} s`,
        );
    }
    const before = v2KeptAt === null ? samples : samples.filter((s) => s.t <= v2KeptAt + 30);
    const cut = longestCut(before);
    const answered = before.filter((s) => s.ok).length;
    log(
      `bench: LAN fetches during v1 -> v2: ${answered}/${before.length} answered; longest cut ${
        cut
          ? `${(cut.to - cut.from).toFixed(1)} s (${cut.from.toFixed(1)} -> ${cut.to.toFixed(1)} s host)`
          : 'none closed'
      }`,
    );
    const wan = wanOnlyTorCheck(j, 'through every update');
    record(wan.name, wan.pass, wan.detail);
    log(`total ${elapsed().toFixed(1)} s`);
    if (report.failed()) for (const l of diagnostics(text)) log(l);
  } finally {
    await cleanup();
  }
  process.exit(report.summary());
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
