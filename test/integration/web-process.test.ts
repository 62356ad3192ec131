/**
 * The page in its own process (issue 23), started as its unit starts it (test/helpers/web-process.ts):
 * it answers over real TCP from what onionboxd's page socket tells it, holds at most 8 connections per
 * address, shows the updater's Updates section (issue 20) with "Check now" going over the socket to a real
 * UpdateService, and its memory is measured (BENCHMARKS.md). It builds the page into a directory of its
 * own (dist/web/main.js).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { UpdateConfig } from '../../firmware/config/schema.js';
import { IpcServer, webSocketPath } from '../../firmware/control/socket.js';
import { registerWebCommands } from '../../firmware/control/web-commands.js';
import { UpdateService } from '../../firmware/update/service.js';
import { WEB_LIMITS } from '../../web/app.js';
import { TestBox } from '../helpers/test-box.js';
import { tmpDir } from '../helpers/tmp.js';
import { loopbackConnect, makeRelease, publish, serveRelease, testTrust } from '../helpers/update-release.js';
import { csrfFrom, GOOD_PASSWORD, HOST } from '../helpers/web.js';
import { startWebProcess } from '../helpers/web-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

function get(base: string, path: string): Promise<{ status: number; location: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers: { host: HOST }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? ''), body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

interface Answer {
  status: number;
  location: string;
  body: string;
}

/** A browser's request to the page process: cookies kept in `jar`, a form posted urlencoded. */
function send(
  base: string,
  jar: Map<string, string>,
  path: string,
  form?: Record<string, string>,
): Promise<Answer> {
  const payload = form ? new URLSearchParams(form).toString() : undefined;
  const headers: Record<string, string> = {
    host: HOST,
    cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
  };
  if (payload !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: form ? 'POST' : 'GET', headers, agent: false }, (res) => {
      keepCookies(jar, res.headers);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? ''), body }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function keepCookies(jar: Map<string, string>, headers: IncomingHttpHeaders): void {
  for (const line of headers['set-cookie'] ?? []) {
    const [pair = ''] = line.split(';');
    const i = pair.indexOf('=');
    if (i > 0) jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
}

/** A real updater (version 1.0.0) whose release server on loopback offers 1.1.0. */
async function updater(t: Test, dir: string): Promise<UpdateService> {
  publish(join(dir, 'rel'), makeRelease('1.1.0', { notes: 'Tor 0.4.9.\n<b>not bold</b>' }));
  const server = await serveRelease(join(dir, 'rel'));
  t.teardown(() => server.close());
  const settings: UpdateConfig = { onion: server.base, mirror: null, policy: 'ask' };
  const service = new UpdateService({
    dir: join(dir, 'updates'),
    image: { version: '1.0.0', compatible: 'onionbox-test', built: new Date(Date.now() - 3 * 86_400_000) },
    trust: testTrust(),
    settings: () => settings,
    connect: loopbackConnect,
    installer: { install: async () => undefined, restart: async () => undefined },
    log: pino({ level: 'silent' }),
    bootId: async () => '11111111-1111-4111-8111-111111111111',
    freeBytes: async () => 1e9,
    torReady: () => false, // no scheduled check: only the page's "Check now"
  });
  await service.start();
  t.teardown(() => service.stop());
  return service;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

t.test(
  'the page process: pages from the box over the page socket, per-address limit, updates, memory',
  async (t) => {
    // the unit runs the built page (dist/web/main.js): built here into a directory of this test's own, with
    // this checkout's node_modules beside it (the checkout's dist/ is npm run build's, not the tests')
    const opt = tmpDir(t, 'onionbox-webbuild-');
    execFileSync(
      process.execPath,
      [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(opt, 'dist')],
      {
        timeout: 600_000,
      },
    );
    symlinkSync(join(ROOT, 'node_modules'), join(opt, 'node_modules'));
    // dist/web/*.js finds its views and static files in ../../web/ (web/app.ts assetDir)
    symlinkSync(join(ROOT, 'web'), join(opt, 'web'));
    t.ok(existsSync(join(opt, 'dist/web/main.js')), 'the page built');
    const dir = tmpDir(t, 'onionbox-webproc-');
    const box = await TestBox.create(dir);
    t.teardown(() => box.stop());
    const updates = await updater(t, tmpDir(t, 'onionbox-webproc-upd-'));
    const server = new IpcServer(webSocketPath(dir));
    const warnings = () => ["This box's software is old (a test's words)."];
    registerWebCommands(server, box.controller, (l) => box.config.onChange(l), {
      status: () => updates.status(),
      warnings,
      check: () => updates.check(),
      install: () => updates.install(),
      setPolicy: async () => undefined,
    });
    await server.start();
    t.teardown(() => server.stop());

    const web = await startWebProcess(dir, '127.0.0.1:0', 60_000, `${opt}/`);
    t.teardown(() => web.stop());
    const pid = web.child.pid ?? 0;
    t.match(web.address, /^http:\/\/127\.0\.0\.1:[0-9]+$/);

    const home = await get(web.address, '/');
    t.equal(home.status, 303, 'an unclaimed box sends the browser to the claim page');
    t.equal(home.location, '/claim');
    const claim = await get(web.address, '/claim');
    t.equal(claim.status, 200);
    t.match(claim.body, /Claim this box/);
    const wrongHost = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${web.address}/claim`,
        { headers: { host: 'evil.example' }, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    t.equal(wrongHost, 421, 'the Host allowlist holds in the page process');
    const idle = rssKiB(pid);

    // At most 8 connections per address (WEB_LIMITS), in the process that now parses HTTP.
    const url = new URL(web.address);
    const sockets: Socket[] = [];
    const closed: boolean[] = [];
    for (let i = 0; i < WEB_LIMITS.maxConnectionsPerAddress + 1; i++) {
      const s = connect(Number(url.port), url.hostname);
      const n = i;
      closed[n] = false;
      s.on('close', () => {
        closed[n] = true;
      });
      s.on('error', () => undefined);
      sockets.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    // under load the close can take a while: wait for the ninth, then a little longer for any other
    for (let i = 0; i < 200 && !closed[WEB_LIMITS.maxConnectionsPerAddress]; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500));
    t.equal(closed.filter((c) => c).length, 1, 'the ninth connection from one address is closed at once');
    t.equal(closed[WEB_LIMITS.maxConnectionsPerAddress], true);
    for (const s of sockets) s.destroy();
    // the page frees the address's slots as it sees those closes (under load, not at once): until then a
    // new connection is still the ninth and is reset, so wait until a page loads again
    for (let i = 0; ; i++) {
      try {
        await get(web.address, '/claim');
        break;
      } catch (err) {
        if (i >= 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    // Memory: idle, then the peak over 50 page loads.
    let peak = rssKiB(pid);
    for (let i = 0; i < 50; i++) {
      await get(web.address, '/claim');
      peak = Math.max(peak, rssKiB(pid));
    }
    t.comment(
      `onionbox-web RSS: idle ${(idle / 1024).toFixed(1)} MiB, during page loads ${(peak / 1024).toFixed(1)} MiB`,
    );
    t.ok(peak < 128 * 1024, 'under the unit MemoryMax (128 MiB)');

    // The Updates section (issue 20): the owner logs in, sees the running version and the warning, and
    // "Check now" runs the updater in onionboxd through the page socket.
    t.equal(await box.controller.claim({ password: GOOD_PASSWORD, code: box.claimCode }), 'claimed');
    const jar = new Map<string, string>();
    // the page hears of the claim through the socket's Mirror stream: until then it still offers the claim
    let owner = await send(web.address, jar, '/');
    for (let i = 0; i < 200 && owner.location !== '/login'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      owner = await send(web.address, jar, '/');
    }
    t.equal(owner.location, '/login', 'the page knows the box is claimed');
    const loginPage = await send(web.address, jar, '/login');
    const login = await send(web.address, jar, '/login', {
      password: GOOD_PASSWORD,
      _csrf: csrfFrom(loginPage.body),
    });
    t.equal(login.status, 303, 'logged in');
    const status = await send(web.address, jar, '/');
    t.equal(status.status, 200);
    t.match(status.body, /href="\/update">Updates<\/a>/, 'the navigation has the Updates link');
    t.match(
      status.body,
      /class="update-warning"[^>]*>This box&#39;s software is old/,
      "the updater's warning",
    );
    const before = await send(web.address, jar, '/update');
    t.equal(before.status, 200, 'the update page is there');
    t.match(before.body, /id="running">1\.0\.0 \(built \d{4}-\d\d-\d\d, 3 days ago\)/);
    t.match(before.body, /has not checked for an update yet/);
    const check = await send(web.address, jar, '/update/check', { _csrf: csrfFrom(before.body) });
    t.equal(check.status, 303);
    t.equal(check.location, '/update?done=update-checking');
    let after = await send(web.address, jar, '/update');
    for (let i = 0; i < 200 && !/<h2>Version 1\.1\.0/.test(after.body); i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await send(web.address, jar, '/update');
    }
    t.match(after.body, /<h2>Version 1\.1\.0<\/h2>/, 'the available update, from onionboxd');
    t.match(after.body, /&lt;b&gt;not bold&lt;\/b&gt;/, 'its notes, escaped');
    t.match(after.body, /1\.1\.0 is available from the onion service/, 'the last check in words');
    t.equal(updates.status().phase, 'available');
    const noCsrf = await send(web.address, jar, '/update/install', {});
    t.equal(noCsrf.status, 403, 'a form without the CSRF token changes nothing');
    t.equal(updates.status().phase, 'available');

    t.equal(await web.stop(), 0, 'SIGTERM ends it cleanly');
  },
);
