/**
 * Config v2 (networking) and v3 (Wi-Fi guests isolated): the 1 -> 2 and 2 -> 3 migrations, and the
 * networking grammars enforced by the store.
 */
import t from 'tap';
import { accessPointDefaults, migrate } from '../../firmware/config/migrations.js';
import { CONFIG_VERSION, defaultConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { configProblems } from '../../firmware/config/validate.js';
import { isObxError } from '../../firmware/errors.js';
import '../../firmware/net/config-check.js';
import { tmpDir } from '../helpers/tmp.js';

const AP = {
  ssid: 'Onionbox',
  passphrase: 'correct horse battery',
  country: 'DE',
  channel: 6,
  security: 'wpa2' as const,
  isolateClients: true,
  bssid: '7a:3f:09:c1:55:e2',
};

t.test('a version 1 document gains empty networking settings', async (t) => {
  const v2 = defaultConfig();
  const { accessPoint: _a, upstreamWifi: _u, ...network1 } = v2.network;
  const v1 = { ...v2, version: 1, network: network1 };
  const r = migrate(v1);
  t.equal(CONFIG_VERSION, 4);
  t.ok(r.migrated);
  t.same(r.doc, v2, 'exactly the defaults (no access point: nothing for 2 -> 3 to add)');
  t.same(configProblems(r.doc), {});
});

t.test('a version 2 access point gains client isolation and its own random BSSID', async (t) => {
  const { isolateClients: _i, bssid: _b, ...apV2 } = AP;
  const base = defaultConfig();
  const v2 = { ...base, version: 2, network: { ...base.network, accessPoint: apV2 } };
  const r = migrate(v2);
  t.ok(r.migrated);
  const ap = (r.doc as typeof base).network.accessPoint;
  t.equal(ap?.isolateClients, true, 'isolated, as a new access point is');
  t.match(ap?.bssid, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'locally administered, unicast');
  t.same(configProblems(r.doc), {});
  t.not(
    (migrate(v2).doc as typeof base).network.accessPoint?.bssid,
    ap?.bssid,
    'each box draws its own (once: the migrated file keeps it)',
  );
  t.same(
    accessPointDefaults(v2, () => '02:00:00:00:00:01'),
    {
      ...v2,
      network: { ...v2.network, accessPoint: { ...apV2, isolateClients: true, bssid: '02:00:00:00:00:01' } },
    },
  );
  const none = { ...base, version: 2 };
  t.same(
    accessPointDefaults(none, () => 'x'),
    none,
    'no access point: unchanged',
  );
});

t.test('the store refuses what the renderers would refuse', async (t) => {
  const store = new ConfigStore(tmpDir(t));
  await store.load();
  const set = (patch: Record<string, unknown>) =>
    store.update((c) => ({ ...c, network: { ...c.network, ...patch } }));
  await set({ accessPoint: AP });
  t.same(store.get().network.accessPoint, AP, 'a good access point is stored');
  const cases: [string, Record<string, unknown>, string][] = [
    ['SSID 33 bytes', { accessPoint: { ...AP, ssid: 'é'.repeat(17) } }, '/network/accessPoint/ssid'],
    ['SSID newline', { accessPoint: { ...AP, ssid: 'a\nb' } }, '/network/accessPoint/ssid'],
    [
      'passphrase non-ASCII',
      { accessPoint: { ...AP, passphrase: 'pässwörter' } },
      '/network/accessPoint/passphrase',
    ],
    ['channel 14', { accessPoint: { ...AP, channel: 14 } }, '/network/accessPoint/channel'],
    ['unknown country', { accessPoint: { ...AP, country: 'XX' } }, '/network/accessPoint/country'],
    ['vendor BSSID', { accessPoint: { ...AP, bssid: 'b8:27:eb:12:34:56' } }, '/network/accessPoint/bssid'],
    ['LAN in tor virtual network', { lanAddress: '172.16.0.1' }, '/network/lanAddress/lanAddr'],
    [
      'upstream on the LAN interface',
      { upstreamWifi: { interface: 'wlan0', ssid: 'Home', hidden: false } },
      '/network/upstreamWifi/interface',
    ],
  ];
  for (const [name, patch, path] of cases) {
    const e = await set(patch).catch((x: unknown) => x);
    t.ok(isObxError(e, 'CONFIG_INVALID'), `${name}: refused`);
    t.ok(isObxError(e) && e.details[path], `${name}: names ${path}`);
  }
  t.same(store.get().network.accessPoint, AP, 'nothing changed');
});
