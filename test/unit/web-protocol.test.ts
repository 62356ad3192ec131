/**
 * The page socket's schemas (firmware/control/web-protocol.ts), the updater's commands first (issue 20):
 * what onionboxd really sends passes; a malformed request is refused by onionboxd and a malformed reply
 * by the page's client, each with an error that names the field, and neither reaches the other side.
 */
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  type IpcHandler,
  IpcServer,
  type IpcStreamHandler,
  webSocketPath,
} from '../../firmware/control/socket.js';
import { mirrorOf, registerWebCommands } from '../../firmware/control/web-commands.js';
import {
  checked,
  type Mirror,
  MirrorSchema,
  replyOf,
  UpdateStatusSchema,
  WEB_COMMANDS,
  type WebCommand,
} from '../../firmware/control/web-protocol.js';
import { isObxError, ObxError } from '../../firmware/errors.js';
import { disabledUpdates } from '../../firmware/phases/update.js';
import type { UpdateStatus } from '../../firmware/update/service.js';
import { BoxClient } from '../../web/lib/box-client.js';
import { TestBox } from '../helpers/test-box.js';
import { tmpDir } from '../helpers/tmp.js';

const AVAILABLE: UpdateStatus = {
  enabled: true,
  disabledReason: null,
  phase: 'downloading',
  running: '1.0.0',
  compatible: 'onionbox-rpi3',
  built: '2026-06-01T00:00:00.000Z',
  target: '1.1.0',
  result: null,
  failed: ['0.9.9'],
  lastCheck: {
    at: '2026-12-07T03:12:00.000Z',
    ok: true,
    result: '1.1.0 is available from the onion service',
  },
  nextCheck: '2026-12-08T03:12:00.000Z',
  available: {
    version: '1.1.0',
    released: '2026-12-06T00:00:00.000Z',
    expires: '2027-01-05T00:00:00.000Z',
    notes: 'Tor 0.4.9.\nFixes.',
    size: 123_456_789,
    source: 'the onion service',
  },
  progress: { done: 1024, total: 123_456_789 },
  policy: 'ask',
};

/** Throws what `checked` throws, or fails the test. */
function refusal(fn: () => unknown): ObxError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ObxError) return err;
    throw err;
  }
  throw new Error('accepted');
}

t.test('the updater status schema takes what onionboxd sends: on, off, mid-download', async (t) => {
  const off = disabledUpdates(
    { version: '1.0.0', compatible: 'onionbox-rpi3', built: null },
    'no update source is configured',
  ).status();
  for (const s of [AVAILABLE, off, { ...AVAILABLE, phase: 'fell-back', available: null, progress: null }]) {
    t.same(checked(UpdateStatusSchema, s, 'status'), s, s.phase);
  }
});

