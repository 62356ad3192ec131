/**
 * The renderer, mode by mode: golden files (firewall changes are reviewed as rule diffs; regenerate with
 * UPDATE_GOLDEN=1 and read the diff), must / must-not assertions for every promise in docs/architecture.md, and
 * the allowlist validation of every parameter.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { parseRelayList, validateParams, validateRelays } from '../../firmware/firewall/params.js';
import {
  ALL_CHAINS,
  buildRuleset,
  type FirewallMode,
  type FirewallParams,
  printModeSwitch,
  printRuleset,
  renderBootTableRemoval,
  renderRelayRefresh,
  renderRuleset,
} from '../../firmware/firewall/render.js';
import { SAMPLE } from '../fixtures/firewall/sample.js';
import { chainBody } from '../helpers/nft-script.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

const MODES: FirewallMode[] = ['lockdown', 'connecting', 'routing', 'killed'];

t.test('golden ruleset per mode', async (t) => {
  for (const mode of MODES) {
    const file = new URL(`../fixtures/firewall/${mode}.nft`, import.meta.url);
    const got = renderRuleset(mode, SAMPLE);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, got);
    t.equal(got, readFileSync(file, 'utf8'), `${mode} matches test/fixtures/firewall/${mode}.nft`);
  }
});

t.test('every mode: the shape every promise rests on', async (t) => {
  for (const mode of MODES) {
    const s = renderRuleset(mode, SAMPLE);
    const lines = s.split('\n');
    t.equal(lines[1], 'table inet onionbox', `${mode}: declares the table`);
    t.equal(lines[2], 'delete table inet onionbox', `${mode}: deletes it in the same batch`);
    t.equal(lines[3], 'table inet onionbox {', `${mode}: defines it`);
    t.equal((s.match(/^table /gm) ?? []).length, 2, `${mode}: one table only`);
    for (const c of ['drop_ipv6', 'drop_invalid', 'drop_udp', 'drop_icmp', 'drop_other']) {
      t.match(s, new RegExp(`counter ${c} \\{ \\}`), `${mode}: named counter ${c}`);
    }
    t.match(s, /set relays \{\n {4}type ipv4_addr \. inet_service\n/, `${mode}: relay set (addr . port)`);
    for (const chain of ['pre_guard', 'input', 'forward', 'output']) {
      const body = chainBody(s, chain);
      t.match(body[0], /policy drop;$/, `${mode} ${chain}: policy drop`);
      t.equal(
        body[1],
        'ct state invalid counter name "drop_invalid" drop',
        `${mode} ${chain}: invalid first`,
      );
      t.equal(body[2], 'meta nfproto ipv6 counter name "drop_ipv6" drop', `${mode} ${chain}: then IPv6`);
      t.equal(body.at(-1), 'jump drop_counted', `${mode} ${chain}: everything else counted and dropped`);
    }
    t.same(
      chainBody(s, 'forward').slice(1),
      [
        'ct state invalid counter name "drop_invalid" drop',
        'meta nfproto ipv6 counter name "drop_ipv6" drop',
        'jump drop_counted',
      ],
      `${mode}: nothing is ever forwarded`,
    );
    // must not
    t.notMatch(s, /masquerade|snat|\bnotrack\b/, `${mode}: no NAT to the WAN, no untracked packets`);
    t.notMatch(
      s,
      /type filter hook \w+ priority \w+; policy accept/,
      `${mode}: no filter chain accepts by policy`,
    );
    t.notMatch(
      s,
      /^\s*ct state (\{ )?established(, related)?( \})? accept$/m,
      `${mode}: no bare established accept`,
    );
    t.notMatch(s, /iifname "lan0" accept|oifname "wan0" accept/, `${mode}: no interface-wide accept`);
    // root only for the DHCP client's renewals: UDP 68 -> 67, to broadcast (or the leasing server)
    t.same(
      s.match(/.*meta skuid 0\b.*/g)?.map((l) => l.trim()),
      ['meta skuid 0 udp sport 68 udp dport 67 ip daddr { 255.255.255.255 } accept'],
      `${mode}: root never whitelisted but for DHCP renewals`,
    );
    // only tor's uid to the WAN, only TCP, only the relay set; and the DHCP client
    const wanOut = chainBody(s, 'wan_out');
    const dhcpOut = 'meta skuid 0 udp sport 68 udp dport 67 ip daddr { 255.255.255.255 } accept';
    if (mode === 'lockdown') t.same(wanOut, [dhcpOut], 'lockdown: nothing to the WAN but DHCP renewals');
    else
      t.same(
        wanOut,
        [dhcpOut, 'meta skuid 102 ip daddr . tcp dport @relays accept'],
        `${mode}: DHCP renewals, tor -> relays`,
      );
    t.same(
      chainBody(s, 'wan_in').filter((r) => /udp/.test(r)),
      ['udp sport 67 udp dport 68 accept'],
      `${mode}: only DHCP answers come in over UDP`,
    );
    // web page from the LAN only, to the box's LAN address
    t.same(
      s.match(/.*tcp dport 80 accept.*/g)?.map((l) => l.trim()),
      ['ip daddr 10.200.0.1 tcp dport 80 accept', 'ip daddr 10.200.0.1 tcp dport 80 accept'],
      `${mode}: web page only via lan_pre and lan_in`,
    );
    t.notMatch(chainBody(s, 'wan_in').join('\n'), /dport 80/, `${mode}: no web page from the WAN`);
    t.match(
      chainBody(s, 'lan_in').join('\n'),
      /ip daddr \{ 255\.255\.255\.255, 10\.200\.0\.1 \} udp sport 68 udp dport 67 accept/,
      `${mode}: DHCP on the LAN`,
    );
    t.match(chainBody(s, 'drop_counted').join('\n'), /meta l4proto udp counter name "drop_udp" drop/);
    t.match(chainBody(s, 'drop_counted').join('\n'), /meta l4proto icmp counter name "drop_icmp" drop/);
  }
});

