/**
 * `onionbox firewall render|apply|counters` through the real CLI entry (runCli): the printed ruleset is
 * the renderer's, bad arguments get a clear error and change nothing, apply and counters work inside a
 * namespace.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../../firmware/cli/index.js';
import { makeNetns, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    stateDir: '/nonexistent',
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

const BASE = ['--lan-if', 'lan0', '--wan-if', 'wan0', '--lan-addr', '10.200.0.1/24', '--tor-uid', '102'];

t.test('firewall render prints the golden ruleset', async (t) => {
  const dir = tmpDir(t);
  const relays = join(dir, 'relays');
  writeFileSync(relays, '# fallback dirs\n198.18.0.11:5001\n198.18.0.10:5000\n');
  for (const mode of ['lockdown', 'connecting', 'routing', 'killed']) {
    const r = await cli(['firewall', 'render', '--mode', mode, ...BASE, '--relays', relays]);
    t.equal(r.code, 0, r.err);
    t.equal(r.out, readFileSync(new URL(`../fixtures/firewall/${mode}.nft`, import.meta.url), 'utf8'), mode);
  }
  const ports = await cli([
    'firewall',
    'render',
    '--mode',
    'routing',
    ...BASE,
    '--trans-port',
    '9141',
    '--dns-port',
    '5454',
    '--web-port',
    '8080',
  ]);
  t.match(ports.out, /dnat ip to 10\.200\.0\.1:9141/);
  t.match(ports.out, /dnat ip to 10\.200\.0\.1:5454/);
  t.match(ports.out, /tcp dport 8080 accept/);
  t.notMatch(ports.out, /elements/, 'no --relays: empty relay set');
});

t.test('bad arguments: clear error, nothing printed', async (t) => {
  const dir = tmpDir(t);
  const badRelays = join(dir, 'bad');
  writeFileSync(badRelays, '198.18.0.10:5000\n198.18.0.11:5001 } ; flush ruleset\n');
  const cases: [string[], RegExp, number][] = [
    [['--mode', 'open', ...BASE], /--mode must be/, 2],
    [BASE, /--mode is required/, 2],
    [
      ['--mode', 'routing', '--wan-if', 'wan0', '--lan-addr', '10.0.0.1/24', '--tor-uid', '1'],
      /--lan-if is required/,
      2,
    ],
    [['--mode', 'routing', ...BASE, '--bogus', 'x'], /Unknown option/, 2],
    [
      ['--mode', 'routing', ...BASE.slice(0, 4), '--lan-addr', '10.0.0.1', ...BASE.slice(6)],
      /--lan-addr must be/,
      2,
    ],
    [['--mode', 'routing', ...BASE.slice(0, 6), '--tor-uid', 'debian-tor'], /--tor-uid must be a number/, 2],
    [['--mode', 'routing', ...BASE, '--trans-port', '70000'], /--trans-port must be/, 2],
    [['--mode', 'routing', ...BASE, '--relays', join(dir, 'missing')], /cannot read/, 2],
    [['--mode', 'routing', ...BASE, '--relays', badRelays], /OBX_ERR_FIREWALL_INVALID_PARAMS.*line 2/, 1],
    [
      ['--mode', 'routing', '--lan-if', 'lan0";', ...BASE.slice(2)],
      /OBX_ERR_FIREWALL_INVALID_PARAMS.*lanIf/,
      1,
    ],
    [
      ['--mode', 'routing', ...BASE.slice(0, 6), '--tor-uid', '0'],
      /OBX_ERR_FIREWALL_INVALID_PARAMS.*torUid/,
      1,
    ],
    [['--mode', 'routing', ...BASE.slice(0, 4), '--lan-addr', '10.0.0.0/24', ...BASE.slice(6)], /lanAddr/, 1],
  ];
  for (const [args, message, code] of cases) {
    const r = await cli(['firewall', 'render', ...args]);
    t.equal(r.code, code, args.join(' '));
    t.match(r.err, message, args.join(' '));
    t.equal(r.out, '', 'nothing printed');
  }
  const r = await cli(['firewall', 'apply', '--mode', 'routing', ...BASE, '--netns', 'bad name']);
  t.equal(r.code, 2);
  t.match(r.err, /--netns must be/);
  const c = await cli(['firewall', 'counters', '--netns', '../x']);
  t.equal(c.code, 2);
  const u = await cli(['help']);
  t.match(u.out, /firewall render/);
  t.match(u.out, /firewall counters/);
});

t.test('firewall apply and counters in a namespace', { skip: rootSkipReason(['ip', 'nft']) }, async (t) => {
  const ns = await makeNetns(t, 'fwcli');
  const r = await cli(['firewall', 'apply', '--mode', 'killed', ...BASE, '--netns', ns]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /killed applied and verified/);
  const listed = await nsRun(ns, 'nft', ['list', 'table', 'inet', 'onionbox']);
  t.match(listed, /th dport \{ 5353, 9040 \} counter name "drop_other" drop/);
  // a refused apply (bad params) keeps the killed table
  const bad = await cli([
    'firewall',
    'apply',
    '--mode',
    'routing',
    ...BASE.slice(0, 6),
    '--tor-uid',
    '0',
    '--netns',
    ns,
  ]);
  t.equal(bad.code, 1);
  t.equal(await nsRun(ns, 'nft', ['list', 'table', 'inet', 'onionbox']), listed, 'unchanged');
  const c = await cli(['firewall', 'counters', '--netns', ns]);
  t.equal(c.code, 0, c.err);
  t.match(c.out, /^drop +packets +bytes\nipv6 +\d+ +\d+\ninvalid/);
  const j = await cli(['firewall', 'counters', '--json', '--netns', ns]);
  t.same(Object.keys(JSON.parse(j.out)).sort(), ['icmp', 'invalid', 'ipv6', 'other', 'udp']);
  const empty = await makeNetns(t, 'fwcli0');
  const none = await cli(['firewall', 'counters', '--netns', empty]);
  t.equal(none.code, 1);
  t.match(none.err, /OBX_ERR_FIREWALL_NOT_STARTED/);
});
