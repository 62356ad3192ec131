import fc from 'fast-check';
import t from 'tap';
import {
  initialState,
  type MachineInput,
  type MachineState,
  mayRoute,
  sanitizeTorStatus,
  step,
  type TorStatus,
  view,
} from '../../firmware/state/machine.js';
import { after } from '../helpers/machine.js';

const ready: TorStatus = { phase: 'ready', progress: 100, summary: 'Done', ready: true };
const boot50: TorStatus = {
  phase: 'bootstrapping',
  progress: 50,
  summary: 'Loading relay descriptors',
  ready: false,
};

const torStatus = fc.record({
  phase: fc.constantFrom('stopped', 'starting', 'bootstrapping', 'ready', 'crashed', 'failed'),
  progress: fc.oneof(fc.integer({ min: -10, max: 120 }), fc.double()),
  summary: fc.string({ maxLength: 30 }),
  ready: fc.boolean(),
}) as fc.Arbitrary<TorStatus>;

const input: fc.Arbitrary<MachineInput> = fc.oneof(
  torStatus.map((status) => ({ type: 'tor' as const, status })),
  fc.constant({ type: 'tor' as const, status: ready }),
  fc
    .constantFrom('engaged', 'released', 'unreadable')
    .map((position) => ({ type: 'switch' as const, position })),
  fc.boolean().map((engaged) => ({ type: 'soft-kill' as const, engaged })),
  fc
    .constantFrom('firewall', 'config', 'tor')
    .map((source) => ({ type: 'fault' as const, source, message: 'apply failed' })),
  fc.constantFrom('firewall', 'config', 'tor').map((source) => ({ type: 'fault-cleared' as const, source })),
);

t.test(
  'property: the LAN is routed only when tor is ready, the switch released and readable, no soft kill, no fault',
  (t) => {
    fc.assert(
      fc.property(fc.array(input, { maxLength: 60 }), (inputs) => {
        let s: MachineState = initialState();
        for (const i of inputs) {
          s = step(s, i);
          const v = view(s);
          if (v.firewallMode === 'routing') {
            if (!(s.tor.ready && s.tor.phase === 'ready')) return false;
            if (s.hardware !== 'released') return false;
            if (s.softKill) return false;
            if (Object.keys(s.faults).length > 0) return false;
            if (v.state !== 'routing') return false;
          }
          // Killed always means the 'killed' ruleset (never a mode with LAN access).
          if (s.hardware !== 'released' || s.softKill) {
            if (v.firewallMode !== 'killed') return false;
          }
        }
        return true;
      }),
      { numRuns: 2000 },
    );
    t.end();
  },
);

t.test('property: when every condition holds, the box does route (it is not simply always closed)', (t) => {
  fc.assert(
    fc.property(fc.array(input, { maxLength: 40 }), (inputs) => {
      const s = after([
        ...inputs,
        { type: 'fault-cleared', source: 'firewall' },
        { type: 'fault-cleared', source: 'config' },
        { type: 'fault-cleared', source: 'tor' },
        { type: 'soft-kill', engaged: false },
        { type: 'switch', position: 'released' },
        { type: 'tor', status: ready },
      ]);
      return mayRoute(s) && view(s).firewallMode === 'routing';
    }),
  );
  t.end();
});

t.test('property: the outcome depends on the last value of each input, not on their order', (t) => {
  fc.assert(
    fc.property(fc.array(input, { maxLength: 30 }), fc.array(input, { maxLength: 30 }), (a, b) => {
      // Whatever happened before, the same final inputs give the same firewall mode.
      const tail: MachineInput[] = [
        { type: 'fault-cleared', source: 'firewall' },
        { type: 'fault-cleared', source: 'config' },
        { type: 'fault-cleared', source: 'tor' },
        { type: 'switch', position: 'engaged' },
        { type: 'soft-kill', engaged: false },
        { type: 'tor', status: ready },
      ];
      return view(after([...a, ...tail])).firewallMode === view(after([...b, ...tail])).firewallMode;
    }),
  );
  t.end();
});

t.test('examples: a normal boot', (t) => {
  let s = initialState();
  t.equal(view(s).state, 'killed', 'before the switch is read the box counts as killed');
  t.equal(view(s).firewallMode, 'killed', 'switch not read yet counts as engaged');
  s = step(s, { type: 'switch', position: 'released' });
  t.equal(view(s).state, 'booting');
  t.equal(view(s).firewallMode, 'lockdown');
  t.same(view(s).leds, { green: 'off', amber: 'on', red: 'off' });
  s = step(s, { type: 'tor', status: { phase: 'starting', progress: 0, summary: '', ready: false } });
  t.equal(view(s).state, 'connecting');
  s = step(s, { type: 'tor', status: boot50 });
  const v = view(s);
  t.equal(v.state, 'connecting');
  t.equal(v.firewallMode, 'connecting');
  t.equal(v.screen.progress, 50);
  t.equal(v.screen.detail, 'Loading relay descriptors');
  t.equal(v.leds.amber, 'blink');
  s = step(s, { type: 'tor', status: ready });
  t.equal(view(s).state, 'routing');
  t.equal(view(s).firewallMode, 'routing');
  t.same(view(s).leds, { green: 'on', amber: 'off', red: 'off' });
  t.end();
});