t.test('the DHCP exception names the leasing server, and nothing else gets through validation', async (t) => {
  const s = renderRuleset('lockdown', { ...SAMPLE, dhcpServers: ['198.18.0.1', '198.18.0.1'] });
  t.same(chainBody(s, 'wan_out'), [
    'meta skuid 0 udp sport 68 udp dport 67 ip daddr { 255.255.255.255, 198.18.0.1 } accept',
  ]);
  for (const bad of [
    ['127.0.0.1'],
    ['255.255.255.255'],
    ['1.2.3.4; accept'],
    ['a', 'b', 'c', 'd', 'e'],
    'x',
  ]) {
    t.throws(
      () => renderRuleset('routing', { ...SAMPLE, dhcpServers: bad as string[] }),
      { code: 'OBX_ERR_FIREWALL_INVALID_PARAMS' },
      `refused: ${JSON.stringify(bad)}`,
    );
  }
});

t.test('routing: LAN TCP -> TransPort, LAN DNS -> DNSPort, the box itself exempt', async (t) => {
  const s = renderRuleset('routing', SAMPLE);
  const nat = chainBody(s, 'pre_nat');
  t.same(nat, [
    'type nat hook prerouting priority dstnat; policy accept;',
    'iifname "lan0" meta l4proto { tcp, udp } th dport 53 dnat ip to 10.200.0.1:5353',
    'iifname "lan0" ip daddr 10.200.0.1 return',
    'iifname "lan0" meta l4proto tcp dnat ip to 10.200.0.1:9040',
  ]);
  t.equal(chainBody(s, 'lan_in')[0], 'jump lan_in_tor', 'the mode-dependent part first');
  t.same(chainBody(s, 'lan_in_tor'), [
    'ip daddr 10.200.0.1 tcp dport 9040 ct status dnat accept', // TransPort only if redirected
    'ip daddr 10.200.0.1 meta l4proto { tcp, udp } th dport 5353 ct status dnat accept',
  ]);
  t.same(chainBody(s, 'lan_pre_tor'), [
    'meta l4proto { tcp, udp } th dport 53 accept',
    'ip daddr != 10.200.0.1 meta l4proto tcp accept',
  ]);
  t.same(chainBody(s, 'lan_out_tor'), [
    'ip saddr 10.200.0.1 tcp sport 9040 ct status dnat accept',
    'ip saddr 10.200.0.1 meta l4proto { tcp, udp } th sport 5353 ct status dnat accept',
  ]);
  t.notMatch(s, /th dport \{ 9040, 5353 \} counter/, 'no tor-port cut in routing');
});

