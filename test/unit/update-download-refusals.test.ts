/**
 * The bundle download's and the SOCKS client's refusals not covered elsewhere (firmware/update/download.ts,
 * socks5.ts): a server that refuses the resume range starts the next run from nothing, an owner's abort
 * ends a transfer under way, and a SOCKS port that refuses or hangs up mid-handshake is named.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { downloadBundle, partPath } from '../../firmware/update/download.js';
import { socks5Connect } from '../../firmware/update/socks5.js';
import { tmpDir } from '../helpers/tmp.js';
import { loopbackConnect } from '../helpers/update-release.js';

const body = randomBytes(64 * 1024);
const sha256 = createHash('sha256').update(body).digest('hex');

async function listen(t: Test, server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}

t.test(
  'a server that refuses the resume range (416): the partial file goes, the reason is named',
  async (t) => {
    const ranges: string[] = [];
    const port = await listen(
      t,
      createServer((req, res) => {
        ranges.push(req.headers.range ?? '');
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` });
        res.end();
      }),
    );
    const dest = join(tmpDir(t, 'obx-dl-'), 'bundle.raucb');
    writeFileSync(partPath(dest), body.subarray(0, 1000));
    await t.rejects(
      downloadBundle({
        url: new URL(`http://127.0.0.1:${port}/b.raucb`),
        dest,
        size: body.length,
        sha256,
        connect: loopbackConnect,
        attempts: 1,
      }),
      { code: 'OBX_ERR_UPDATE_DOWNLOAD_FAILED', message: /refused the range/ },
    );
    t.same(ranges, ['bytes=1000-'], 'it asked to resume from what was on disk');
    t.notOk(existsSync(partPath(dest)), 'the next run starts from nothing');
    t.notOk(existsSync(dest));
  },
);

t.test('an abort while the bundle arrives ends the transfer', async (t) => {
  const abort = new AbortController();
  const port = await listen(
    t,
    createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': body.length });
      // half the bundle, then the owner's abort, and the server keeps the connection open
      res.write(body.subarray(0, body.length / 2), () => abort.abort());
    }),
  );
  const dest = join(tmpDir(t, 'obx-dl-'), 'bundle.raucb');
  await t.rejects(
    downloadBundle({
      url: new URL(`http://127.0.0.1:${port}/b.raucb`),
      dest,
      size: body.length,
      sha256,
      connect: loopbackConnect,
      stallMs: 60_000,
      signal: abort.signal,
    }),
  );
  t.notOk(existsSync(dest), 'nothing placed');
});

t.test('a SOCKS port that refuses, or hangs up during the handshake, is named', async (t) => {
  const closed = createTcpServer();
  const deadPort = await listen(t, closed);
  await new Promise((resolve) => closed.close(resolve));
  const base = { proxyHost: '127.0.0.1', username: 'u', password: 'p', host: 'x.onion', port: 80 };
  await t.rejects(socks5Connect({ ...base, proxyPort: deadPort }), {
    code: 'OBX_ERR_UPDATE_SOCKS_FAILED',
    message: /ECONNREFUSED/,
  });
  // accepts username/password, then hangs up before answering the login
  const hangup = await listen(
    t,
    createTcpServer((c) => {
      c.on('error', () => undefined);
      c.once('data', () => {
        c.write(Buffer.from([5, 2]));
        c.once('data', () => c.end(Buffer.from([1])));
      });
    }),
  );
  await t.rejects(socks5Connect({ ...base, proxyPort: hangup }), {
    code: 'OBX_ERR_UPDATE_SOCKS_FAILED',
    message: /closed the connection/,
  });
});
