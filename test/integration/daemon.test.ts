import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { startDaemon } from '../helpers/daemon.js';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;

function cli(args: string[]) {
  return spawnSync(process.execPath, [...nodeTsArgs(), `${root}firmware/cli.ts`, ...args], {
    encoding: 'utf8',
  });
}

function statusOf(dir: string): Record<string, unknown> {
  const r = cli(['--state-dir', dir, 'status', '--json']);
  if (r.status !== 0) throw new Error(`onionbox status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function waitFor(dir: string, what: string, ok: (s: Record<string, unknown>) => boolean, ms = 120_000) {
  const deadline = Date.now() + ms;
  let last: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    last = statusOf(dir);
    if (ok(last)) return last;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(last)}`);
}

function netnsExists(name: string): boolean {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .some((l) => l.split(' ')[0] === name);
}

function kernelTable(netns: string): string {
  const r = spawnSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'table', 'inet', 'onionbox'], {
    encoding: 'utf8',
  });
  return r.stdout;
}

const needsRoot = process.getuid?.() !== 0 && process.env.CI !== 'true' ? 'the simulator needs root' : false;

t.test(
  'the simulated box: page, CLI, tor to routing, kill switch through the firewall, clean SIGTERM',
  { skip: needsRoot },
  async (t) => {
    const dir = tmpDir(t);
    // a relative --state-dir, as `npm start` uses (.onionbox-sim): nft and tor need it made absolute
    const d = await startDaemon(
      t,
      ['--simulate', '--state-dir', basename(dir), '--listen', '127.0.0.1:0'],
      20_000,
      dirname(dir),
    );
    t.match(d.address, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const home = await fetch(d.address, { redirect: 'manual' });
    t.equal(home.status, 303, 'an unclaimed box sends the owner to the claim page');
    t.equal(home.headers.get('location'), '/claim');
    t.match(await (await fetch(new URL('/claim', d.address))).text(), /Claim this box/);

    const first = statusOf(dir);
    t.equal(first.simulate, true);
    t.equal(first.claimed, false);
    t.equal(first.configSource, 'defaults');
    const netns = String(first.netns);
    t.match(netns, /^obx-sim-\d+$/);
    t.ok(netnsExists(netns), 'the simulated box has its own namespace');
    t.not(first.firewallMode, 'routing', 'never routing before tor is ready');

    const routing = await waitFor(dir, 'routing', (s) => s.state === 'routing');
    t.equal(routing.firewallMode, 'routing');
    t.match(String(routing.tor), /^ready 100%/);
    t.match(kernelTable(netns), /dnat ip to [\d.]+:\d+/, 'the kernel holds the routing ruleset');

    const on = cli(['--state-dir', dir, 'board', 'switch', 'on']);
    t.equal(on.status, 0, on.stderr);
    const killed = await waitFor(
      dir,
      'killed',
      (s) => s.state === 'killed' && s.firewallMode === 'killed',
      10_000,
    );
    t.match(String(killed.killSwitch), /hardware on/);
    t.notMatch(kernelTable(netns), /dnat ip to/, 'no redirect left in the kernel once killed');

    const off = cli(['--state-dir', dir, 'board', 'switch', 'off']);
    t.equal(off.status, 0, off.stderr);
    await waitFor(dir, 'routing again', (s) => s.state === 'routing', 10_000);

    const check = cli(['--state-dir', dir, 'tor', 'check', '--json']);
    t.equal(check.status, 0, check.stderr);
    t.equal(
      (JSON.parse(check.stdout) as { isTor: boolean }).isTor,
      true,
      'the check service sees a tor exit',
    );

    const tor = cli(['--state-dir', dir, 'tor', 'status']);
    t.equal(tor.status, 0, tor.stderr);
    t.match(tor.stdout, /ready/);

    t.equal(await d.stop(), 0, 'exit code 0 after SIGTERM');
    t.match(d.output(), /"stopped"/);
    t.notOk(netnsExists(netns), 'the simulated namespace is gone');
    const after = cli(['--state-dir', dir, 'status']);
    t.equal(after.status, 1);
    t.match(after.stderr, /OBX_ERR_DAEMON_NOT_RUNNING/);
  },
);

t.test('onionboxd refuses to start on an unreadable config and says why', async (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'config.json'), '{"version": 1, "tor": ');
  const r = spawnSync(
    process.execPath,
    [...nodeTsArgs(), `${root}firmware/main.ts`, '--simulate', '--state-dir', dir, '--listen', '127.0.0.1:0'],
    { encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 20_000 },
  );
  t.equal(r.status, 1);
  t.match(r.stdout, /OBX_ERR_CONFIG_UNREADABLE/);
  t.match(r.stdout, /boot lockdown stays in force/);
});

t.test('bad daemon arguments: clear error, exit 2', async (t) => {
  const r = spawnSync(process.execPath, [...nodeTsArgs(), `${root}firmware/main.ts`, '--bogus'], {
    encoding: 'utf8',
  });
  t.equal(r.status, 2);
  t.match(r.stderr, /OBX_ERR_CLI_USAGE/);
});

t.test('onionbox CLI usage', async (t) => {
  const none = cli([]);
  t.equal(none.status, 2);
  t.match(none.stdout, /Usage: onionbox/);
  const unknown = cli(['frobnicate']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
  const extra = cli(['--state-dir', '/nonexistent', 'status', '--yaml']);
  t.equal(extra.status, 2);
  t.match(extra.stderr, /unexpected argument "--yaml"/);
});