for (const mode of ['lockdown', 'connecting', 'killed'] as const) {
  t.test(`${mode}: no redirect, LAN cut from tor's ports whatever the conntrack state`, async (t) => {
    const s = renderRuleset(mode, SAMPLE);
    t.notMatch(s, /dnat|redirect|chain pre_nat/, 'no NAT at all');
    t.notMatch(s, /dport 53/, 'no DNS accepted');
    // lan_in is reached only by `iifname "lan0" jump lan_in`, and jumps to lan_in_tor before it
    // accepts anything: the cut is the first thing LAN input meets
    const cut = 'meta l4proto { tcp, udp } th dport { 9040, 5353 } counter name "drop_other" drop';
    t.equal(chainBody(s, 'lan_in')[0], 'jump lan_in_tor');
    t.same(chainBody(s, 'lan_in_tor'), [cut], 'the cut is the first rule for LAN input');
    const routing = renderRuleset('routing', SAMPLE);
    for (const name of ['pre_guard', 'input', 'output', 'lan_pre', 'lan_in', 'lan_out'])
      t.same(chainBody(s, name), chainBody(routing, name), `${name} as in routing`);
    t.same(chainBody(s, 'lan_pre'), [
      'ip daddr 10.200.0.1 tcp dport 80 accept',
      'ip daddr { 255.255.255.255, 10.200.0.1 } udp sport 68 udp dport 67 accept',
      'jump lan_pre_tor',
    ]);
    t.same(chainBody(s, 'lan_pre_tor'), [], 'nothing more to the box');
    t.same(chainBody(s, 'lan_out_tor'), [], 'nothing more from the box');
    t.notMatch(chainBody(s, 'lan_out').join('\n'), /9040|5353/);
  });
}

t.test('killed equals connecting except for the mode comment', async (t) => {
  const strip = (s: string) => s.split('\n').slice(1).join('\n');
  t.equal(strip(renderRuleset('killed', SAMPLE)), strip(renderRuleset('connecting', SAMPLE)));
  t.not(renderRuleset('killed', SAMPLE), renderRuleset('routing', SAMPLE));
});

t.test('relay set: deduplicated, sorted; empty set renders without elements', async (t) => {
  const s = renderRuleset('connecting', SAMPLE);
  t.match(s, 'elements = { 198.18.0.10 . 5000, 198.18.0.11 . 5001 }');
  const empty = renderRuleset('connecting', { ...SAMPLE, relays: [] });
  t.notMatch(empty, /elements/);
  t.equal(
    renderRelayRefresh([{ address: '198.18.0.12', port: 443 }]),
    'flush set inet onionbox relays\nadd element inet onionbox relays { 198.18.0.12 . 443 }\n',
  );
  t.equal(renderRelayRefresh([]), 'flush set inet onionbox relays\n');
  t.equal(renderBootTableRemoval(), 'table inet onionbox_boot\ndelete table inet onionbox_boot\n');
});

t.test('model: base chains and rule counts are data', async (t) => {
  const m = buildRuleset('routing', SAMPLE);
  t.same(
    m.chains.filter((c) => c.base).map((c) => [c.name, c.base?.hook, c.base?.policy]),
    [
      ['pre_guard', 'prerouting', 'drop'],
      ['pre_nat', 'prerouting', 'accept'],
      ['input', 'input', 'drop'],
      ['forward', 'forward', 'drop'],
      ['output', 'output', 'drop'],
    ],
  );
});

