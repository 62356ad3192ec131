/**
 * `npm start`'s own behaviour (scripts/sim/main.ts), run as a child exactly as `npm start` runs it, but
 * with its own namespace prefix and directory and onionboxd from source: progress and the page's address
 * on the terminal, one simulator at a time, a crashed run cleaned up by the next start, and SIGTERM
 * leaving nothing behind (namespaces, /etc/netns, processes, files). `--censored`: the world says it
 * censors and prints its bridges; the box, with no bridge in its settings, finds the obfs4 bridge by
 * itself (its connection assist and built-in lines), routes, and the LAN device fetches through it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { namespacesOf, uniquePrefix } from '../../scripts/sim/world.js';
import { rootSkipReason } from '../helpers/netns.js';
import { nodeTsArgs } from '../helpers/node-ts.js';

const root = new URL('../../', import.meta.url).pathname;
const skip = rootSkipReason(['ip', 'nft', 'tor', 'tcpdump', 'dnsmasq', 'dhclient', 'curl']);

interface Run {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function start(prefix: string, dir: string, port: number, extra: string[] = []): Run {
  const child = spawn(
    process.execPath,
    [
      ...nodeTsArgs(),
      `${root}scripts/sim/main.ts`,
      '--prefix',
      prefix,
      '--dir',
      dir,
      '--port',
      String(port),
      '--from-source',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

function daemonTail(dir: string): string {
  try {
    return readFileSync(join(dir, '..', 'work', 'onionboxd.log'), 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-15)
      .join('\n');
  } catch {
    return '(no onionboxd log)';
  }
}

async function waitOut(run: Run, re: RegExp, ms: number, dir: string): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(run.out())) {
    if (run.child.exitCode !== null) throw new Error(`exited early:\n${run.out()}\n${daemonTail(dir)}`);
    if (Date.now() > end) throw new Error(`no ${re} in:\n${run.out()}\n${daemonTail(dir)}`);
    await sleep(200);
  }
}

/** A clean stop (the simulator removes its world), SIGKILL only if it hangs. */
async function stopRun(run: Run): Promise<void> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 60_000);
  await run.exited;
  clearTimeout(timer);
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

