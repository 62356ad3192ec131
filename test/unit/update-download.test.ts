import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { downloadBundle, partPath } from '../../firmware/update/download.js';
import { type Connect, socks5Connect, torConnect } from '../../firmware/update/socks5.js';

const body = randomBytes(256 * 1024);
const sha256 = createHash('sha256').update(body).digest('hex');

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function serve(t: Test, handler: Handler): Promise<{ port: number; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, requests };
}

/** The test's connection: plain loopback to whatever port the URL names. */
const loopback: Connect = (url) =>
  new Promise((resolve, reject) => {
    const s = connect(Number(url.port), '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'obx-update-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'bundle.raucb');
}

/** Serves `body` honouring Range (206), optionally cutting the connection after `cut` bytes. */
function ranged(cutFirst?: number): Handler {
  return (req, res, n) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const slice = body.subarray(start);
    res.writeHead(m ? 206 : 200, {
      'Content-Length': slice.length,
      ...(m ? { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (n === 1 && cutFirst !== undefined) {
      res.write(slice.subarray(0, cutFirst), () => setTimeout(() => res.socket?.destroy(), 20));
    } else {
      res.end(slice);
    }
  };
}

const opts = (port: number, dest: string) => ({
  url: new URL(`http://127.0.0.1:${port}/onionbox-1.2.0.raucb`),
  dest,
  size: body.length,
  sha256,
  connect: loopback,
  stallMs: 5000, // the stall tests set their own; a loaded test machine must not stall a good transfer
  attempts: 3,
});

t.test('a whole download lands in place, checked, with no .part left', async (t) => {
  const { port, requests } = await serve(t, ranged());
  const dest = tmp(t);
  const progress: number[] = [];
  await downloadBundle({ ...opts(port, dest), onProgress: (done) => progress.push(done) });
  t.same(readFileSync(dest), body);
  t.notOk(existsSync(partPath(dest)));
  t.equal(requests.length, 1);
  t.equal(requests[0]?.headers.range, undefined);
  t.equal(requests[0]?.url, '/onionbox-1.2.0.raucb');
  t.equal(progress.at(-1), body.length);
});

t.test('a drop resumes with Range (206) from what is on disk', async (t) => {
  const { port, requests } = await serve(t, ranged(100_000));
  const dest = tmp(t);
  await downloadBundle(opts(port, dest));
  t.same(readFileSync(dest), body);
  t.equal(requests.length, 2);
  t.match(requests[1]?.headers.range, /^bytes=\d+-$/);
  t.ok(
    Number(/\d+/.exec(requests[1]?.headers.range ?? '')?.[0]) >= 100_000 - 65536,
    'resumed, not restarted',
  );
});

t.test('a partial file left by a power cut is resumed on the next run', async (t) => {
  const { port, requests } = await serve(t, ranged());
  const dest = tmp(t);
  writeFileSync(partPath(dest), body.subarray(0, 12345));
  await downloadBundle(opts(port, dest));
  t.same(readFileSync(dest), body);
  t.equal(requests[0]?.headers.range, 'bytes=12345-');
});

t.test('a server that ignores Range restarts cleanly from 0', async (t) => {
  const { port, requests } = await serve(t, (_req, res, n) => {
    res.writeHead(200, { 'Content-Length': body.length });
    if (n === 1) res.write(body.subarray(0, 50_000), () => setTimeout(() => res.socket?.destroy(), 20));
    else res.end(body);
  });
  const dest = tmp(t);
  await downloadBundle(opts(port, dest));
  t.same(readFileSync(dest), body, 'no duplicated bytes');
  t.match(requests[1]?.headers.range, /^bytes=/);
});

t.test('a 206 for another range than asked starts over', async (t) => {
  const { port, requests } = await serve(t, (req, res, n) => {
    if (n === 2) {
      res.writeHead(206, { 'Content-Range': `bytes 0-${body.length - 1}/${body.length}` });
      res.end(body);
      return;
    }
    ranged(n === 1 ? 40_000 : undefined)(req, res, n);
  });
  const dest = tmp(t);
  await downloadBundle(opts(port, dest));
  t.same(readFileSync(dest), body);
  t.equal(requests.length, 3);
  t.equal(requests[2]?.headers.range, undefined, 'the third request asks for the whole file');
});

t.test('a server that sends forever is cut at the cap; the partial file is removed', async (t) => {
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(16384, 1);
    const more = () => {
      while (res.write(chunk)) {
        /* until the socket pushes back */
      }
      res.once('drain', more);
    };
    res.on('error', () => undefined);
    more();
  });
  const dest = tmp(t);
  await t.rejects(downloadBundle(opts(port, dest)), { code: 'OBX_ERR_UPDATE_DOWNLOAD_OVERSIZE' });
  t.notOk(existsSync(partPath(dest)));
  t.notOk(existsSync(dest));
});

t.test('a Content-Length over the cap is refused before any byte is written', async (t) => {
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': body.length + 1 });
    res.end(Buffer.concat([body, Buffer.from('x')]));
  });
  const dest = tmp(t);
  await t.rejects(downloadBundle(opts(port, dest)), { code: 'OBX_ERR_UPDATE_DOWNLOAD_OVERSIZE' });
  t.notOk(existsSync(partPath(dest)));
});

