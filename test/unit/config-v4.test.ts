/**
 * Config v4 (issue 21): the built-in snowflake bridge is gone (it could never connect behind the box's
 * firewall). Version 3 documents still load: the 3 -> 4 migration drops `tor.builtinSnowflake`, keeps the
 * owner's own bridge lines, and turns `useBridges` off only when nothing but the built-in was there.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { dropBuiltinSnowflake, migrate } from '../../firmware/config/migrations.js';
import { CONFIG_VERSION, defaultConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { configProblems } from '../../firmware/config/validate.js';
import { tmpDir } from '../helpers/tmp.js';

const OBFS4 =
  'obfs4 192.0.2.10:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0';

const v3 = (tor: Record<string, unknown>) => {
  const base = defaultConfig();
  return { ...base, version: 3, tor: { ...base.tor, ...tor } };
};

t.test('3 -> 4: builtinSnowflake is dropped; own lines keep bridges on', async (t) => {
  t.equal(CONFIG_VERSION, 4);
  const cases: [string, Record<string, unknown>, { useBridges: boolean; bridges: string[] }][] = [
    [
      'snowflake only',
      { useBridges: true, builtinSnowflake: true, bridges: [] },
      { useBridges: false, bridges: [] },
    ],
    [
      'snowflake and own lines',
      { useBridges: true, builtinSnowflake: true, bridges: [OBFS4] },
      { useBridges: true, bridges: [OBFS4] },
    ],
    [
      'own lines only',
      { useBridges: true, builtinSnowflake: false, bridges: [OBFS4] },
      { useBridges: true, bridges: [OBFS4] },
    ],
    [
      'snowflake ticked, bridges off',
      { useBridges: false, builtinSnowflake: true, bridges: [] },
      { useBridges: false, bridges: [] },
    ],
    [
      'nothing',
      { useBridges: false, builtinSnowflake: false, bridges: [] },
      { useBridges: false, bridges: [] },
    ],
  ];
  for (const [name, tor, want] of cases) {
    const r = migrate(v3(tor));
    t.ok(r.migrated, name);
    t.equal(r.from, 3, name);
    const got = (r.doc as ReturnType<typeof defaultConfig>).tor;
    t.notOk('builtinSnowflake' in got, `${name}: field gone`);
    t.same({ useBridges: got.useBridges, bridges: got.bridges }, want, name);
    t.same(configProblems(r.doc), {}, `${name}: valid v4`);
  }
  t.same(dropBuiltinSnowflake({ version: 3, tor: null }), { version: 3, tor: null }, 'odd shapes untouched');
  t.same(dropBuiltinSnowflake({ version: 3 }), { version: 3 });
});

t.test('v4 refuses the old field; a stored v3 file loads and is rewritten as v4', async (t) => {
  const withField = { ...defaultConfig(), tor: { ...defaultConfig().tor, builtinSnowflake: true } };
  t.ok(Object.keys(configProblems(withField)).length > 0, 'a v4 document may not carry it');
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(v3({ useBridges: true, builtinSnowflake: true })));
  const store = new ConfigStore(dir);
  await store.load();
  t.equal(store.get().version, 4);
  t.equal(store.get().tor.useBridges, false);
  const onDisk = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.equal(onDisk.version, 4, 'migrated document written');
  t.notMatch(JSON.stringify(onDisk), /builtinSnowflake/);
});
