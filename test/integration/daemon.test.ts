import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;

function cli(args: string[]) {
  return spawnSync(process.execPath, [...nodeTsArgs(), `${root}firmware/cli/main.ts`, ...args], {
    encoding: 'utf8',
  });
}

t.test('onionboxd refuses to start on an unreadable config and says why', async (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'config.json'), '{"version": 1, "tor": ');
  // fails at the configuration, before the firewall or anything else is touched: safe on the host
  const r = spawnSync(process.execPath, [...nodeTsArgs(), `${root}firmware/main.ts`, '--state-dir', dir], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
    timeout: 90_000,
  });
  t.equal(r.status, 1);
  t.match(r.stdout, /OBX_ERR_CONFIG_UNREADABLE/);
  t.match(r.stdout, /the box stays closed/);
});

t.test(
  '--simulate on the host itself is refused: the simulator runs onionboxd in its own namespace',
  async (t) => {
    const r = spawnSync(
      process.execPath,
      [...nodeTsArgs(), `${root}firmware/main.ts`, '--simulate', '--state-dir', tmpDir(t)],
      {
        encoding: 'utf8',
        timeout: 90_000,
      },
    );
    t.equal(r.status, 2);
    t.match(r.stderr, /use `npm start`/);
  },
);

t.test('a bad test-network file: clear error, exit 2, nothing touched', async (t) => {
  const dir = tmpDir(t);
  const file = join(dir, 'net.json');
  writeFileSync(file, JSON.stringify({ torrc: ['SocksPort 0.0.0.0:9050'] }));
  const r = spawnSync(
    process.execPath,
    [...nodeTsArgs(), `${root}firmware/main.ts`, '--state-dir', dir, '--test-network', file],
    { encoding: 'utf8', timeout: 90_000 },
  );
  t.equal(r.status, 2);
  t.match(r.stderr, /OBX_ERR_TOR_VALUE_INVALID/);
  t.match(r.stderr, /SocksPort/);
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
  t.match(extra.stderr, /Unknown option '--yaml'/);
  const sim = spawnSync(process.execPath, [...nodeTsArgs(), `${root}firmware/cli/main.ts`, 'sim', 'info'], {
    encoding: 'utf8',
    cwd: tmpDir(t),
  });
  t.equal(sim.status, 1, 'no simulator running here');
  t.match(sim.stderr, /OBX_ERR_SIM_NOT_RUNNING/);
});