t.test('a malformed update reply is refused with the field named, and nothing of it is used', async (t) => {
  const box = await TestBox.create(tmpDir(t, 'onionbox-proto-'));
  t.teardown(() => box.stop());
  const mirror = mirrorOf(box.controller);
  const reply = (cmd: WebCommand, value: unknown) =>
    refusal(() => checked(replyOf(cmd), { value, mirror }, `${cmd} reply`, 'INTERNAL'));

  const bad: [string, unknown, RegExp][] = [
    ['an unknown phase', { ...AVAILABLE, phase: 'exploded' }, /\/value\/phase/],
    ['negative progress', { ...AVAILABLE, progress: { done: -1, total: 10 } }, /\/value\/progress/],
    [
      'notes over the manifest cap',
      { ...AVAILABLE, available: { ...AVAILABLE.available, notes: 'x'.repeat(4001) } },
      /\/value\/available/,
    ],
    ['a field the page does not know', { ...AVAILABLE, secret: 'key' }, /\/value\/secret/],
    ['no policy', { ...AVAILABLE, policy: undefined }, /\/value\/policy/],
    ['a policy nobody chose', { ...AVAILABLE, policy: 'always' }, /\/value\/policy/],
    ['failed versions as text', { ...AVAILABLE, failed: '0.9.9' }, /\/value\/failed/],
  ];
  for (const [what, value, field] of bad) {
    const e = reply('web.update.status', value);
    t.equal(e.code, 'OBX_ERR_INTERNAL', what);
    t.match(e.message, /web\.update\.status reply: /, `${what}: says which reply`);
    t.match(e.message, field, `${what}: names the field`);
  }
  t.match(reply('web.update.check', null).message, /web\.update\.check reply: \/value/);
  t.match(reply('web.update.install', 'restarting').message, /web\.update\.install reply/);
  t.match(reply('web.update.warnings', [1]).message, /\/value\/0/);
  t.match(reply('web.update.warnings', Array(17).fill('old')).message, /\/value/, 'at most 16 warnings');
  t.match(reply('web.update.setPolicy', 'ask').message, /\/value/, 'setPolicy answers null only');
  const noFlag = { ...mirror } as Partial<Mirror>;
  delete noFlag.updates;
  t.match(
    refusal(() => checked(MirrorSchema, noFlag, 'web.watch', 'INTERNAL')).message,
    /web\.watch: \/updates/,
    'a Mirror that does not say whether there is an updater',
  );
});

t.test("a malformed update request is refused by onionboxd's check, with the field named", async (t) => {
  const args = (cmd: WebCommand, value: unknown) =>
    refusal(() => checked(WEB_COMMANDS[cmd].args, value, cmd));
  const e = args('web.update.setPolicy', { policy: 'always' });
  t.equal(e.code, 'OBX_ERR_BOX_BAD_INPUT');
  t.equal(e.statusCode, 400);
  t.match(e.message, /web\.update\.setPolicy: \/policy/);
  t.match(args('web.update.setPolicy', {}).message, /\/policy/);
  t.match(args('web.update.check', { force: true }).message, /web\.update\.check: \/force/);
  t.match(
    args('web.update.install', { bundle: '/x' }).message,
    /\/bundle/,
    'no offline install from the page',
  );
  t.same(checked(WEB_COMMANDS['web.update.setPolicy'].args, { policy: 'night' }, 'x'), { policy: 'night' });
});

t.test('every command of the table is registered, and only those and the watch', async (t) => {
  const box = await TestBox.create(tmpDir(t, 'onionbox-proto-'));
  t.teardown(() => box.stop());
  const handlers = new Map<string, IpcHandler>();
  const streams = new Map<string, IpcStreamHandler>();
  const ipc = {
    register: (cmd: string, h: IpcHandler) => void handlers.set(cmd, h),
    registerStream: (cmd: string, h: IpcStreamHandler) => void streams.set(cmd, h),
  };
  registerWebCommands(ipc, box.controller);
  t.same([...handlers.keys()].sort(), Object.keys(WEB_COMMANDS).sort());
  t.same([...streams.keys()], ['web.watch']);
  for (const cmd of Object.keys(WEB_COMMANDS).filter((c) => c.startsWith('web.update.'))) {
    const args = cmd === 'web.update.setPolicy' ? { policy: 'ask' } : {};
    const e = await (handlers.get(cmd) as IpcHandler)(args).catch((err: unknown) => err);
    t.ok(isObxError(e, 'UPDATE_NOT_CONFIGURED'), `${cmd} without an updater`);
  }
  const sent: unknown[] = [];
  const stop = (streams.get('web.watch') as IpcStreamHandler)({}, (v) => sent.push(v));
  t.match(sent[0], { updates: false, sim: true });
  t.throws(
    () => (streams.get('web.watch') as IpcStreamHandler)({ all: true }, () => undefined),
    { code: 'OBX_ERR_BOX_BAD_INPUT' },
    'the watch takes no arguments',
  );
  stop();
});

