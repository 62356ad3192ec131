/**
 * The connection assist on the page (no JavaScript needed): its words on the status page, the question
 * when the owner's own bridges do not get through (and the consent form), "Tor is blocked here" on the
 * settings page. The real box (TestBox) and the real assist adapter (firmware/tor/assist-runner.ts) on the
 * box's own config store and bus; tor is faked at the assist's edge (its events are control-spec lines
 * on the bus). In-process and over the page socket, as the page process reaches the box.
 */
import t, { type Test } from 'tap';
import type { TorConfig } from '../../firmware/config/schema.js';
import type { TorStatus } from '../../firmware/state/machine.js';
import { ConnectionAssist } from '../../firmware/tor/assist-runner.js';
import { assistBuiltins } from '../../firmware/tor/builtin-bridges.js';
import { parseEvent, parseTranscript } from '../../firmware/tor/protocol.js';
import { BRIDGE, claimed, webHarness } from '../helpers/web.js';

const BUILTIN = `obfs4 198.18.0.21:4430 ${'A'.repeat(40)} cert=${'c'.repeat(70)} iat-mode=0`;
const SNOW = `snowflake 192.0.2.3:80 ${'D'.repeat(40)} fingerprint=${'D'.repeat(40)} url=https://snow.example/ fronts=front.example ice=stun:stun.example:3478`;
const WARN_TIMEOUT =
  '650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay" WARNING="Connection timed out" REASON=TIMEOUT COUNT=10 RECOMMENDATION=warn';

async function setup(t: Test, ipc: boolean, own: boolean) {
  const h = await webHarness(t, { ipc });
  const c = await claimed(h);
  if (own)
    await h.box.config.update((cfg) => ({
      ...cfg,
      tor: { ...cfg.tor, useBridges: true, bridges: [BRIDGE] },
    }));
  const tried: TorConfig[] = [];
  let settings = h.box.config.get().tor;
  const assist = new ConnectionAssist({
    bus: h.box.bus,
    tor: {
      trySettings: async (s) => {
        tried.push(s);
        settings = s;
        return true;
      },
      keepAsGood: async () => undefined,
      retryNow: async () => undefined,
      status: (): TorStatus => h.box.tor.status(),
      get settings() {
        return settings;
      },
    },
    config: h.box.config,
    wan: { link: async () => true, lease: () => true },
    builtins: () => assistBuiltins([BUILTIN, SNOW]),
    show: (view) => h.box.controller.setAssist(view),
    timer: { every: () => () => undefined },
  });
  h.box.controller.attachAssist(assist);
  await assist.start();
  t.teardown(() => assist.stop());
  const line = (text: string) => {
    const [reply] = parseTranscript(`${text}\r\n`);
    if (!reply) throw new Error('no reply');
    h.box.bus.emit('tor:client-status', parseEvent(reply));
  };
  // the page over the socket sees the box's status once the new Mirror arrived: wait for it
  const page = async (url: string) => {
    await assist.settled();
    const want = JSON.stringify(h.box.controller.status().assist);
    while (JSON.stringify(h.api.status().assist) !== want) await new Promise((r) => setTimeout(r, 5));
    const blocked = h.box.config.get().assist?.blockedHere;
    while (h.api.settings().assist?.blockedHere !== blocked) await new Promise((r) => setTimeout(r, 5));
    return c.get(url);
  };
  return { h, c, assist, tried, line, page };
}

