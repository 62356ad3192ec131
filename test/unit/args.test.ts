import { resolve } from 'node:path';
import t from 'tap';
import {
  DEFAULT_SIM_STATE_DIR,
  DEFAULT_STATE_DIR,
  parseDaemonArgs,
  parsePort,
} from '../../firmware/cli/args.js';

t.test('daemon args', async (t) => {
  t.same(parseDaemonArgs([]), {
    simulate: false,
    stateDir: DEFAULT_STATE_DIR,
    listenHost: undefined,
    listenPort: undefined,
    logLevel: undefined,
    testNetwork: undefined,
    torDataDir: undefined,
    runDir: undefined,
    releaseDir: undefined,
    torControlSocket: undefined,
  });
  t.equal(parseDaemonArgs(['--simulate']).stateDir, resolve(DEFAULT_SIM_STATE_DIR), 'made absolute');
  t.equal(parseDaemonArgs(['--state-dir', 'rel/dir']).stateDir, resolve('rel/dir'));
  const a = parseDaemonArgs([
    '--simulate',
    '--state-dir',
    '/tmp/x',
    '--listen',
    '127.0.0.1:8081',
    '--log-level',
    'debug',
  ]);
  t.same(a, {
    simulate: true,
    stateDir: '/tmp/x',
    listenHost: '127.0.0.1',
    listenPort: 8081,
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
  for (const bad of [
    ['--bogus'],
    ['--listen', 'localhost'],
    ['--listen', '1.2.3.4:99999'],
    ['--log-level', 'loud'],
    ['extra'],
  ]) {
    t.throws(() => parseDaemonArgs(bad), { code: 'OBX_ERR_CLI_USAGE' }, bad.join(' '));
  }
  t.equal(parsePort('80', 'x'), 80);
  t.throws(() => parsePort('0', 'x'), { code: 'OBX_ERR_CLI_USAGE' });
  t.throws(() => parsePort('8o', 'x'), { code: 'OBX_ERR_CLI_USAGE' });
});
