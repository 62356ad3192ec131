/**
 * The network page through the real web app and the box's real networking logic (firmware/net/
 * box-network.ts) on the real box (test/helpers/test-box.ts), whose network adapters are test/helpers/fake-network.ts: status,
 * scan, join (wrong passphrase, unknown and hidden networks), the access point form (field errors,
 * input kept, passphrase never echoed, nothing changed on error), CSRF and the owner guard.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type Client, claimed, type WebHarness, webHarness } from '../helpers/web.js';

const configText = (h: WebHarness) => readFileSync(join(h.dir, 'config.json'), 'utf8');

async function setup(
  t: Parameters<typeof webHarness>[0],
  opts: Parameters<typeof webHarness>[1] = {},
): Promise<{ h: WebHarness; c: Client }> {
  const h = await webHarness(t, opts);
  return { h, c: await claimed(h) };
}

const AP = {
  ssid: 'Onionbox',
  passphrase: 'correct horse battery',
  country: 'DE',
  channel: '6',
  security: 'wpa2',
};

t.test('owner only', async (t) => {
  const h = await webHarness(t);
  t.equal((await new (await import('../helpers/web.js')).Client(h.app).get('/network')).statusCode, 303);
});

t.test('status: WAN, access point off, LAN devices', async (t) => {
  const { c } = await setup(t);
  const res = await c.get('/network');
  t.equal(res.statusCode, 200);
  t.match(res.body, /id="wan-kind">Cable \(Ethernet\) on <code>eth0<\/code>: connected/);
  t.match(res.body, /id="wan-address">192\.168\.1\.23\/24 \(modem 192\.168\.1\.1\)/);
  t.match(res.body, /id="ap-off"/);
  t.match(res.body, /kitchen-tablet<\/td><td>10\.42\.0\.23/);
  t.match(res.body, /\(no name\)<\/td><td>10\.42\.0\.24/);
  t.match(res.body, /http:\/\/10\.42\.0\.1\//, 'the page address, not a name tor would resolve');
  t.notMatch(res.body, /onionbox\.lan/);
  t.notMatch(res.body, /id="shared-radio"/);
});

t.test('scan lists networks with exact, escaped names; hidden ones are not listed', async (t) => {
  const { c } = await setup(t);
  const res = await c.get('/network/scan');
  t.equal(res.statusCode, 200);
  t.match(res.body, /<strong>Home<\/strong> <small>82 %, channel 6, WPA2/);
  t.match(res.body, /value="Café: Lobby"/);
  t.match(res.body, /Free Wi-Fi<\/strong> <small>31 %, channel 11, open/);
  t.match(res.body, /Some networks hide their name/);
  t.equal((res.body.match(/data-join/g) ?? []).length, 3);
});

t.test(
  'join: wrong passphrase, unknown network, bad values change nothing; a good one is recorded',
  async (t) => {
    const { h, c } = await setup(t);
    const before = configText(h);
    const wrong = await c.post(
      '/network/join',
      { ssid: 'Home', passphrase: 'not the passphrase' },
      '/network',
    );
    t.equal(wrong.statusCode, 400);
    t.match(wrong.body, /id="join-passphrase-error"[^>]*>The network refused this passphrase/);
    t.match(wrong.body, /id="join-ssid"[^>]*value="Home"/, 'name kept');
    t.notMatch(wrong.body, /not the passphrase/, 'the passphrase is never sent back');
    const gone = await c.post('/network/join', { ssid: 'Elsewhere', passphrase: 'whatever123' }, '/network');
    t.match(gone.body, /id="join-ssid-error"[^>]*>The box cannot see this network/);
    const bad = await c.post('/network/join', { ssid: 'x'.repeat(33), passphrase: 'short' }, '/network');
    t.equal(bad.statusCode, 400);
    t.match(bad.body, /id="join-ssid-error"[^>]*>The network name is 33 bytes long/);
    t.match(bad.body, /id="join-passphrase-error"[^>]*>The passphrase must be 8 to 63/);
    t.equal(configText(h), before, 'nothing written');
    t.same(h.box.network?.joined, []);
    const ok = await c.post(
      '/network/join',
      { ssid: 'Home', passphrase: 'correct horse battery' },
      '/network',
    );
    t.equal(ok.statusCode, 303);
    t.equal(ok.headers.location, '/network?done=wifi-joined');
    t.same(h.box.config.get().network.upstreamWifi, { interface: 'wlan1', ssid: 'Home', hidden: false });
    t.notMatch(configText(h), /correct horse/, 'the upstream passphrase is not in the config');
    const page = await c.get('/network?done=wifi-joined');
    t.match(page.body, /id="wan-ssid">Home, signal 82 %/);
    t.match(
      page.body,
      /<form method="post" action="\/network\/use-cable" id="use-cable">/,
      'a way back to the cable',
    );
    t.match(
      page.body,
      /id="use-cable">\s*<input type="hidden" name="_csrf" value="[^"]+">/,
      'with its CSRF token',
    );
    const hidden = await c.post(
      '/network/join',
      { ssid: 'Back Room', passphrase: 'hidden-passphrase' },
      '/network',
    );
    t.equal(hidden.statusCode, 400, 'a hidden network needs the box');
    const hid = await c.post(
      '/network/join',
      { ssid: 'Back Room', passphrase: 'hidden-passphrase', hidden: 'on' },
      '/network',
    );
    t.equal(hid.statusCode, 303);
    t.equal(h.box.config.get().network.upstreamWifi?.hidden, true);
    const open = await c.post('/network/join', { ssid: 'Free Wi-Fi', passphrase: '' }, '/network');
    t.equal(open.statusCode, 303, 'open network, empty passphrase');
  },
);

t.test('access point: all field errors at once, input kept, nothing changed; then saved', async (t) => {
  const { h, c } = await setup(t);
  const before = configText(h);
  const bad = await c.post(
    '/network/access-point',
    { ssid: 'My\nnet', passphrase: 'pässwort-ü', country: 'XX', channel: '14', security: 'sae-only' },
    '/network',
  );
  t.equal(bad.statusCode, 400);
  for (const f of ['ssid', 'passphrase', 'country', 'channel', 'security'])
    t.match(bad.body, `id="ap-${f}-error"`);
  t.notMatch(bad.body, /pässwort/, 'passphrase never echoed');
  t.equal(configText(h), before);
  const none = await c.post('/network/access-point', { ...AP, passphrase: '' }, '/network');
  t.equal(none.statusCode, 400, 'no passphrase yet: there is no default');
  t.match(none.body, /id="ap-passphrase-error"[^>]*>The access point needs a passphrase/);
  t.equal(configText(h), before);
  const ok = await c.post('/network/access-point', AP, '/network');
  t.equal(ok.statusCode, 303);
  const bssid = h.box.config.get().network.accessPoint?.bssid;
  t.match(bssid, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'a random locally administered BSSID (issue 23)');
  t.same(h.box.config.get().network.accessPoint, {
    ...AP,
    channel: 6,
    security: 'wpa2',
    isolateClients: true,
    bssid,
  });
  t.equal(h.box.network?.applied.length, 1, 'applied after it was stored');
  const page = await c.get('/network');
  t.match(page.body, /id="ap-ssid"[^>]*value="Onionbox"/);
  t.match(page.body, /<option value="DE" selected>/);
  t.notMatch(page.body, /correct horse/, 'the stored passphrase is never shown');
  const keep = await c.post(
    '/network/access-point',
    { ...AP, ssid: 'Onionbox 2', passphrase: '', channel: '44', security: 'wpa2-wpa3' },
    '/network',
  );
  t.equal(keep.statusCode, 303, 'empty passphrase keeps the current one');
  t.equal(h.box.config.get().network.accessPoint?.passphrase, AP.passphrase);
  t.equal(h.box.config.get().network.accessPoint?.channel, 44);
  t.equal(h.box.config.get().network.accessPoint?.bssid, bssid, 'the BSSID is drawn once');
});

t.test(
  'access point defaults: neutral name, WPA2/WPA3, guests isolated; casting with its warning (issue 23)',
  async (t) => {
    const { h, c } = await setup(t);
    const fresh = (await c.get('/network')).body;
    t.match(fresh, /id="ap-ssid"[^>]*value="Home Wi-Fi"/, 'a neutral name is offered');
    t.notMatch(fresh, /id="ap-ssid"[^>]*value="Onionbox"/);
    t.match(fresh, /<option value="wpa2-wpa3" selected>/, 'WPA2/WPA3 transition is the default');
    t.match(fresh, /<input type="checkbox" id="ap-casting" name="casting" aria-describedby/, 'casting off');
    t.match(fresh, /id="ap-casting-warning"[\s\S]*ARP spoofing/, 'the warning says what casting costs');
    t.equal(
      (await c.post('/network/access-point', { ...AP, security: 'wpa2-wpa3' }, '/network')).statusCode,
      303,
    );
    t.equal(h.box.config.get().network.accessPoint?.isolateClients, true, 'isolated unless asked');
    const cast = await c.post('/network/access-point', { ...AP, passphrase: '', casting: 'on' }, '/network');
    t.equal(cast.statusCode, 303);
    t.equal(h.box.config.get().network.accessPoint?.isolateClients, false, 'the household that casts');
    t.match((await c.get('/network')).body, /id="ap-casting" name="casting" checked/);
  },
);

t.test('CSRF and a box without network control', async (t) => {
  const { h, c } = await setup(t);
  const r = await c.post('/network/access-point', { ...AP, _csrf: 'forged' });
  t.equal(r.statusCode, 403);
  t.equal(h.box.config.get().network.accessPoint, null);
  const { c: c2 } = await setup(t, { network: false });
  const page = await c2.get('/network');
  t.equal(page.statusCode, 200);
  t.match(page.body, /id="wan-problem">This box was started without network control/);
  const scan = await c2.get('/network/scan');
  t.equal(scan.statusCode, 503);
  t.match(scan.body, /id="scan-problem"[^>]*>OBX_ERR_NET_UNAVAILABLE/);
  const join = await c2.post(
    '/network/join',
    { ssid: 'Home', passphrase: 'correct horse battery' },
    '/network',
  );
  t.equal(join.statusCode, 503);
  t.match(join.body, /id="problem"[^>]*>OBX_ERR_NET_UNAVAILABLE/);
  const cable = await c2.post('/network/use-cable', {}, '/network');
  t.equal(cable.statusCode, 503, 'use the cable: refused by a box without network control');
  t.match(cable.body, /id="problem"[^>]*>OBX_ERR_NET_UNAVAILABLE/);
});

t.test('use the cable: CSRF, then refused while the WAN is not a Wi-Fi network', async (t) => {
  const { h, c } = await setup(t);
  const page = await c.get('/network');
  t.notMatch(page.body, /id="use-cable"/, 'no such form while the box is on its cable');
  const forged = await c.post('/network/use-cable', { _csrf: 'forged' });
  t.equal(forged.statusCode, 403);
  // the harness's box has network adapters but no change system: the controller says so
  const r = await c.post('/network/use-cable', {}, '/network');
  t.equal(r.statusCode, 503);
  t.match(r.body, /id="problem"[^>]*>OBX_ERR_NET_UNAVAILABLE/);
  t.same(h.box.network?.wifiCalls, [], 'nothing was taken down');
});
