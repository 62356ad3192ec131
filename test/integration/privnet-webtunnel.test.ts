/**
 * The private network's webtunnel bridge (scripts/privnet: webtunnel-server behind a TLS front whose
 * certificate a test CA signed): a tor client with nothing but the bridge's line bootstraps through
 * lyrebird's webtunnel client, which trusts the test CA through SSL_CERT_FILE in tor's environment (tor
 * hands its environment to its transports), and fetches through it. Without the CA it cannot: the front's
 * certificate is refused. On loopback, as an ordinary user could run it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { connectControl, type TorControl } from '../../firmware/tor/control.js';
import { parseBridgeLine } from '../../firmware/tor/grammar.js';
import { parseBootstrap } from '../../firmware/tor/protocol.js';
import { startPrivnet } from '../../scripts/privnet/index.js';
import { socksHttpGet } from '../../scripts/privnet/socks.js';
import { tmpDir } from '../helpers/tmp.js';

const dir = tmpDir(t);
const net = await startPrivnet({ dir: join(dir, 'net'), httpServer: true, webtunnelBridge: true });
t.teardown(() => net.stop());

interface Client {
  child: ChildProcess;
  control: TorControl;
  dir: string;
}

async function client(name: string, env: NodeJS.ProcessEnv): Promise<Client> {
  const bridge = net.webtunnelBridge;
  if (!bridge) throw new Error('no webtunnel bridge');
  const d = join(dir, name);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  const lines = [
    ...net.clientTorrcLines,
    `DataDirectory ${d}`,
    `ControlPort unix:${join(d, 'control')}`,
    `SocksPort unix:${join(d, 'socks')}`,
    'CookieAuthentication 1',
    `CookieAuthFile ${join(d, 'cookie')}`,
    `Log notice file ${join(d, 'notice.log')}`,
    'UseBridges 1',
    `Bridge ${bridge.line}`,
    'ClientTransportPlugin webtunnel exec /usr/bin/lyrebird',
    `__OwningControllerProcess ${process.pid}`,
  ];
  writeFileSync(join(d, 'torrc'), `${lines.join('\n')}\n`);
  const child = spawn('tor', ['-f', join(d, 'torrc'), '--ignore-missing-torrc'], { stdio: 'ignore', env });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const control = await connectControl(
    { endpoint: { path: join(d, 'control') }, cookieFile: join(d, 'cookie') },
    20_000,
  );
  t.teardown(() => control.close());
  return { child, control, dir: d };
}

async function progress(c: Client): Promise<number> {
  const phase = (await c.control.getInfo('status/bootstrap-phase'))['status/bootstrap-phase'] ?? '';
  return parseBootstrap(phase).progress;
}

t.test("the bridge's line is one the box accepts", async (t) => {
  const line = net.webtunnelBridge?.line ?? '';
  t.match(
    line,
    /^webtunnel 192\.0\.2\.3:1 [0-9A-F]{40} url=https:\/\/127\.0\.0\.1:[0-9]+\/[0-9a-f]{24} ver=0\.0\.1$/,
  );
  t.equal(parseBridgeLine(line).transport, 'webtunnel');
});

t.test('with the test CA in its environment, tor bootstraps through webtunnel and fetches', async (t) => {
  const c = await client('trusting', { ...process.env, SSL_CERT_FILE: net.webtunnelBridge?.caFile ?? '' });
  for (let i = 0; (await progress(c)) < 100; i++) {
    if (i > 600) t.fail(`no bootstrap: ${readFileSync(join(c.dir, 'notice.log'), 'utf8').slice(-1500)}`);
    if (i > 600) return;
    await sleep(200);
  }
  t.pass('bootstrapped through the webtunnel bridge');
  const http = net.http;
  if (!http) throw new Error('no http server');
  const got = await socksHttpGet({ path: join(c.dir, 'socks') }, http.address, http.port, '/api/ip', {
    timeoutMs: 30_000,
  });
  t.equal(got.status, 200);
  t.equal((JSON.parse(got.body.toString()) as { IsTor: boolean }).IsTor, true, 'through the exit');
  const circuits = await c.control.circuits();
  t.ok(
    circuits.some((x) => x.status === 'BUILT' && x.hops[0]?.fingerprint === net.webtunnelBridge?.fingerprint),
    'circuits start at the webtunnel bridge',
  );
});

t.test('without it, the front is not trusted and tor does not get past the bridge', async (t) => {
  const env = { ...process.env, SSL_CERT_FILE: join(dir, 'no-such-ca.pem') };
  const c = await client('untrusting', env);
  // lyrebird reports the refused certificate to tor, which logs it (and nothing else may count here)
  for (let i = 0; ; i++) {
    const log = readFileSync(join(c.dir, 'notice.log'), 'utf8');
    const refused = /^.*x509: certificate signed by unknown authority.*$/m.exec(log);
    if (refused) {
      t.comment(refused[0]);
      break;
    }
    if (i > 300) {
      t.fail(`no refusal logged: ${log.slice(-1500)}`);
      return;
    }
    await sleep(200);
  }
  t.ok((await progress(c)) < 100, 'no bootstrap without the CA');
});
