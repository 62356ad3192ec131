/**
 * The page's Updates section (issue 20) and the status page's update warnings, against a real
 * UpdateService fetching from a loopback release server: in-process, and over the page socket as the page
 * process builds it (web/main.ts: pageDeps, the updater's `web.update.*` commands).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { UpdateConfig } from '../../firmware/config/schema.js';
import { ipcCall } from '../../firmware/control/socket.js';
import { isObxError } from '../../firmware/errors.js';
import { disabledUpdates, type Updates } from '../../firmware/phases/update.js';
import type { Installer } from '../../firmware/update/rauc.js';
import { UpdateService } from '../../firmware/update/service.js';
import { BoxClient } from '../../web/lib/box-client.js';
import { loopbackConnect, makeRelease, publish, serveRelease, testTrust } from '../helpers/update-release.js';
import { claimed, webHarness } from '../helpers/web.js';

const DAY = 24 * 60 * 60 * 1000;

/** The updater as onionboxd's `update` phase hands it to the page socket (status and warnings at once). */
type Target = Omit<Updates, 'installFile'>;

async function updates(
  t: Test,
  /** `dir`: the updater's directory of an earlier run (a restart); `bootId`: the kernel's boot id. */
  opts: { built?: Date; dangerous?: boolean; dir?: string; bootId?: string } = {},
): Promise<{ target: Target; installs: string[]; settings: UpdateConfig; service: UpdateService }> {
  const root = mkdtempSync(join(tmpdir(), 'obx-webupd-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  publish(join(root, 'rel'), makeRelease('1.1.0', { notes: 'Tor 0.4.9.\n<b>not bold</b>' }));
  const server = await serveRelease(join(root, 'rel'));
  t.teardown(() => server.close());
  const installs: string[] = [];
  const installer: Installer = {
    install: async (p) => {
      installs.push(p);
    },
    restart: async () => undefined,
  };
  const settings: UpdateConfig = { onion: server.base, mirror: null, policy: 'ask' };
  const service = new UpdateService({
    dir: opts.dir ?? join(root, 'updates'),
    image: {
      version: '1.0.0',
      compatible: 'onionbox-test',
      built: opts.built ?? new Date(Date.now() - 10 * DAY),
    },
    trust: testTrust(),
    settings: () => settings,
    connect: loopbackConnect,
    installer,
    log: pino({ level: 'silent' }),
    bootId: async () => opts.bootId ?? '11111111-1111-4111-8111-111111111111',
    freeBytes: async () => 1e9,
    torReady: () => false, // no scheduled check: only the page's "Check now"
  });
  await service.start();
  t.teardown(() => service.stop());
  const target: Target = {
    status: () => service.status(),
    check: () => service.check(),
    install: () => service.install(),
    setPolicy: async (p) => {
      settings.policy = p;
    },
    warnings: () => {
      const w: string[] = [];
      if (opts.dangerous) w.push("The Tor network no longer recommends this box's tor: update the box soon.");
      if (opts.built && Date.now() - opts.built.getTime() > 200 * DAY)
        w.push("This box's software is 7 months old");
      return w;
    },
  };
  return { target, installs, settings, service };
}

async function until(f: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 25));
}

for (const ipc of [false, true]) {
  const how = ipc ? 'over the page socket' : 'in-process';
  t.test(
    `the update page (${how}): version and age, check now, the notes, install, the policy`,
    async (t) => {
      await updatePage(t, ipc);
    },
  );
  t.test(`warnings on the status and update pages (${how})`, async (t) => {
    await warningsShown(t, ipc);
  });
}