for (const ipc of [false, true]) {
  const how = ipc ? 'over the page socket' : 'in-process';

  t.test(`blocked: the page says so in words and which bridge is tried (${how})`, async (t) => {
    const { line, page, tried } = await setup(t, ipc, false);
    line(WARN_TIMEOUT);
    const res = await page('/');
    t.equal(res.statusCode, 200);
    t.match(
      res.body,
      /<p id="assist" data-live="assist">Your internet provider seems to block Tor\. Trying a bridge \(1 of 1\)\.\.\.<\/p>/,
    );
    t.match(res.body, /Moat\) is not available here/, 'the skipped Moat step, with why');
    t.match(res.body, /snowflake bridges are not tried/, 'the skipped snowflake lines, with why');
    t.notMatch(res.body, /action="\/assist\/consent"/, 'nothing to ask: no own bridges');
    t.match(res.body, /<meta http-equiv="refresh"|data-reload/, 'reloads by itself without JavaScript');
    t.same(
      tried.map((s) => s.bridges),
      [[BUILTIN]],
    );
  });

  t.test(`own bridges: the page asks; the consent lets the box try its own (${how})`, async (t) => {
    const { h, c, line, page, tried } = await setup(t, ipc, true);
    line(WARN_TIMEOUT);
    const asking = await page('/');
    t.match(asking.body, /your bridges do not get through/);
    t.match(asking.body, /action="\/assist\/consent"/);
    t.same(tried, [], 'nothing replaced before the owner says so');
    const forged = await h.app.inject({
      method: 'POST',
      url: '/assist/consent',
      remoteAddress: '10.42.0.23',
      headers: {
        host: '10.42.0.1',
        cookie: c.cookieHeader(),
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: '_csrf=forged',
    });
    t.equal(forged.statusCode, 403, 'a forged form is refused');
    t.same(tried, []);
    const ok = await c.post('/assist/consent', {}, '/');
    t.equal(ok.statusCode, 303);
    t.equal(ok.headers.location, '/?done=assist-consent');
    const trying = await page('/?done=assist-consent');
    t.match(trying.body, /The box now tries its own bridges/);
    t.match(trying.body, /Trying a bridge \(1 of 1\)/);
    t.same(
      tried.map((s) => s.bridges),
      [[BUILTIN]],
    );
    const again = await c.post('/assist/consent', {}, '/');
    t.equal(again.statusCode, 400, 'not asking any more: refused with the reason');
    t.match(again.body, /not asking/);
  });

  t.test(`"Tor is blocked here" on the settings page (${how})`, async (t) => {
    const { h, c, page, tried } = await setup(t, ipc, false);
    const before = await page('/settings');
    t.match(before.body, /id="blocked-here"/);
    t.match(before.body, /<input type="checkbox" name="blockedHere">/, 'off by default');
    const res = await c.post('/settings/blocked-here', { blockedHere: 'on' }, '/settings');
    t.equal(res.statusCode, 303);
    t.equal(h.box.config.get().assist?.blockedHere, true, 'stored');
    const after = await page('/settings?done=blocked-here');
    t.match(after.body, /name="blockedHere" checked/);
    t.same(
      tried.map((s) => s.bridges),
      [[BUILTIN]],
      'the assist started over: straight to the bridges',
    );
    await c.post('/settings/blocked-here', {}, '/settings');
    t.equal(h.box.config.get().assist?.blockedHere, false, 'an unticked box turns it off');
  });

  t.test(`where the built-in bridges come from, on the settings page (${how})`, async (t) => {
    const { h, c } = await setup(t, ipc, false);
    const wait = async (want: string | undefined) => {
      while (h.api.status().builtinBridges !== want) await new Promise((r) => setTimeout(r, 5));
    };
    t.notMatch((await c.get('/settings')).body, /id="builtin-bridges"/, 'nothing before the refresher runs');
    const words = 'Built-in bridges in use: refreshed through Tor on 2026-12-07 10:00 UTC (2 obfs4) <b>.';
    h.box.controller.setBuiltinBridges(words);
    await wait(words);
    const body = (await c.get('/settings')).body;
    t.match(
      body,
      /<p id="builtin-bridges"><small>Built-in bridges in use: refreshed through Tor on 2026-12-07 10:00 UTC \(2 obfs4\) &lt;b&gt;\.<\/small><\/p>/,
      'said, escaped',
    );
    h.box.controller.setBuiltinBridges(null);
    await wait(undefined);
    t.notMatch((await c.get('/settings')).body, /id="builtin-bridges"/, 'gone with the refresher');
  });
}
