import t from 'tap';
import { relayKey } from '../../firmware/firewall/kernel-table.js';
import { planApply } from '../../firmware/firewall/plan.js';
import { buildRuleset } from '../../firmware/firewall/render.js';
import { SAMPLE } from '../fixtures/firewall/sample.js';

const KEY = relayKey(buildRuleset('routing', SAMPLE).relays);
const killed = buildRuleset('killed', SAMPLE);
const routing = buildRuleset('routing', SAMPLE);

t.test(
  'first apply: the whole table; leaving the unknown state flushes the LAN unless routing',
  async (t) => {
    const none = { mode: null, generation: null, relaysKey: null };
    t.same(planApply(none, killed), { steps: [{ kind: 'full' }], flushLanConntrack: true });
    t.same(planApply(none, routing), { steps: [{ kind: 'full' }], flushLanConntrack: false });
  },
);

t.test('known table, same relays: a mode switch first, the whole table as fallback', async (t) => {
  const plan = planApply({ mode: 'routing', generation: 'ab_3', relaysKey: KEY }, killed);
  t.same(plan.steps, [{ kind: 'switch', previous: 'ab_3' }, { kind: 'full' }]);
  t.equal(plan.flushLanConntrack, true, 'routing -> killed deletes the redirected LAN flows');
  t.equal(
    planApply({ mode: 'killed', generation: 'ab_4', relaysKey: KEY }, routing).flushLanConntrack,
    false,
  );
  t.equal(
    planApply({ mode: 'lockdown', generation: 'ab_4', relaysKey: KEY }, killed).flushLanConntrack,
    false,
    'nothing was redirected outside routing',
  );
});

t.test('unknown generation or other relays: the whole table', async (t) => {
  t.same(planApply({ mode: 'routing', generation: null, relaysKey: KEY }, killed).steps, [{ kind: 'full' }]);
  t.same(planApply({ mode: 'routing', generation: 'ab_3', relaysKey: null }, killed).steps, [
    { kind: 'full' },
  ]);
  const other = buildRuleset('killed', { ...SAMPLE, relays: [{ address: '198.18.0.99', port: 9001 }] });
  t.same(planApply({ mode: 'routing', generation: 'ab_3', relaysKey: KEY }, other).steps, [{ kind: 'full' }]);
});
