/**
 * The CLI commands that ask onionboxd one thing and print the answer (firmware/cli/status.ts
 * daemonQueryCommand: status, leak-test, tor status|circuits|check), through the real CLI and a real
 * control socket whose handlers answer what the daemon's would.
 */
import t from 'tap';
import { runCli } from '../../firmware/cli/index.js';
import { IpcServer, socketPath } from '../../firmware/control/socket.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('query commands: words, --json, exit status from the answer', async (t) => {
  const dir = tmpDir(t);
  const ipc = new IpcServer(socketPath(dir));
  let isTor = true;
  let leakOk = true;
  ipc.register('status', async () => ({ state: 'routing', firewall: { mode: 'routing' } }));
  ipc.register('tor.circuits', async () => []);
  ipc.register('tor.check', async () => ({ isTor, ip: '198.51.100.9', url: 'https://check.example/' }));
  ipc.register('box.leakTest', async () => ({
    ok: leakOk,
    checks: [{ title: 'DNS', outcome: leakOk ? 'pass' : 'fail', detail: 'through tor' }],
  }));
  await ipc.start();
  t.teardown(() => ipc.stop());
  const out: string[] = [];
  const err: string[] = [];
  const ctx = { stateDir: dir, out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
  const run = async (argv: string[]) => {
    out.length = 0;
    const code = await runCli(argv, ctx);
    return { code, text: out.join('') };
  };

  t.same(await run(['status']), {
    code: 0,
    text: 'state          routing\nfirewall       {"mode":"routing"}\n',
  });
  const json = await run(['status', '--json']);
  t.same(JSON.parse(json.text), { state: 'routing', firewall: { mode: 'routing' } });
  t.same(await run(['tor', 'circuits']), { code: 0, text: 'no circuits\n' });
  t.same(await run(['tor', 'circuits', '--json']), { code: 0, text: '[]\n' });

  t.match(await run(['tor', 'check']), { code: 0, text: /^yes: .*\(198\.51\.100\.9, / });
  isTor = false;
  t.match(await run(['tor', 'check']), { code: 1, text: /^NO: / });
  t.equal((await run(['tor', 'check', '--json'])).code, 1, '--json keeps the exit status');

  t.match(await run(['leak-test']), { code: 0, text: /ok {5} {2}DNS\n.*no leak found\n$/s });
  leakOk = false;
  t.match(await run(['leak-test']), { code: 1, text: /LEAK FOUND/ });

  t.equal((await run(['status', '--yaml'])).code, 2, 'unknown option: usage error');
  t.match(err.join(''), /OBX_ERR_CLI_USAGE/);
  t.equal(await runCli(['status'], { ...ctx, stateDir: tmpDir(t) }), 1, 'no daemon');
  t.match(err.join(''), /OBX_ERR_DAEMON_NOT_RUNNING/);
  t.match((await run(['--help'])).text, /onionbox tor check \[--json\]/, 'usage names --json');
});
