/**
 * A watched ruleset (issue 13): when something else flushes or edits the kernel's ruleset (Debian's
 * nftables.service starts with `flush ruleset`), the box notices within its audit period, applies its
 * closed mode at once and the page says what happened. Real Firewall (nft) in a network namespace, real
 * BoxController and web page; the audit period is 1 s here (30 s on the box).
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { Firewall } from '../../firmware/firewall/apply.js';
import { buildWebApp } from '../../web/app.js';
import { TOR_READY } from '../helpers/fake-tor.js';
import { startFirewallBox } from '../helpers/firewall-box.js';
import { buildKillswitchNet } from '../helpers/killswitch-net.js';
import { nsRun, rootSkipReason } from '../helpers/netns.js';
import { Client, csrfFrom, GOOD_PASSWORD } from '../helpers/web.js';

const skip = rootSkipReason(['ip', 'nft', 'conntrack', 'python3']);

async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

async function setup(t: Test, auditIntervalMs: number) {
  const net = await buildKillswitchNet(t);
  const errors: string[] = [];
  const fw = new Firewall({
    netns: net.box,
    auditIntervalMs,
    log: {
      info: () => undefined,
      warn: () => undefined,
      error: (o, m) => errors.push(`${m} ${JSON.stringify(o)}`),
    },
  });
  await fw.start();
  t.teardown(() => fw.stop());
  const sb = await startFirewallBox(t, {
    firewall: fw,
    params: net.params,
    initialTor: TOR_READY,
    retryMs: 60_000,
  });
  await sb.box.settled();
  t.equal(fw.current(), 'routing', 'routing before the flush');
  return { net, fw, ...sb, errors };
}

t.test(
  'nft flush ruleset: closed again within the audit period, logged, on the page',
  { skip },
  async (t) => {
    const { net, box, errors } = await setup(t, 1000);
    const app = buildWebApp({ log: pino({ level: 'silent' }), box, simulate: true });
    await app.ready();
    t.teardown(() => app.close());
    // claimed with the OLED's code (a press needs the claim id on the OLED for 3 s first)
    t.equal(await box.claim({ password: GOOD_PASSWORD, code: box.claimDisplay()?.code }), 'claimed');
    const owner = new Client(app);
    const login = await owner.post('/login', {
      password: GOOD_PASSWORD,
      _csrf: csrfFrom((await owner.get('/login')).body),
    });
    t.equal(login.statusCode, 303);
    t.notMatch((await owner.get('/')).body, /id="alert"/, 'no alert before');

    await nsRun(net.box, 'nft', ['flush', 'ruleset']);
    const took = await until('the closed mode', () => box.appliedMode === 'lockdown', 5000);
    // Within the audit period plus the apply; the wait above gives up after a few periods.
    t.pass(`closed again ${took} ms after the flush (audit every 1000 ms)`);
    t.equal(box.status().state, 'error');
    const table = await net.table();
    t.match(table, /table inet onionbox/, 'the box loaded its own table again');
    t.notMatch(table, /dnat/, 'no LAN redirect: the closed mode');
    t.ok(
      errors.some((e) => /changed outside onionboxd/.test(e)),
      'the firewall logged it',
    );
    const page = (await owner.get('/')).body;
    t.match(
      page,
      /id="alert"[^>]*>At [0-9-]+ [0-9:]+ UTC something on the box other than onionboxd removed or changed its firewall rules/,
    );
    t.match(page, /firewall: ruleset changed outside the box/, 'the status explanation names the fault');
    t.match(await box.diagnostics(), /firewall ruleset changed outside the box/);
  },
);

t.test('an edited table is a fault too', { skip }, async (t) => {
  const { net, fw, box } = await setup(t, 0);
  // Someone adds an accept rule to our output chain: the audit sees a rule count that was not rendered.
  await nsRun(net.box, 'nft', ['add', 'rule', 'inet', 'onionbox', 'output', 'accept']);
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(box.appliedMode, 'routing', 'no periodic audit in this test (period 0)');
  t.equal(await fw.watch('test'), false, 'the audit finds the change');
  await until('the closed mode', () => box.appliedMode === 'lockdown', 3000);
  t.notMatch(await net.table(), /dnat|output[^}]*\baccept\s*\n\s*}/, 'our own table again, closed');
  t.equal(await fw.watch('test'), true, 'and the audit is clean afterwards');
});

t.test('a failed counters read audits at once', { skip }, async (t) => {
  const { net, box } = await setup(t, 0);
  await nsRun(net.box, 'nft', ['delete', 'table', 'inet', 'onionbox']);
  await t.rejects(box.counters(), 'the counters read fails: no table');
  // No periodic audit runs here (period 0): only the failed read can have triggered this one.
  const took = await until('the closed mode', () => box.appliedMode === 'lockdown', 3000);
  t.pass(`closed ${took} ms after the failed read`);
  t.equal(box.status().state, 'error');
});
