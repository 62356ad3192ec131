import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

t.test('onionboxd --simulate serves the page, answers the CLI and stops cleanly on SIGTERM', async (t) => {
  const dir = tmpDir(t);
  const d = await startDaemon(t, ['--simulate', '--state-dir', dir, '--listen', '127.0.0.1:0']);
  t.match(d.address, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const res = await fetch(d.address);
  t.equal(res.status, 200);
  t.match(await res.text(), /not been claimed/);
  const status = cli(['--state-dir', dir, 'status', '--json']);
  t.equal(status.status, 0, status.stderr);
  const parsed = JSON.parse(status.stdout) as Record<string, unknown>;
  t.equal(parsed.simulate, true);
  t.equal(parsed.claimed, false);
  t.equal(parsed.configSource, 'defaults');
  t.equal(await d.stop(), 0, 'exit code 0 after SIGTERM');
  t.match(d.output(), /"stopped"/);
  const after = cli(['--state-dir', dir, 'status']);
  t.equal(after.status, 1);
  t.match(after.stderr, /OBX_ERR_DAEMON_NOT_RUNNING/);
});

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
