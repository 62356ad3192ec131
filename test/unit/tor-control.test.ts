/**
 * The control client's authentication against fake listeners on a Unix socket: each attack a process
 * squatting tor's control port or socket could try (issue 23) is refused, and the real handshake works.
 * Each attack test passed on the old client (NULL accepted, any COOKIEFILE read, plain COOKIE sent).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { connectControl, TorControl } from '../../firmware/tor/control.js';
import { tmpDir } from '../helpers/tmp.js';

const SERVER_KEY = 'Tor safe cookie authentication server-to-controller hash';
const CLIENT_KEY = 'Tor safe cookie authentication controller-to-server hash';

const dir = tmpDir(t, 'obx-tor-control-');
const pinned = join(dir, 'control_auth_cookie');
const cookie = randomBytes(32);
writeFileSync(pinned, cookie, { mode: 0o600 });
// a file of the squatter's choosing, whose content it knows
const foreign = join(dir, 'foreign_cookie');
const foreignCookie = randomBytes(32);
writeFileSync(foreign, foreignCookie, { mode: 0o600 });

interface Fake {
  socket: string;
  /** Every line the client sent, in order. */
  received: string[];
  connections: number;
}

let n = 0;
/** A listener on a Unix socket speaking tor's control protocol with the given PROTOCOLINFO AUTH line. */
async function fakeTor(
  t: Test,
  auth: { methods: string; cookieFile?: string; knows?: Buffer },
): Promise<Fake> {
  const socket = join(dir, `control-${n++}`);
  const fake: Fake = { socket, received: [], connections: 0 };
  const server: Server = createServer((s) => {
    fake.connections++;
    let buf = '';
    let msg = Buffer.alloc(0);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        fake.received.push(line);
        if (line.startsWith('PROTOCOLINFO')) {
          const file = auth.cookieFile === undefined ? '' : ` COOKIEFILE="${auth.cookieFile}"`;
          s.write(
            `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${auth.methods}${file}\r\n250-VERSION Tor="0.4.9.3"\r\n250 OK\r\n`,
          );
        } else if (line.startsWith('AUTHCHALLENGE SAFECOOKIE ')) {
          const clientNonce = Buffer.from(line.split(' ')[2] ?? '', 'hex');
          const serverNonce = randomBytes(32);
          msg = Buffer.concat([auth.knows ?? Buffer.alloc(32), clientNonce, serverNonce]);
          const hash = createHmac('sha256', SERVER_KEY).update(msg).digest('hex');
          s.write(`250 AUTHCHALLENGE SERVERHASH=${hash} SERVERNONCE=${serverNonce.toString('hex')}\r\n`);
        } else if (line.startsWith('AUTHENTICATE')) {
          const want = createHmac('sha256', CLIENT_KEY).update(msg).digest('hex');
          const ok = line === 'AUTHENTICATE' ? auth.methods === 'NULL' : line.endsWith(want);
          s.write(ok || auth.methods === 'COOKIE' ? '250 OK\r\n' : '515 Authentication failed\r\n');
        } else if (line === 'GETINFO version') {
          s.write('250-version=0.4.9.3\r\n250 OK\r\n');
        } else s.write('250 OK\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(socket, () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return fake;
}

const client = (socket: string) => new TorControl({ endpoint: { path: socket }, cookieFile: pinned });

t.test('SAFECOOKIE over a Unix ControlSocket with the pinned cookie: authenticated', async (t) => {
  const fake = await fakeTor(t, { methods: 'COOKIE,SAFECOOKIE', cookieFile: pinned, knows: cookie });
  const c = await connectControl({ endpoint: { path: fake.socket }, cookieFile: pinned }, 5000);
  t.equal(await c.version(), '0.4.9.3');
  c.close();
  t.match(fake.received[1], /^AUTHCHALLENGE SAFECOOKIE [0-9a-f]{64}$/);
  t.match(fake.received[2], /^AUTHENTICATE [0-9a-f]{64}$/);
});

t.test('a listener offering only NULL is refused; no AUTHENTICATE without a secret is sent', async (t) => {
  const fake = await fakeTor(t, { methods: 'NULL' });
  const c = client(fake.socket);
  await c.connect();
  await t.rejects(c.authenticate(), { code: 'OBX_ERR_TOR_AUTH_NULL_REFUSED' });
  c.close();
  t.same(fake.received, ['PROTOCOLINFO 1']);
});

t.test('NULL offered beside SAFECOOKIE is refused too: our tor never accepts no secret', async (t) => {
  const fake = await fakeTor(t, { methods: 'NULL,SAFECOOKIE', cookieFile: pinned, knows: cookie });
  const c = client(fake.socket);
  await c.connect();
  await t.rejects(c.authenticate(), { code: 'OBX_ERR_TOR_AUTH_NULL_REFUSED' });
  c.close();
  t.same(fake.received, ['PROTOCOLINFO 1']);
});

t.test('connectControl does not retry a refused listener (a final answer, not a slow tor)', async (t) => {
  const fake = await fakeTor(t, { methods: 'NULL' });
  await t.rejects(connectControl({ endpoint: { path: fake.socket }, cookieFile: pinned }, 3000), {
    code: 'OBX_ERR_TOR_AUTH_NULL_REFUSED',
  });
  t.equal(fake.connections, 1);
});

t.test(
  'a listener naming another COOKIEFILE (whose content it knows) is refused before any read',
  async (t) => {
    // On the old client this authenticated: it read the squatter's file and the squatter proved knowing it.
    const fake = await fakeTor(t, {
      methods: 'COOKIE,SAFECOOKIE',
      cookieFile: foreign,
      knows: foreignCookie,
    });
    const c = client(fake.socket);
    await c.connect();
    await t.rejects(c.authenticate(), {
      code: 'OBX_ERR_TOR_COOKIE_PATH_REFUSED',
      message: /foreign_cookie/,
    });
    c.close();
    t.same(fake.received, ['PROTOCOLINFO 1'], 'no challenge, no secret');
  },
);

t.test('a listener naming no COOKIEFILE at all is refused', async (t) => {
  const fake = await fakeTor(t, { methods: 'SAFECOOKIE' });
  const c = client(fake.socket);
  await c.connect();
  await t.rejects(c.authenticate(), { code: 'OBX_ERR_TOR_COOKIE_PATH_REFUSED' });
  c.close();
});

t.test(
  'plain COOKIE (the cookie itself on the wire) is refused: the cookie never reaches the listener',
  async (t) => {
    const fake = await fakeTor(t, { methods: 'COOKIE', cookieFile: pinned });
    const c = client(fake.socket);
    await c.connect();
    await t.rejects(c.authenticate(), { code: 'OBX_ERR_TOR_AUTH_FAILED', message: /SAFECOOKIE/ });
    c.close();
    t.notOk(
      fake.received.some((l) => l.toLowerCase().includes(cookie.toString('hex'))),
      'cookie not sent',
    );
  },
);

t.test('a listener naming the pinned path without knowing the cookie is refused (server hash)', async (t) => {
  const fake = await fakeTor(t, { methods: 'SAFECOOKIE', cookieFile: pinned, knows: randomBytes(32) });
  const c = client(fake.socket);
  await c.connect();
  await t.rejects(c.authenticate(), { code: 'OBX_ERR_TOR_AUTH_FAILED', message: /server hash/ });
  c.close();
  t.notOk(fake.received.some((l) => l.startsWith('AUTHENTICATE')));
});
