/**
 * firmware/firewall/kernel-table.ts on literal `nft -j` output: the files in
 * test/fixtures/firewall/nft-json/ were printed by nftables 1.0.6 in a throwaway namespace holding
 * `routing` (printRuleset, generation cafe0001_1, relays 198.18.0.11:5001 and 198.18.0.10:5000), then the
 * `killed` mode switch (generation cafe0001_2), next to a foreign table `inet other`.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  addCounters,
  compareShape,
  countersFromLines,
  firstLines,
  parseChainsJson,
  parseTableJson,
  relayKey,
  relaySetFromLines,
  relayStrings,
} from '../../firmware/firewall/kernel-table.js';
import { buildRuleset } from '../../firmware/firewall/render.js';
import { SAMPLE } from '../fixtures/firewall/sample.js';

const lines = (name: string) =>
  readFileSync(new URL(`../fixtures/firewall/nft-json/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
const PARAMS = { ...SAMPLE, relays: SAMPLE.relays.slice(0, 2) };
const ROUTING = buildRuleset('routing', PARAMS);
const KILLED = buildRuleset('killed', PARAMS);

t.test(
  'list table: handle, generation, chains with hooks and rule counts, counters, relay set',
  async (t) => {
    const shape = parseTableJson(lines('routing-table.json'));
    if (!shape) throw new Error('no shape');
    t.ok(shape.handle > 0, 'the table handle is read');
    t.equal(shape.generation, 'cafe0001_1');
    t.same(shape.relays, ['198.18.0.10:5000', '198.18.0.11:5001']);
    t.same(shape.chains.input, {
      type: 'filter',
      hook: 'input',
      prio: 0,
      policy: 'drop',
      rules: shape.chains.input?.rules,
    });
    t.same(compareShape(ROUTING, shape), [], 'the kernel holds exactly the rendered routing table');
    t.same(Object.keys(shape.counters).sort(), [...ROUTING.counters].sort());
    // the same table compared with another mode's model: differences are named, not just counted
    const diffs = compareShape(KILLED, shape);
    t.ok(diffs.length > 0);
    t.ok(
      diffs.some((d) => /rules, rendered/.test(d)),
      diffs.join('; '),
    );
  },
);

t.test(
  'a terse listing has no set elements: relay comparison is skipped, shape still compared',
  async (t) => {
    const shape = parseTableJson(lines('routing-table-terse.json'));
    if (!shape) throw new Error('no shape');
    t.equal(shape.hasRelaySet, true);
    t.same(shape.relays, [], 'terse: the set is listed without its elements');
    t.same(compareShape(ROUTING, shape, { relays: false }), []);
    t.same(compareShape(ROUTING, shape), ['relay set holds 0 elements, rendered 2']);
    const killed = parseTableJson(lines('killed-table-terse.json'));
    t.equal(killed?.generation, 'cafe0001_2', 'the switch replaced the marker');
    t.same(killed ? compareShape(KILLED, killed, { relays: false }) : ['none'], []);
  },
);

t.test('list chains: only our table, generation marker, hooks; rules not compared', async (t) => {
  const routing = parseChainsJson(lines('routing-chains.json'));
  t.equal(routing?.generation, 'cafe0001_1');
  t.notOk(routing && 'other' in routing.chains, 'the foreign table is ignored');
  t.same(routing ? compareShape(ROUTING, routing, { rules: false }) : ['none'], []);
  const killed = parseChainsJson(lines('killed-chains.json'));
  t.equal(killed?.generation, 'cafe0001_2');
  t.same(killed ? compareShape(KILLED, killed, { rules: false }) : ['none'], []);
  // routing has a pre_nat chain hooked to prerouting; killed has none
  t.same(killed ? compareShape(ROUTING, killed, { rules: false }) : [], ['missing chain pre_nat']);
  t.equal(parseChainsJson([lines('routing-chains.json')[0]?.replace(/"onionbox"/g, '"x"') ?? '']), null);
});

t.test('a missing or hooked chain and two markers are differences', async (t) => {
  const shape = parseChainsJson(lines('killed-chains.json'));
  if (!shape) throw new Error('no shape');
  const { lan_in: _gone, ...rest } = shape.chains;
  const lanOut = shape.chains.lan_out;
  if (!lanOut) throw new Error('no lan_out');
  const edited = {
    ...shape,
    chains: { ...rest, lan_out: { ...lanOut, hook: 'output' }, extra: { rules: 0 } },
  };
  t.same(compareShape(KILLED, edited, { rules: false }).sort(), [
    'chain lan_out is hooked (output) but should be a regular chain',
    'missing chain lan_in',
    'unexpected chain extra',
  ]);
  const doc = JSON.parse(lines('killed-chains.json')[0] ?? '{}') as {
    nftables: { chain?: { name: string } }[];
  };
  const gen = doc.nftables.find((o) => o.chain?.name.startsWith('gen_'));
  doc.nftables.push({ chain: { ...(gen?.chain as { name: string }), name: 'gen_beef_9' } });
  t.equal(parseChainsJson([JSON.stringify(doc)])?.generation, 'cafe0001_2,beef_9');
});

t.test('no table: null', async (t) => {
  t.equal(parseTableJson([]), null);
  t.equal(parseTableJson(lines('routing-counters.json')), null, 'a counters listing is not a table');
  t.equal(parseChainsJson([]), null);
});

t.test('counters: from a counters listing, never from a table or chains listing', async (t) => {
  const found = countersFromLines(lines('routing-counters.json'));
  t.same(Object.keys(found).sort(), [...ROUTING.counters].sort());
  t.same(found.drop_udp, { packets: 0, bytes: 0 });
  t.same(countersFromLines(lines('routing-chains.json')), {});
  // one exchange: counters, then the new table; only the counters document counts
  const mixed = [...lines('routing-counters.json'), ...lines('routing-table.json')];
  t.same(countersFromLines(mixed), found);
  const counted = lines('routing-counters.json').map((l) =>
    l.replace(
      /"name": "drop_udp", "table": "onionbox", "handle": (\d+), "packets": 0, "bytes": 0/,
      '"name": "drop_udp", "table": "onionbox", "handle": $1, "packets": 3, "bytes": 90',
    ),
  );
  t.same(countersFromLines(counted).drop_udp, { packets: 3, bytes: 90 });
  const total = addCounters({ udp: { packets: 2, bytes: 60 } }, countersFromLines(counted));
  t.same(total.udp, { packets: 5, bytes: 150 }, 'carried totals plus what the new table counted');
  t.same(total.icmp, { packets: 0, bytes: 0 });
  t.same(addCounters({ other: { packets: 1, bytes: 40 } }, {}).other, { packets: 1, bytes: 40 });
});

t.test('relay set: elements sorted; keys and strings', async (t) => {
  t.same(relaySetFromLines(lines('relay-set.json')), ['198.18.0.10:5000', '198.18.0.11:5001']);
  t.equal(relaySetFromLines(lines('routing-counters.json')), null, 'no set: null');
  t.same(relayStrings(PARAMS.relays), relaySetFromLines(lines('relay-set.json')));
  t.equal(relayKey(PARAMS.relays), '198.18.0.11:5001,198.18.0.10:5000');
  t.not(relayKey(PARAMS.relays), relayKey([...PARAMS.relays].reverse()), 'order is part of the key');
});

t.test('firstLines: the first non-empty lines of stderr', async (t) => {
  t.equal(firstLines('\nError: a\n\n  b\nc\nd\n'), 'Error: a |   b | c');
  t.equal(firstLines(''), '');
});