t.test('examples: kill switch, soft kill, unreadable switch', (t) => {
  const routing = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: ready },
  ]);
  t.equal(view(routing).state, 'routing');
  const hw = step(routing, { type: 'switch', position: 'engaged' });
  t.equal(view(hw).state, 'killed');
  t.equal(view(hw).firewallMode, 'killed');
  t.equal(view(hw).leds.red, 'on');
  t.match(view(hw).explanation, /on the box/);
  const soft = step(routing, { type: 'soft-kill', engaged: true });
  t.equal(view(soft).firewallMode, 'killed');
  t.match(view(soft).explanation, /web page/);
  const broken = step(routing, { type: 'switch', position: 'unreadable' });
  t.equal(view(broken).firewallMode, 'killed');
  t.match(view(broken).explanation, /cannot be read/);
  t.equal(view(step(hw, { type: 'switch', position: 'released' })).state, 'routing');
  t.end();
});

t.test('examples: tor crash while routing, faults fail closed', (t) => {
  const routing = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: ready },
  ]);
  const crashed = step(routing, {
    type: 'tor',
    status: { phase: 'crashed', progress: 100, summary: 'tor exited', ready: true },
  });
  t.equal(view(crashed).state, 'tor-down');
  t.equal(view(crashed).firewallMode, 'connecting', 'a crashed tor is not ready even if the report says so');
  const fault = step(routing, { type: 'fault', source: 'firewall', message: 'nft failed' });
  t.equal(view(fault).state, 'error');
  t.equal(view(fault).firewallMode, 'lockdown');
  t.match(view(fault).screen.detail, /firewall: nft failed/);
  const faultKilled = step(fault, { type: 'switch', position: 'engaged' });
  t.equal(view(faultKilled).firewallMode, 'killed');
  t.equal(view(step(fault, { type: 'fault-cleared', source: 'firewall' })).state, 'routing');
  t.end();
});

t.test('malformed inputs read as not ready and engaged', (t) => {
  t.same(sanitizeTorStatus(null), { phase: 'failed', progress: 0, summary: '', ready: false });
  t.same(sanitizeTorStatus({ phase: 'bootstrapping', progress: Number.NaN, summary: 'a\nb', ready: true }), {
    phase: 'bootstrapping',
    progress: 0,
    summary: 'ab',
    ready: false,
  });
  t.equal(sanitizeTorStatus({ phase: 'ready', progress: 250, ready: true }).progress, 100);
  const s = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: ready },
    { type: 'switch', position: 'sideways' as never },
  ]);
  t.equal(s.hardware, 'unreadable');
  t.equal(view(s).firewallMode, 'killed');
  const s2 = step(step(initialState(), { type: 'switch', position: 'released' }), {
    type: 'soft-kill',
    engaged: 'no' as never,
  });
  t.equal(s2.softKill, true, 'only a literal false releases the soft kill');
  t.end();
});

t.test('state machine: a network change closes, then reconnects, and only then routes', async (t) => {
  const routing = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: ready },
  ]);
  t.equal(view(routing).firewallMode, 'routing');
  const closed = after([{ type: 'net-change', phase: 'closed', reason: 'WAN eth0 -> eth1' }], routing);
  t.equal(view(closed).firewallMode, 'lockdown');
  t.equal(view(closed).state, 'connecting');
  t.match(view(closed).explanation, /changing its network \(WAN eth0 -> eth1\)/);
  t.notOk(mayRoute(closed), 'tor still says ready, but the change holds the LAN closed');
  const reconnecting = after([{ type: 'net-change', phase: 'reconnecting' }], closed);
  t.equal(view(reconnecting).firewallMode, 'connecting', 'tor may reach the new WAN, the LAN may not');
  t.notOk(mayRoute(reconnecting));
  const done = after([{ type: 'net-change', phase: null }], reconnecting);
  t.equal(view(done).firewallMode, 'routing');
  // the kill switch and faults still win during a change
  t.equal(view(after([{ type: 'switch', position: 'engaged' }], closed)).firewallMode, 'killed');
  t.equal(
    view(after([{ type: 'fault', source: 'network', message: 'x' }], reconnecting)).firewallMode,
    'lockdown',
  );
  // a malformed phase reads as the most closed one; control characters never reach the page
  const odd = after([{ type: 'net-change', phase: 'open' as 'closed', reason: 'a\nb\u0000c' }], routing);
  t.equal(view(odd).firewallMode, 'lockdown');
  t.match(view(odd).explanation, /\(abc\)/);
  t.equal(initialState().netChange, undefined, 'no change at power-on');
});

t.test("state machine: a 'wan' fault closes the box with its explanation until cleared", async (t) => {
  const routing = after([
    { type: 'switch', position: 'released' },
    { type: 'tor', status: ready },
  ]);
  const overlap = after([{ type: 'fault', source: 'wan', message: 'The modem gave the box ...' }], routing);
  t.equal(view(overlap).state, 'error');
  t.equal(view(overlap).firewallMode, 'lockdown');
  t.match(view(overlap).explanation, /wan: The modem gave the box/);
  t.equal(view(after([{ type: 'fault-cleared', source: 'wan' }], overlap)).firewallMode, 'routing');
});
