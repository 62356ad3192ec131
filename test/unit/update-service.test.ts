import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { UpdateConfig } from '../../firmware/config/schema.js';
import type { Installer } from '../../firmware/update/rauc.js';
import { type ImageInfo, UpdateService, type UpdateServiceDeps } from '../../firmware/update/service.js';
import {
  loopbackConnect,
  makeRelease,
  publish,
  type ReleaseServer,
  serveRelease,
  type TestRelease,
  testTrust,
} from '../helpers/update-release.js';

const log = pino({ level: 'silent' });
const BOOT_A = '11111111-1111-4111-8111-111111111111';
const BOOT_B = '22222222-2222-4222-8222-222222222222';
const image: ImageInfo = {
  version: '1.0.0',
  compatible: 'onionbox-test',
  built: new Date('2026-11-01T00:00:00Z'),
};

class FakeInstaller implements Installer {
  installed: string[] = [];
  restarts = 0;
  fail: string | null = null;
  async install(path: string): Promise<void> {
    if (this.fail) throw new Error(this.fail);
    this.installed.push(readFileSync(path).toString('hex').slice(0, 16));
  }
  async restart(): Promise<void> {
    this.restarts++;
  }
}

interface World {
  dir: string;
  releases: string;
  server: ReleaseServer;
  installer: FakeInstaller;
  settings: UpdateConfig;
  deps: (over?: Partial<UpdateServiceDeps>) => UpdateServiceDeps;
}

async function world(t: Test, release: TestRelease | null, intercept?: Parameters<typeof serveRelease>[1]) {
  const root = mkdtempSync(join(tmpdir(), 'obx-upd-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const releases = join(root, 'releases');
  if (release) publish(releases, release);
  const server = await serveRelease(releases, intercept);
  t.teardown(() => server.close());
  const installer = new FakeInstaller();
  const settings: UpdateConfig = { onion: server.base, mirror: null, policy: 'ask' };
  const w: World = {
    dir: join(root, 'updates'),
    releases,
    server,
    installer,
    settings,
    deps: (over = {}) => ({
      dir: w.dir,
      image,
      trust: testTrust(),
      settings: () => w.settings,
      connect: loopbackConnect,
      installer,
      log,
      random: () => 0.5,
      bootId: async () => BOOT_A,
      freeBytes: async () => 1024 * 1024 * 1024,
      stallMs: 2000,
      fetchTimeoutMs: 5000,
      ...over,
    }),
  };
  return w;
}

async function started(t: Test, deps: UpdateServiceDeps): Promise<UpdateService> {
  const s = new UpdateService(deps);
  await s.start();
  t.teardown(() => s.stop());
  return s;
}

function bundles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n !== 'state.json');
}

t.test(
  'check, ask, install: the bundle is verified, handed over, the box restarts; routing keeps it',
  async (t) => {
    const release = makeRelease('1.1.0', { notes: 'Fixes the thing.' });
    const w = await world(t, release);
    const s = await started(t, w.deps());
    t.equal(s.status().phase, 'idle');
    const checked = await s.check();
    t.equal(checked.phase, 'available', 'ask: the box waits for the owner');
    t.equal(checked.available?.version, '1.1.0');
    t.equal(checked.available?.notes, 'Fixes the thing.');
    t.match(checked.lastCheck?.result, /1\.1\.0 is available from the onion service|1\.1\.0 is available/);
    t.same(w.installer.installed, [], 'nothing installed by a check');
    t.same(w.server.paths, ['/onionbox-test.manifest.json', '/onionbox-test.manifest.json.minisig']);
    const done = await s.install();
    t.equal(done.phase, 'trial-boot');
    t.same(
      w.installer.installed,
      [release.bundle.toString('hex').slice(0, 16)],
      'the verified bytes went to RAUC',
    );
    t.equal(w.installer.restarts, 1);
    const saved = JSON.parse(readFileSync(join(w.dir, 'state.json'), 'utf8'));
    t.equal(saved.phase, 'trial-boot');
    t.equal(saved.installBootId, BOOT_A);
    await s.stop();

    // The restart: the new slot runs 1.1.0 on a new boot, and reaches routing.
    const after = await started(
      t,
      w.deps({ image: { ...image, version: '1.1.0' }, bootId: async () => BOOT_B }),
    );
    t.equal(after.status().phase, 'trial-boot');
    await after.routing();
    t.equal(after.status().phase, 'good');
    t.equal(after.status().running, '1.1.0');
    t.same(bundles(w.dir), [], 'the bundle is removed once kept');
  },
);

