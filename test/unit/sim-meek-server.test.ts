/**
 * The simulated world's meek server (scripts/privnet/meek-server.ts) on loopback: an HTTP server serving
 * meek's protocol in front of a TCP upstream the test owns, asked as lyrebird's meek_lite client asks
 * (POST, X-Session-Id, the body upstream, the answer downstream). Plain HTTP here; in the world it sits
 * behind the meek front's TLS. The meek_lite bridge line and the reflector's arguments (pure) too. The
 * whole tunnel with tor on both ends is test/e2e/sim-censored-meek.test.ts.
 */
import { createServer as createHttpServer, request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { parseBridgeLine } from '../../firmware/tor/grammar.js';
import { MEEK_MAX_PAYLOAD, MeekServer, type MeekServerOptions } from '../../scripts/privnet/meek-server.js';
import { MEEK_BRIDGE_HOST, meekBridgeArgs, meekBridgeLine } from '../../scripts/sim/meek-bridge.js';

interface Upstream {
  server: Server;
  port: number;
  /** The upstream's side of each connection, in the order they came. */
  conns: Socket[];
  /** Bytes each connection received. */
  received: Buffer[][];
  next: () => Promise<Socket>;
}

async function upstream(t: Test): Promise<Upstream> {
  const conns: Socket[] = [];
  const received: Buffer[][] = [];
  const waiting: ((s: Socket) => void)[] = [];
  const server = createServer((s) => {
    const got: Buffer[] = [];
    received.push(got);
    conns.push(s);
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', () => undefined);
    waiting.shift()?.(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const c of conns) c.destroy();
    server.close();
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    conns,
    received,
    next: () => {
      const at = conns.length;
      return new Promise((r) => {
        if (conns[at]) r(conns[at]);
        else waiting.push(r);
      });
    },
  };
}

async function meekFront(
  t: Test,
  up: Upstream,
  o: Partial<MeekServerOptions> = {},
): Promise<{ port: number; meek: MeekServer; logs: string[] }> {
  const logs: string[] = [];
  const meek = new MeekServer({
    upstreamFor: (host) => (host === 'reflector.test' ? () => connect(up.port, '127.0.0.1') : undefined),
    log: (l) => logs.push(l),
    ...o,
  });
  const http = createHttpServer((req, res) => void meek.handle(req, res));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    meek.stop();
    http.closeAllConnections();
    http.close();
  });
  return { port: (http.address() as AddressInfo).port, meek, logs };
}

interface Answer {
  status: number;
  body: Buffer;
}

function post(
  port: number,
  body: Buffer | string,
  o: { id?: string | null; host?: string; method?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { Host: o.host ?? 'reflector.test' };
  if (o.id !== null) headers['X-Session-Id'] = o.id ?? 'session-1';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: o.method ?? 'POST', path: '/', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function waitFor(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (cond() ? resolve() : setTimeout(check, 5));
    check();
  });
}

t.test('a session: the body goes upstream, the answer carries what the upstream sent', async (t) => {
  const up = await upstream(t);
  const { port, logs } = await meekFront(t, up);
  const conn = up.next();
  const first = post(port, 'hello upstream');
  const s = await conn;
  await waitFor(() => Buffer.concat(up.received[0] ?? []).toString() === 'hello upstream');
  s.write('hello client');
  const a = await first;
  t.equal(a.status, 200);
  t.equal(a.body.toString(), 'hello client', 'the bytes the upstream sent meanwhile');

  // a poll (no body) with nothing pending: answered empty after the turnaround
  const poll = await post(port, '');
  t.same([poll.status, poll.body.length], [200, 0], 'an empty poll, an empty answer');
  // the same id, the same upstream connection
  s.write('later');
  await new Promise((r) => setTimeout(r, 20));
  const b = await post(port, 'more');
  t.equal(b.body.toString(), 'later', 'what came between two requests waits for the next');
  await waitFor(() => Buffer.concat(up.received[0] ?? []).toString() === 'hello upstreammore');
  t.equal(up.conns.length, 1, 'one TCP connection per session');

  // a second id: a second connection
  const other = up.next();
  const c = post(port, 'x', { id: 'session-2' });
  (await other).write('y');
  t.equal((await c).body.toString(), 'y');
  t.equal(up.conns.length, 2);
  t.match(logs, [/session opened for reflector\.test \(1 now\)/, /session opened .* \(2 now\)/]);
});

t.test('requests that are not meek get a status and open nothing', async (t) => {
  const up = await upstream(t);
  const { port, meek } = await meekFront(t, up, { maxPayload: 1024 });
  t.equal((await post(port, 'x', { id: null })).status, 400, 'no X-Session-Id');
  t.equal((await post(port, 'x', { id: 'bad id!' })).status, 400, 'an id outside the alphabet');
  t.equal((await post(port, '', { method: 'GET' })).status, 400, 'GET');
  t.equal(
    (await post(port, 'x', { host: 'other.test' })).status,
    404,
    'a reflector this front does not serve',
  );
  t.equal((await post(port, Buffer.alloc(1025))).status, 413, 'a body over the payload limit');
  t.equal(meek.size, 0, 'no session');
  t.equal(up.conns.length, 0, 'no upstream connection');
  t.equal((await post(port, Buffer.alloc(1024))).status, 200, 'a body at the limit is taken');
  t.equal(meek.size, 1);
});