t.test('bad parameters: clear error naming the field, no output', async (t) => {
  const bad: [string, Partial<Record<keyof FirewallParams, unknown>> & Record<string, unknown>][] = [
    ['lanIf', { lanIf: 'lan0" accept' }],
    ['lanIf', { lanIf: 'a-very-long-interface-name' }],
    ['lanIf', { lanIf: '' }],
    ['lanIf', { lanIf: 'lo' }],
    ['wanIf', { wanIf: 'lan0' }],
    ['wanIf', { wanIf: 'wan0\n' }],
    ['wanIf', { wanIf: '-x' }],
    ['lanAddr', { lanAddr: '10.200.0.256' }],
    ['lanAddr', { lanAddr: '10.200.0.1; flush ruleset' }],
    ['lanAddr', { lanAddr: '010.200.0.1' }],
    ['lanAddr', { lanAddr: '10.200.0.0' }],
    ['lanAddr', { lanAddr: '10.200.0.255' }],
    ['lanAddr', { lanAddr: '127.0.0.1' }],
    ['lanAddr', { lanAddr: '224.0.0.1' }],
    ['lanPrefix', { lanPrefix: 31 }],
    ['lanPrefix', { lanPrefix: 24.5 }],
    ['lanPrefix', { lanPrefix: '24' }],
    ['torUid', { torUid: 0 }],
    ['torUid', { torUid: -1 }],
    ['torUid', { torUid: '102' }],
    ['torUid', { torUid: 2 ** 32 }],
    ['transPort', { transPort: 0 }],
    ['dnsPort', { dnsPort: 65536 }],
    ['webPort', { webPort: 9040 }],
    ['transPort', { transPort: 53 }],
    ['relays', { relays: 'x' }],
    ['relays/0', { relays: [{ address: '198.18.0.10', port: 0 }] }],
    [
      'relays/1',
      {
        relays: [
          { address: '198.18.0.10', port: 1 },
          { address: '198.18.0.10 } ', port: 1 },
        ],
      },
    ],
    ['relays/0', { relays: [{ address: '255.255.255.255', port: 1 }] }],
    ['relays/0', { relays: [{ address: '198.18.0.10', port: 1, extra: 1 }] }],
    ['relays/0', { relays: [null] }],
    ['extra', { extra: 1 }],
  ];
  for (const [field, patch] of bad) {
    const p = { ...SAMPLE, ...patch } as unknown as FirewallParams;
    const e = caught(() => renderRuleset('routing', p));
    t.ok(
      isObxError(e, 'FIREWALL_INVALID_PARAMS') && field in e.details,
      `${field}: ${JSON.stringify(patch)}`,
    );
  }
  t.throws(() => validateParams(null), /parameters must be an object/);
  t.throws(() => validateParams([]), /parameters must be an object/);
  t.throws(() => renderRuleset('open' as FirewallMode, SAMPLE), /unknown firewall mode/);
  t.throws(() => validateRelays(new Array(20001).fill({ address: '198.18.0.1', port: 1 })), /at most/);
  t.ok(Object.isFrozen(validateParams(SAMPLE)));
});

t.test('relay list file: ip:port per line', async (t) => {
  t.same(parseRelayList('# relays\n198.18.0.11:5001\n\n 198.18.0.10:5000 \n198.18.0.10:5000\n'), [
    { address: '198.18.0.10', port: 5000 },
    { address: '198.18.0.11', port: 5001 },
  ]);
  for (const bad of [
    '198.18.0.10',
    '198.18.0.10:0',
    '198.18.0.300:1',
    'host:80',
    '1.2.3.4:80 extra',
    '[::1]:80',
  ]) {
    t.ok(
      isObxError(
        caught(() => parseRelayList(bad)),
        'FIREWALL_INVALID_PARAMS',
      ),
      bad,
    );
  }
});

t.test('mode switch: same rules, keeps the relay set, drops the chains the mode lacks', async (t) => {
  const union = new Set(MODES.flatMap((m) => buildRuleset(m, SAMPLE).chains.map((c) => c.name)));
  t.same([...union].sort(), [...ALL_CHAINS].sort(), 'ALL_CHAINS is every chain of every mode');
  for (const mode of MODES) {
    const model = buildRuleset(mode, SAMPLE);
    const sw = printModeSwitch(model, 'abc_2', 'abc_1');
    t.match(sw, 'delete chain inet onionbox gen_abc_1\n', `${mode}: the previous marker goes`);
    t.match(sw, '  chain gen_abc_2 {\n  }\n', `${mode}: the new marker comes`);
    t.notMatch(sw, /delete table|elements|flush set/, `${mode}: the relay set and table stay`);
    for (const name of ALL_CHAINS)
      t.match(sw, `flush chain inet onionbox ${name}\n`, `${mode}: flushes ${name}`);
    t.equal(
      sw.includes('delete chain inet onionbox pre_nat'),
      mode !== 'routing',
      `${mode}: pre_nat only in routing`,
    );
    const full = printRuleset(model, 'abc_2');
    const rules = (s: string) =>
      s
        .split('\n')
        .filter(
          (l) => /^ {4}\S/.test(l) && !l.trim().startsWith('type ') && !l.trim().startsWith('elements'),
        );
    t.same(rules(sw), rules(full), `${mode}: exactly the rules of the full ruleset`);
    t.match(full, /\n {2}chain gen_abc_2 \{\n {2}\}\n\}\n/, 'marker chain, empty, last');
    t.notMatch(printRuleset(model), /gen_/, 'no marker without a generation');
    t.throws(() => printModeSwitch(model, 'a', 'b-c'), /bad generation/);
    t.throws(() => printRuleset(model, 'x" accept'), /bad generation/);
  }
});