t.test('a trial that comes back on the old version fell back; that version is never retried', async (t) => {
  const release = makeRelease('1.1.0');
  const w = await world(t, release);
  const s = await started(t, w.deps());
  await s.check();
  await s.install();
  await s.stop();
  const back = await started(t, w.deps({ bootId: async () => BOOT_B }));
  const st = back.status();
  t.equal(st.phase, 'fell-back');
  t.same(st.failed, ['1.1.0']);
  t.match(st.result, /1\.1\.0 did not reach Tor on its trial boot; the box went back to 1\.0\.0/);
  await t.rejects(back.check(), { code: 'OBX_ERR_UPDATE_FAILED_BEFORE' });
  t.equal(back.status().phase, 'idle');
  t.equal(w.installer.installed.length, 1, 'not installed again');
});

t.test(
  'a version that fell back stays refused on every later boot, under "install at night" too',
  async (t) => {
    const BOOT_C = '33333333-3333-4333-8333-333333333333';
    const w = await world(t, makeRelease('1.1.0'));
    const s = await started(t, w.deps());
    await s.check();
    await s.install();
    await s.stop();
    const back = await started(t, w.deps({ bootId: async () => BOOT_B }));
    t.equal(back.status().phase, 'fell-back');
    t.same(bundles(w.dir), [], "the failed version's bundle is removed at once");
    await back.stop();
    // a later boot, the owner's default policy: the same manifest is still on the server
    w.settings = { ...w.settings, policy: 'night' };
    const later = await started(t, w.deps({ bootId: async () => BOOT_C }));
    t.same(later.status().failed, ['1.1.0'], 'the failed version is kept on disk');
    await t.rejects(later.check(), { code: 'OBX_ERR_UPDATE_FAILED_BEFORE' });
    await t.rejects(later.install(), { code: 'OBX_ERR_UPDATE_NOTHING_TO_INSTALL' });
    t.equal(w.installer.installed.length, 1, 'never installed again');
    t.same(bundles(w.dir), [], 'nothing is downloaded for it');
    // a newer release is an update again
    publish(w.releases, makeRelease('1.1.1'));
    const st = await later.check();
    t.equal(st.target, '1.1.1');
    t.same(st.failed, ['1.1.0']);
  },
);

t.test('the onion service down: the mirror answers; both down: the reasons in words', async (t) => {
  const release = makeRelease('1.2.0');
  const w = await world(t, release);
  w.settings = { onion: 'http://127.0.0.1:1/', mirror: w.server.base, policy: 'ask' };
  const s = await started(t, w.deps());
  const st = await s.check();
  t.equal(st.phase, 'available');
  t.match(st.lastCheck?.result, /from the mirror 127\.0\.0\.1/);
  await s.install();
  t.equal(w.installer.installed.length, 1);

  const w2 = await world(t, null);
  w2.settings = { onion: 'http://127.0.0.1:1/', mirror: 'http://127.0.0.1:2/', policy: 'ask' };
  const s2 = await started(t, w2.deps());
  await t.rejects(s2.check(), { code: 'OBX_ERR_UPDATE_FETCH_FAILED' });
  t.equal(s2.status().phase, 'idle');
  t.match(s2.status().lastCheck, { ok: false, result: /onion service.*mirror/ });
});

