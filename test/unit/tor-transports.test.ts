/**
 * Pluggable transports through lyrebird (issue 21): the bridge-line grammar of each transport (obfs4,
 * webtunnel, meek_lite, snowflake), each refusal naming the transport and the field, and the torrc's
 * ClientTransportPlugin lines (snowflake on a line of its own, as Tor Browser runs it).
 */
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { formatBridgeLine, parseBridgeLine, torSettingsProblems } from '../../firmware/tor/grammar.js';
import { renderTorrc, transportPluginLines } from '../../firmware/tor/torrc.js';
import { TRANSPORT_LINES as LINES } from '../helpers/bridge.js';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';

t.test('each transport: a real-shaped line parses and formats back unchanged', async (t) => {
  for (const [name, line] of Object.entries(LINES)) {
    const b = parseBridgeLine(line);
    t.equal(formatBridgeLine(b), line, name);
  }
  t.equal(parseBridgeLine(LINES.webtunnel).transport, 'webtunnel');
  t.equal(parseBridgeLine(LINES.webtunnel).address, '2001:db8:49a0:fcc3:d8c5:b51e:76c7:9a2f');
  t.equal(parseBridgeLine(LINES.meek).transport, 'meek_lite');
  t.equal(parseBridgeLine(LINES.snowflakeSqs).transport, 'snowflake');
});

/** [name, line, what the message must name] */
const REFUSED: [string, string, RegExp][] = [
  [
    'obfs4 cert not base64',
    `obfs4 192.0.2.1:443 ${FP} cert=a.b.c.d iat-mode=0`,
    /obfs4 argument "cert" must be base64/,
  ],
  ['obfs4 iat-mode 3', `obfs4 192.0.2.1:443 ${FP} cert=AAAAAAAA iat-mode=3`, /"iat-mode" must be 0, 1 or 2/],
  [
    'obfs4 url',
    `obfs4 192.0.2.1:443 ${FP} cert=AAAAAAAA url=https://x.example/`,
    /"url" is not known for obfs4/,
  ],
  ['webtunnel without url', `webtunnel 192.0.2.1:443 ${FP} ver=0.0.1`, /webtunnel bridge without url=/],
  [
    'webtunnel http url',
    `webtunnel 192.0.2.1:443 ${FP} url=http://wt.example.net/x`,
    /webtunnel argument "url" must be an https:\/\/ URL/,
  ],
  [
    'webtunnel url with user',
    `webtunnel 192.0.2.1:443 ${FP} url=https://u:p@wt.example.net/`,
    /"url" must not carry a user name/,
  ],
  ['webtunnel url file:', `webtunnel 192.0.2.1:443 ${FP} url=file:///etc/passwd`, /"url" must be an https/],
  [
    'webtunnel ver letters',
    `webtunnel 192.0.2.1:443 ${FP} url=https://wt.example.net/ ver=latest`,
    /"ver" must be a version/,
  ],
  [
    'webtunnel cert',
    `webtunnel 192.0.2.1:443 ${FP} url=https://wt.example.net/ cert=AAAA`,
    /"cert" is not known for webtunnel/,
  ],
  ['meek_lite without url', `meek_lite 192.0.2.2:443 ${FP} front=a.example`, /meek_lite bridge without url=/],
  [
    'meek_lite front with underscore',
    `meek_lite 192.0.2.2:443 ${FP} url=https://m.example/ front=a_b.example`,
    /meek_lite argument "front" must be a host name/,
  ],
  [
    'meek_lite fronts empty item',
    `meek_lite 192.0.2.2:443 ${FP} url=https://m.example/ fronts=a.example,,b.example`,
    /"fronts" must be host names/,
  ],
  [
    'meek_lite utls with dot',
    `meek_lite 192.0.2.2:443 ${FP} url=https://m.example/ utls=hello.chrome`,
    /"utls" must be a uTLS/,
  ],
  [
    'meek_lite ice',
    `meek_lite 192.0.2.2:443 ${FP} url=https://m.example/ ice=stun:s.example:3478`,
    /"ice" is not known for meek_lite/,
  ],
  [
    'snowflake ice http',
    `snowflake 192.0.2.3:80 ${FP} ice=http://stun.example:3478`,
    /snowflake argument "ice" must be STUN servers/,
  ],
  ['snowflake ice port 0', `snowflake 192.0.2.3:80 ${FP} ice=stun:stun.example:0`, /"ice" must be STUN/],
  [
    'snowflake fingerprint short',
    `snowflake 192.0.2.3:80 ${FP} fingerprint=ABCD`,
    /"fingerprint" must be 40 hex digits/,
  ],
  [
    'snowflake ampcache http',
    `snowflake 192.0.2.3:80 ${FP} ampcache=http://amp.example/`,
    /"ampcache" must be an https/,
  ],
  [
    'snowflake sqsqueue not url',
    `snowflake 192.0.2.3:80 ${FP} sqsqueue=queue`,
    /"sqsqueue" must be an https/,
  ],
  ['snowflake sqscreds odd', `snowflake 192.0.2.3:80 ${FP} sqscreds=a:b`, /"sqscreds" must be base64/],
  ['snowflake utls-imitate odd', `snowflake 192.0.2.3:80 ${FP} utls-imitate=a/b`, /"utls-imitate" must be/],
  ['snowflake cert', `snowflake 192.0.2.3:80 ${FP} cert=AAAA`, /"cert" is not known for snowflake/],
  [
    'snowflake front list',
    `snowflake 192.0.2.3:80 ${FP} front=a.example,b.example`,
    /"front" must be a host name/,
  ],
  ['obfs3 refused', `obfs3 192.0.2.1:443 ${FP}`, /unsupported transport "obfs3"/],
  ['scramblesuit refused', `scramblesuit 192.0.2.1:443 ${FP} password=x`, /unsupported transport/],
];