async function updatePage(t: Test, ipc: boolean): Promise<void> {
  const u = await updates(t);
  const h = await webHarness(t, { updates: u.target, ipc });
  t.equal(h.api instanceof BoxClient, ipc);
  if (h.api instanceof BoxClient) {
    // the page process's client offers the updater, and what it reads is onionboxd's
    const over = h.api.updates;
    t.ok(over, 'the Mirror says onionboxd runs an updater');
    t.same(await over?.status(), u.target.status());
    t.same(await over?.warnings(), []);
  }
  const c = await claimed(h);
  t.match((await c.get('/')).body, /href="\/update">Updates<\/a>/, 'the navigation has the Updates link');
  const first = await c.get('/update');
  t.equal(first.statusCode, 200);
  t.match(first.body, /id="running">1\.0\.0 \(built \d{4}-\d\d-\d\d, 10 days ago\)/);
  t.match(first.body, /has not checked for an update yet/);
  t.notMatch(first.body, /<script>(?!.*src)/, 'no inline script');
  const checked = await c.post('/update/check', {}, '/update');
  t.equal(checked.statusCode, 303);
  t.equal(checked.headers.location, '/update?done=update-checking');
  await until(() => u.target.status().phase === 'available');
  const shown = await c.get('/update');
  t.match(shown.body, /Version 1\.1\.0 is available: install it when you are ready/);
  t.match(shown.body, /<h2>Version 1\.1\.0<\/h2>/);
  t.match(shown.body, /&lt;b&gt;not bold&lt;\/b&gt;/, 'release notes are escaped');
  t.match(shown.body, /from the onion service/);
  t.match(shown.body, /Install now and restart/);

  t.match(shown.body, /value="ask" checked/);
  const policy = await c.post('/update/policy', { policy: 'night' }, '/update');
  t.equal(policy.statusCode, 303);
  t.equal(u.settings.policy, 'night');
  u.settings.policy = 'ask';
  t.equal((await c.post('/update/policy', { policy: 'always' }, '/update')).statusCode, 400);

  const install = await c.post('/update/install', {}, '/update');
  t.equal(install.statusCode, 303);
  await until(() => u.installs.length === 1);
  t.match(u.installs[0], /1\.1\.0-onionbox-1\.1\.0\.raucb$/);
  t.equal(u.target.status().phase, 'trial-boot');
  t.equal((await c.post('/update/install', {}, '/update')).statusCode, 409, 'nothing left to install');
}

t.test('without a session the update page is closed; forms need the CSRF token', async (t) => {
  const u = await updates(t);
  const h = await webHarness(t, { updates: u.target });
  await claimed(h);
  const anon = await h.app.inject({ method: 'GET', url: '/update', headers: { host: '10.42.0.1' } });
  t.equal(anon.statusCode, 303);
  t.equal(anon.headers.location, '/login');
  const c = await claimed(await webHarness(t, { updates: u.target }));
  const noCsrf = await c.post('/update/check', {});
  t.equal(noCsrf.statusCode, 403);
  t.equal(u.target.status().phase, 'idle');
});

/** An old image and a tor the network no longer recommends, on the status and update pages. */
async function warningsShown(t: Test, ipc: boolean): Promise<void> {
  const u = await updates(t, { built: new Date(Date.now() - 220 * DAY), dangerous: true });
  const h = await webHarness(t, { updates: u.target, ipc });
  const c = await claimed(h);
  const status = await c.get('/');
  t.match(status.body, /class="update-warning" role="alert"[^>]*>The Tor network no longer recommends/);
  t.match(status.body, /software is 7 months old/);
  t.match(status.body, /href="\/update">Updates<\/a>/);
  const page = await c.get('/update');
  t.match(page.body, /no longer recommends/);
}

t.test('a page without an updater has no update link and no update route', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  t.notMatch((await c.get('/')).body, /href="\/update"/);
  t.equal((await c.get('/update')).statusCode, 404);
});

t.test('over the page socket without an updater: no section, and the commands say why', async (t) => {
  const h = await webHarness(t, { ipc: true });
  const client = h.api as BoxClient;
  t.equal(client.updates, undefined, 'the Mirror says there is no updater');
  const c = await claimed(h);
  t.notMatch((await c.get('/')).body, /href="\/update"/);
  t.equal((await c.get('/update')).statusCode, 404);
  const r = await ipcCall(join(h.dir, 'web.sock'), 'web.update.status', {});
  t.match(r, { ok: false, code: 'OBX_ERR_UPDATE_NOT_CONFIGURED', message: /no updater/ });
});