t.test('the same or an older version is "up to date", never a downgrade', async (t) => {
  for (const v of ['1.0.0', '0.9.0']) {
    const w = await world(t, makeRelease(v));
    const s = await started(t, w.deps());
    const st = await s.check();
    t.equal(st.phase, 'idle', v);
    t.match(st.lastCheck, {
      ok: true,
      result: new RegExp(`up to date: .* offers ${v.replace(/\./g, '\\.')}`),
    });
    t.equal(st.running, '1.0.0');
  }
});

t.test('table: every bad release leaves the box unchanged, with its message', async (t) => {
  const DAY = 24 * 60 * 60 * 1000;
  const good = makeRelease('1.1.0');
  const tampered: TestRelease = { ...good, manifestText: good.manifestText.replace('fixes', 'fixez') };
  const cases: [string, TestRelease, string, Partial<UpdateServiceDeps>?][] = [
    ['bad signature', tampered, 'OBX_ERR_UPDATE_SIGNATURE_INVALID'],
    ['foreign key', makeRelease('1.1.0', { key: 'foreign' }), 'OBX_ERR_UPDATE_KEY_UNKNOWN'],
    ['wrong board', makeRelease('1.1.0', { board: 'onionbox-other' }), 'OBX_ERR_UPDATE_WRONG_BOARD'],
    [
      'expired',
      makeRelease('1.1.0', { released: new Date(Date.now() - 40 * DAY), expiresDays: 30 }),
      'OBX_ERR_UPDATE_EXPIRED',
    ],
    [
      'size mismatch (the server sends more than announced)',
      makeRelease('1.1.0', { manifest: { size: 1000 } }),
      'OBX_ERR_UPDATE_DOWNLOAD_OVERSIZE',
    ],
    [
      'hash mismatch',
      makeRelease('1.1.0', { manifest: { sha256: 'a'.repeat(64) } }),
      'OBX_ERR_UPDATE_HASH_MISMATCH',
    ],
    ['full data partition', good, 'OBX_ERR_UPDATE_NO_SPACE', { freeBytes: async () => 1024 }],
  ];
  for (const [name, release, code, over] of cases) {
    const w = await world(t, release);
    // a wrong-board release is published under its own board's name; the box asks for its own
    if (name === 'wrong board') publish(w.releases, release, 'onionbox-test');
    const s = await started(t, w.deps(over));
    let err: unknown = null;
    try {
      await s.check();
      await s.install();
    } catch (e) {
      err = e;
    }
    t.match(err, { code }, name);
    const st = s.status();
    t.equal(st.phase, 'idle', `${name}: back to idle`);
    t.equal(st.running, '1.0.0', `${name}: still 1.0.0`);
    t.same(w.installer.installed, [], `${name}: nothing installed`);
    t.same(
      bundles(w.dir).filter((n) => !n.endsWith('.part')),
      [],
      `${name}: no bundle left`,
    );
    t.ok(st.result && st.result.length > 0, `${name}: ${st.result}`);
  }
});

t.test('a server that sends forever is cut at the cap; one that stalls is given up on', async (t) => {
  const release = makeRelease('1.1.0', { size: 4096 });
  const forever = await world(t, release, (req, res) => {
    if (!req.url?.endsWith('.raucb')) return false;
    res.writeHead(200);
    const chunk = Buffer.alloc(1024, 7);
    const timer = setInterval(() => res.write(chunk), 1);
    res.on('close', () => clearInterval(timer));
    return true;
  });
  const s = await started(t, forever.deps());
  await s.check();
  await t.rejects(s.install(), { code: 'OBX_ERR_UPDATE_DOWNLOAD_OVERSIZE' });
  t.equal(s.status().phase, 'idle');
  t.same(forever.installer.installed, []);

  const stall = await world(t, release, (req, res) => {
    if (!req.url?.endsWith('.raucb')) return false;
    res.writeHead(200, { 'Content-Length': 4096 });
    res.write(Buffer.alloc(100));
    return true; // and never more
  });
  const s2 = await started(t, stall.deps({ stallMs: 200 }));
  await s2.check();
  await t.rejects(s2.install(), { code: 'OBX_ERR_UPDATE_DOWNLOAD_STALLED' });
  t.equal(s2.status().phase, 'idle');
  t.same(stall.installer.installed, []);
});