t.test("the page's client refuses a malformed update reply and keeps its Mirror", async (t) => {
  const dir = tmpDir(t, 'onionbox-proto-');
  const path = join(dir, 'web.sock');
  const box = await TestBox.create(join(dir, 'box'));
  t.teardown(() => box.stop());
  const good = { ...mirrorOf(box.controller), updates: true };
  let reply = '';
  const fake = createServer((sock) => {
    sock.on('data', (chunk) => {
      const req = JSON.parse(chunk.toString()) as { cmd: string };
      if (req.cmd === 'web.watch') sock.write(`${JSON.stringify({ ok: true, result: good })}\n`);
      else sock.end(`${reply}\n`);
    });
  });
  await new Promise<void>((r) => fake.listen(path, () => r()));
  t.teardown(() => new Promise<void>((r) => fake.close(() => r())));
  const client = new BoxClient(path, { reconnectMs: 50 });
  t.teardown(() => client.stop());
  await client.start();
  const updates = client.updates;
  if (!updates) throw new Error('the Mirror said there is an updater');

  reply = JSON.stringify({ ok: true, result: { value: AVAILABLE, mirror: good } });
  t.same(await updates.status(), AVAILABLE, 'a good reply');
  reply = JSON.stringify({
    ok: true,
    result: { value: { ...AVAILABLE, phase: 'exploded' }, mirror: { ...good, claimed: true } },
  });
  const e = await Promise.resolve(updates.status()).catch((err: unknown) => err);
  t.ok(isObxError(e, 'INTERNAL'), 'a malformed status is an internal error, never data');
  t.match((e as Error).message, /web\.update\.status reply: \/value\/phase/);
  t.equal(client.isClaimed(), false, "the refused reply's Mirror is not taken");
  reply = JSON.stringify({
    ok: false,
    code: 'OBX_ERR_UPDATE_BUSY',
    error: 'OBX_ERR_UPDATE_BUSY: The updater is busy: the updater is checking',
    message: 'The updater is busy: the updater is checking',
  });
  const busy = await updates.check().catch((err: unknown) => err);
  t.ok(isObxError(busy, 'UPDATE_BUSY'), "onionboxd's refusal keeps its code");
  t.match((busy as Error).message, /the updater is checking/);
  reply = '{"ok": true, "result": {"value": "yes", "mirror": null}}';
  t.ok(isObxError(await updates.setPolicy('ask').catch((err: unknown) => err), 'INTERNAL'));
  reply = 'not json';
  t.ok(
    isObxError(await updates.install().catch((err: unknown) => err), 'DAEMON_NOT_RUNNING'),
    'an unreadable reply: the daemon did not answer',
  );
});

/** onionboxd's page socket for a TestBox, and the page's client of it. */
async function socketBox(t: Test) {
  const dir = tmpDir(t, 'onionbox-proto-');
  const box = await TestBox.create(dir);
  const server = new IpcServer(webSocketPath(dir));
  registerWebCommands(server, box.controller, (l) => box.config.onChange(l));
  await server.start();
  const client = new BoxClient(server.path, { reconnectMs: 50 });
  t.teardown(async () => {
    client.stop();
    await server.stop();
    await box.stop();
  });
  await client.start();
  return { box, client };
}

/** A value, or the ObxError's code and message: what the page would show. */
async function outcome(p: () => unknown): Promise<unknown> {
  try {
    return { value: (await p()) ?? null };
  } catch (err) {
    if (err instanceof ObxError) return { code: err.code, message: err.message, details: err.details };
    throw err;
  }
}

