/**
 * Connection limits (issue 13): the page refuses connections beyond its cap, closes idle sockets and
 * keep-alive connections, and caps live streams; each cleanly (a closed socket or a 503), and the page
 * answers again once the abuser's connections are gone. Real sockets on loopback.
 */
import { type IncomingMessage, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { WEB_LIMITS } from '../../web/app.js';
import { claimed, HOST, webHarness } from '../helpers/web.js';

async function listen(h: Awaited<ReturnType<typeof webHarness>>): Promise<number> {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  return (h.app.server.address() as { port: number }).port;
}

/** A connection from `from` (any 127/8 address is loopback on Linux: another "device"). */
function open(port: number, from = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve(s));
    s.on('error', reject);
  });
}

/** One GET on a fresh socket: the status line, or 'closed' when the server hung up without answering. */
function probe(port: number, path = '/claim', from = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from }, () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`),
    );
    let data = '';
    s.on('data', (c) => {
      data += c.toString();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(data === '' ? 'closed' : (data.split('\r\n')[0] ?? '')));
  });
}

function closed(s: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

t.test(
  'beyond maxConnections a new connection is closed unanswered; the page answers once they go',
  async (t) => {
    const h = await webHarness(t, { limits: { maxConnections: 4 } });
    const port = await listen(h);
    const idle = await Promise.all([1, 2, 3, 4].map(() => open(port)));
    t.teardown(() => {
      for (const s of idle) s.destroy();
    });
    t.equal(await probe(port), 'closed', 'the fifth connection is refused');
    for (const s of idle) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    t.equal(await probe(port), 'HTTP/1.1 200 OK', 'the page answers again');
  },
);

t.test(
  'one address holds at most 8 connections; other devices still reach the page (issue 23)',
  async (t) => {
    const h = await webHarness(t);
    const port = await listen(h);
    t.equal(WEB_LIMITS.maxConnectionsPerAddress, 8);
    // one device opens idle connections, as many as it can: once all 128 were its own
    const idle = await Promise.all(Array.from({ length: 8 }, () => open(port, '127.0.0.7')));
    t.teardown(() => {
      for (const s of idle) s.destroy();
    });
    t.equal(await probe(port, '/claim', '127.0.0.7'), 'closed', 'its ninth is closed unanswered');
    t.equal(await probe(port, '/claim', '127.0.0.8'), 'HTTP/1.1 200 OK', 'another device is answered');
    idle.pop()?.destroy();
    await new Promise((r) => setTimeout(r, 100));
    t.equal(await probe(port, '/claim', '127.0.0.7'), 'HTTP/1.1 200 OK', 'one closed: room again');
  },
);

t.test('an idle socket is closed after connectionTimeout', async (t) => {
  const h = await webHarness(t, { limits: { connectionTimeoutMs: 300 } });
  const port = await listen(h);
  const s = await open(port);
  t.teardown(() => s.destroy());
  t.equal(await closed(s, 5000), true, 'the server hung up on a socket that sent nothing');
});

t.test('a keep-alive connection ends after maxRequestsPerSocket requests', async (t) => {
  const h = await webHarness(t, { limits: { maxRequestsPerSocket: 2 } });
  const port = await listen(h);
  const s = await open(port);
  t.teardown(() => s.destroy());
  let data = '';
  s.on('data', (c) => {
    data += c.toString();
  });
  for (let i = 0; i < 3; i++) s.write(`GET /claim HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  const t0 = Date.now();
  while (!/HTTP\/1\.1 503/.test(data) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  t.equal(data.match(/HTTP\/1\.1 200 OK/g)?.length, 2, 'two requests answered');
  t.match(data, /connection: close/i, 'the second answer ends the connection');
  t.match(data, /HTTP\/1\.1 503/, 'a third request on it is refused (Node answers 503)');
});

t.test('live streams beyond maxStreams get 503 with Retry-After', async (t) => {
  const h = await webHarness(t, { limits: { maxStreams: 2 } });
  const c = await claimed(h);
  const port = await listen(h);
  const openStream = () =>
    new Promise<IncomingMessage>((resolve, reject) => {
      request(
        { host: '127.0.0.1', port, path: '/events', headers: { host: HOST, cookie: c.cookieHeader() } },
        resolve,
      )
        .on('error', reject)
        .end();
    });
  const streams = [await openStream(), await openStream()];
  t.same(
    streams.map((s) => s.statusCode),
    [200, 200],
  );
  const third = await openStream();
  t.equal(third.statusCode, 503);
  t.equal(third.headers['retry-after'], '10');
  third.resume();
  for (const s of streams) s.destroy();
});
