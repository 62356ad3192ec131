/** The leak self-test page: owners only, CSRF on the run form, the report in words, without JavaScript. */
import t from 'tap';
import { LeakTester } from '../../firmware/leak-test/leak-test.js';
import { Client, claimed, webHarness } from '../helpers/web.js';

t.test('leak test page: owners only; runs by a plain form post; shows each check', async (t) => {
  const h = await webHarness(t);
  const stranger = new Client(h.app);
  t.equal((await stranger.get('/leak-test')).headers.location, '/claim', 'unclaimed: to the claim page');
  const c = await claimed(h);
  const before = await c.get('/leak-test');
  t.equal(before.statusCode, 200);
  t.match(before.body, /id="leak-none"/);
  t.match(before.body, /id="not-routing"/, 'tor still connecting: the exit check will be skipped');
  t.match(before.body, /<form method="post" action="\/leak-test">/);
  t.match((await c.get('/')).body, /href="\/leak-test"/, 'the navigation links it');

  const forged = await c.post('/leak-test', { _csrf: 'forged' });
  t.equal(forged.statusCode, 403, 'no valid CSRF token: refused');
  t.equal(h.box.controller.lastLeakTest(), null, 'and nothing ran');
  const anon = await stranger.post('/leak-test', { _csrf: 'none' });
  t.ok(anon.statusCode >= 400, `a stranger cannot run it (${anon.statusCode})`);
  t.equal(h.box.controller.lastLeakTest(), null, 'nothing ran');

  h.box.setBootstrap(100, 'Done');
  await h.box.settled();
  const run = await c.post('/leak-test', {}, '/leak-test');
  t.equal(run.statusCode, 303);
  t.equal(run.headers.location, '/leak-test');
  const after = await c.get('/leak-test');
  t.match(after.body, /id="leak-headline">No leak found: every check passed\./);
  for (const id of ['firewall', 'forwarding', 'ipv6', 'clearnet-tcp', 'clearnet-udp', 'tor-exit']) {
    t.match(after.body, new RegExp(`id="check-${id}" data-outcome="Passed"`), id);
  }
  t.notMatch(after.body, /<script>(?!<\/)/, 'no inline script');
});

t.test('leak test page: a leak is shown as one, with what was seen', async (t) => {
  const h = await webHarness(t);
  const c = await claimed(h);
  h.box.leakTest = new LeakTester({
    firewallMode: () => 'routing',
    audit: async () => {
      throw new Error('routing: chain wan_out has 3 rules, expected 2 <b>');
    },
    routing: () => true,
    torCheck: async () => ({ isTor: true, ip: '198.51.100.7' }),
    wanInterface: () => 'eth0',
    dhcpServers: () => ['192.168.1.1'],
    wanAddresses: () => ['192.168.1.23'],
    probes: {
      tcp: async () => ({ kind: 'connected' }),
      udp: async () => ({ kind: 'error', code: 'EPERM' }),
      sysctls: async () => ({ ipForward: '0', allForwarding: '0', ipv6Disabled: '1', ipv6Present: true }),
      routeTable: async () => '',
    },
  });
  const run = await c.post('/leak-test', {}, '/leak-test');
  t.equal(run.statusCode, 303);
  const body = (await c.get('/leak-test')).body;
  t.match(body, /2 checks found a leak/);
  t.match(body, /id="check-firewall" data-outcome="LEAK"/);
  t.match(body, /id="check-clearnet-tcp" data-outcome="LEAK"/);
  t.match(body, /id="check-clearnet-udp" data-outcome="Passed"/);
  t.match(body, /expected 2 &lt;b&gt;/, 'what the box saw, escaped');
  t.match(body, /data-tone="bad"/);
});
