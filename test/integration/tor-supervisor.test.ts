/**
 * The tor supervisor, control client, "is this Tor?" check and `onionbox tor ...` CLI against real tor on
 * one private Tor network (loopback, dynamic ports) shared by the whole file.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import type { CircuitInfo } from '../../firmware/box/api.js';
import { runCli } from '../../firmware/cli/index.js';
import { defaultConfig, type TorConfig } from '../../firmware/config/schema.js';
import { ConfigStore } from '../../firmware/config/store.js';
import { registerTorIpc } from '../../firmware/control/commands.js';
import { IpcServer, socketPath } from '../../firmware/control/socket.js';
import { EventBus } from '../../firmware/events.js';
import { rewriteInPlace } from '../../firmware/lib/atomic-write.js';
import { renderResolvConf } from '../../firmware/net/wan-lease.js';
import { TOR_RESOLV_SIZE } from '../../firmware/phases/network.js';
import { TRY_MS } from '../../firmware/tor/assist.js';
import { ConnectionAssist } from '../../firmware/tor/assist-runner.js';
import { TorCheck } from '../../firmware/tor/check.js';
import { connectControl } from '../../firmware/tor/control.js';
import { systemUser } from '../../firmware/tor/process.js';
import { type TorStatus, TorSupervisor } from '../../firmware/tor/supervisor.js';
import type { TorRuntime } from '../../firmware/tor/torrc.js';
import { freePorts, startPrivnet } from '../../scripts/privnet/index.js';
import { socksHttpGet } from '../../scripts/privnet/socks.js';
import { planUnit, startUnit } from '../../scripts/sim/units.js';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;
const dir = tmpDir(t, 'obx-tor-sup-');
const net = await startPrivnet({ dir: join(dir, 'net'), httpServer: true, obfs4Bridge: true });
t.teardown(() => net.stop());
const http = net.http;
if (!http) throw new Error('privnet without HTTP server');

const [socksPort, controlPort] = await freePorts(2);
const bus = new EventBus();
const statuses: TorStatus[] = [];
bus.on('tor:status', 'test', (s) => {
  statuses.push(s as TorStatus);
});
const torrcPath = join(dir, 'box', 'torrc');
const logLines: string[] = [];
t.afterEach((t) => {
  if (!t.passing()) t.comment(logLines.slice(-30).join('\n'));
});
const runtime: TorRuntime = {
  dataDir: join(dir, 'box', 'data'),
  socks: { host: '127.0.0.1', port: socksPort ?? 0 },
  control: { host: '127.0.0.1', port: controlPort ?? 0 },
  safeSocks: false, // the private network's "internet" is an IP address
  owningPid: process.pid,
  extraLines: net.clientTorrcLines,
};
const sup = new TorSupervisor({
  bus,
  settings: defaultConfig().tor,
  torrcPath,
  runtime,
  applyTimeoutMs: 10_000,
  log: {
    info: (o, m) => logLines.push(`info ${m} ${JSON.stringify(o)}`),
    warn: (o, m) => logLines.push(`warn ${m} ${JSON.stringify(o)}`),
    error: (o, m) => logLines.push(`error ${m} ${JSON.stringify(o)}`),
  },
});
bus.on('tor:warning', 'test', (w) => {
  logLines.push(`tor: ${w}`);
});
t.teardown(() => sup.stop());
const socks = { host: '127.0.0.1', port: socksPort ?? 0 };

t.test('start: bootstrap events, then ready only once an exit circuit is built', async (t) => {
  await sup.start();
  t.ok(await sup.waitReady(60_000), 'ready');
  const phases = statuses.map((s) => s.phase);
  t.equal(phases[0], 'starting');
  t.ok(phases.includes('bootstrapping'));
  const firstReady = statuses.findIndex((s) => s.ready);
  const hundred = statuses.findIndex((s) => s.progress === 100);
  t.ok(hundred >= 0 && hundred <= firstReady, 'Bootstrapped 100% comes first, ready after it');
  t.equal(statuses[hundred]?.ready, false, 'Bootstrapped 100% alone is not ready');
  t.same(sup.status().phase, 'ready');
  t.ok(sup.status().pid);
  const circuits = await sup.circuits();
  t.ok(
    circuits.some((c) => c.status === 'BUILT' && c.hops.length === 3 && c.hops[2]?.nickname === 'exit0'),
    'a built circuit ends at the exit',
  );
  t.equal(
    statSafe(torrcPath),
    readFileSync(`${torrcPath}.good`, 'utf8'),
    'the working torrc is kept as .good',
  );
});

function statSafe(path: string): string {
  return readFileSync(path, 'utf8');
}

t.test("relayEndpoints are the consensus's relays: the private network's", async (t) => {
  const got = (await sup.relayEndpoints()).map((e) => `${e.address}:${e.port}`).sort();
  const want = net
    .relayEndpoints()
    .map((e) => `${e.address}:${e.port}`)
    .sort();
  t.same(got, want);
});

t.test('traffic goes through the exit; "is this Tor?" says yes through tor and no directly', async (t) => {
  const got = await socksHttpGet(socks, http.address, http.port, '/bytes/1000');
  t.equal(got.status, 200);
  t.equal(got.body.length, 1000);
  const check = new TorCheck({ socks, url: `${http.url}/api/ip`, timeoutMs: 20_000 });
  t.same((await check.run()).isTor, true);
  const direct = await fetch(`${http.url}/api/ip`).then((r) => r.json() as Promise<{ IsTor: boolean }>);
  t.equal(direct.IsTor, false, 'the stand-in can tell: a direct request is not Tor');
  await t.rejects(new TorCheck({ socks: { host: '127.0.0.1', port: 1 }, url: `${http.url}/api/ip` }).run(), {
    code: 'OBX_ERR_TOR_CHECK_FAILED',
  });
  t.throws(() => new TorCheck({ socks, url: 'file:///etc/passwd' }), { code: 'OBX_ERR_TOR_VALUE_INVALID' });
  t.throws(() => new TorCheck({ socks: { host: '192.0.2.1', port: 9050 } }), {
    code: 'OBX_ERR_TOR_VALUE_INVALID',
  });
});

t.test('NEWNYM: the next stream uses a different circuit', async (t) => {
  const control = sup.control;
  if (!control) throw new Error('no control connection');
  const used: string[] = [];
  const off = control.onEvent((ev) => {
    if (ev.type !== 'STREAM') return;
    const [, status, circ] = ev.body.split(' ');
    if (status === 'SUCCEEDED' && circ) used.push(circ);
  });
  t.teardown(off);
  await control.setEvents(['STREAM']);
  // The STREAM event and the SOCKS reply travel on different sockets: wait for the event itself.
  const nextStream = async (): Promise<string | undefined> => {
    const n = used.length;
    await socksHttpGet(socks, http.address, http.port, '/');
    for (let i = 0; i < 100 && used.length === n; i++) await new Promise((r) => setTimeout(r, 20));
    return used[n];
  };
  const before = await nextStream();
  await sup.newIdentity();
  const after = await nextStream();
  t.ok(before && after);
  t.not(after, before, `circuit ${before} -> ${after}`);
});

t.test('SAFECOOKIE: our client authenticates to the real tor; a wrong cookie is refused', async (t) => {
  const cookieFile = join(dir, 'box', 'data', 'control_auth_cookie');
  const c = await connectControl({ endpoint: { host: '127.0.0.1', port: controlPort ?? 0 }, cookieFile });
  t.match(await c.version(), /^0\.4\.9/);
  await t.rejects(c.command('GETINFO no-such-key'), { code: 'OBX_ERR_TOR_OPERATION_FAILED', message: /552/ });
  c.close();
  // A fake "tor" that offers SAFECOOKIE but cannot prove it knows the cookie: we must refuse it.
  const fake = createServer((s) => {
    s.on('data', (d) => {
      const cmd = d.toString();
      if (cmd.startsWith('PROTOCOLINFO')) {
        s.write(
          `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="${cookieFile}"\r\n250 OK\r\n`,
        );
      } else if (cmd.startsWith('AUTHCHALLENGE')) {
        s.write(`250 AUTHCHALLENGE SERVERHASH=${'00'.repeat(32)} SERVERNONCE=${'11'.repeat(32)}\r\n`);
      } else s.write('250 OK\r\n');
    });
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => fake.close());
  const addr = fake.address();
  await t.rejects(
    connectControl({
      endpoint: { host: '127.0.0.1', port: addr && typeof addr === 'object' ? addr.port : 0 },
      cookieFile,
    }),
    {
      code: 'OBX_ERR_TOR_AUTH_FAILED',
    },
  );
});

t.test('a bad bridge line is refused without touching the running config', async (t) => {
  const before = readFileSync(torrcPath, 'utf8');
  const pid = sup.pid;
  const bad: TorConfig = {
    ...defaultConfig().tor,
    useBridges: true,
    bridges: ['obfs4 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=x\nSocksPort 0.0.0.0:9050'],
  };
  await t.rejects(sup.applySettings(bad), { code: 'OBX_ERR_CONFIG_INVALID' });
  t.equal(readFileSync(torrcPath, 'utf8'), before, 'torrc unchanged');
  t.equal(sup.pid, pid, 'same tor process');
  t.equal(sup.status().ready, true, 'still ready');
  t.same(sup.settings, defaultConfig().tor);
});

t.test('settings tor cannot work with are rolled back to the last working torrc', async (t) => {
  const before = readFileSync(torrcPath, 'utf8');
  // Valid grammar, but nothing listens there: tor cannot build a circuit through this bridge.
  const unreachable: TorConfig = {
    ...defaultConfig().tor,
    useBridges: true,
    bridges: ['127.0.0.1:9 0123456789ABCDEF0123456789ABCDEF01234567'],
  };
  const result = await sup.applySettings(unreachable);
  t.equal(result.ok, false);
  t.equal(result.rolledBack, true);
  t.match(result.message, /previous settings are back/);
  t.equal(readFileSync(torrcPath, 'utf8'), before, 'previous torrc restored');
  t.same(sup.settings, defaultConfig().tor);
  t.ok(await sup.waitReady(30_000), 'ready again with the old settings');
});

t.test('good new settings apply and are kept: a working bridge carries every new circuit', async (t) => {
  // Any relay can serve as a vanilla bridge: use middle0 of the private network.
  const m = net.relays.find((r) => r.nickname === 'middle0');
  if (!m) throw new Error('no middle0');
  const next: TorConfig = {
    ...defaultConfig().tor,
    useBridges: true,
    bridges: [`${m.address}:${m.orPort} ${m.fingerprint}`],
  };
  const result = await sup.applySettings(next);
  t.same(result, { ok: true, rolledBack: false, message: 'tor is ready with the new settings' });
  t.match(readFileSync(torrcPath, 'utf8'), /^UseBridges 1$/m);
  t.equal(readFileSync(`${torrcPath}.good`, 'utf8'), readFileSync(torrcPath, 'utf8'));
  t.same(sup.settings, next);
  await socksHttpGet(socks, http.address, http.port, '/');
  const exitCircuits = (await sup.circuits()).filter((c) => c.status === 'BUILT' && c.hops.length === 3);
  t.ok(
    exitCircuits.some((c) => c.hops[0]?.nickname === 'middle0'),
    'circuits start at the bridge',
  );
  t.same(
    (await sup.relayEndpoints()).map((e) => `${e.address}:${e.port}`).sort(),
    net
      .relayEndpoints()
      .map((e) => `${e.address}:${e.port}`)
      .sort(),
    "relayEndpoints stay the consensus's relays with bridges on (relay-set.ts adds the bridges)",
  );
});

t.test('an obfs4 bridge through lyrebird carries the circuits', async (t) => {
  const bridge = net.obfs4Bridge;
  if (!bridge) throw new Error('privnet without obfs4 bridge');
  const next: TorConfig = { ...defaultConfig().tor, useBridges: true, bridges: [bridge.line] };
  const result = await sup.applySettings(next);
  t.same(result, { ok: true, rolledBack: false, message: 'tor is ready with the new settings' });
  t.match(readFileSync(torrcPath, 'utf8'), /^ClientTransportPlugin obfs4 exec \/usr\/bin\/lyrebird$/m);
  const got = await socksHttpGet(socks, http.address, http.port, '/bytes/5000');
  t.equal(got.body.length, 5000);
  const exitCircuits = (await sup.circuits()).filter((c) => c.status === 'BUILT' && c.hops.length === 3);
  t.ok(exitCircuits.length > 0);
  t.ok(
    exitCircuits.some((c) => c.hops[0]?.fingerprint === bridge.fingerprint),
    'new exit circuits start at the obfs4 bridge (older ones of the previous settings may linger)',
  );
  const children = readFileSync(`/proc/${sup.pid}/task/${sup.pid}/children`, 'utf8').trim().split(/\s+/);
  t.ok(
    children.some((pid) => pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('lyrebird')),
    'tor runs lyrebird as its client transport',
  );
});

t.test('the connection assist on real tor: a dead setting times out, the obfs4 bridge is kept', async (t) => {
  const bridge = net.obfs4Bridge;
  if (!bridge) throw new Error('privnet without obfs4 bridge');
  const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
  const dead = `obfs4 127.0.0.1:9 ${FP} cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0`;
  // tor not routing when the assist starts: a bridge nothing answers on
  t.equal(await sup.trySettings({ ...defaultConfig().tor, useBridges: true, bridges: [dead] }), true);
  const config = new ConfigStore(join(dir, 'assist-config'));
  await config.load();
  await config.update((c) => ({ ...c, assist: { blockedHere: true, found: null } }));
  let now = Date.now();
  const assist = new ConnectionAssist({
    bus,
    tor: sup,
    config,
    wan: { link: async () => true, lease: () => true },
    builtins: () => ({
      candidates: [
        { transport: 'obfs4', lines: [dead] },
        { transport: 'obfs4', lines: [bridge.line] },
      ],
      skipped: [],
    }),
    show: () => undefined,
    now: () => now,
    timer: { every: () => () => undefined },
  });
  await assist.start();
  t.teardown(async () => {
    await assist.stop();
    // the tests after this one need a tor that routes, whatever happened here
    await sup.applySettings({ ...defaultConfig().tor, useBridges: true, bridges: [bridge.line] });
  });
  await assist.settled();
  t.equal(assist.state.phase, 'trying');
  t.equal(assist.state.index, 0, 'the dead setting first');
  now += TRY_MS;
  await assist.tick();
  await assist.settled();
  t.equal(assist.state.index, 1, 'timed out: the obfs4 bridge next');
  t.match(readFileSync(torrcPath, 'utf8'), bridge.fingerprint);
  for (let i = 0; i < 600 && assist.state.phase !== 'connected'; i++) await sleep(100);
  await assist.settled();
  t.equal(assist.state.phase, 'connected', 'tor routes through the bridge the assist tried');
  t.same(config.get().tor.bridges, [bridge.line], 'stored');
  t.equal(config.get().assist?.found?.lines[0], bridge.line);
  t.match(readFileSync(`${torrcPath}.good`, 'utf8'), bridge.fingerprint, "kept as tor's last working torrc");
  const got = await socksHttpGet(socks, http.address, http.port, '/bytes/1000');
  t.equal(got.body.length, 1000);
});

t.test('onionbox tor status|circuits|newnym over the control socket', async (t) => {
  const stateDir = tmpDir(t, 'obx-cli-');
  const ipc = new IpcServer(socketPath(stateDir));
  registerTorIpc(ipc, sup);
  await ipc.start();
  t.teardown(() => ipc.stop());
  let out = '';
  let err = '';
  const ctx = {
    out: (s: string) => {
      out += s;
    },
    err: (s: string) => {
      err += s;
    },
  };
  t.equal(await runCli(['--state-dir', stateDir, 'tor', 'circuits'], ctx), 0, err);
  t.match(out, /BUILT\s+\S+\s+\S+ -> \S+ -> exit0/);
  out = '';
  t.equal(await runCli(['--state-dir', stateDir, 'tor', 'newnym'], ctx), 0, err);
  t.match(out, /new identity/);
  t.equal((await socksHttpGet(socks, http.address, http.port, '/')).status, 200, 'traffic flows after it');
  out = '';
  t.equal(await runCli(['--state-dir', stateDir, 'tor', 'circuits', '--json'], ctx), 0);
  t.ok((JSON.parse(out) as CircuitInfo[]).length > 0);
  t.equal(await runCli(['--state-dir', stateDir, 'tor', 'status', '--bogus'], ctx), 2, 'usage error');
  // The real CLI binary, as the owner would run it.
  const child = spawn(
    process.execPath,
    [...nodeTsArgs(), `${root}firmware/cli/main.ts`, '--state-dir', stateDir, 'tor', 'status'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0);
  t.match(stdout, /^phase\s+ready \(pid [0-9]+\)$/m);
  t.match(stdout, /^bootstrap\s+100% /m);
  t.match(stdout, /^ready\s+yes/m);
  t.match(stdout, /-> exit0/);
  t.equal(await runCli(['--state-dir', tmpDir(t), 'tor', 'status'], ctx), 1, 'no daemon: clear error');
  t.match(err, /OBX_ERR_DAEMON_NOT_RUNNING/);
});

t.test('tor SIGKILLed: the supervisor reports the crash and brings it back to ready', async (t) => {
  const pid = sup.pid;
  if (!pid) throw new Error('no pid');
  const seen: string[] = [];
  const off = bus.on('tor:status', 'crash-test', (s) => {
    seen.push(s.phase);
  });
  t.teardown(off);
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  t.ok(await sup.waitReady(60_000), 'ready again');
  t.ok(seen.includes('crashed'));
  t.not(sup.pid, pid, 'a new tor process');
  const got = await socksHttpGet(socks, http.address, http.port, '/');
  t.equal(got.status, 200);
});

t.test('tor failing to start (port taken) is a clear error, status failed', async (t) => {
  const [port] = await freePorts(1);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
  t.teardown(() => blocker.close());
  const d = tmpDir(t, 'obx-tor-bad-');
  const bad = new TorSupervisor({
    bus: new EventBus(),
    settings: defaultConfig().tor,
    torrcPath: join(d, 'torrc'),
    runtime: {
      dataDir: join(d, 'data'),
      socks: { host: '127.0.0.1', port: port ?? 0 },
      control: { unix: join(d, 'control') },
      extraLines: net.clientTorrcLines,
    },
  });
  t.teardown(() => bad.stop());
  await t.rejects(bad.start(), { code: 'OBX_ERR_TOR_START_FAILED' });
  t.equal(bad.status().phase, 'failed');
  t.match(bad.status().summary, /OBX_ERR_TOR_START_FAILED/);
  await t.rejects(bad.newIdentity(), { code: 'OBX_ERR_TOR_NOT_RUNNING' });
});

const needsRoot =
  process.getuid?.() !== 0 && process.env.CI !== 'true' ? 'needs root to start tor with User' : false;
t.test('production mode: tor starts as root and runs as User debian-tor', { skip: needsRoot }, async (t) => {
  const d = tmpDir(t, 'obx-tor-user-');
  chmodSync(d, 0o755); // debian-tor must reach its DataDirectory (on the box: /var/lib/tor)
  const [s, c] = await freePorts(2);
  const prod = new TorSupervisor({
    bus: new EventBus(),
    settings: defaultConfig().tor,
    torrcPath: join(d, 'torrc'),
    runtime: {
      user: 'debian-tor',
      dataDir: join(d, 'data'),
      socks: { host: '127.0.0.1', port: s ?? 0 },
      control: { host: '127.0.0.1', port: c ?? 0 },
      owningPid: process.pid,
      extraLines: net.clientTorrcLines,
    },
  });
  t.teardown(() => prod.stop());
  await prod.start();
  t.ok(await prod.waitReady(60_000), 'ready');
  const uid = (await systemUser('debian-tor')).uid;
  const status = readFileSync(`/proc/${prod.pid}/status`, 'utf8');
  t.match(
    status,
    new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'),
    'every uid is debian-tor',
  );
  t.equal(statSync(join(d, 'data')).uid, uid, 'its data directory belongs to it');
});

t.test(
  "tor in its own unit (onionbox-tor.service through the unit runner): attach, death, systemd's restart, reload",
  { skip: needsRoot, timeout: 240_000 },
  async (t) => {
    const udir = join(dir, 'unit');
    mkdirSync(udir, { recursive: true });
    chmodSync(dir, 0o711); // debian-tor traverses to its torrc, as in /var/lib/onionbox
    chmodSync(udir, 0o711);
    const pathMap = {
      '/var/lib/onionbox': join(udir, 'box'),
      '/var/lib/tor': join(udir, 'tor-data'),
      '/run/onionbox-tor': join(udir, 'run-tor'),
      '/run/onionbox': join(udir, 'run'),
    };
    // onionboxd's part before tor's unit starts: tor's resolv.conf, which the unit binds over /etc/resolv.conf
    mkdirSync(join(udir, 'run'), { recursive: true, mode: 0o700 });
    await rewriteInPlace(join(udir, 'run', 'tor-resolv.conf'), renderResolvConf([]), TOR_RESOLV_SIZE);
    const plan = planUnit(readFileSync(join(root, 'firmware/system/systemd/onionbox-tor.service'), 'utf8'), {
      name: 'onionbox-tor',
      pathMap,
    });
    mkdirSync(join(udir, 'box', 'tor'), { recursive: true, mode: 0o711 });
    chmodSync(join(udir, 'box'), 0o711);
    chmodSync(join(udir, 'box', 'tor'), 0o711);
    const [unitSocks] = await freePorts(1);
    const unitBus = new EventBus();
    const seen: TorStatus[] = [];
    unitBus.on('tor:status', 'test', (s) => {
      seen.push(s as TorStatus);
    });
    const unitSup = new TorSupervisor({
      bus: unitBus,
      settings: defaultConfig().tor,
      torrcPath: join(udir, 'box', 'tor', 'torrc'),
      runtime: {
        dataDir: join(udir, 'tor-data'),
        socks: { host: '127.0.0.1', port: unitSocks ?? 0 },
        control: { unix: join(udir, 'run-tor', 'control') },
        cookieFile: join(udir, 'run-tor', 'control_auth_cookie'),
        controlGroup: true,
        safeSocks: false,
        extraLines: net.clientTorrcLines,
      },
      applyTimeoutMs: 30_000,
      backoffMs: { initial: 200, max: 1000 },
      external: { verifyDataDir: join(udir, 'box', 'tor', 'verify') },
    });
    await unitSup.start();
    t.ok(statSync(join(udir, 'box', 'tor', 'torrc')).isFile(), 'the torrc is written before tor starts');
    t.equal(unitSup.pid, undefined, 'the supervisor spawned nothing');
    const unit = startUnit(plan, (_name, argv, env) => {
      const child = spawn(argv[0] ?? '', argv.slice(1), { env, stdio: 'ignore' });
      return { pid: child.pid ?? 0, child };
    });
    t.teardown(async () => {
      unit.stop();
      await unitSup.stop();
      const m = unit.main();
      if (m && m.child.exitCode === null) m.child.kill('SIGKILL');
    });
    await unit.started;
    t.ok(await unitSup.waitReady(90_000), "ready through the unit's tor");
    const first = unitSup.pid;
    t.equal(first, unit.main()?.pid, "tor's PID from GETINFO process/pid is the unit's main process");
    const st = first ? readFileSync(`/proc/${first}/status`, 'utf8') : '';
    t.match(st, new RegExp(`\\nUid:\\t${(await systemUser('debian-tor')).uid}\\t`), 'as debian-tor');
    t.match(st, /\nCapEff:\t0+\n/, 'with no capability');

    // tor dies: the control socket closes, the supervisor says so (the LAN would close), systemd restarts it
    if (first) process.kill(first, 'SIGKILL');
    for (let i = 0; i < 100 && !seen.some((s) => s.phase === 'crashed'); i++) await sleep(100);
    t.ok(
      seen.some((s) => s.phase === 'crashed' && !s.ready),
      'crashed, not ready, as soon as the socket closed',
    );
    t.ok(await unitSup.waitReady(90_000), 'ready again after the restart');
    t.ok(unit.starts() >= 2, `the unit restarted tor (${unit.starts()} starts)`);
    t.not(unitSup.pid, first, 'a new tor');

    // new settings: the torrc is rewritten and tor reloads it over the socket (the same process)
    const before = unitSup.pid;
    const r = await unitSup.applySettings({
      ...defaultConfig().tor,
      strictNodes: !defaultConfig().tor.strictNodes,
    });
    t.equal(r.ok, true, r.message);
    t.equal(unitSup.pid, before, 'SIGNAL RELOAD, not a restart');
  },
);

t.test('stop: tor exits and the status says stopped', async (t) => {
  const pid = sup.pid;
  await sup.stop();
  t.equal(sup.status().phase, 'stopped');
  t.throws(() => process.kill(pid ?? 0, 0), 'tor process gone');
});

t.test('at boot, a torrc tor refuses falls back to the last working one (and says so)', async (t) => {
  const good = readFileSync(`${torrcPath}.good`, 'utf8');
  const again = new TorSupervisor({
    bus: new EventBus(),
    settings: sup.settings,
    torrcPath,
    // Passes our allowlist (a known keyword), but tor cannot parse the line.
    runtime: { ...runtime, extraLines: [...net.clientTorrcLines, 'DirAuthority nonsense'] },
  });
  t.teardown(() => again.stop());
  await again.start();
  t.match(
    again.lastWarnings().join('\n'),
    /running with the last working torrc: OBX_ERR_TOR_CONFIG_REJECTED/,
  );
  t.equal(readFileSync(torrcPath, 'utf8'), good, 'tor runs the last working torrc');
  t.ok(await again.waitReady(60_000), 'and is ready with it');
  const fresh = tmpDir(t, 'obx-tor-nogood-');
  const none = new TorSupervisor({
    bus: new EventBus(),
    settings: sup.settings,
    torrcPath: join(fresh, 'torrc'),
    runtime: { ...runtime, dataDir: join(fresh, 'data'), extraLines: ['DirAuthority nonsense'] },
  });
  t.teardown(() => none.stop());
  await t.rejects(none.start(), { code: 'OBX_ERR_TOR_CONFIG_REJECTED' }, 'no working torrc to fall back to');
  t.equal(none.status().phase, 'failed');
});