t.test('onionboxd refuses malformed update requests before the updater sees them', async (t) => {
  const u = await updates(t);
  const h = await webHarness(t, { updates: u.target, ipc: true });
  const sock = join(h.dir, 'web.sock');
  for (const [cmd, args] of [
    ['web.update.setPolicy', { policy: 'always' }],
    ['web.update.setPolicy', {}],
    ['web.update.setPolicy', { policy: 'night', extra: 1 }],
    ['web.update.check', { now: true }],
    ['web.update.install', { bundle: '/tmp/x.raucb' }],
    ['web.update.installFile', {}],
  ] as const) {
    const r = await ipcCall(sock, cmd, args);
    t.equal(r.ok, false, `${cmd} ${JSON.stringify(args)}`);
    if (!r.ok) {
      const want = cmd === 'web.update.installFile' ? 'OBX_ERR_CLI_USAGE' : 'OBX_ERR_BOX_BAD_INPUT';
      t.equal(r.code, want);
    }
  }
  t.equal(u.settings.policy, 'ask', 'the policy is unchanged');
  const s = u.target.status();
  t.equal(s.phase, 'idle');
  t.equal(s.lastCheck, null, 'no check ran');
  t.same(u.installs, [], 'nothing installed');
  // and the one good request
  const ok = await ipcCall(sock, 'web.update.setPolicy', { policy: 'night' });
  t.match(ok, { ok: true, result: { value: null } });
  t.equal(u.settings.policy, 'night');
});

t.test('an updater that is off, over the page socket: the page says why and offers no check', async (t) => {
  const off = disabledUpdates(
    { version: '1.0.0', compatible: 'onionbox-test', built: new Date(Date.now() - 3 * DAY) },
    'this image holds no release key',
  );
  const h = await webHarness(t, { updates: off, ipc: true });
  const c = await claimed(h);
  const page = await c.get('/update');
  t.equal(page.statusCode, 200);
  t.match(page.body, /Updates are off: this image holds no release key\./);
  t.notMatch(page.body, /Check now/);
  const policy = await c.post('/update/policy', { policy: 'ask' }, '/update');
  t.equal(policy.statusCode, 409, "onionboxd's refusal, with its status");
  t.match(policy.body, /OBX_ERR_UPDATE_NOT_CONFIGURED/);
  t.match(policy.body, /this image holds no release key/);
  const install = await c.post('/update/install', {}, '/update');
  t.equal(install.statusCode, 409);
  t.match(install.body, /OBX_ERR_UPDATE_NOTHING_TO_INSTALL/);
  const e = await (h.api as BoxClient).updates?.check().catch((err: unknown) => err);
  t.ok(isObxError(e, 'UPDATE_NOT_CONFIGURED'), 'a check is refused with the same code as in-process');
});

t.test('the status page shows without update warnings when the updater does not answer', async (t) => {
  const u = await updates(t);
  const failing: Target = {
    ...u.target,
    warnings: () => {
      throw new Error('the updater is gone');
    },
  };
  for (const ipc of [false, true]) {
    const h = await webHarness(t, { updates: failing, ipc });
    const c = await claimed(h);
    const status = await c.get('/');
    t.equal(status.statusCode, 200, ipc ? 'over the socket' : 'in-process');
    t.notMatch(status.body, /update-warning/);
  }
});

t.test(
  'a fallback over the page socket: the page says which version failed and where the box is',
  async (t) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'obx-webupd-fb-')), 'updates');
    t.teardown(() => rmSync(dirname(dir), { recursive: true, force: true }));
    const before = await updates(t, { dir });
    await before.service.check();
    await before.service.install();
    t.equal(before.service.status().phase, 'trial-boot');
    await before.service.stop();
    // the next boot runs 1.0.0 again: 1.1.0 never reached Tor on its trial boot
    const after = await updates(t, { dir, bootId: '22222222-2222-4222-8222-222222222222' });
    t.equal(after.service.status().phase, 'fell-back');
    const h = await webHarness(t, { updates: after.target, ipc: true });
    const c = await claimed(h);
    const page = await c.get('/update');
    t.match(
      page.body,
      /id="update-state">1\.1\.0 did not reach Tor on its trial boot; the box went back to 1\.0\.0/,
    );
    t.match(page.body, /Not tried again automatically \(they did not reach Tor on this box\): 1\.1\.0\./);
    t.match(page.body, /id="running">1\.0\.0/);
  },
);
