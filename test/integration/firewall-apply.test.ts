/**
 * The applier against the real kernel, inside throwaway network namespaces: `nft --check` of every mode,
 * apply + verify of every mode on both paths (long-lived nft session and spawn per call), relay-set
 * refresh without a reload, counters, atomicity of a refused batch, the fallback when the nft session
 * dies, and that bad input changes nothing.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { Firewall, firewallForBox } from '../../firmware/firewall/apply.js';
import { compareShape, parseTableJson } from '../../firmware/firewall/kernel-table.js';
import { NftSession } from '../../firmware/firewall/nft.js';
import { buildRuleset, type FirewallMode, renderRuleset } from '../../firmware/firewall/render.js';
import { SAMPLE } from '../fixtures/firewall/sample.js';
import { makeNetns, nsRun, rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

/** Sends one UDP datagram to argv[1]:9 (IPv4 or IPv6). */
const SEND_UDP = [
  'import socket, sys',
  'a = sys.argv[1]',
  's = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)',
  'try:\n  s.sendto(b"x", (a, 9))\nexcept OSError:\n  pass',
].join('\n');

const MODES: FirewallMode[] = ['lockdown', 'connecting', 'routing', 'killed'];
const skip = rootSkipReason(['ip', 'nft', 'conntrack']);

async function tableShape(ns: string) {
  const out = await nsRun(ns, 'nft', ['-j', 'list', 'table', 'inet', 'onionbox']).catch(() => '');
  return parseTableJson(out.split('\n').filter((l) => l.trim() !== ''));
}

async function tableHandle(ns: string): Promise<number | null> {
  return (await tableShape(ns))?.handle ?? null;
}

