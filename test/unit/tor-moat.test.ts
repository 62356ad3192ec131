/**
 * Moat over meek_lite (issue 21), its pure parts: the requests the box sends, the one schema every answer
 * passes, each line through the bridge grammar before anything can reach torrc, the pluggable-transport
 * managed protocol lyrebird speaks, and the SOCKS arguments that carry `url=` and `front=`.
 */
import t from 'tap';
import {
  checkMoatEndpoint,
  MOAT_ANSWER_MAX_BYTES,
  MOAT_ENDPOINT,
  moatRequest,
  moatUrl,
  parseMoatBuiltin,
  parseMoatSettings,
} from '../../firmware/tor/moat.js';
import { parsePtLine, ptClientEnv, ptHandshake, socksArgs } from '../../firmware/tor/pt-managed.js';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const OBFS4 = `obfs4 198.18.0.17:4430 ${FP} cert=AAAABBBBCCCC iat-mode=0`;
const OBFS4_B = `obfs4 198.18.0.19:443 ${FP} cert=DDDDEEEE iat-mode=1`;
const SNOW = `snowflake 192.0.2.3:80 ${FP} fingerprint=${FP} url=https://broker.example/ fronts=a.example`;

t.test('requests: settings with the owner country, defaults, builtin; Moat URL joined', async (t) => {
  t.same(moatRequest('settings', { country: 'ir' }), {
    kind: 'settings',
    path: '/circumvention/settings',
    body: '{"transports":["obfs4"],"country":"ir"}',
  });
  t.same(
    JSON.parse(moatRequest('settings').body),
    { transports: ['obfs4'] },
    'no country: Moat goes by the address',
  );
  t.same(
    JSON.parse(moatRequest('defaults', { country: 'ir' }).body),
    { transports: ['obfs4'] },
    'defaults ask for no country',
  );
  t.same(moatRequest('builtin'), { kind: 'builtin', path: '/circumvention/builtin', body: '' });
  t.throws(() => moatRequest('settings', { country: 'zz' }), { code: 'OBX_ERR_TOR_COUNTRY_INVALID' });
  t.throws(() => moatRequest('settings', { country: 'IR; rm' }), { code: 'OBX_ERR_TOR_COUNTRY_INVALID' });
  t.equal(
    moatUrl(MOAT_ENDPOINT.service, '/circumvention/settings').href,
    'https://bridges.torproject.org/moat/circumvention/settings',
  );
  t.equal(
    moatUrl('https://moat.sim.test/moat/', '/circumvention/x').href,
    'https://moat.sim.test/moat/circumvention/x',
  );
});

t.test('endpoint: https URLs and a host name only, each refusal names its field', async (t) => {
  t.same(checkMoatEndpoint({ ...MOAT_ENDPOINT }), MOAT_ENDPOINT);
  const bad: [unknown, RegExp][] = [
    [null, /moat must be/],
    [{ ...MOAT_ENDPOINT, extra: 1 }, /unknown key extra/],
    [{ ...MOAT_ENDPOINT, service: 'http://bridges.torproject.org/moat' }, /moat service must be an https/],
    [{ ...MOAT_ENDPOINT, url: 'https://user:pw@x.example/' }, /moat url must not carry/],
    [{ ...MOAT_ENDPOINT, front: 'vuejs.org;x' }, /moat front must be a host name/],
    [{ ...MOAT_ENDPOINT, front: 'vuejs.org:443' }, /moat front must be a host name/],
  ];
  for (const [doc, re] of bad)
    t.throws(() => checkMoatEndpoint(doc), { code: 'OBX_ERR_TOR_VALUE_INVALID', message: re });
});

t.test('settings: schema, then every line through the grammar; only transports the box tries', async (t) => {
  const answer = {
    settings: [
      { bridges: { type: 'snowflake', source: 'builtin', bridge_strings: [SNOW] } },
      {
        bridges: {
          type: 'obfs4',
          source: 'bridgedb',
          bridge_strings: [OBFS4, `obfs4 1.2.3.4:1 ${FP} cert=x#y`, OBFS4_B, OBFS4],
        },
      },
      { bridges: { type: 'obfs4', source: 'bridgedb', bridge_strings: [SNOW] } },
    ],
    country: 'ir',
  };
  const r = parseMoatSettings(JSON.stringify(answer));
  t.same(
    r.settings,
    [{ transport: 'obfs4', lines: [OBFS4, OBFS4_B] }],
    'bad and duplicate lines dropped, order kept',
  );
  t.equal(r.errors.length, 0);
  t.match(r.dropped.join('\n'), /settings\/0: transport snowflake is not tried/);
  t.match(r.dropped.join('\n'), /settings\/1\/1: .*not allowed|settings\/1\/1: .*cert/);
  t.match(r.dropped.join('\n'), /settings\/2\/0: a snowflake line in a obfs4 setting/);
  t.match(r.dropped.join('\n'), /settings\/2: no usable obfs4 line/);
});