t.test(
  'npm start: progress, one at a time, crash clean-up, nothing left after SIGTERM',
  { skip, timeout: 400_000 },
  async (t) => {
    const prefix = uniquePrefix();
    const parent = mkdtempSync(join(tmpdir(), 'onionbox-start-'));
    chmodSync(parent, 0o711); // the box's tor (debian-tor) must traverse it
    const dir = join(parent, 'sim');
    t.teardown(() => rmSync(parent, { recursive: true, force: true }));
    const port = 18_500 + (process.pid % 400);

    // 1. a first run comes up and says where the page is
    const first = start(prefix, dir, port);
    t.teardown(() => stopRun(first));
    await waitOut(first, /the page: +http:\/\/127\.0\.0\.1:\d+\//, 180_000, dir);
    t.match(first.out(), /namespaces ready/);
    t.match(first.out(), /private Tor network ready/);
    t.match(first.out(), /box tor bootstrap 100%/);
    const page = await fetch(`http://127.0.0.1:${port}/`, { redirect: 'manual' });
    t.equal(page.status, 303, 'the page answers through the LAN device');
    const info = JSON.parse(readFileSync(join(dir, 'sim.json'), 'utf8')) as {
      pids: { name: string; pid: number }[];
    };

    // 2. a second start while it runs: says so, changes nothing
    const second = start(prefix, dir, port + 1);
    t.equal(await second.exited, 1);
    t.match(second.out(), /already running \(pid \d+\)/);
    t.equal((await namespacesOf(prefix)).length, 3, 'the running world is untouched');

    // 3. the first run dies without cleaning up (SIGKILL); the next start removes what it left
    first.child.kill('SIGKILL');
    await first.exited;
    t.equal((await namespacesOf(prefix)).length, 3, 'a SIGKILLed run leaves its namespaces');
    // and the processes in them that were not its own children (onionboxd's dnsmasq, say)
    const orphans = spawnSync('ip', ['netns', 'pids', `${prefix}-box`], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => /^[0-9]+$/.test(l.trim()))
      .map(Number);
    const third = start(prefix, dir, port);
    t.teardown(() => stopRun(third));
    await waitOut(third, /the page: /, 180_000, dir);
    t.match(third.out(), /removing a previous run's namespace/);
    for (const p of info.pids)
      t.notOk(alive(p.pid) && p.name !== 'capture', `the crashed run's ${p.name} is gone`);
    t.ok(orphans.length > 0, `the crashed box namespace held processes (${orphans.join(' ')})`);
    for (const pid of orphans) t.notOk(alive(pid), `pid ${pid} left in the crashed box's namespace is gone`);

    // 4. SIGTERM: everything it made is gone
    const pids = (JSON.parse(readFileSync(join(dir, 'sim.json'), 'utf8')) as { pids: { pid: number }[] })
      .pids;
    third.child.kill('SIGTERM');
    t.equal(await third.exited, 0);
    t.match(third.out(), /stopped; every namespace and process it made is gone/);
    t.same(await namespacesOf(prefix), [], 'no namespace left');
    t.notOk(existsSync(`/etc/netns/${prefix}-lan`), 'no /etc/netns entry left');
    t.notOk(existsSync(dir), 'no file left in the checkout');
    t.notOk(existsSync(join(parent, 'work')), 'no file left in the work directory');
    for (const p of pids) t.notOk(alive(p.pid), `pid ${p.pid} is gone`);
    const nft = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    t.notMatch(nft.stdout, /onionbox/, "the host's own ruleset was never touched");
  },
);

t.test(
  'npm start -- --censored: the box finds its bridge by itself, routes, the LAN device fetches',
  { skip, timeout: 700_000 },
  async (t) => {
    const prefix = uniquePrefix();
    const parent = mkdtempSync(join(tmpdir(), 'onionbox-start-'));
    chmodSync(parent, 0o711); // the box's tor (debian-tor) must traverse it
    const dir = join(parent, 'sim');
    t.teardown(() => rmSync(parent, { recursive: true, force: true }));
    const port = 18_900 + (process.pid % 400);
    const run = start(prefix, dir, port, ['--censored']);
    t.teardown(() => stopRun(run));
    await waitOut(run, /the box has no bridge: its connection assist should notice/, 240_000, dir);
    const early = run.out();
    t.match(early, /behind a censoring ISP/);
    t.match(
      early,
      /the internet censors: TCP to every relay's ORPort and DirPort is dropped, bridges are not blocked/,
    );
    t.match(
      early,
      /a webtunnel bridge: webtunnel 192\.0\.2\.3:1 [0-9A-F]{40} url=https:\/\/webtunnel\.sim\.test\//,
    );
    t.match(
      early,
      /the page: +http:\/\/127\.0\.0\.1:\d+\//,
      'the page first: finding a bridge takes minutes',
    );
    const line = /an obfs4 bridge: (obfs4 \S+ [0-9A-F]{40} cert=\S+ iat-mode=[0-2])$/m.exec(early)?.[1];
    if (!line) throw new Error(`no obfs4 line in:\n${early}`);
    const info = JSON.parse(readFileSync(join(dir, 'sim.json'), 'utf8')) as {
      internet: { censored: boolean };
      box: { stateDir: string };
    };
    t.equal(info.internet.censored, true, 'sim.json says the internet censors');
    const cli = (args: string[]) =>
      spawnSync(process.execPath, [...nodeTsArgs(), `${root}firmware/cli/main.ts`, ...args], {
        encoding: 'utf8',
        timeout: 180_000,
        env: { ...process.env, ONIONBOX_SIM_DIR: dir },
      });
    t.match(
      cli(['sim', 'info']).stdout,
      /censored \(relays blocked, bridges open\)/,
      '`onionbox sim info` too',
    );

    // it routes by itself: the assist's words on the way, the bridge it stored, a LAN device's fetch
    await waitOut(run, /a LAN device (fetched|could not fetch)/, 600_000, dir);
    const out = run.out();
    t.comment(out);
    t.match(out, /the box says: Your internet provider seems to block Tor\. Trying a bridge \(1 of 2\)/);
    t.match(out, /the box says: Connected through a obfs4 bridge the box found\./);
    t.match(out, /the box is routing after \d+\.\d s/);
    const found = /the box found its bridge by itself \(moat-country\) and stored it: (.*)$/m.exec(out)?.[1];
    t.equal(found, line, 'the bridge it found is the printed obfs4 bridge');
    const stored = JSON.parse(readFileSync(join(info.box.stateDir, 'config.json'), 'utf8')) as {
      tor: { useBridges: boolean; bridges: string[] };
    };
    t.equal(stored.tor.useBridges, true);
    t.same(stored.tor.bridges, [line], "stored in the box's settings");
    t.match(
      out,
      /a LAN device fetched http:\/\/web\.sim\.test\/ip through the box: 198\.18\.0\.15 \(the exit's address\)/,
      'the LAN device fetches through the bridge (the site sees the exit)',
    );

    run.child.kill('SIGTERM');
    t.equal(await run.exited, 0);
    t.same(await namespacesOf(prefix), [], 'no namespace left');
  },
);
