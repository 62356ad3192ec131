/**
 * The "is this Tor?" check never follows a redirect (`request` 2.88.2 drops the SOCKS agent on an
 * http<->https redirect, CVE-2023-28155: the next hop would go around tor). A minimal SOCKS5 server on
 * loopback stands in for tor's SocksPort; the check service answers with a redirect.
 */
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import t from 'tap';
import { TorCheck } from '../../firmware/tor/check.js';

function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

/** SOCKS5, no auth, CONNECT to a domain name or IPv4 address; counts the connections it relayed. */
function socksServer(): { server: Server; connects: string[] } {
  const connects: string[] = [];
  const server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    let stage = 0;
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2 && buf.length >= 2 + (buf[1] ?? 0)) {
        buf = buf.subarray(2 + (buf[1] ?? 0));
        sock.write(Buffer.from([5, 0]));
        stage = 1;
      }
      if (stage === 1 && buf.length >= 5) {
        const atyp = buf[3];
        const len = atyp === 3 ? 5 + (buf[4] ?? 0) + 2 : 4 + 4 + 2;
        if (buf.length < len) return;
        const host =
          atyp === 3 ? buf.subarray(5, 5 + (buf[4] ?? 0)).toString() : [...buf.subarray(4, 8)].join('.');
        const port = buf.readUInt16BE(len - 2);
        const rest = buf.subarray(len);
        stage = 2;
        sock.off('data', onData);
        connects.push(`${host}:${port}`);
        const up = connect(port, host === 'localhost' ? '127.0.0.1' : host, () => {
          sock.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
          if (rest.length) up.write(rest);
          sock.pipe(up).pipe(sock);
        });
        up.on('error', () => sock.destroy());
      }
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
  });
  return { server, connects };
}

t.test('a redirect from the check service is not followed: the check fails', async (t) => {
  const hits: string[] = [];
  const http = createHttpServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/api/ip') {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/landed` });
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ IsTor: true, IP: '192.0.2.9' }));
    }
  });
  const port = await listen(http);
  const socks = socksServer();
  const socksPort = await listen(socks.server);
  t.teardown(() => {
    http.close();
    socks.server.close();
  });
  const check = new TorCheck({
    socks: { host: '127.0.0.1', port: socksPort },
    url: `http://127.0.0.1:${port}/api/ip`,
  });
  await t.rejects(check.run(), { code: 'OBX_ERR_TOR_CHECK_FAILED', message: /HTTP 302/ });
  t.same(hits, ['/api/ip'], 'the redirect target was never fetched');
  t.equal(socks.connects.length, 1, 'one connection, through the SOCKS port');
});

t.test('a plain answer through the SOCKS port is read', async (t) => {
  const http = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ IsTor: false, IP: '192.0.2.10' }));
  });
  const port = await listen(http);
  const socks = socksServer();
  const socksPort = await listen(socks.server);
  t.teardown(() => {
    http.close();
    socks.server.close();
  });
  const check = new TorCheck({
    socks: { host: '127.0.0.1', port: socksPort },
    url: `http://127.0.0.1:${port}/api/ip`,
  });
  t.same(await check.run(), { isTor: false, ip: '192.0.2.10' });
  t.same(socks.connects, [`127.0.0.1:${port}`]);
});
