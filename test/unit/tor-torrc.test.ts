/**
 * torrc renderer and owner-value grammars: a table of injection attacks, generated inputs, and real
 * `tor --verify-config` on rendered files.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { defaultConfig, type TorConfig } from '../../firmware/config/schema.js';
import { validateConfig } from '../../firmware/config/validate.js';
import { isObxError } from '../../firmware/errors.js';
import { COUNTRY_CODES } from '../../firmware/tor/countries.js';
import {
  formatBridgeLine,
  parseBridgeLine,
  parseCountry,
  torSettingsProblems,
} from '../../firmware/tor/grammar.js';
import { checkExtraLine, renderTorrc, type TorRuntime } from '../../firmware/tor/torrc.js';
import { tmpDir } from '../helpers/tmp.js';

const execFileP = promisify(execFile);

const OBFS4 =
  'obfs4 192.0.2.10:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0';
const MEEK =
  'meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625 url=https://meek.azureedge.net/ front=ajax.aspnetcdn.com';
const VANILLA = '[2001:db8::1]:9001 1111111111111111111111111111111111111111';
const SNOWFLAKE =
  'snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=https://1098762253.rsc.cdn77.org/ fronts=app.datapacket.com,www.datapacket.com ice=stun:stun.l.google.com:19302,stun:stun.antisip.com:3478 utls-imitate=hellorandomizedalpn';

const baseTor = (): TorConfig => defaultConfig().tor;
const runtime = (): TorRuntime => ({
  dataDir: '/var/lib/tor',
  socks: { host: '127.0.0.1', port: 9050 },
  control: { host: '127.0.0.1', port: 9051 },
  lanAddress: '10.42.0.1',
  transPort: 9040,
  dnsPort: 5353,
  user: 'debian-tor',
});

t.test('production torrc carries the reference router lines (docs/architecture.md)', async (t) => {
  const text = renderTorrc(baseTor(), runtime());
  for (const line of [
    'DataDirectory /var/lib/tor',
    'User debian-tor',
    'KeepBindCapabilities 1',
    'SocksPort 127.0.0.1:9050',
    'SafeSocks 1',
    'TransPort 10.42.0.1:9040 IsolateClientAddr',
    'DNSPort 10.42.0.1:5353',
    'AutomapHostsOnResolve 1',
    'VirtualAddrNetworkIPv4 172.16.0.0/12',
    'ClientUseIPv6 0',
    'ControlPort 127.0.0.1:9051',
    'CookieAuthentication 1',
    'CookieAuthFile /var/lib/tor/control_auth_cookie',
  ]) {
    t.ok(text.split('\n').includes(line), line);
  }
  t.notMatch(text, /ClientRejectInternalAddresses 0/, 'never in production');
  t.notMatch(text, /UseBridges|ExitNodes|StrictNodes/);
});

t.test('bridges, transports and countries render from parsed values', async (t) => {
  const text = renderTorrc(
    {
      ...baseTor(),
      useBridges: true,
      bridges: [OBFS4, MEEK, VANILLA, SNOWFLAKE],
      exitNodes: ['de', 'nl'],
      excludeExitNodes: ['us'],
      strictNodes: true,
    },
    runtime(),
  );
  const lines = text.split('\n');
  t.ok(lines.includes('UseBridges 1'));
  t.ok(lines.includes('ClientTransportPlugin obfs4,meek_lite exec /usr/bin/lyrebird'));
  t.ok(lines.includes('ClientTransportPlugin snowflake exec /usr/bin/lyrebird'), 'snowflake on its own line');
  t.ok(lines.includes(`Bridge ${OBFS4}`));
  t.ok(lines.includes(`Bridge ${MEEK}`));
  t.ok(lines.includes(`Bridge ${VANILLA}`));
  t.ok(lines.includes(`Bridge ${SNOWFLAKE}`));
  t.ok(lines.includes('ExitNodes {de},{nl}'));
  t.ok(lines.includes('ExcludeExitNodes {us}'));
  t.ok(lines.includes('StrictNodes 1'));
  const noBridges = renderTorrc({ ...baseTor(), useBridges: false, bridges: [OBFS4] }, runtime());
  t.notMatch(noBridges, /^Bridge /m, 'bridge lines are kept but not used while useBridges is off');
});

t.test('"Bridge " prefix and extra spaces are normalized', async (t) => {
  t.equal(formatBridgeLine(parseBridgeLine(`Bridge   ${OBFS4}  `)), OBFS4);
  t.equal(parseBridgeLine(VANILLA).transport, 'vanilla');
  t.equal(parseBridgeLine(VANILLA).address, '2001:db8::1');
});

const ATTACKS: [string, string][] = [
  ['newline + extra keyword', `${OBFS4}\nExitPolicy accept *:*`],
  ['CR + keyword', `${OBFS4}\rSocksPort 0.0.0.0:9050`],
  ['CRLF', `${OBFS4}\r\n`],
  ['NUL byte', `${OBFS4}\0`],
  ['tab', `obfs4\t192.0.2.10:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=abc`],
  ['vertical tab / form feed', `${OBFS4}\x0b\x0c`],
  ['unicode line separator', `${OBFS4}\u2028ControlPort 0.0.0.0:9051`],
  ['non-ASCII homoglyph', OBFS4.replace('obfs4', 'оbfs4')],
  ['overlong', `${OBFS4} ${'x'.repeat(1100)}`],
  ['a torrc keyword as transport', 'ControlPort 0.0.0.0:9051 0123456789ABCDEF0123456789ABCDEF01234567'],
  ['keyword after fingerprint', `${OBFS4} ExitNodes`],
  ['unknown argument', `${OBFS4} exec=/bin/sh`],
  ['argument for another transport', `${OBFS4} url=https://x/`],
  ['duplicate argument', `${OBFS4} iat-mode=1`],
  ['quote in value', `${OBFS4.replace('iat-mode=0', 'iat-mode="0"')}`],
  ['backslash in value', `${OBFS4.replace('iat-mode=0', 'iat-mode=0\\')}`],
  ['comment', `${OBFS4} #comment`],
  ['empty', ''],
  ['only Bridge', 'Bridge'],
  ['unsupported transport', 'obfs3 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF01234567'],
  [
    'hostname instead of address',
    'obfs4 bridge.example:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=abc',
  ],
  ['IPv4 out of range', 'obfs4 192.0.2.256:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=abc'],
  ['IPv6 without brackets', '2001:db8::1:443 0123456789ABCDEF0123456789ABCDEF01234567'],
  ['port 0', 'obfs4 192.0.2.1:0 0123456789ABCDEF0123456789ABCDEF01234567 cert=abc'],
  ['port 70000', 'obfs4 192.0.2.1:70000 0123456789ABCDEF0123456789ABCDEF01234567 cert=abc'],
  ['missing port', 'obfs4 192.0.2.1 0123456789ABCDEF0123456789ABCDEF01234567 cert=abc'],
  ['short fingerprint', 'obfs4 192.0.2.1:443 0123456789ABCDEF cert=abc'],
  ['non-hex fingerprint', 'obfs4 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF0123456Z cert=abc'],
  ['missing fingerprint', 'obfs4 192.0.2.1:443 cert=abc'],
  ['obfs4 without cert', 'obfs4 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF01234567'],
  ['vanilla with args', `${VANILLA} cert=abc`],
  ['shell metacharacters', `${OBFS4} ;rm -rf /`],
  ['path traversal in url', 'meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625 url=`id`'],
  ['not a string', 42 as unknown as string],
];

t.test('attack table: every injection attempt is refused with OBX_ERR_TOR_BRIDGE_INVALID', async (t) => {
  for (const [name, line] of ATTACKS) {
    t.throws(() => parseBridgeLine(line), { code: 'OBX_ERR_TOR_BRIDGE_INVALID' }, name);
    t.throws(
      () => renderTorrc({ ...baseTor(), useBridges: true, bridges: [line] }, runtime()),
      { code: 'OBX_ERR_TOR_BRIDGE_INVALID' },
      `${name}: renderer refuses too`,
    );
  }
});

t.test('the config validator refuses bad bridges and countries with field details', async (t) => {
  const doc = {
    ...defaultConfig(),
    tor: { ...baseTor(), useBridges: true, bridges: [OBFS4, `${OBFS4} ExitNodes`] },
  };
  try {
    validateConfig(doc);
    t.fail('accepted');
  } catch (err) {
    t.ok(isObxError(err, 'CONFIG_INVALID'));
    t.match((err as { details: Record<string, string> }).details['/tor/bridges/1'], /unexpected word/);
  }
  t.throws(() => validateConfig({ ...defaultConfig(), tor: { ...baseTor(), exitNodes: ['zz'] } }), {
    code: 'OBX_ERR_CONFIG_INVALID',
  });
  t.ok(validateConfig({ ...defaultConfig(), tor: { ...baseTor(), useBridges: true, bridges: [OBFS4] } }));
  t.same(torSettingsProblems({ ...baseTor(), useBridges: true }), {
    '/tor/bridges': 'useBridges is on but there is no bridge line',
  });
  t.ok(
    torSettingsProblems({ ...baseTor(), exitNodes: ['de'], excludeExitNodes: ['de'] })[
      '/tor/excludeExitNodes'
    ],
  );
});

t.test('countries: only known ISO codes', async (t) => {
  t.equal(parseCountry('de'), 'de');
  for (const bad of ['DE', 'zz', 'xx', 'd', 'deu', '{de}', 'de}', 'de\n', '??', '', 1]) {
    t.throws(() => parseCountry(bad), { code: 'OBX_ERR_TOR_COUNTRY_INVALID' }, JSON.stringify(bad));
  }
  t.equal(COUNTRY_CODES.size, 249);
});

t.test('runtime values and extra lines are allowlisted', async (t) => {
  const bad: [string, Partial<TorRuntime>][] = [
    ['dataDir with newline', { dataDir: '/var/lib/tor\nControlPort 0.0.0.0:1' }],
    ['relative dataDir', { dataDir: 'tor' }],
    ['dataDir with ..', { dataDir: '/var/../etc' }],
    ['dataDir with space', { dataDir: '/var/lib/my tor' }],
    ['socks host not IPv4', { socks: { host: 'localhost', port: 9050 } }],
    ['socks port 0', { socks: { host: '127.0.0.1', port: 0 } }],
    ['lan address', { lanAddress: '10.42.0.1 ' }],
    ['user', { user: 'root;' }],
    ['owning pid', { owningPid: -1 }],
    ['extra line keyword', { extraLines: ['SocksPort 0.0.0.0:9050'] }],
    ['extra line newline', { extraLines: ['TestingTorNetwork 1\nControlPort 0.0.0.0:1'] }],
  ];
  for (const [name, change] of bad) {
    t.throws(
      () => renderTorrc(baseTor(), { ...runtime(), ...change }),
      { code: 'OBX_ERR_TOR_VALUE_INVALID' },
      name,
    );
  }
  t.equal(checkExtraLine('ClientRejectInternalAddresses 0'), 'ClientRejectInternalAddresses 0');
  t.match(
    renderTorrc(baseTor(), { ...runtime(), control: { unix: '/run/onionbox/control' } }),
    /^ControlPort unix:\/run\/onionbox\/control$/m,
  );
});

t.test('generated inputs: a line with any control or non-ASCII character is always refused', async (t) => {
  const evil = fc.oneof(
    fc.constantFrom('\n', '\r', '\0', '\t', '\x1b', '\x7f', '\u0085', '\u2028', 'é'),
    fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c)),
  );
  fc.assert(
    fc.property(fc.nat(OBFS4.length), evil, fc.string({ maxLength: 30 }), (pos, ch, tail) => {
      const line = `${OBFS4.slice(0, pos)}${ch}${tail}${OBFS4.slice(pos)}`;
      try {
        parseBridgeLine(line);
        return false;
      } catch (err) {
        return isObxError(err, 'TOR_BRIDGE_INVALID');
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

t.test('generated inputs: whatever is accepted renders exactly one strict Bridge line', async (t) => {
  const hex40 = fc.stringMatching(/^[0-9A-F]{40}$/);
  const value = fc.stringMatching(/^[A-Za-z0-9+/=:,.~-]{1,40}$/);
  const word = fc.oneof(
    value,
    fc
      .tuple(fc.constantFrom('cert', 'iat-mode', 'url', 'front', 'ExitNodes', 'x'), value)
      .map(([k, v]) => `${k}=${v}`),
    fc.string({ maxLength: 12 }),
  );
  const candidate = fc
    .tuple(
      fc.constantFrom('obfs4 ', 'meek_lite ', 'snowflake ', '', 'Bridge ', 'ExitNodes '),
      fc.ipV4(),
      fc.integer({ min: 0, max: 70000 }),
      hex40,
      fc.array(word, { maxLength: 4 }),
    )
    .map(([tr, ip, port, fp, words]) => `${tr}${ip}:${port} ${fp} ${words.join(' ')}`);
  let accepted = 0;
  fc.assert(
    fc.property(candidate, (line) => {
      let parsed: ReturnType<typeof parseBridgeLine>;
      try {
        parsed = parseBridgeLine(line);
      } catch (err) {
        return isObxError(err, 'TOR_BRIDGE_INVALID');
      }
      accepted++;
      const text = renderTorrc({ ...baseTor(), useBridges: true, bridges: [line] }, runtime());
      const bridgeLines = text.split('\n').filter((l) => l.startsWith('Bridge '));
      return (
        bridgeLines.length === 1 &&
        /^Bridge ((obfs4|meek_lite|snowflake) )?[0-9.]+:[0-9]{1,5} [0-9A-F]{40}( [a-z][a-z0-9_-]*=[A-Za-z0-9._~:/?#@!$&()*+,;=%[\]-]+)*$/.test(
          bridgeLines[0] ?? '',
        ) &&
        parsed.port >= 1 &&
        parsed.port <= 65535
      );
    }),
    { numRuns: 2000 },
  );
  t.ok(accepted > 0, `some generated lines were valid (${accepted})`);
});

t.test('real tor accepts every rendered variant (tor --verify-config)', async (t) => {
  const dir = tmpDir(t);
  const variants: [string, TorConfig][] = [
    ['defaults', baseTor()],
    [
      'bridges + snowflake + countries',
      {
        ...baseTor(),
        useBridges: true,
        bridges: [OBFS4, MEEK, VANILLA, SNOWFLAKE],
        exitNodes: ['de'],
        excludeExitNodes: ['us', 'ru'],
        strictNodes: true,
      },
    ],
    ['snowflake only', { ...baseTor(), useBridges: true, bridges: [SNOWFLAKE] }],
  ];
  for (const [name, tor] of variants) {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.torrc`);
    // No User/ports on the LAN address: verify on loopback as whoever runs the test.
    writeFileSync(
      path,
      renderTorrc(tor, {
        ...runtime(),
        user: undefined,
        lanAddress: '127.0.0.1',
        dataDir: join(dir, 'data'),
      }),
    );
    const r = await execFileP('tor', ['--verify-config', '--defaults-torrc', '/dev/null', '-f', path]).then(
      () => 'ok',
      (err: Error & { stdout?: string }) => `${err.message} ${err.stdout ?? ''}`,
    );
    t.equal(r, 'ok', name);
  }
});

t.test('optional runtime lines', async (t) => {
  const text = renderTorrc(
    { ...baseTor(), useBridges: true, bridges: [OBFS4], exitNodes: ['de'], strictNodes: false },
    {
      ...runtime(),
      user: undefined,
      owningPid: 4242,
      logFile: '/var/log/tor/notices.log',
      safeSocks: false,
      lyrebird: '/opt/pt/lyrebird',
      extraLines: ['TestingTorNetwork 1', 'ClientRejectInternalAddresses 0'],
    },
  );
  const lines = text.split('\n');
  for (const l of [
    '__OwningControllerProcess 4242',
    'Log notice file /var/log/tor/notices.log',
    'SafeSocks 0',
    'ClientTransportPlugin obfs4 exec /opt/pt/lyrebird',
    'TestingTorNetwork 1',
    'ClientRejectInternalAddresses 0',
    'ExitNodes {de}',
  ]) {
    t.ok(lines.includes(l), l);
  }
  t.notOk(lines.some((l) => l.startsWith('User ')));
  t.notOk(lines.includes('StrictNodes 1'), 'StrictNodes only when asked');
  t.notOk(
    lines.some((l) => l.startsWith('ClientTransportPlugin snowflake')),
    'only the transports in use',
  );
  const noLan = renderTorrc(baseTor(), { ...runtime(), lanAddress: undefined });
  t.notMatch(noLan, /TransPort|DNSPort/, 'no router ports without a LAN address');
  t.throws(() => renderTorrc({ ...baseTor(), useBridges: true }, runtime()), {
    code: 'OBX_ERR_TOR_BRIDGE_INVALID',
  });
  t.throws(() => renderTorrc({ ...baseTor(), exitNodes: ['zz'] }, runtime()), {
    code: 'OBX_ERR_TOR_COUNTRY_INVALID',
  });
  t.throws(() => renderTorrc(baseTor(), { ...runtime(), transPort: 70000 }), {
    code: 'OBX_ERR_TOR_VALUE_INVALID',
  });
  t.throws(() => renderTorrc(baseTor(), { ...runtime(), logFile: 'notices.log' }), {
    code: 'OBX_ERR_TOR_VALUE_INVALID',
  });
  t.throws(() => checkExtraLine(42), { code: 'OBX_ERR_TOR_VALUE_INVALID' });
});