t.test('large relay lists: the validation shortcut never lets changed content through', async (t) => {
  const many = Array.from({ length: 200 }, (_, i) => ({ address: `198.18.1.${i + 1}`, port: 9001 }));
  const a = validateParams({ ...SAMPLE, relays: many });
  const b = validateParams({ ...SAMPLE, relays: many.map((r) => ({ ...r })) });
  t.equal(a.relays.length, 200);
  t.same(a.relays, b.relays, 'same content, same result');
  many[7] = { address: '198.18.1.8 } accept', port: 9001 }; // same array, mutated
  t.ok(
    isObxError(
      caught(() => validateParams({ ...SAMPLE, relays: many })),
      'FIREWALL_INVALID_PARAMS',
    ),
  );
  many[7] = { address: '198.18.1.250', port: 9001 };
  t.ok(validateParams({ ...SAMPLE, relays: many }).relays.some((r) => r.address === '198.18.1.250'));
  t.throws(() => {
    (a.relays[0] as { address: string }).address = 'x';
  }, 'the shared result is frozen');
});

t.test(
  'mode switch from a known model: chains equal in both are left out, the rest as without it',
  async (t) => {
    for (const from of MODES) {
      for (const to of MODES) {
        const kept = buildRuleset(from, SAMPLE);
        const model = buildRuleset(to, SAMPLE);
        const sw = printModeSwitch(model, 'abc_2', 'abc_1', kept);
        const same = model.chains.filter(
          (c) => JSON.stringify(kept.chains.find((k) => k.name === c.name)) === JSON.stringify(c),
        );
        for (const c of same) {
          t.notMatch(sw, new RegExp(`chain ${c.name}\\b`), `${from} -> ${to}: ${c.name} untouched`);
        }
        for (const c of model.chains.filter((c) => !same.includes(c))) {
          t.match(sw, `flush chain inet onionbox ${c.name}\n`, `${from} -> ${to}: ${c.name} rewritten`);
          t.match(sw, `  chain ${c.name} {\n`, `${from} -> ${to}: ${c.name} refilled`);
        }
        for (const name of kept.chains
          .map((c) => c.name)
          .filter((n) => !model.chains.some((c) => c.name === n))) {
          t.match(sw, `delete chain inet onionbox ${name}\n`, `${from} -> ${to}: ${name} goes`);
        }
        t.match(sw, 'delete chain inet onionbox gen_abc_1\n');
        t.match(sw, '  chain gen_abc_2 {\n  }\n');
        t.notMatch(sw, /counter drop_|set relays/, `${from} -> ${to}: counters and set not redeclared`);
        for (const c of model.chains) {
          const declared = sw.includes(`  chain ${c.name} { `);
          t.equal(declared, !kept.chains.some((k) => k.name === c.name), `${from} -> ${to}: ${c.name}`);
        }
      }
    }
    const kill = printModeSwitch(
      buildRuleset('killed', SAMPLE),
      'abc_2',
      'abc_1',
      buildRuleset('routing', SAMPLE),
    );
    t.notMatch(kill, /chain input|iif "lo"|oif "lo"/, 'a kill leaves input alone (no interface dump)');
    t.equal(kill.match(/^ {4}\S/gm)?.length, 1, 'a kill adds one rule: the cut');
    const routing = buildRuleset('routing', SAMPLE);
    const killed = buildRuleset('killed', SAMPLE);
    const small = printModeSwitch(killed, 'abc_2', 'abc_1', routing);
    t.ok(
      small.length < printModeSwitch(killed, 'abc_2', 'abc_1').length / 1.5,
      'routing -> killed is a smaller batch',
    );
    const again = printModeSwitch(killed, 'abc_2', 'abc_1', killed);
    t.notMatch(
      again,
      /flush chain inet onionbox (?!pre_nat)/,
      'the same mode again: only the marker and pre_nat',
    );
  },
);
