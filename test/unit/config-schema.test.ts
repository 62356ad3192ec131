import t from 'tap';
import { migrate } from '../../firmware/config/migrations.js';
import { CONFIG_VERSION, defaultConfig } from '../../firmware/config/schema.js';
import { configProblems, validateConfig } from '../../firmware/config/validate.js';
import { isObxError } from '../../firmware/errors.js';
import { bridgeLine } from '../helpers/bridge.js';

t.test('defaults are valid and frozen after validation', async (t) => {
  const cfg = validateConfig(defaultConfig());
  t.equal(cfg.version, CONFIG_VERSION);
  t.equal(cfg.web.passwordHash, null, 'no default password, ever');
  t.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.tor.bridges));
});

const bad: [string, (c: ReturnType<typeof defaultConfig>) => unknown][] = [
  ['unknown top-level key', (c) => ({ ...c, extra: 1 })],
  ['wrong type', (c) => ({ ...c, softKill: 'yes' })],
  [
    'newline in a bridge line',
    (c) => ({ ...c, tor: { ...c.tor, bridges: ['obfs4 1.2.3.4:443 X\nExitNodes {us}'] } }),
  ],
  ['control character in a bridge line', (c) => ({ ...c, tor: { ...c.tor, bridges: ['obfs4\u0000'] } })],
  ['overlong bridge line', (c) => ({ ...c, tor: { ...c.tor, bridges: ['a'.repeat(1025)] } })],
  ['upper-case country', (c) => ({ ...c, tor: { ...c.tor, exitNodes: ['US'] } })],
  ['interface with a space', (c) => ({ ...c, network: { ...c.network, lanInterface: 'eth0 ; ls' } })],
  ['interface too long', (c) => ({ ...c, network: { ...c.network, lanInterface: 'a'.repeat(16) } })],
  ['bad IPv4', (c) => ({ ...c, network: { ...c.network, lanAddress: '10.0.0.256' } })],
  ['port 0', (c) => ({ ...c, web: { ...c.web, port: 0 } })],
  ['session key not hex', (c) => ({ ...c, web: { ...c.web, sessionKey: 'z'.repeat(64) } })],
  ['pin out of range', (c) => ({ ...c, board: { ...c.board, killSwitchPin: 99 } })],
  ['version missing', (c) => ({ ...c, version: undefined })],
  ['array at top', () => []],
  ['null', () => null],
];
for (const [name, mutate] of bad) {
  t.test(`rejects: ${name}`, async (t) => {
    const doc = mutate(defaultConfig());
    t.not(Object.keys(configProblems(doc)).length, 0);
    t.throws(() => validateConfig(doc), { code: 'OBX_ERR_CONFIG_INVALID' });
  });
}

t.test('field details name the bad field', async (t) => {
  try {
    validateConfig({ ...defaultConfig(), network: { ...defaultConfig().network, lanAddress: 'x' } });
    t.fail('should throw');
  } catch (err) {
    t.ok(isObxError(err, 'CONFIG_INVALID'));
    if (isObxError(err)) t.ok('/network/lanAddress' in err.details, JSON.stringify(err.details));
  }
});

t.test('the checks handed to the validator run after the schema', async (t) => {
  const check = (c: ReturnType<typeof defaultConfig>): Record<string, string> =>
    c.tor.bridges.includes(bridgeLine(7)) ? { '/tor/bridges': 'nope' } : {};
  const doc = { ...defaultConfig(), tor: { ...defaultConfig().tor, bridges: [bridgeLine(7)] } };
  t.same(configProblems(doc, [check]), { '/tor/bridges': 'nope' });
  t.same(
    configProblems({ ...doc, version: 'x' }, [check]),
    { '/version': configProblems({ ...doc, version: 'x' })['/version'] },
    'not before the schema passes',
  );
  t.same(
    configProblems({ ...defaultConfig(), tor: { ...defaultConfig().tor, exitNodes: ['zz'] } }, []),
    {},
    'only the checks handed over',
  );
  t.not(
    Object.keys(configProblems({ ...defaultConfig(), tor: { ...defaultConfig().tor, exitNodes: ['zz'] } }))
      .length,
    0,
    "tor's grammar is among the default checks",
  );
});

t.test('migrations', async (t) => {
  const steps = {
    1: (d: Record<string, unknown>) => ({ ...d, b: 2 }),
    2: (d: Record<string, unknown>) => ({ ...d, c: 3 }),
  };
  t.same(migrate({ version: 1, a: 1 }, steps, 3), {
    doc: { version: 3, a: 1, b: 2, c: 3 },
    from: 1,
    migrated: true,
  });
  t.same(migrate({ version: 3 }, steps, 3), { doc: { version: 3 }, from: 3, migrated: false });
  t.throws(() => migrate({ version: 4 }, steps, 3), { code: 'OBX_ERR_CONFIG_UNKNOWN_VERSION' });
  t.throws(() => migrate({ version: 0 }, steps, 3), { code: 'OBX_ERR_CONFIG_UNKNOWN_VERSION' });
  t.throws(() => migrate({ version: '1' }, steps, 3), { code: 'OBX_ERR_CONFIG_UNKNOWN_VERSION' });
  t.throws(() => migrate({}, steps, 3), { code: 'OBX_ERR_CONFIG_UNKNOWN_VERSION' });
  t.same(migrate('x', steps, 3), { doc: 'x', from: -1, migrated: false });
  const input = { version: 1 };
  migrate(input, steps, 3);
  t.same(input, { version: 1 }, 'input untouched');
});
