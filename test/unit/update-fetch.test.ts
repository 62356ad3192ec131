/**
 * The small fetch of the manifest and its signature (firmware/update/fetch.ts), against loopback servers:
 * what a good server sends arrives whole; an HTTP error, a body over the cap, a server that is not HTTP, a
 * connection that fails or is cut, and a server that never answers are each one named refusal
 * (OBX_ERR_UPDATE_FETCH_FAILED with the URL), and nothing of the body is returned.
 */
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { fetchSmall } from '../../firmware/update/fetch.js';
import type { Connect } from '../../firmware/update/socks5.js';
import { loopbackConnect } from '../helpers/update-release.js';

/** A loopback server; `sockets` are destroyed at the end so close() never waits. */
async function listen(t: Test, server: Server): Promise<number> {
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

async function http(t: Test, answer: (res: ServerResponse) => void): Promise<URL> {
  const port = await listen(
    t,
    createServer((_req, res) => answer(res)),
  );
  return new URL(`http://updatesxyz.onion:${port}/onionbox-rpi3.manifest.json`);
}

const fetch = (url: URL, over: { connect?: Connect; timeoutMs?: number; maxBytes?: number } = {}) =>
  fetchSmall({ url, connect: over.connect ?? loopbackConnect, maxBytes: over.maxBytes ?? 1024, ...over });

t.test('a good answer arrives whole', async (t) => {
  const agents: (string | undefined)[] = [];
  const port = await listen(
    t,
    createServer((req, res) => {
      agents.push(req.headers['user-agent']);
      res.end('{"version": "1.1.0"}');
    }),
  );
  const url = new URL(`http://updatesxyz.onion:${port}/onionbox-rpi3.manifest.json`);
  t.equal((await fetch(url)).toString(), '{"version": "1.1.0"}');
  t.equal(
    (await fetchSmall({ url, connect: loopbackConnect, maxBytes: 1024, userAgent: 'onionbox-builtin' }))
      .length,
    20,
  );
  t.same(
    agents,
    ['onionbox-update', 'onionbox-builtin'],
    "the updater's name unless the caller gives its own",
  );
});

t.test('refusals are named, with the URL, and return nothing', async (t) => {
  const missing = await http(t, (res) => {
    res.writeHead(404);
    res.end('not here');
  });
  await t.rejects(fetch(missing), {
    code: 'OBX_ERR_UPDATE_FETCH_FAILED',
    message: /updatesxyz\.onion.*HTTP 404/,
  });

  const endless = await http(t, (res) => {
    res.writeHead(200);
    const more = () => {
      if (!res.destroyed) res.write(Buffer.alloc(16 * 1024, 0x41), () => setImmediate(more));
    };
    more();
  });
  await t.rejects(fetch(endless, { maxBytes: 64 * 1024 }), {
    code: 'OBX_ERR_UPDATE_FETCH_FAILED',
    message: /longer than 65536 bytes/,
  });

  const cut = await http(t, (res) => {
    res.writeHead(200, { 'Content-Length': '1000' });
    res.write('{"version"', () => res.socket?.destroy());
  });
  await t.rejects(fetch(cut), { code: 'OBX_ERR_UPDATE_FETCH_FAILED', message: /updatesxyz\.onion/ });

  // not HTTP at all: the parser's error, named
  const garbage = await listen(
    t,
    createTcpServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n')),
  );
  await t.rejects(fetch(new URL(`http://updatesxyz.onion:${garbage}/m.json`)), {
    code: 'OBX_ERR_UPDATE_FETCH_FAILED',
    message: /updatesxyz\.onion/,
  });
});

t.test('a connect that fails is named; one that is already an ObxError keeps its code', async (t) => {
  const url = new URL('http://updatesxyz.onion/m.json');
  await t.rejects(
    fetch(url, {
      connect: async () => {
        throw new Error('ECONNREFUSED 127.0.0.1:9050');
      },
    }),
    { code: 'OBX_ERR_UPDATE_FETCH_FAILED', message: /updatesxyz\.onion.*ECONNREFUSED/ },
  );
  const { obxError } = await import('../../firmware/errors.js');
  await t.rejects(
    fetch(url, {
      connect: async () => {
        throw obxError('UPDATE_SOCKS_FAILED', 'onion service descriptor not found');
      },
    }),
    { code: 'OBX_ERR_UPDATE_SOCKS_FAILED', message: /descriptor not found/ },
  );
});

t.test('a server that never answers: the deadline, and the connection is closed', async (t) => {
  const held: Socket[] = [];
  const port = await listen(
    t,
    createTcpServer((s) => {
      held.push(s);
      s.resume();
    }),
  );
  let closed = false;
  const watching: Connect = async (url) => {
    const s = await loopbackConnect(url);
    s.once('close', () => {
      closed = true;
    });
    return s;
  };
  await t.rejects(
    fetch(new URL(`http://updatesxyz.onion:${port}/m.json`), { connect: watching, timeoutMs: 200 }),
    {
      code: 'OBX_ERR_UPDATE_FETCH_FAILED',
      message: /no answer within 200 ms/,
    },
  );
  for (let i = 0; i < 200 && !closed; i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(closed, 'the socket is destroyed after the deadline');
  t.equal(held.length, 1);
});
