/**
 * The updater's own timer and its production defaults (firmware/update/service.ts), against a loopback
 * release server: "install and restart at night" checks, downloads and installs by itself in the night
 * window; by day it stops at `ready` and waits for the night; a restart that finds the ready bundle gone
 * offers it again as available; a scheduled step that fails is logged and changes nothing; the offline
 * install refuses missing and wrong-sized files by name; the kernel's boot id and the partition's free
 * space are read for real when no test value is given.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { UpdateConfig } from '../../firmware/config/schema.js';
import type { Log } from '../../firmware/log.js';
import type { Installer } from '../../firmware/update/rauc.js';
import { UpdateService, type UpdateServiceDeps } from '../../firmware/update/service.js';
import { tmpDir } from '../helpers/tmp.js';
import {
  loopbackConnect,
  makeRelease,
  publish,
  type ReleaseServer,
  serveRelease,
  testTrust,
} from '../helpers/update-release.js';

const BOOT = '11111111-1111-4111-8111-111111111111';

interface Scene {
  dir: string;
  server: ReleaseServer;
  settings: UpdateConfig;
  installed: string[];
  warnings: string[];
  deps: (over?: Partial<UpdateServiceDeps>) => UpdateServiceDeps;
}

async function scene(t: Test, policy: UpdateConfig['policy']): Promise<Scene> {
  const root = tmpDir(t, 'obx-updsched-');
  const release = makeRelease('1.1.0');
  publish(join(root, 'rel'), release);
  const server = await serveRelease(join(root, 'rel'));
  t.teardown(() => server.close());
  const installed: string[] = [];
  const warnings: string[] = [];
  const installer: Installer = {
    install: async (p) => {
      installed.push(p);
    },
    restart: async () => undefined,
  };
  const log: Log = {
    info: () => undefined,
    warn: (_o, m) => warnings.push(m ?? ''),
    error: () => undefined,
  };
  const s: Scene = {
    dir: join(root, 'updates'),
    server,
    settings: { onion: server.base, mirror: null, policy },
    installed,
    warnings,
    deps: (over = {}) => ({
      dir: s.dir,
      image: { version: '1.0.0', compatible: 'onionbox-test', built: null },
      trust: testTrust(),
      settings: () => s.settings,
      connect: loopbackConnect,
      installer,
      log,
      random: () => 0.5,
      bootId: async () => BOOT,
      freeBytes: async () => 1e9,
      torReady: () => true,
      ...over,
    }),
  };
  return s;
}

async function started(t: Test, deps: UpdateServiceDeps): Promise<UpdateService> {
  const s = new UpdateService(deps);
  await s.start();
  t.teardown(() => s.stop());
  return s;
}

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
}

t.test('at night, "install and restart at night" checks, downloads and installs by itself', async (t) => {
  const sc = await scene(t, 'night');
  const night = new Date('2026-12-07T03:00:00Z');
  const s = await started(t, sc.deps({ now: () => night }));
  await until(() => sc.installed.length > 0);
  t.equal(sc.installed.length, 1, 'RAUC got the bundle');
  t.match(sc.installed[0], /1\.1\.0-onionbox-1\.1\.0\.raucb$/);
  t.equal(s.status().phase, 'trial-boot');
  t.same(sc.warnings, []);
});

t.test('by day it stops at ready and waits for the night; a lost bundle is offered again', async (t) => {
  const sc = await scene(t, 'night');
  const noon = new Date('2026-12-07T12:00:00Z');
  // the production defaults: the kernel's boot id (/proc) and the data partition's free space (statfs)
  const deps = sc.deps({ now: () => noon, bootId: undefined, freeBytes: undefined });
  const s = await started(t, deps);
  // ready, and the timer set again after the step (the next check moves on from now)
  await until(() => s.status().phase === 'ready' && s.status().nextCheck !== noon.toISOString());
  const st = s.status();
  t.equal(st.phase, 'ready');
  t.match(st.nextCheck, /^2026-12-08T/, 'the next check tomorrow');
  t.same(sc.installed, [], 'nothing installed by day');
  await s.stop();

  // a power cut took the bundle: the restart offers the version again instead of installing nothing
  for (const n of readdirSync(sc.dir)) if (n.endsWith('.raucb')) rmSync(join(sc.dir, n));
  const again = await started(t, sc.deps({ now: () => noon, torReady: () => false }));
  t.equal(again.status().phase, 'available');
  t.equal(again.status().available?.version, '1.1.0');
});

t.test('a scheduled check that fails is logged; the updater stays idle and says why', async (t) => {
  const sc = await scene(t, 'ask');
  sc.settings = { ...sc.settings, onion: 'http://127.0.0.1:1/' };
  const s = await started(t, sc.deps({ now: () => new Date('2026-12-07T12:00:00Z') }));
  await until(() => sc.warnings.includes('scheduled update step failed'));
  t.ok(sc.warnings.includes('update source failed'), 'the source is named in the log');
  t.ok(sc.warnings.includes('scheduled update step failed'));
  t.equal(s.status().phase, 'idle');
  t.equal(s.status().lastCheck?.ok, false);
  t.match(s.status().lastCheck?.result, /the onion service/);
});

t.test('the offline install names a missing or wrong-sized file; without keys it is off', async (t) => {
  const sc = await scene(t, 'ask');
  const s = await started(t, sc.deps({ torReady: () => false }));
  const files = tmpDir(t, 'obx-offline-');
  const release = makeRelease('1.2.0');
  const bundle = join(files, 'b.raucb');
  const manifest = join(files, 'b.raucb.manifest.json');
  const signature = `${manifest}.minisig`;
  writeFileSync(manifest, release.manifestText);
  writeFileSync(signature, release.signature);
  await t.rejects(s.installFile(bundle, join(files, 'none.json'), signature), {
    code: 'OBX_ERR_UPDATE_FETCH_FAILED',
    message: /none\.json/,
  });
  await t.rejects(s.installFile(bundle, manifest, signature), {
    code: 'OBX_ERR_UPDATE_FETCH_FAILED',
    message: /b\.raucb: /,
  });
  writeFileSync(bundle, release.bundle.subarray(1));
  await t.rejects(s.installFile(bundle, manifest, signature), {
    code: 'OBX_ERR_UPDATE_DOWNLOAD_OVERSIZE',
    message: /has 65535 bytes, the manifest 65536/,
  });
  t.equal(s.status().phase, 'idle');
  t.same(sc.installed, []);
  t.notOk(
    readdirSync(sc.dir).some((n) => n.endsWith('.raucb') || n.endsWith('.part')),
    'nothing left behind',
  );

  const keyless = await started(
    t,
    sc.deps({ dir: join(files, 'keyless'), trust: null, torReady: () => false }),
  );
  writeFileSync(bundle, release.bundle);
  await t.rejects(keyless.installFile(bundle, manifest, signature), {
    code: 'OBX_ERR_UPDATE_NOT_CONFIGURED',
    message: /holds no release key/,
  });
  t.notOk(existsSync(join(files, 'keyless', '1.2.0-onionbox-1.2.0.raucb')));
});