t.test('at most maxSessions at once; idle ones expire and their upstream is closed', async (t) => {
  const up = await upstream(t);
  let now = 1_000_000;
  const { port, meek, logs } = await meekFront(t, up, { maxSessions: 2, idleMs: 120_000, now: () => now });
  t.equal((await post(port, 'a', { id: 'one' })).status, 200);
  t.equal((await post(port, 'b', { id: 'two' })).status, 200);
  t.equal((await post(port, 'c', { id: 'three' })).status, 503, 'a third session is refused');
  t.equal(up.conns.length, 2);
  t.match(logs.at(-1), /refused a session/);

  now += 60_000;
  t.equal((await post(port, '', { id: 'two' })).status, 200, 'session two is used again');
  now += 60_001;
  t.equal(meek.sweep(), 1, 'session one was idle for 120 s: expired');
  t.equal(meek.size, 1);
  await waitFor(() => up.conns[0]?.readableEnded === true || up.conns[0]?.destroyed === true);
  t.pass("session one's upstream connection was closed");
  t.equal((await post(port, 'd', { id: 'three' })).status, 200, 'room for a new session');
  now += 120_000;
  t.equal(meek.sweep(), 2);
  t.equal(meek.size, 0);
});

t.test('downstream is bounded: the upstream is paused, every byte arrives in order', async (t) => {
  const up = await upstream(t);
  const maxPending = 4 * MEEK_MAX_PAYLOAD;
  const { port, meek } = await meekFront(t, up, { maxPending });
  const conn = up.next();
  t.equal((await post(port, 'go')).status, 200);
  const s = await conn;
  const total = 1 << 20;
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
  s.write(data);
  // the upstream's kernel buffers fill, the server's pending stays bounded (one chunk over at most)
  await new Promise((r) => setTimeout(r, 200));
  const pending = meek.pendingBytes('reflector.test', 'session-1');
  t.ok(pending >= maxPending, `the server holds ${pending} bytes`);
  t.ok(pending <= maxPending + MEEK_MAX_PAYLOAD, `no more than the bound and one chunk (${pending})`);

  const got: Buffer[] = [];
  let size = 0;
  let polls = 0;
  while (size < total && polls < 1000) {
    polls += 1;
    const a = await post(port, '');
    t.ok(a.body.length <= MEEK_MAX_PAYLOAD, 'never more than one payload in an answer');
    got.push(a.body);
    size += a.body.length;
    t.ok(meek.pendingBytes('reflector.test', 'session-1') <= maxPending + MEEK_MAX_PAYLOAD);
  }
  t.equal(size, total, `all of it in ${polls} answers`);
  t.ok(Buffer.concat(got).equals(data), 'in order, unchanged');
});

t.test('an upstream that closes: what is pending is handed over, then the id is refused', async (t) => {
  const up = await upstream(t);
  const { port, meek } = await meekFront(t, up);
  const conn = up.next();
  t.equal((await post(port, 'hi')).status, 200);
  const s = await conn;
  s.end('last words');
  await new Promise((r) => setTimeout(r, 50));
  const a = await post(port, '');
  t.same([a.status, a.body.toString()], [200, 'last words'], 'the last bytes still reach the client');
  t.equal((await post(port, '')).status, 404, 'then the client is told the connection is gone');
  t.equal((await post(port, 'retry')).status, 404, 'a retry with the same id opens nothing new');
  t.equal(up.conns.length, 1, 'never a second upstream connection for one id');
  t.equal(meek.size, 1, 'kept (refusing) until it expires');
});

t.test('the meek_lite bridge line the world gives a box, and the reflector arguments', async (t) => {
  const bridge = {
    address: '198.18.0.17',
    orPort: 5010,
    fingerprint: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01',
  };
  const line = meekBridgeLine(bridge, 'front.sim.test');
  t.equal(
    line,
    'meek_lite 192.0.2.20:80 ABCDEF0123456789ABCDEF0123456789ABCDEF01 url=https://meek-bridge.sim.test/ front=front.sim.test',
  );
  const parsed = parseBridgeLine(line);
  t.equal(parsed.transport, 'meek_lite', "tor's grammar accepts it");
  t.same(parsed.args, [
    ['url', `https://${MEEK_BRIDGE_HOST}/`],
    ['front', 'front.sim.test'],
  ]);
  t.same(meekBridgeArgs(bridge), ['--bridge', '198.18.0.17:5010', '--bridge-host', MEEK_BRIDGE_HOST]);
});
