import { resolve } from 'node:path';
import t from 'tap';
import {
  DEFAULT_SIM_STATE_DIR,
  DEFAULT_STATE_DIR,
  parseDaemonArgs,
  parsePort,
} from '../../firmware/cli/args.js';
import { defaultConfig } from '../../firmware/config/schema.js';
import { pageAddress, parseWebArgs } from '../../web/lib/listen.js';

t.test('daemon args', async (t) => {
  t.same(parseDaemonArgs([]), {
    simulate: false,
    stateDir: DEFAULT_STATE_DIR,
    logLevel: undefined,
    testNetwork: undefined,
    torDataDir: undefined,
    runDir: undefined,
    releaseDir: undefined,
    torControlSocket: undefined,
  });
  t.equal(parseDaemonArgs(['--simulate']).stateDir, resolve(DEFAULT_SIM_STATE_DIR), 'made absolute');
  t.equal(parseDaemonArgs(['--state-dir', 'rel/dir']).stateDir, resolve('rel/dir'));
  const a = parseDaemonArgs(['--simulate', '--state-dir', '/tmp/x', '--log-level', 'debug']);
  t.same(a, {
    simulate: true,
    stateDir: '/tmp/x',
    logLevel: 'debug',
    testNetwork: undefined,
    torDataDir: undefined,
    runDir: undefined,
    releaseDir: undefined,
    torControlSocket: undefined,
  });
  t.equal(parseDaemonArgs(['--test-network', 'net.json']).testNetwork, resolve('net.json'));
  t.equal(parseDaemonArgs(['--release-dir', 'etc/onionbox']).releaseDir, resolve('etc/onionbox'));
  t.equal(parseDaemonArgs(['--run-dir', 'run']).runDir, resolve('run'));
  for (const bad of [['--bogus'], ['--listen', '127.0.0.1:8081'], ['--log-level', 'loud'], ['extra']]) {
    t.throws(() => parseDaemonArgs(bad), { code: 'OBX_ERR_CLI_USAGE' }, bad.join(' '));
  }
  t.equal(parsePort('80', 'x'), 80);
  t.throws(() => parsePort('0', 'x'), { code: 'OBX_ERR_CLI_USAGE' });
  t.throws(() => parsePort('8o', 'x'), { code: 'OBX_ERR_CLI_USAGE' });
});

t.test(
  'the page process: --state-dir, --listen, --log-level; its address follows the LAN address',
  async (t) => {
    const a = parseWebArgs(['--listen', '127.0.0.1:0', '--state-dir', 'rel', '--log-level', 'warn']);
    t.same(a, { stateDir: resolve('rel'), listen: { host: '127.0.0.1', port: 0 }, logLevel: 'warn' });
    t.same(parseWebArgs([]), { stateDir: DEFAULT_STATE_DIR, listen: null, logLevel: undefined });
    for (const bad of [
      ['--listen', 'localhost'],
      ['--listen', '1.2.3.4:99999'],
      ['--simulate'],
      ['--log-level', 'x'],
    ]) {
      t.throws(() => parseWebArgs(bad), { code: 'OBX_ERR_CLI_USAGE' }, bad.join(' '));
    }
    const settings = defaultConfig();
    const page = { ...settings, network: { ...settings.network, accessPoint: null }, web: { port: 80 } };
    t.same(pageAddress(page, null), { host: settings.network.lanAddress, port: 80 });
    const moved = { ...page, network: { ...page.network, lanAddress: '192.168.77.1' } };
    t.same(pageAddress(moved, null), { host: '192.168.77.1', port: 80 }, 'a new LAN address moves the page');
    t.same(
      pageAddress(moved, { host: '127.0.0.1', port: 0 }),
      { host: '127.0.0.1', port: 0 },
      '--listen wins',
    );
  },
);
