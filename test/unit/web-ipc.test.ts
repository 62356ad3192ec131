/**
 * The page over the page socket (issue 23: the page in its own process): onionboxd's side
 * (firmware/control/web-commands.ts) checks every request against the command's schema, the page's client
 * (web/lib/box-client.ts) checks every reply; errors keep their OBX_ERR_ code, message and field details;
 * the Mirror follows the box's status and config; the socket file's mode and group.
 */
import { stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { groupId, IpcServer, ipcCall, WEB_GROUP, webSocketPath } from '../../firmware/control/socket.js';
import { mirrorOf, registerWebCommands } from '../../firmware/control/web-commands.js';
import { isObxError, ObxError, obxError } from '../../firmware/errors.js';
import { BoxClient, errorFromReply } from '../../web/lib/box-client.js';
import { TestBox } from '../helpers/test-box.js';
import { tmpDir } from '../helpers/tmp.js';
import { Client, claimed, GOOD_PASSWORD, webHarness } from '../helpers/web.js';

async function until(
  t: { fail(msg: string): void },
  what: string,
  ok: () => boolean,
  ms = 20_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) {
      t.fail(`timed out: ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function socketBox(t: Test) {
  const dir = tmpDir(t, 'onionbox-ipc-');
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
  return { dir, box, server, client };
}

t.test(
  'the Mirror: what the page reads equals the box, without the passphrase; it follows the box',
  async (t) => {
    const { box, client } = await socketBox(t);
    const c = box.controller;
    t.same({ ...client.status(), at: 0 }, { ...c.status(), at: 0 });
    t.same(client.settings(), c.settings());
    t.equal(client.isClaimed(), false);
    t.equal(client.sessionKey(), c.sessionKey());
    t.equal(client.lastLeakTest(), null);
    t.ok(client.sim, 'the simulated board is offered (onionboxd --simulate)');

    await box.config.update((cfg) => ({
      ...cfg,
      network: {
        ...cfg.network,
        accessPoint: {
          ssid: 'Home Wi-Fi',
          passphrase: 'correct horse battery',
          country: 'DE',
          channel: 6,
          security: 'wpa2-wpa3',
          isolateClients: true,
          bssid: '02:11:22:33:44:55',
        },
      },
    }));
    await until(t, 'the access point in the Mirror', () => client.settings().network.accessPoint !== null);
    t.equal(client.settings().network.accessPoint?.ssid, 'Home Wi-Fi');
    t.notOk('passphrase' in (client.settings().network.accessPoint ?? {}), 'no passphrase in the Mirror');
    t.notMatch(JSON.stringify(mirrorOf(c)), /correct horse/, 'nor anywhere onionboxd sends it');

    const seen: string[] = [];
    client.onStatus((s) => seen.push(s.firewallMode));
    box.sim?.setSwitch(true);
    await until(t, 'the switch in the Mirror', () => client.status().killSwitch.hardware);
    t.ok(seen.includes('killed'), 'onStatus heard the kill switch');

    // A key rotated in the store reaches the page without a status change.
    await box.config.update((cfg) => ({ ...cfg, web: { ...cfg.web, sessionKey: 'ab'.repeat(32) } }));
    await until(t, 'the new session key', () => client.sessionKey() === 'ab'.repeat(32));

    // The updater's section (issue 20) passes the page's settings schema and reaches the Mirror.
    const onion = `http://${'a'.repeat(56)}.onion/`;
    await box.config.update((cfg) => ({ ...cfg, update: { onion, mirror: null, policy: 'ask' } }));
    await until(t, 'the update section in the Mirror', () => client.settings().update?.policy === 'ask');
    t.equal(client.settings().update?.onion, onion);
  },
);

t.test('commands: the same results and the same errors (code, message, details) as in-process', async (t) => {
  const { box, client } = await socketBox(t);
  const c = box.controller;
  const inProcess = await c.claim({ password: 'short', code: 'K7P2QX' }).catch((e: unknown) => e);
  const overIpc = await client.claim({ password: 'short', code: 'K7P2QX' }).catch((e: unknown) => e);
  t.ok(inProcess instanceof ObxError && overIpc instanceof ObxError);
  const a = inProcess as ObxError;
  const b = overIpc as ObxError;
  t.equal(b.code, a.code);
  t.equal(b.message, a.message);
  t.equal(b.statusCode, a.statusCode);
  t.same(b.details, a.details);

  const ticket = await client.startClaim();
  t.match(ticket, { id: String, ticket: String });
  t.same(await client.claimProgress(ticket.ticket), c.claimProgress(ticket.ticket));
  t.same(await client.claimProgress(null), { state: 'none', id: null });
  t.equal(await client.claim({ password: GOOD_PASSWORD, code: 'K7P2QX' }), 'claimed');
  t.equal(client.isClaimed(), true, 'the reply brought the Mirror: claimed at once');
  t.equal(await client.verifyPassword(GOOD_PASSWORD), true);
  t.equal(await client.verifyPassword('wrong one'), false);
  t.equal(await client.changePassword('wrong one', 'another good passphrase'), 'wrong-password');

  await client.setSoftKill(true);
  t.equal(client.settings().softKill, true, 'settings after the command are the new ones');
  t.equal(box.config.get().softKill, true);
  await client.setSoftKill(false);

  const clock = await client.setClock(1).catch((e: unknown) => e);
  t.ok(isObxError(clock, 'CLOCK_INVALID'), 'the box refuses an absurd time with its own code');
  t.same(await client.circuits(), await c.circuits());
  t.same(await client.counters(), await c.counters());
  const report = await client.runLeakTest();
  t.equal(report.ok, true);
  t.same(client.lastLeakTest(), report, 'the last report in the Mirror');
  t.same(await client.networkStatus(), await c.networkStatus());
  t.match(await client.diagnostics(), /./);
  const leds = await client.sim?.leds();
  t.same(leds, box.sim?.leds());
  const png = await client.sim?.oledPng();
  t.same(png?.subarray(1, 4).toString(), 'PNG');
  await client.sim?.setSwitch(true);
  t.equal(box.controller.status().killSwitch.hardware, true);
});

t.test('onionboxd checks every request against the schema before the box sees it', async (t) => {
  const { box, server } = await socketBox(t);
  const calls: unknown[] = [];
  const orig = box.controller.setSoftKill.bind(box.controller);
  box.controller.setSoftKill = (engaged: boolean) => {
    calls.push(engaged);
    return orig(engaged);
  };
  const bad = [{ engaged: 'yes' }, {}, { engaged: true, extra: 1 }];
  for (const args of bad) {
    const r = await ipcCall(server.path, 'web.setSoftKill', args);
    t.match(r, { ok: false, code: 'OBX_ERR_BOX_BAD_INPUT' }, JSON.stringify(args));
  }
  t.same(calls, [], 'the box never saw a malformed request');
  const long = await ipcCall(server.path, 'web.verifyPassword', { password: 'x'.repeat(5000) });
  t.match(long, { ok: false, code: 'OBX_ERR_BOX_BAD_INPUT' }, 'sizes are bounded');
  const unknown = await ipcCall(server.path, 'net.change', {});
  t.match(unknown, { ok: false, code: 'OBX_ERR_CLI_USAGE' }, "the CLI's commands are not on the page socket");
  const reset = await ipcCall(server.path, 'web.resetClaim', {});
  t.match(reset, { ok: false, code: 'OBX_ERR_CLI_USAGE' }, 'nor the claim-button reset');
});

t.test('the client checks every reply: a malformed one is an internal error, never data', async (t) => {
  const dir = tmpDir(t, 'onionbox-ipc-');
  const path = join(dir, 'web.sock');
  let reply = '';
  const fake = createServer((sock) => {
    sock.on('data', (chunk) => {
      const req = JSON.parse(chunk.toString()) as { cmd: string };
      if (req.cmd === 'web.watch') sock.write(`${reply}\n`);
      else sock.end(`${reply}\n`);
    });
  });
  await new Promise<void>((r) => fake.listen(path, () => r()));
  t.teardown(() => new Promise<void>((r) => fake.close(() => r())));
  const box = await TestBox.create(join(dir, 'box'));
  t.teardown(() => box.stop());
  const good = mirrorOf(box.controller);
  reply = JSON.stringify({ ok: true, result: good });
  const client = new BoxClient(path, { reconnectMs: 50 });
  t.teardown(() => client.stop());
  await client.start();
  t.equal(client.sessionKey(), good.sessionKey);

  reply = JSON.stringify({ ok: true, result: { value: 'maybe', mirror: good } });
  const e1 = await client.verifyPassword('x').catch((e: unknown) => e);
  t.ok(isObxError(e1, 'INTERNAL'), 'a reply of the wrong type');
  reply = JSON.stringify({ ok: true, result: { value: true, mirror: { ...good, sessionKey: 'short' } } });
  const e2 = await client.verifyPassword('x').catch((e: unknown) => e);
  t.ok(isObxError(e2, 'INTERNAL'), 'a Mirror that does not match its schema');
  t.equal(client.sessionKey(), good.sessionKey, 'and the Mirror is unchanged');
  reply = JSON.stringify({
    ok: false,
    code: 'OBX_ERR_INTERNAL',
    error: 'EACCES /var/lib/secret',
    message: 'x',
  });
  const e3 = await client.verifyPassword('x').catch((e: unknown) => e);
  t.ok(isObxError(e3, 'INTERNAL'));
  t.notMatch((e3 as Error).message, /secret/, 'an internal error carries no foreign words to the page');
});

t.test(
  'errors rebuilt from replies: known codes keep status and details; unknown codes are internal',
  async (t) => {
    const e = errorFromReply({
      code: 'OBX_ERR_WEB_FORM_INVALID',
      message: 'Some fields: x',
      details: { a: 'b' },
    });
    t.equal(e.code, 'OBX_ERR_WEB_FORM_INVALID');
    t.equal(e.statusCode, 400);
    t.equal(e.message, 'Some fields: x');
    t.same(e.details, { a: 'b' });
    t.equal(errorFromReply({ code: 'OBX_ERR_NOT_A_CODE' }).code, 'OBX_ERR_INTERNAL');
    t.equal(errorFromReply({ code: 'OBX_ERR_WEB_CLAIM_LIMIT' }).message, obxError('WEB_CLAIM_LIMIT').message);
  },
);

t.test(
  'onionboxd gone: status says so, commands fail with DAEMON_NOT_RUNNING, the watch comes back',
  async (t) => {
    const { dir, box, server, client } = await socketBox(t);
    await server.stop();
    await until(t, 'the watch to notice', () => !client.connected);
    t.equal(client.status().state, 'error');
    t.match(client.status().explanation, /not answering/);
    const e = await client.verifyPassword('x').catch((err: unknown) => err);
    t.ok(isObxError(e, 'DAEMON_NOT_RUNNING'));
    const again = new IpcServer(webSocketPath(dir));
    registerWebCommands(again, box.controller);
    await again.start();
    t.teardown(() => again.stop());
    await until(t, 'the watch to reconnect', () => client.connected);
    t.equal(client.status().state, box.controller.status().state);
  },
);

t.test('socket file: 0660 and the page group when the group exists, else 0600', async (t) => {
  const dir = tmpDir(t, 'onionbox-ipc-');
  const gid = process.getgid?.() ?? 0;
  t.equal(groupId(`root:x:0:\n${WEB_GROUP}:x:${gid}:onionbox\n`, WEB_GROUP), gid);
  t.equal(groupId('root:x:0:\nonionbox-webx:x:5:\n', WEB_GROUP), null, 'names match whole');
  const shared = new IpcServer(join(dir, 'a.sock'), {
    mode: 0o660,
    group: WEB_GROUP,
    etcGroup: async () => `${WEB_GROUP}:x:${gid}:onionbox\n`,
  });
  await shared.start();
  t.teardown(() => shared.stop());
  const st = await stat(shared.path);
  t.equal(st.mode & 0o777, 0o660);
  t.equal(st.gid, gid);
  const alone = new IpcServer(join(dir, 'b.sock'), {
    mode: 0o660,
    group: WEB_GROUP,
    etcGroup: async () => '',
  });
  await alone.start();
  t.teardown(() => alone.stop());
  t.equal((await stat(alone.path)).mode & 0o777, 0o600, 'no such group: only the owner and root');
});

t.test('the page over the socket: claim, log in, settings, as a browser sees them', async (t) => {
  const h = await webHarness(t, { ipc: true });
  t.ok(h.api instanceof BoxClient, 'the page talks to the client');
  const c = await claimed(h);
  const home = await c.get('/');
  t.equal(home.statusCode, 200);
  const other = new Client(h.app, '10.42.0.99');
  const login = await other.post('/login', { password: 'not it at all' }, '/login');
  t.equal(login.statusCode, 401);
  t.match(login.body, /Wrong password/, "onionboxd's check, the page's words");
  const ok = await other.post('/login', { password: GOOD_PASSWORD }, '/login');
  t.equal(ok.statusCode, 303);
  const settings = await c.get('/settings');
  t.equal(settings.statusCode, 200);
});