t.test('a server that stalls: the stall timeout, each retry resumes, then a named error', async (t) => {
  const { port, requests } = await serve(t, (req, res) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    res.writeHead(m ? 206 : 200, {
      'Content-Length': body.length - start,
      ...(m ? { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    res.write(body.subarray(start, start + 1000)); // then nothing
  });
  const dest = tmp(t);
  const started = Date.now();
  await t.rejects(downloadBundle({ ...opts(port, dest), stallMs: 300 }), {
    code: 'OBX_ERR_UPDATE_DOWNLOAD_STALLED',
  });
  t.ok(Date.now() - started < 5000);
  t.equal(requests.length, 3);
  t.same(readFileSync(partPath(dest)), body.subarray(0, 3000), 'kept for resume, three pieces in order');
  t.notOk(existsSync(dest));
});

t.test('a server that never answers the request stalls too', async (t) => {
  const { port } = await serve(t, () => undefined);
  const dest = tmp(t);
  await t.rejects(downloadBundle({ ...opts(port, dest), attempts: 1, stallMs: 300 }), {
    code: 'OBX_ERR_UPDATE_DOWNLOAD_STALLED',
  });
});

t.test('a hash mismatch removes the file and installs nothing', async (t) => {
  const other = Buffer.from(body);
  other[1000] = (other[1000] ?? 0) ^ 0xff;
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': other.length });
    res.end(other);
  });
  const dest = tmp(t);
  writeFileSync(dest, 'the previous bundle');
  await t.rejects(downloadBundle(opts(port, dest)), { code: 'OBX_ERR_UPDATE_HASH_MISMATCH' });
  t.notOk(existsSync(partPath(dest)));
  t.equal(readFileSync(dest, 'utf8'), 'the previous bundle', 'nothing replaced');
});

t.test('HTTP errors, refused connections and aborts are named', async (t) => {
  const { port, requests } = await serve(t, (_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const dest = tmp(t);
  await t.rejects(downloadBundle(opts(port, dest)), {
    code: 'OBX_ERR_UPDATE_DOWNLOAD_FAILED',
    message: /404/,
  });
  t.equal(requests.length, 1, 'an HTTP error is not retried');
  const closed = createTcpServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await t.rejects(downloadBundle(opts(deadPort, dest)), { code: 'OBX_ERR_UPDATE_DOWNLOAD_FAILED' });
  const aborted = AbortSignal.abort();
  await t.rejects(downloadBundle({ ...opts(port, dest), signal: aborted }), { name: 'AbortError' });
});

t.test('an existing complete .part is only verified', async (t) => {
  const { port, requests } = await serve(t, ranged());
  const dest = tmp(t);
  writeFileSync(partPath(dest), body);
  await downloadBundle(opts(port, dest));
  t.equal(requests.length, 0);
  t.same(readFileSync(dest), body);
  writeFileSync(partPath(dest), Buffer.concat([body, body]));
  await downloadBundle(opts(port, dest));
  t.equal(requests.length, 1, 'a .part longer than the bundle is started over');
  t.same(readFileSync(dest), body);
});

/** A tiny SOCKS5 server (username/password only) that connects every request to 127.0.0.1. */
async function socksServer(
  t: Test,
  reply = 0,
): Promise<{ port: number; seen: { user: string; pass: string; host: string; port: number }[] }> {
  const seen: { user: string; pass: string; host: string; port: number }[] = [];
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let stage = 0;
    let user = '';
    let pass = '';
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2 && buf.length >= 2 + (buf[1] ?? 0)) {
        const methods = [...buf.subarray(2, 2 + (buf[1] ?? 0))];
        buf = buf.subarray(2 + (buf[1] ?? 0));
        client.write(Buffer.from([5, methods.includes(2) ? 2 : 0xff]));
        stage = 1;
      }
      if (stage === 1 && buf.length >= 2) {
        const ul = buf[1] ?? 0;
        if (buf.length < 3 + ul) return;
        const pl = buf[2 + ul] ?? 0;
        if (buf.length < 3 + ul + pl) return;
        user = buf.subarray(2, 2 + ul).toString();
        pass = buf.subarray(3 + ul, 3 + ul + pl).toString();
        buf = buf.subarray(3 + ul + pl);
        const ok = pass === 'onionbox';
        client.write(Buffer.from([1, ok ? 0 : 1]));
        if (!ok) return void client.end();
        stage = 2;
      }
      if (stage === 2 && buf.length >= 5) {
        const hl = buf[4] ?? 0;
        if (buf.length < 7 + hl) return;
        const host = buf.subarray(5, 5 + hl).toString();
        const port = (buf[5 + hl] ?? 0) * 256 + (buf[6 + hl] ?? 0);
        const rest = buf.subarray(7 + hl);
        seen.push({ user, pass, host, port });
        client.off('data', onData);
        if (reply !== 0) return void client.end(Buffer.from([5, reply, 0, 1, 0, 0, 0, 0, 0, 0]));
        const upstream = connect(port, '127.0.0.1', () => {
          client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
          if (rest.length > 0) upstream.write(rest);
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
        sockets.add(upstream);
      }
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

t.test(
  'through a SOCKS5 proxy with username/password: the download and the isolation username',
  async (t) => {
    const { port } = await serve(t, ranged(70_000));
    const socks = await socksServer(t);
    const dest = tmp(t);
    const connectTor = torConnect({ socksPort: socks.port, username: 'onionbox-update' });
    await downloadBundle({
      ...opts(port, dest),
      url: new URL(`http://updatesxyzexample.onion:${port}/b.raucb`),
      connect: connectTor,
    });
    t.same(readFileSync(dest), body);
    t.same(socks.seen, [
      { user: 'onionbox-update', pass: 'onionbox', host: 'updatesxyzexample.onion', port },
      { user: 'onionbox-update', pass: 'onionbox', host: 'updatesxyzexample.onion', port },
    ]);
  },
);

t.test('SOCKS5 refusals are named', async (t) => {
  const socks = await socksServer(t);
  const base = { proxyHost: '127.0.0.1', proxyPort: socks.port, username: 'u', host: 'x.onion', port: 80 };
  await t.rejects(socks5Connect({ ...base, password: 'wrong' }), {
    code: 'OBX_ERR_UPDATE_SOCKS_FAILED',
    message: /refused the username/,
  });
  const failing = await socksServer(t, 0xf0);
  await t.rejects(socks5Connect({ ...base, proxyPort: failing.port, password: 'onionbox' }), {
    code: 'OBX_ERR_UPDATE_SOCKS_FAILED',
    message: /descriptor not found/,
  });
  await t.rejects(socks5Connect({ ...base, password: 'onionbox', username: '' }), { message: /1-255/ });
  await t.rejects(socks5Connect({ ...base, password: 'onionbox', port: 0 }), { message: /port/ });
  // A server that accepts no authentication method, one that closes, one that says nothing.
  const noauth = createTcpServer((c) => {
    c.resume(); // read the client's close, or server.close() waits for this socket forever
    c.end(Buffer.from([5, 0xff]));
  });
  const silent = createTcpServer(() => undefined);
  const silentSockets: Socket[] = [];
  silent.on('connection', (s) => silentSockets.push(s));
  for (const s of [noauth, silent]) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of silentSockets) s.destroy();
    await new Promise((resolve) => noauth.close(resolve));
    await new Promise((resolve) => silent.close(resolve));
  });
  await t.rejects(
    socks5Connect({ ...base, password: 'p', proxyPort: (noauth.address() as AddressInfo).port }),
    { message: /does not accept username/ },
  );
  await t.rejects(
    socks5Connect({
      ...base,
      password: 'p',
      proxyPort: (silent.address() as AddressInfo).port,
      timeoutMs: 200,
    }),
    { message: /timed out/ },
  );
  // An https mirror whose far end does not speak TLS: a named failure, not a plain-text fetch.
  const plain = await serve(t, (_req, res) => res.end('not TLS'));
  await t.rejects(
    torConnect({ socksPort: socks.port, username: 'u' })(new URL(`https://mirror.example:${plain.port}/`)),
    { code: 'OBX_ERR_UPDATE_DOWNLOAD_FAILED', message: /TLS/ },
  );
  await t.rejects(torConnect({ socksPort: socks.port, username: 'u' })(new URL('ftp://x.onion/')), {
    code: 'OBX_ERR_UPDATE_DOWNLOAD_FAILED',
  });
});