t.test(
  'RAUC refusing leaves the box on its version; a restart mid-download resumes as available',
  async (t) => {
    const release = makeRelease('1.1.0');
    const w = await world(t, release);
    w.installer.fail = 'signature verification failed';
    const s = await started(t, w.deps());
    await s.check();
    await t.rejects(s.install(), /signature verification failed/);
    t.equal(s.status().phase, 'idle');
    t.match(s.status().result, /install failed/);
    await s.stop();

    const state = JSON.parse(readFileSync(join(w.dir, 'state.json'), 'utf8'));
    writeFileSync(
      join(w.dir, 'state.json'),
      JSON.stringify({
        ...state,
        phase: 'downloading',
        target: '1.1.0',
        manifest: { text: release.manifestText, signature: release.signature, source: w.server.base },
      }),
    );
    const again = await started(t, w.deps());
    t.equal(again.status().phase, 'available', 'downloading resumes as available');
    t.equal(again.status().available?.version, '1.1.0');
    // a saved manifest that no longer verifies is dropped
    await again.stop();
    writeFileSync(
      join(w.dir, 'state.json'),
      JSON.stringify({
        ...state,
        phase: 'available',
        target: '1.1.0',
        manifest: {
          text: release.manifestText.replace('1.1.0', '1.9.0'),
          signature: release.signature,
          source: w.server.base,
        },
      }),
    );
    const dropped = await started(t, w.deps());
    t.equal(dropped.status().phase, 'idle');
    t.match(dropped.status().result, /no longer verifies/);
  },
);

t.test('updates are off without keys or sources; an offline file goes through the same checks', async (t) => {
  const release = makeRelease('1.1.0');
  const w = await world(t, release);
  const noKeys = await started(t, w.deps({ trust: null }));
  t.equal(noKeys.status().enabled, false);
  t.match(noKeys.status().disabledReason, /no release key/);
  await t.rejects(noKeys.check(), { code: 'OBX_ERR_UPDATE_NOT_CONFIGURED' });
  await noKeys.stop();
  w.settings = { onion: null, mirror: null, policy: 'night' };
  const noSource = await started(t, w.deps());
  t.match(noSource.status().disabledReason, /no update source/);
  await noSource.stop();

  const bundleName = JSON.parse(release.manifestText).bundle.name as string;
  const b = join(w.releases, bundleName);
  const m = join(w.releases, 'onionbox-test.manifest.json');
  const sig = `${m}.minisig`;
  const offline = await started(t, w.deps());
  writeFileSync(join(w.releases, 'bad.raucb'), Buffer.alloc(release.bundle.length));
  await t.rejects(offline.installFile(join(w.releases, 'bad.raucb'), m, sig), {
    code: 'OBX_ERR_UPDATE_HASH_MISMATCH',
  });
  t.same(w.installer.installed, []);
  const foreign = makeRelease('1.1.0', { key: 'foreign' });
  writeFileSync(join(w.releases, 'foreign.minisig'), foreign.signature);
  await t.rejects(offline.installFile(b, m, join(w.releases, 'foreign.minisig')), {
    code: 'OBX_ERR_UPDATE_KEY_UNKNOWN',
  });
  const st = await offline.installFile(b, m, sig);
  t.equal(st.phase, 'trial-boot');
  t.same(w.installer.installed, [release.bundle.toString('hex').slice(0, 16)]);
  t.ok(existsSync(join(w.dir, 'state.json')));
});