t.test('settings: "use your built-in lines" and "nothing needed" and errors', async (t) => {
  const builtin = parseMoatSettings(
    JSON.stringify({ settings: [{ bridges: { type: 'obfs4', source: 'builtin' } }] }),
    { builtin: (tr) => (tr === 'obfs4' ? [OBFS4_B] : []) },
  );
  t.same(builtin.settings, [{ transport: 'obfs4', lines: [OBFS4_B] }]);
  t.same(parseMoatSettings('{}'), { settings: [], errors: [], dropped: [] }, '{}: nothing known is needed');
  t.same(parseMoatSettings('{"settings":[]}').settings, []);
  t.same(parseMoatSettings('{"errors":[{"code":406,"detail":"unknown country"}]}').errors, [
    { code: 406, detail: 'unknown country' },
  ]);
});

t.test('answers that are not Moat answers are refused, nothing of them used', async (t) => {
  const refused = [
    'not json',
    '[]',
    '"x"',
    '{"settings":"obfs4 ..."}',
    '{"settings":[{"bridges":{"type":"obfs4"}}]}',
    '{"settings":[{"bridges":{"type":"OBFS4;x","source":"b","bridge_strings":[]}}]}',
    '{"errors":[]}',
    '{"settings":[],"more":1}',
    `{"settings":[{"bridges":{"type":"obfs4","source":"b","bridge_strings":["${'a'.repeat(1100)}"]}}]}`,
    `{"x":"${'a'.repeat(MOAT_ANSWER_MAX_BYTES)}"}`,
  ];
  for (const text of refused) {
    t.throws(() => parseMoatSettings(text), { code: 'OBX_ERR_TOR_MOAT_ANSWER_INVALID' }, text.slice(0, 60));
  }
});

t.test('builtin: lines by transport, each through the grammar', async (t) => {
  const r = parseMoatBuiltin(JSON.stringify({ obfs4: [OBFS4, 'obfs4 nonsense'], snowflake: [SNOW] }));
  t.same(r.builtin, { obfs4: [OBFS4] }, 'snowflake left out, the bad line dropped');
  t.match(r.dropped[0], /^obfs4\/1: /);
  t.throws(() => parseMoatBuiltin('{"settings":[]}'), { code: 'OBX_ERR_TOR_MOAT_ANSWER_INVALID' });
  t.throws(() => parseMoatBuiltin('{"obfs4":"x"}'), { code: 'OBX_ERR_TOR_MOAT_ANSWER_INVALID' });
});

t.test('managed protocol: environment, handshake lines, errors', async (t) => {
  t.same(ptClientEnv('meek_lite', '/run/x'), {
    TOR_PT_MANAGED_TRANSPORT_VER: '1',
    TOR_PT_STATE_LOCATION: '/run/x',
    TOR_PT_CLIENT_TRANSPORTS: 'meek_lite',
    TOR_PT_EXIT_ON_STDIN_CLOSE: '1',
  });
  t.same(parsePtLine('CMETHOD meek_lite socks5 127.0.0.1:46297'), {
    kind: 'cmethod',
    transport: 'meek_lite',
    host: '127.0.0.1',
    port: 46297,
  });
  t.equal(parsePtLine('CMETHOD meek_lite socks5 0.0.0.0:1').kind, 'error', 'only a loopback listener');
  t.equal(parsePtLine('CMETHOD meek_lite socks4 127.0.0.1:1').kind, 'error');
  t.equal(parsePtLine('LOG SEVERITY=notice MESSAGE="x"').kind, 'other');
  const real = ['VERSION 1', 'CMETHOD meek_lite socks5 127.0.0.1:46297', 'CMETHODS DONE'];
  t.same(ptHandshake(real.slice(0, 2), 'meek_lite'), { state: 'waiting' });
  t.same(ptHandshake(real, 'meek_lite'), { state: 'ready', port: 46297 });
  t.same(ptHandshake(['VERSION 2'], 'meek_lite').state, 'failed');
  t.same(ptHandshake(['VERSION 1', 'CMETHODS DONE'], 'meek_lite'), {
    state: 'failed',
    message: 'no CMETHOD for meek_lite',
  });
  t.match(ptHandshake(['VERSION 1', 'CMETHOD-ERROR meek_lite no such transport'], 'meek_lite'), {
    state: 'failed',
    message: /CMETHOD-ERROR/,
  });
  t.match(ptHandshake(['ENV-ERROR no TOR_PT_STATE_LOCATION'], 'meek_lite'), { state: 'failed' });
});

t.test('SOCKS arguments: escaped, in the username, longer ones go on in the password', async (t) => {
  t.same(
    socksArgs([
      ['url', 'https://meek.sim.test/'],
      ['front', 'front.sim.test'],
    ]),
    { username: 'url=https://meek.sim.test/;front=front.sim.test', password: '\0' },
  );
  t.same(socksArgs([['k', 'a;b=c\\d']]).username, 'k=a\\;b\\=c\\\\d');
  const long = socksArgs([['url', `https://${'a'.repeat(300)}.example/`]]);
  t.equal(long.username.length, 255);
  t.equal(long.username + long.password, `url=https://${'a'.repeat(300)}.example/`);
  t.throws(() => socksArgs([]), { code: 'OBX_ERR_TOR_VALUE_INVALID' });
  t.throws(() => socksArgs([['url', 'a b']]), { code: 'OBX_ERR_TOR_VALUE_INVALID' });
  t.throws(() => socksArgs([['url', 'x'.repeat(600)]]), { code: 'OBX_ERR_TOR_VALUE_INVALID' });
});
