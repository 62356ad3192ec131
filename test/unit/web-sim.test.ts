import { PNG } from 'pngjs';
import t from 'tap';
import { ConfigStore } from '../../firmware/config/store.js';
import { OwnerAccount } from '../../firmware/owner/owner.js';
import { tmpDir } from '../helpers/tmp.js';
import { Client, csrfFrom, webHarness } from '../helpers/web.js';

t.test(
  'simulator panel: open before the claim, switch and button work through forms with CSRF',
  async (t) => {
    const h = await webHarness(t);
    const c = new Client(h.app);
    const page = await c.get('/sim');
    t.equal(page.statusCode, 200);
    t.match(page.body, /Flip the switch on/);
    t.match(page.body, /data-led="blink">amber/);
    const png = await c.get('/sim/oled.png');
    t.equal(png.headers['content-type'], 'image/png');
    const img = PNG.sync.read(png.rawPayload);
    t.same([img.width, img.height], [256, 128], 'the 128x64 OLED at twice its size');
    const token = csrfFrom(page.body);
    t.equal((await c.post('/sim/switch', { engaged: 'sideways', _csrf: token })).statusCode, 400);
    t.equal((await c.post('/sim/switch', { engaged: '1' })).statusCode, 403, 'CSRF applies here too');
    t.equal(h.box.hardwareSwitch, false);
    t.equal((await c.post('/sim/switch', { engaged: '1', _csrf: token })).headers.location, '/sim');
    t.equal(h.box.hardwareSwitch, true);
    t.match((await c.get('/sim')).body, /Flip the switch off/);
    t.equal(h.box.buttonPressedAt, null);
    t.equal((await c.post('/sim/button', { _csrf: token })).statusCode, 303);
    t.not(h.box.buttonPressedAt, null);
  },
);

t.test('the box generates the session key once when the store has none', async (t) => {
  const store = new ConfigStore(tmpDir(t));
  await store.load();
  await store.update((c) => ({ ...c, web: { ...c.web, sessionKey: null } }));
  const owner = new OwnerAccount(store);
  await owner.ensureSessionKey();
  const key = owner.sessionKey();
  t.match(key, /^[0-9a-f]{64}$/);
  t.equal(store.get().web.sessionKey, key);
  await owner.ensureSessionKey();
  t.equal(owner.sessionKey(), key, 'kept');
});
