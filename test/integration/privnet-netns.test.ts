/**
 * The private network inside a network namespace (as the firewall's end-to-end leak test uses it): every
 * tor and the HTTP server run via `ip netns exec`, each relay on its own 198.18.0.x address. Root only.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { startPrivnet } from '../../scripts/privnet/index.js';
import { tmpDir } from '../helpers/tmp.js';

if (process.getuid?.() !== 0 && process.env.CI !== 'true') {
  t.plan(0, 'needs root for network namespaces (runs under CI=true)');
} else {
  const ns = `obxpn-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();
  ip('netns', 'add', ns);
  t.teardown(() => {
    try {
      ip('netns', 'del', ns);
    } catch {
      // already gone
    }
  });
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  const addresses = Array.from({ length: 7 }, (_, i) => `198.18.0.${i + 1}`);
  for (const a of addresses) ip('-n', ns, 'addr', 'add', `${a}/32`, 'dev', 'lo');
  ip('-n', ns, 'route', 'add', '198.18.0.0/24', 'dev', 'lo');

  const dir = tmpDir(t, 'obx-privnet-ns-');
  const net = await startPrivnet({ dir: join(dir, 'net'), netns: ns, addresses, httpServer: true });
  t.teardown(() => net.stop());

  t.test('each relay on its own namespace address; HTTP server on the last', async (t) => {
    t.same(
      net.relays.map((r) => r.address),
      addresses.slice(0, 6),
    );
    t.equal(net.exit.address, '198.18.0.6');
    t.equal(net.exitOutboundAddress, '198.18.0.6');
    t.equal(net.http?.address, '198.18.0.7');
    t.same(
      net.relayEndpoints(),
      net.relays.map((r) => ({ address: r.address, port: r.orPort })),
    );
    t.ok(net.clientTorrcLines.some((l) => l.startsWith('DirAuthority auth0 ') && l.includes('198.18.0.1:')));
  });

  t.test('the tors listen inside the namespace, not on the host', async (t) => {
    const inside = execFileSync('ip', ['netns', 'exec', ns, 'ss', '-Htln']).toString();
    for (const r of net.relays)
      t.match(inside, `${r.address}:${r.orPort}`, `${r.nickname} ORPort in the namespace`);
    const host = execFileSync('ss', ['-Htln']).toString();
    t.notMatch(host, /198\.18\.0\./, 'nothing of it on the host');
  });

  t.test('the IsTor stand-in: a direct request from inside the namespace is not Tor', async (t) => {
    // (startPrivnet already proved the positive: its probe fetched /api/ip through the exit with IsTor true.)
    const out = execFileSync('ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `fetch(${JSON.stringify(`${net.http?.url}/api/ip`)}).then(r=>r.text()).then(t=>process.stdout.write(t))`,
    ]).toString();
    const doc = JSON.parse(out) as { IsTor: boolean; IP: string };
    t.equal(doc.IsTor, false);
    t.not(doc.IP, net.exitOutboundAddress);
  });

  t.test('stop kills exactly its own processes, idempotently', async (t) => {
    const pids = net.relays.map((r) => r.pid);
    await net.stop();
    await net.stop();
    for (const pid of pids) t.throws(() => process.kill(pid, 0), `pid ${pid} gone`);
  });
}