t.test('bad lines of each transport are refused, naming the transport and the field', async (t) => {
  for (const [name, line, message] of REFUSED) {
    t.throws(() => parseBridgeLine(line), { code: 'OBX_ERR_TOR_BRIDGE_INVALID', message }, name);
  }
  const tor = { ...defaultConfig().tor, useBridges: true, bridges: [LINES.webtunnel, REFUSED[3]?.[1] ?? ''] };
  t.match(
    torSettingsProblems(tor)['/tor/bridges/1'],
    /webtunnel bridge without url=/,
    'the config check names the line',
  );
});

t.test('ClientTransportPlugin lines: lyrebird for every transport, snowflake on its own line', async (t) => {
  t.same(transportPluginLines(new Set()), []);
  t.same(transportPluginLines(new Set(['vanilla'])), []);
  t.same(transportPluginLines(new Set(['obfs4'])), ['ClientTransportPlugin obfs4 exec /usr/bin/lyrebird']);
  t.same(transportPluginLines(new Set(['snowflake', 'meek_lite', 'webtunnel', 'obfs4', 'vanilla'])), [
    'ClientTransportPlugin obfs4,webtunnel,meek_lite exec /usr/bin/lyrebird',
    'ClientTransportPlugin snowflake exec /usr/bin/lyrebird',
  ]);
  t.same(transportPluginLines(new Set(['snowflake']), '/opt/lyrebird'), [
    'ClientTransportPlugin snowflake exec /opt/lyrebird',
  ]);
  t.throws(() => transportPluginLines(new Set(['obfs4']), '/opt/x y'), { code: 'OBX_ERR_TOR_VALUE_INVALID' });
  t.throws(() => transportPluginLines(new Set(['obfs4']), 'lyrebird'), { code: 'OBX_ERR_TOR_VALUE_INVALID' });

  const rt = {
    dataDir: '/var/lib/tor',
    socks: { host: '127.0.0.1', port: 9050 },
    control: { host: '127.0.0.1', port: 9051 },
  };
  const text = renderTorrc(
    { ...defaultConfig().tor, useBridges: true, bridges: [LINES.webtunnel, LINES.snowflake] },
    rt,
  );
  const plugins = text.split('\n').filter((l) => l.startsWith('ClientTransportPlugin'));
  t.same(plugins, [
    'ClientTransportPlugin webtunnel exec /usr/bin/lyrebird',
    'ClientTransportPlugin snowflake exec /usr/bin/lyrebird',
  ]);
  t.match(text, `\nBridge ${LINES.webtunnel}\n`);
  t.notMatch(text, /obfs4proxy|snowflake-client/, 'no other transport binary');
  const off = renderTorrc({ ...defaultConfig().tor, useBridges: false, bridges: [LINES.snowflake] }, rt);
  t.notMatch(off, /ClientTransportPlugin/, 'no transport runs while bridges are off');
});
