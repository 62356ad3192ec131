/**
 * The narrowest firewall per pluggable transport (issue 21): golden rulesets (regenerate with
 * UPDATE_GOLDEN=1 and read the diff), and must / must-not assertions: only tor's uid, only while that
 * transport is configured, DNS only to the WAN's own resolver, TCP to public addresses on the transports'
 * ports, UDP (snowflake) to public addresses only and never to ports 53 or 123; placeholder addresses
 * never in the relay set.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { defaultConfig, type TorConfig } from '../../firmware/config/schema.js';
import { inRanges, NOT_PUBLIC, notPublicRanges, validateParams } from '../../firmware/firewall/params.js';
import { type FirewallMode, type FirewallParams, renderRuleset } from '../../firmware/firewall/render.js';
import { parseDhcp4, renderResolvConf } from '../../firmware/net/wan-lease.js';
import { bridgeEndpoints, RelaySet } from '../../firmware/tor/relay-set.js';
import { MOAT_NEEDS, transportNeeds, transportOpenings } from '../../firmware/tor/transports.js';
import { SAMPLE } from '../fixtures/firewall/sample.js';
import { TRANSPORT_LINES } from '../helpers/bridge.js';
import { chainBody } from '../helpers/nft-script.js';

const RESOLVER = '198.18.0.53';
export const VARIANTS: Record<string, string[]> = {
  obfs4: [TRANSPORT_LINES.obfs4],
  webtunnel: [TRANSPORT_LINES.webtunnel4],
  meek_lite: [TRANSPORT_LINES.meek],
  snowflake: [TRANSPORT_LINES.snowflake],
};

function torWith(lines: string[], useBridges = true): TorConfig {
  return { ...defaultConfig().tor, useBridges, bridges: lines };
}

function paramsFor(tor: TorConfig): FirewallParams {
  return {
    ...SAMPLE,
    relays: [...SAMPLE.relays, ...bridgeEndpoints(tor)],
    transports: transportOpenings(transportNeeds(tor), [RESOLVER]),
  };
}

t.test('what each transport needs', async (t) => {
  t.same(transportNeeds(torWith(VARIANTS.obfs4 ?? [])), { dns: false, tcpPorts: [], udp: false });
  t.same(transportNeeds(torWith([TRANSPORT_LINES.webtunnel4])), {
    dns: true,
    tcpPorts: [443, 8443],
    udp: false,
  });
  t.same(transportNeeds(torWith([TRANSPORT_LINES.webtunnel])), { dns: true, tcpPorts: [443], udp: false });
  t.same(transportNeeds(torWith([TRANSPORT_LINES.meek])), { dns: true, tcpPorts: [443], udp: false });
  t.same(transportNeeds(torWith([TRANSPORT_LINES.snowflake])), { dns: true, tcpPorts: [443], udp: true });
  t.same(
    transportNeeds(torWith([TRANSPORT_LINES.snowflake], false)),
    { dns: false, tcpPorts: [], udp: false },
    'bridges off: nothing, whatever lines are stored',
  );
  t.equal(transportOpenings(transportNeeds(torWith(VARIANTS.obfs4 ?? [])), [RESOLVER]), undefined);
  t.same(transportOpenings({ dns: true, tcpPorts: [443], udp: false }, []), {
    resolvers: [],
    tcpPorts: [443],
    udp: false,
  });
});

t.test('placeholder addresses never enter the relay set; obfs4 and vanilla bridges do', async (t) => {
  const all = torWith(Object.values(TRANSPORT_LINES));
  t.same(bridgeEndpoints(all), [{ address: '203.0.113.10', port: 443 }], 'only the obfs4 bridge');
  for (const name of [
    'webtunnel4',
    'meek',
    'meekFronts',
    'snowflake',
    'snowflakeSqs',
    'snowflakeAmp',
  ] as const) {
    t.same(bridgeEndpoints(torWith([TRANSPORT_LINES[name]])), [], `${name}: placeholder left out`);
  }
});

t.test('golden ruleset per transport (connecting)', async (t) => {
  for (const [name, lines] of Object.entries(VARIANTS)) {
    const got = renderRuleset('connecting', paramsFor(torWith(lines)));
    const file = new URL(`../fixtures/firewall/transport-${name}.nft`, import.meta.url);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, got);
    t.equal(got, readFileSync(file, 'utf8'), `${name} matches test/fixtures/firewall/transport-${name}.nft`);
  }
});

t.test('every transport in every mode: tor uid only, public only, DNS to the resolver only', async (t) => {
  const MODES: FirewallMode[] = ['lockdown', 'connecting', 'routing', 'killed'];
  for (const [name, lines] of Object.entries(VARIANTS)) {
    const tor = torWith(lines);
    const needs = transportNeeds(tor);
    for (const mode of MODES) {
      const s = renderRuleset(mode, paramsFor(tor));
      const out = chainBody(s, 'wan_out');
      const others = out.filter((r) => !r.startsWith('meta skuid 102 '));
      t.same(
        others,
        ['meta skuid 0 udp sport 68 udp dport 67 ip daddr { 255.255.255.255 } accept'],
        `${name} ${mode}: nothing but tor's uid (and root's DHCP renewals) to the WAN`,
      );
      if (mode === 'lockdown') {
        t.same(out.length, 1, `${name} lockdown: no transport opening`);
        continue;
      }
      const dns = out.filter((r) => /th dport 53\b/.test(r));
      const tcp = out.filter((r) => / tcp dport \{/.test(r));
      const udp = out.filter((r) => / udp dport != /.test(r));
      t.same(
        dns,
        needs.dns
          ? [`meta skuid 102 ip daddr { ${RESOLVER} } meta l4proto { tcp, udp } th dport 53 accept`]
          : [],
        `${name} ${mode}: DNS only to the WAN's resolver, only when needed`,
      );
      t.equal(tcp.length, needs.tcpPorts.length > 0 ? 1 : 0, `${name} ${mode}: TCP opening only when needed`);
      t.equal(udp.length, needs.udp ? 1 : 0, `${name} ${mode}: UDP only for snowflake`);
      for (const r of [...tcp, ...udp]) {
        t.match(
          r,
          `ip daddr != { ${NOT_PUBLIC.join(', ')} }`,
          `${name} ${mode}: never to a non-public range`,
        );
      }
      for (const r of udp) t.match(r, 'udp dport != { 53, 123 } accept', `${name} ${mode}: never UDP 53/123`);
      for (const r of udp) {
        t.match(
          r,
          'ip saddr != 10.200.0.0/24 ',
          `${name} ${mode}: never UDP from the LAN's address (ICE binds it)`,
        );
      }
      t.notMatch(s, /skuid 102 (?!ip daddr)/, `${name} ${mode}: every tor rule names its destinations`);
      // LAN side unchanged by transports
      t.same(
        chainBody(s, 'lan_pre'),
        chainBody(renderRuleset(mode, SAMPLE), 'lan_pre'),
        `${name} ${mode}: the LAN's rules are those without transports`,
      );
      t.same(
        chainBody(s, 'forward'),
        chainBody(renderRuleset(mode, SAMPLE), 'forward'),
        `${name} ${mode}: forward`,
      );
      const inbound = chainBody(s, 'wan_in').filter((r) => /udp/.test(r) && !/sport 67/.test(r));
      for (const r of inbound)
        t.match(r, /^ct state established ct direction reply /, `${name} ${mode}: replies only`);
    }
  }
});

t.test('the non-public ranges: the LAN added when outside them; parameters checked', async (t) => {
  t.same(notPublicRanges('10.200.0.1', 24), [...NOT_PUBLIC], 'a 10/8 LAN is inside 10/8 already');
  t.same(notPublicRanges('198.19.5.1', 24), [...NOT_PUBLIC, '198.19.5.0/24']);
  for (const a of [
    '10.1.2.3',
    '100.64.0.1',
    '100.127.255.254',
    '169.254.1.1',
    '172.31.0.1',
    '192.168.1.1',
    '224.0.0.251',
    '192.0.2.3',
  ])
    t.ok(inRanges(a, NOT_PUBLIC), `${a} is not public`);
  for (const a of ['100.128.0.1', '172.32.0.1', '198.18.0.10', '8.8.8.8', '1.1.1.1'])
    t.notOk(inRanges(a, NOT_PUBLIC), `${a} counts as public`);
  const bad = (transports: unknown) => () => validateParams({ ...SAMPLE, transports });
  t.throws(
    bad({ resolvers: ['10.200.0.5'], tcpPorts: [443], udp: false }),
    { code: 'OBX_ERR_FIREWALL_INVALID_PARAMS' },
    'resolver on the LAN',
  );
  t.throws(bad({ resolvers: ['224.0.0.1'], tcpPorts: [443], udp: false }), {
    code: 'OBX_ERR_FIREWALL_INVALID_PARAMS',
  });
  t.throws(
    bad({ resolvers: [], tcpPorts: [53], udp: false }),
    { code: 'OBX_ERR_FIREWALL_INVALID_PARAMS' },
    'TCP 53 never',
  );
  t.throws(bad({ resolvers: [], tcpPorts: [443], udp: 'yes' }), { code: 'OBX_ERR_FIREWALL_INVALID_PARAMS' });
  t.throws(bad({ resolvers: [], tcpPorts: [443], udp: false, any: true }), {
    code: 'OBX_ERR_FIREWALL_INVALID_PARAMS',
  });
  t.throws(bad({ resolvers: ['1.1.1.1; accept'], tcpPorts: [], udp: false }), {
    code: 'OBX_ERR_FIREWALL_INVALID_PARAMS',
  });
  t.same(
    validateParams({
      ...SAMPLE,
      transports: { resolvers: ['9.9.9.9', '1.1.1.1', '9.9.9.9'], tcpPorts: [8443, 443], udp: true },
    }).transports,
    {
      resolvers: ['1.1.1.1', '9.9.9.9'],
      tcpPorts: [443, 8443],
      udp: true,
    },
  );
});

t.test('the lease names the resolvers; tor gets them in its own resolv.conf', async (t) => {
  const lease = parseDhcp4(
    [
      'DHCP4.OPTION[1]:dhcp_server_identifier = 192.168.1.1',
      'DHCP4.OPTION[2]:domain_name_servers = 192.168.1.1 9.9.9.9 192.168.1.1 224.0.0.1 x;y',
      'DHCP4.OPTION[3]:ip_address = 192.168.1.20',
    ].join('\n'),
  );
  t.same(lease.resolvers, ['192.168.1.1', '9.9.9.9'], 'unicast IPv4 only, once each');
  t.equal(
    renderResolvConf(lease.resolvers ?? []),
    '# Rendered by onionboxd from the WAN lease: for tor and its transports only.\nnameserver 192.168.1.1\nnameserver 9.9.9.9\noptions edns0 timeout:2 attempts:2\n',
  );
  t.notMatch(renderResolvConf(['1.1.1.1\nnameserver 6.6.6.6']), /6\.6\.6\.6/, 'nothing but addresses');
});

t.test('the relay set owns the transports: a change of needs reloads the whole ruleset', async (t) => {
  const published: string[] = [];
  let reapplied = 0;
  const set = new RelaySet({
    torrcLines: [
      'DirAuthority test orport=5000 no-v2 198.18.0.10:7000 0123456789ABCDEF0123456789ABCDEF01234567',
    ],
    dataDir: '/nonexistent',
    publish: async (_r, why) => {
      published.push(why);
    },
  });
  await set.seed(torWith([]));
  set.onRulesChanged(async () => {
    reapplied++;
  });
  t.same(set.transportNeeds(), { dns: false, tcpPorts: [], udp: false });
  await set.settingsChanged(torWith(VARIANTS.obfs4 ?? []));
  t.same([published.length, reapplied], [1, 0], 'obfs4: only the set changes');
  await set.settingsChanged(torWith(VARIANTS.snowflake ?? []));
  t.same([published.length, reapplied], [1, 1], 'snowflake: new rules, the whole ruleset');
  t.same(set.transportNeeds(), { dns: true, tcpPorts: [443], udp: true });
  await set.settingsChanged(torWith(VARIANTS.snowflake ?? []));
  t.same([published.length, reapplied], [2, 1], 'same needs: the set only');
  await set.settingsChanged(torWith(VARIANTS.snowflake ?? [], false));
  t.same([published.length, reapplied], [2, 2], 'bridges off: the openings close');
});

t.test("the Moat window: tor's uid's DNS and TCP 443 only while a Moat job runs (golden)", async (t) => {
  let reapplied = 0;
  const set = new RelaySet({
    torrcLines: [
      'DirAuthority test orport=5000 no-v2 198.18.0.10:7000 0123456789ABCDEF0123456789ABCDEF01234567',
    ],
    dataDir: '/nonexistent',
    publish: async () => undefined,
  });
  await set.seed(torWith([]));
  set.onRulesChanged(async () => {
    reapplied++;
  });
  const closed = renderRuleset('connecting', {
    ...SAMPLE,
    transports: transportOpenings(set.transportNeeds(), [RESOLVER]),
  });
  t.notMatch(closed, /th dport 53 accept/, 'closed: no DNS for anyone');
  await set.moatWindow(true);
  t.equal(reapplied, 1, 'opening loads the whole ruleset');
  t.same(set.transportNeeds(), MOAT_NEEDS);
  const open = renderRuleset('connecting', {
    ...SAMPLE,
    transports: transportOpenings(set.transportNeeds(), [RESOLVER]),
  });
  const file = new URL('../fixtures/firewall/moat-window.nft', import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, open);
  t.equal(open, readFileSync(file, 'utf8'), 'matches test/fixtures/firewall/moat-window.nft');
  const out = chainBody(open, 'wan_out').filter((r) => r.startsWith('meta skuid 102 ') && !/@/.test(r));
  t.same(
    out,
    [
      `meta skuid 102 ip daddr { ${RESOLVER} } meta l4proto { tcp, udp } th dport 53 accept`,
      `meta skuid 102 ip daddr != { ${notPublicRanges(SAMPLE.lanAddr, SAMPLE.lanPrefix).join(', ')} } tcp dport { 443 } accept`,
    ],
    "tor's uid only: DNS to the WAN's resolver, TCP 443 to public addresses",
  );
  await set.moatWindow(true);
  t.equal(reapplied, 1, 'already open: nothing again');
  await set.moatWindow(false);
  t.equal(reapplied, 2, 'closing loads the whole ruleset again');
  t.same(set.transportNeeds(), { dns: false, tcpPorts: [], udp: false }, 'closed again');
  // with meek_lite configured, the window adds nothing: no reload either way
  await set.settingsChanged(torWith(VARIANTS.meek_lite ?? []));
  const n = reapplied;
  await set.moatWindow(true);
  await set.moatWindow(false);
  t.equal(reapplied, n, 'the same openings already stand: no reload');
});