t.test('firewall applier in a namespace', { skip }, async (t) => {
  const dir = tmpDir(t, 'onionbox-fw-');
  const ns = await makeNetns(t, 'fw');

  t.test('nft --check accepts every mode', async (t) => {
    for (const mode of MODES) {
      const f = join(dir, `${mode}.nft`);
      writeFileSync(f, renderRuleset(mode, SAMPLE));
      await t.resolves(nsRun(ns, 'nft', ['--check', '-f', f]), mode);
    }
  });

  for (const fastPath of [true, false]) {
    t.test(`apply + verify every mode (${fastPath ? 'nft -i session' : 'nft per call'})`, async (t) => {
      const fw = new Firewall({ netns: ns, fastPath });
      t.teardown(() => fw.stop());
      await fw.start();
      t.equal(fw.current(), null);
      let last: string | null = null;
      for (const mode of [...MODES, ...MODES]) {
        const r = await fw.apply(mode, SAMPLE);
        t.equal(r.mode, mode);
        t.equal(r.fastPath, fastPath, 'the path that was asked for did the work');
        t.equal(fw.current(), mode);
        const shape = await tableShape(ns);
        t.ok(shape?.generation && shape.generation !== last, `${mode}: a new batch is in force`);
        last = shape?.generation ?? null;
        t.same(
          shape ? compareShape(buildRuleset(mode, SAMPLE), shape) : ['none'],
          [],
          `${mode}: exactly the mode`,
        );
        const listed = await nsRun(ns, 'nft', ['list', 'table', 'inet', 'onionbox']);
        t.equal(
          listed.includes('dnat ip to 10.200.0.1:9040'),
          mode === 'routing',
          `${mode}: redirect iff routing`,
        );
      }
    });
  }

  t.test('the boot lockdown table is removed by the first apply, in the same batch', async (t) => {
    await nsRun(ns, 'nft', ['add', 'table', 'inet', 'onionbox_boot']);
    const fw = new Firewall({ netns: ns });
    t.teardown(() => fw.stop());
    await fw.start();
    await fw.apply('lockdown', SAMPLE);
    const tables = await nsRun(ns, 'nft', ['list', 'tables']);
    t.notMatch(tables, /onionbox_boot/);
    t.match(tables, /table inet onionbox/);
  });

  t.test('relay set refresh changes elements, not the table', async (t) => {
    const fw = new Firewall({ netns: ns });
    t.teardown(() => fw.stop());
    await fw.start();
    await fw.apply('connecting', SAMPLE);
    const h = await tableHandle(ns);
    const fresh = [
      { address: '198.18.0.20', port: 443 },
      { address: '198.18.0.21', port: 9001 },
    ];
    await fw.refreshRelays(fresh);
    t.equal(await tableHandle(ns), h, 'same table (no reload)');
    const set = await nsRun(ns, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']);
    t.match(set, /198\.18\.0\.20 \. 443/);
    t.match(set, /198\.18\.0\.21 \. 9001/);
    t.notMatch(set, /198\.18\.0\.10/);
    await fw.refreshRelays([]);
    t.notMatch(await nsRun(ns, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']), /198\.18/);
    const bad = await fw.refreshRelays([{ address: '198.18.0.1 }', port: 1 }]).catch((e: unknown) => e);
    t.ok(isObxError(bad, 'FIREWALL_INVALID_PARAMS'));
    // the next full apply renders the params' relays again
    await fw.apply('routing', SAMPLE);
    t.match(await nsRun(ns, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']), /198\.18\.0\.10 \. 5000/);
  });

  t.test('counters: every drop class, read from the kernel', async (t) => {
    const fw = new Firewall({ netns: ns });
    t.teardown(() => fw.stop());
    await fw.start();
    await fw.apply('lockdown', SAMPLE);
    const c = await fw.counters();
    t.same(Object.keys(c).sort(), ['icmp', 'invalid', 'ipv6', 'other', 'udp']);
    // an IPv6 packet on lo is dropped and counted (IPv6 is dropped on every interface)
    await nsRun(ns, '/usr/bin/python3', ['-c', SEND_UDP, '::1']);
    const after = await fw.counters();
    t.ok((after.ipv6?.packets ?? 0) >= 1, `ipv6 drops counted (${after.ipv6?.packets})`);
    // a mode change replaces the table (its counters start at zero): the totals carry over
    await fw.apply('connecting', SAMPLE);
    const carried = await fw.counters();
    t.ok((carried.ipv6?.packets ?? 0) >= (after.ipv6?.packets ?? 0), 'counts survive a mode change');
    await nsRun(ns, '/usr/bin/python3', ['-c', SEND_UDP, '::1']);
    t.ok((await fw.counters()).ipv6!.packets > carried.ipv6!.packets, 'and keep counting');
    // IPv4 on lo is allowed (loopback): not counted
    await nsRun(ns, '/usr/bin/python3', ['-c', SEND_UDP, '127.0.0.1']);
    t.equal((await fw.counters()).udp?.packets, after.udp?.packets, 'loopback IPv4 UDP not dropped');
  });

  t.test('bad input changes nothing and says why', async (t) => {
    const fw = new Firewall({ netns: ns });
    t.teardown(() => fw.stop());
    await fw.start();
    await fw.apply('killed', SAMPLE);
    const h = await tableHandle(ns);
    const e = await fw.apply('routing', { ...SAMPLE, lanIf: 'lan0" accept #' }).catch((x: unknown) => x);
    t.ok(isObxError(e, 'FIREWALL_INVALID_PARAMS'), String(e));
    const e2 = await fw.apply('open' as FirewallMode, SAMPLE).catch((x: unknown) => x);
    t.ok(e2 instanceof Error);
    t.equal(await tableHandle(ns), h, 'the kernel still holds the killed table');
    t.equal(fw.current(), 'killed');
  });

  t.test('a refused batch leaves the previous ruleset in force (atomic include)', async (t) => {
    const s = new NftSession(ns);
    t.teardown(() => s.close());
    await s.open();
    const good = join(dir, 'good.nft');
    writeFileSync(good, renderRuleset('killed', SAMPLE));
    await s.exec([`include "${good}"`]);
    const h = await tableHandle(ns);
    const bad = join(dir, 'bad.nft');
    // a whole routing ruleset, then one line the kernel refuses: nothing of it may stick
    writeFileSync(
      bad,
      `${renderRuleset('routing', SAMPLE)}add rule inet onionbox input jump no_such_chain\n`,
    );
    const r = await s.exec([`include "${bad}"`]);
    t.match(r.err, /Error/, 'nft reported the error');
    t.equal(await tableHandle(ns), h, 'same table');
    t.notMatch(
      await nsRun(ns, 'nft', ['list', 'table', 'inet', 'onionbox']),
      /dnat/,
      'no routing rule stuck',
    );
  });

  t.test('an applier whose nft cannot run reports it; the kernel keeps the previous ruleset', async (t) => {
    const good = new Firewall({ netns: ns });
    t.teardown(() => good.stop());
    await good.start();
    await good.apply('killed', SAMPLE);
    const h = await tableHandle(ns);
    const broken = new Firewall({ netns: ns, nftPath: '/nonexistent/nft' });
    t.teardown(() => broken.stop());
    await broken.start();
    const e = await broken.apply('routing', SAMPLE).catch((x: unknown) => x);
    t.ok(isObxError(e, 'FIREWALL_APPLY_FAILED'), String(e));
    t.equal(broken.current(), null);
    t.equal(await tableHandle(ns), h);
    const c = await broken.counters().catch((x: unknown) => x);
    t.ok(c instanceof Error);
  });

  t.test('the nft session dies: the next apply still succeeds, then the session is back', async (t) => {
    const fw = new Firewall({ netns: ns, sessionTimeoutMs: 1000 });
    t.teardown(() => fw.stop());
    await fw.start();
    await fw.apply('lockdown', SAMPLE);
    const pid = fw.sessionPid();
    t.ok(pid, 'fast path in use');
    process.kill(pid as number, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const r = await fw.apply('routing', SAMPLE);
    t.equal(r.mode, 'routing');
    t.equal(fw.current(), 'routing');
    t.ok(fw.sessionPid(), 'session reopened');
    t.not(fw.sessionPid(), pid);
    const r2 = await fw.apply('killed', SAMPLE);
    t.equal(r2.fastPath, true);
  });

  t.test('an old nft session is replaced by a fresh one between two exchanges', async (t) => {
    const fw = new Firewall({ netns: ns, sessionMaxLines: 8, auditIntervalMs: 0 });
    t.teardown(() => fw.stop());
    await fw.start();
    const first = fw.sessionPid();
    t.ok(first, 'fast path in use');
    const modes: FirewallMode[] = ['routing', 'killed'];
    let i = 0;
    while (fw.sessionPid() === first && i < 200) {
      const r = await fw.apply(modes[i % 2] as FirewallMode, SAMPLE);
      t.equal(r.fastPath, true, 'every apply on a session, none on a spawn');
      i += 1;
      if (fw.sessionPid() === first) await new Promise((r) => setTimeout(r, 10));
    }
    t.not(fw.sessionPid(), first, `a new session after ${i} applies`);
    t.ok(fw.sessionPid());
    const r = await fw.apply('lockdown', SAMPLE);
    t.equal(r.fastPath, true);
    t.equal(fw.current(), 'lockdown', 'the fresh session applied and verified');
    await new Promise((r) => setTimeout(r, 100));
    t.throws(() => process.kill(first as number, 0), 'the old nft process is gone');
  });

  t.test('mode switches keep the relay set; a table replaced behind our back is rebuilt whole', async (t) => {
    const fw = new Firewall({ netns: ns });
    t.teardown(() => fw.stop());
    await fw.start();
    await fw.apply('routing', SAMPLE);
    const h = await tableHandle(ns);
    await fw.apply('killed', SAMPLE);
    t.equal(await tableHandle(ns), h, 'a mode switch keeps the table (and its set)');
    t.match(await nsRun(ns, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']), /198\.18\.0\.11 \. 5001/);
    t.notMatch(
      await nsRun(ns, 'nft', ['list', 'table', 'inet', 'onionbox']),
      /pre_nat/,
      'pre_nat gone in killed',
    );
    // someone deletes our table: the next apply notices and rebuilds it with the relay set
    await nsRun(ns, 'nft', ['delete', 'table', 'inet', 'onionbox']);
    await fw.apply('routing', SAMPLE);
    t.match(await nsRun(ns, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']), /198\.18\.0\.10 \. 5000/);
    const shape = await tableShape(ns);
    t.same(shape ? compareShape(buildRuleset('routing', SAMPLE), shape) : ['none'], []);
    // someone adds a rule: the audit notices, and the next apply replaces the table whole
    await fw.audit();
    await nsRun(ns, 'nft', ['add', 'rule', 'inet', 'onionbox', 'lan_in', 'accept']);
    const e = await fw.audit().catch((x: unknown) => x);
    t.ok(isObxError(e, 'FIREWALL_VERIFY_FAILED'), String(e));
    const h2 = await tableHandle(ns);
    await fw.apply('killed', SAMPLE);
    t.not(await tableHandle(ns), h2, 'replaced whole');
    await fw.audit();
    t.notMatch(await nsRun(ns, 'nft', ['list', 'chain', 'inet', 'onionbox', 'lan_in']), /^\s+accept$/m);
    // a different relay list in params: a full apply writes it
    await fw.apply('routing', { ...SAMPLE, relays: [{ address: '198.18.0.30', port: 443 }] });
    const set = await nsRun(ns, 'nft', ['list', 'set', 'inet', 'onionbox', 'relays']);
    t.match(set, /198\.18\.0\.30 \. 443/);
    t.notMatch(set, /198\.18\.0\.10/);
  });

  t.test('not started', async (t) => {
    const fw = new Firewall({ netns: ns });
    const e = await fw.apply('lockdown', SAMPLE).catch((x: unknown) => x);
    t.ok(isObxError(e, 'FIREWALL_NOT_STARTED'), String(e));
  });

  t.test('concurrent applies are serialised and the last one wins', async (t) => {
    const fw = new Firewall({ netns: ns });
    t.teardown(() => fw.stop());
    await fw.start();
    const modes: FirewallMode[] = ['routing', 'killed', 'routing', 'connecting', 'killed'];
    const results = await Promise.all(modes.map((m) => fw.apply(m, SAMPLE)));
    t.same(
      results.map((r) => r.mode),
      modes,
    );
    t.equal(fw.current(), 'killed');
    t.notMatch(await nsRun(ns, 'nft', ['list', 'table', 'inet', 'onionbox']), /dnat/);
    // the shape firmware/box/controller.ts uses
    const bound = firewallForBox(fw, () => SAMPLE);
    t.equal((await bound.apply('routing')).mode, 'routing');
    t.ok('udp' in (await bound.counters()));
  });
});