t.test('the network, tor and board commands: the same outcome over the socket as in-process', async (t) => {
  const { box, client } = await socketBox(t);
  const c = box.controller;
  const tor = c.settings().tor;
  const pairs: [string, () => unknown, () => unknown][] = [
    ['newIdentity', () => c.newIdentity(), () => client.newIdentity()],
    ['wifiScan', () => c.wifiScan(), () => client.wifiScan()],
    [
      'joinWifi, refused',
      () => c.joinWifi({ ssid: '', passphrase: null, hidden: false }),
      () => client.joinWifi({ ssid: '', passphrase: null, hidden: false }),
    ],
    [
      'setAccessPoint, refused',
      () =>
        c.setAccessPoint({ ssid: 'Home', passphrase: 'short', country: 'XX', channel: 6, security: 'wpa2' }),
      () =>
        client.setAccessPoint({
          ssid: 'Home',
          passphrase: 'short',
          country: 'XX',
          channel: 6,
          security: 'wpa2',
          isolateClients: false,
        }),
    ],
    [
      'applyTorSettings, refused',
      () => c.applyTorSettings({ ...tor, exitNodes: ['{zz}x'] }),
      () => client.applyTorSettings({ ...tor, exitNodes: ['{zz}x'] }),
    ],
  ];
  for (const [what, inProcess, overIpc] of pairs) {
    const a = await outcome(inProcess);
    t.same(await outcome(overIpc), a, what);
  }
  t.match(
    await outcome(() => client.applyTorSettings(tor)),
    { value: { ok: true } },
    'the same settings again',
  );
  await client.sim?.pressClaimButton();
  t.ok(box.sim?.leds(), 'a press over the socket reaches the simulated board');
});

t.test('the watch: a malformed line ends it and it comes back; listeners see each Mirror', async (t) => {
  const dir = tmpDir(t, 'onionbox-proto-');
  const path = join(dir, 'web.sock');
  const box = await TestBox.create(join(dir, 'box'));
  t.teardown(() => box.stop());
  const good = mirrorOf(box.controller);
  let watches = 0;
  const lines = ['not json', JSON.stringify({ ok: true, result: { ...good, sessionKey: 'short' } })];
  const open: Socket[] = [];
  const fake = createServer((sock) => {
    open.push(sock);
    sock.on('error', () => undefined);
    sock.on('data', () => {
      const bad = lines[watches++];
      sock.write(`${bad ?? JSON.stringify({ ok: true, result: good })}\n`);
    });
  });
  await new Promise<void>((r) => fake.listen(path, () => r()));
  t.teardown(async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((r) => fake.close(() => r()));
  });
  const client = new BoxClient(path, { reconnectMs: 20 });
  t.teardown(() => client.stop());
  t.throws(
    () => client.status(),
    { code: 'OBX_ERR_DAEMON_NOT_RUNNING' },
    'nothing to read before the first Mirror',
  );
  await client.start();
  t.equal(watches, 3, 'two refused watch lines, each followed by a new connection');
  t.equal(client.sessionKey(), good.sessionKey, 'only the good Mirror was taken');

  let mirrors = 0;
  const off = client.onMirror(() => mirrors++);
  const heard: string[] = [];
  client.onStatus(() => {
    throw new Error('a listener that fails');
  });
  client.onStatus((s) => heard.push(s.state));
  for (const s of open) s.destroy(); // onionboxd goes away
  for (let i = 0; i < 200 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(heard.slice(0, 1), ['error'], 'the next listener still hears, after one that threw');
  t.ok(mirrors >= 1, 'onMirror heard the change');
  off();
});

t.test('start() gives up when onionboxd never answers', async (t) => {
  const dir = tmpDir(t, 'onionbox-proto-');
  const path = join(dir, 'web.sock');
  const open: Socket[] = [];
  const silent = createServer((s) => {
    open.push(s);
    s.resume();
  });
  await new Promise<void>((r) => silent.listen(path, () => r()));
  t.teardown(async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });
  const client = new BoxClient(path, { startTimeoutMs: 100 });
  t.teardown(() => client.stop());
  await t.rejects(client.start(), { code: 'OBX_ERR_DAEMON_NOT_RUNNING', message: /no answer on/ });
});
