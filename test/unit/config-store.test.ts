import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { ConfigStore, parseConfigText } from '../../firmware/config/store.js';
import { bridgeLine } from '../helpers/bridge.js';
import { tmpDir } from '../helpers/tmp.js';

const good = () => JSON.stringify({ ...defaultConfig(), softKill: true }, null, 2);

t.test('fresh box: defaults with a new session key, mode 0600, backup written', async (t) => {
  const dir = tmpDir(t);
  const store = new ConfigStore(join(dir, 'state'));
  const r = await store.load();
  t.equal(r.source, 'defaults');
  t.match(r.config.web.sessionKey, /^[0-9a-f]{64}$/);
  t.equal(r.config.web.passwordHash, null);
  t.equal(statSync(store.path).mode & 0o777, 0o600);
  t.equal(statSync(store.backupPath).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
  const again = await new ConfigStore(join(dir, 'state')).load();
  t.equal(again.source, 'main');
  t.equal(again.config.web.sessionKey, r.config.web.sessionKey, 'key survives a restart');
});

t.test('update validates the whole document and keeps the previous copy as backup', async (t) => {
  const dir = tmpDir(t);
  const store = new ConfigStore(dir);
  await store.load();
  await store.update((c) => ({ ...c, softKill: true }));
  t.equal(store.get().softKill, true);
  t.equal(JSON.parse(readFileSync(store.backupPath, 'utf8')).softKill, false);
  const before = readFileSync(store.path, 'utf8');
  await t.rejects(
    store.update((c) => ({ ...c, tor: { ...c.tor, bridges: ['x\ny'] } })),
    { code: 'OBX_ERR_CONFIG_INVALID' },
  );
  t.equal(readFileSync(store.path, 'utf8'), before, 'bad input changes nothing on disk');
  t.equal(store.get().tor.bridges.length, 0, 'nor in memory');
  await t.rejects(
    store.update((c) => ({ ...c, tor: { ...c.tor, bridges: ['obfs4 192.0.2.1:443 not-a-fingerprint'] } })),
    { code: 'OBX_ERR_CONFIG_INVALID' },
    "tor's bridge grammar is part of the store's validation",
  );
  t.equal(readFileSync(store.path, 'utf8'), before);
  t.equal(statSync(store.path).mode & 0o777, 0o600);
  t.same(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
    'no temp files left behind',
  );
});

t.test('concurrent updates are serialised', async (t) => {
  const store = new ConfigStore(tmpDir(t));
  await store.load();
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      store.update((c) => ({ ...c, tor: { ...c.tor, bridges: [...c.tor.bridges, bridgeLine(i)] } })),
    ),
  );
  t.equal(store.get().tor.bridges.length, 10);
  t.equal(JSON.parse(readFileSync(store.path, 'utf8')).tor.bridges.length, 10);
});

const broken: [string, (path: string) => void, string][] = [
  ['empty', (p) => writeFileSync(p, ''), 'OBX_ERR_CONFIG_NOT_JSON'],
  ['whitespace only', (p) => writeFileSync(p, ' \n\t'), 'OBX_ERR_CONFIG_NOT_JSON'],
  ['truncated', (p) => writeFileSync(p, good().slice(0, 100)), 'OBX_ERR_CONFIG_NOT_JSON'],
  ['not JSON', (p) => writeFileSync(p, 'version = 1'), 'OBX_ERR_CONFIG_NOT_JSON'],
  [
    'binary garbage',
    (p) => writeFileSync(p, Buffer.from([0xff, 0xfe, 0x00, 0x01])),
    'OBX_ERR_CONFIG_NOT_JSON',
  ],
  [
    'wrong types',
    (p) => writeFileSync(p, good().replace('"softKill": true', '"softKill": "true"')),
    'OBX_ERR_CONFIG_INVALID',
  ],
  [
    'unknown version',
    (p) => writeFileSync(p, good().replace(/"version": [0-9]+/, '"version": 99')),
    'OBX_ERR_CONFIG_UNKNOWN_VERSION',
  ],
  [
    'version as string',
    (p) => writeFileSync(p, good().replace(/"version": [0-9]+/, '"version": "1"')),
    'OBX_ERR_CONFIG_UNKNOWN_VERSION',
  ],
  ['a JSON array', (p) => writeFileSync(p, '[]'), 'OBX_ERR_CONFIG_INVALID'],
  ['a JSON string', (p) => writeFileSync(p, '"config"'), 'OBX_ERR_CONFIG_INVALID'],
  ['a directory', (p) => mkdirSync(p), 'not a regular file'],
];

for (const [name, breakIt, expected] of broken) {
  t.test(`broken main file (${name}) falls back to the last good copy and loses nothing`, async (t) => {
    const dir = tmpDir(t);
    const store = new ConfigStore(dir);
    writeFileSync(store.backupPath, good());
    breakIt(store.path);
    const r = await store.load();
    t.equal(r.source, 'backup');
    t.match(r.problem, expected);
    t.equal(r.config.softKill, true, 'settings from the good copy');
    t.equal(JSON.parse(readFileSync(store.path, 'utf8')).softKill, true, 'main restored from backup');
    t.ok(
      readdirSync(dir).some((f) => f.startsWith('config.json.broken-')),
      'the broken file is kept for diagnosis',
    );
  });

  t.test(`broken main (${name}) and no backup: clear error, nothing overwritten`, async (t) => {
    const dir = tmpDir(t);
    const store = new ConfigStore(dir);
    breakIt(store.path);
    const snapshot = statSync(store.path).isFile() ? readFileSync(store.path) : null;
    await t.rejects(store.load(), { code: 'OBX_ERR_CONFIG_UNREADABLE' });
    if (snapshot) t.same(readFileSync(store.path), snapshot, 'file untouched');
    t.notOk(existsSync(store.backupPath));
  });
}

t.test('parseConfigText', async (t) => {
  t.equal(parseConfigText(good()).softKill, true);
  t.throws(() => parseConfigText(''), { code: 'OBX_ERR_CONFIG_NOT_JSON' });
  t.throws(() => parseConfigText('null'), { code: 'OBX_ERR_CONFIG_INVALID' });
});

t.test('get() before load() is a programming error', async (t) => {
  t.throws(() => new ConfigStore('/nonexistent').get(), /before load/);
});

t.test('a write failure is reported and keeps the old file', async (t) => {
  const dir = tmpDir(t);
  const store = new ConfigStore(dir);
  await store.load();
  const before = readFileSync(store.path, 'utf8');
  // A directory where the backup goes: the rename over it fails (for root too).
  rmSync(store.backupPath);
  mkdirSync(store.backupPath);
  await t.rejects(
    store.update((c) => ({ ...c, softKill: true })),
    { code: 'OBX_ERR_CONFIG_WRITE_FAILED' },
  );
  t.equal(readFileSync(store.path, 'utf8'), before, 'main file untouched');
  t.equal(store.get().softKill, false, 'memory untouched');
  t.same(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
    'temp file cleaned up',
  );
});
