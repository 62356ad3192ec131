/**
 * The page in its own process (issue 23), started as its unit starts it (test/helpers/web-process.ts):
 * it answers over real TCP from what onionboxd's page socket tells it, holds at most 8 connections per
 * address, and its memory is measured (BENCHMARKS.md). Needs `npm run build` (dist/web/main.js).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { IpcServer, webSocketPath } from '../../firmware/control/socket.js';
import { registerWebCommands } from '../../firmware/control/web-commands.js';
import { WEB_LIMITS } from '../../web/app.js';
import { TestBox } from '../helpers/test-box.js';
import { tmpDir } from '../helpers/tmp.js';
import { HOST } from '../helpers/web.js';
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

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

t.test('the page process: pages from the box over the page socket, per-address limit, memory', async (t) => {
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
  const server = new IpcServer(webSocketPath(dir));
  registerWebCommands(server, box.controller, (l) => box.config.onChange(l));
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

  t.equal(await web.stop(), 0, 'SIGTERM ends it cleanly');
});
