import { type IncomingMessage, request } from 'node:http';
import t from 'tap';
import { claimed, webHarness } from '../helpers/web.js';

function open(port: number, cookie: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/events', headers: { host: '127.0.0.1', cookie } }, resolve)
      .on('error', reject)
      .end();
  });
}

function nextEvent(res: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      const m = /event: status\ndata: (.*)\n\n/.exec(buf);
      if (!m) return;
      res.off('data', onData);
      resolve(JSON.parse(m[1] ?? '{}') as Record<string, unknown>);
    };
    res.on('data', onData);
    res.once('end', () => reject(new Error('stream ended')));
  });
}

t.test('live status over Server-Sent Events follows the box and ends with the session', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (h.app.server.address() as { port: number }).port;

  const anon = await open(port, '');
  t.equal(anon.statusCode, 303, 'no session, no stream');
  anon.resume();

  const res = await open(port, c.cookieHeader());
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/event-stream/);
  t.match(res.headers['content-security-policy'], /default-src 'none'/, 'security headers on the stream too');
  const first = await nextEvent(res);
  t.equal(first.headline, 'Connecting to Tor: 0 %');
  t.equal(h.box.listenerCount(), 1);
  const second = nextEvent(res);
  h.box.setBootstrap(45, 'Loading relay descriptors');
  t.match(await second, {
    headline: 'Connecting to Tor: 45 %',
    progress: 45,
    torSummary: 'Loading relay descriptors',
  });
  const third = nextEvent(res);
  h.box.setBootstrap(100, 'Done');
  t.match(await third, { state: 'routing', tone: 'ok', progress: null, transient: false });

  const ended = new Promise<void>((resolve) => res.once('end', () => resolve()));
  res.resume();
  await c.post('/logout', {}, '/');
  h.box.setBootstrap(100, 'Done, again'); // any status change: the ended session's stream notices
  await ended;
  t.equal(h.box.listenerCount(), 0, 'unsubscribed when the session ended');
});

t.test('closing the app ends open streams', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (h.app.server.address() as { port: number }).port;
  const res = await open(port, c.cookieHeader());
  await nextEvent(res);
  const ended = new Promise<void>((resolve) => res.once('close', () => resolve()));
  res.resume();
  await h.app.close();
  await ended;
  t.equal(h.box.listenerCount(), 0);
});
