/** The one exec helper (firmware/lib/exec.ts): argument arrays, no shell, every outcome reported. */
import t from 'tap';
import { exec, nsCommand } from '../../firmware/lib/exec.js';

t.test('argument arrays reach the program as they are, never through a shell', async (t) => {
  const r = await exec('printf', ['%s|', 'a b', '$(id)', ';echo no']);
  t.same(r, { ok: true, code: 0, stdout: 'a b|$(id)|;echo no|', stderr: '' });
});

t.test('a failing program: its exit code, stderr and a message', async (t) => {
  const r = await exec('ls', ['/nonexistent-obx-dir']);
  t.equal(r.ok, false);
  t.equal(r.code, 2);
  t.match(r.stderr, /nonexistent-obx-dir/);
  t.match(r.error, /Command failed/);
});

t.test('a missing program or a timeout: code -1, never a rejection', async (t) => {
  const missing = await exec('/nonexistent-obx-binary', []);
  t.equal(missing.ok, false);
  t.equal(missing.code, -1);
  t.match(missing.error, /ENOENT/);
  const slow = await exec('sleep', ['5'], { timeoutMs: 100 });
  t.equal(slow.ok, false);
  t.equal(slow.code, -1, 'killed');
});

t.test('environment and network namespace', async (t) => {
  const r = await exec('printenv', ['OBX_TEST'], { env: { PATH: process.env.PATH, OBX_TEST: 'yes' } });
  t.equal(r.stdout, 'yes\n');
  t.same(nsCommand(undefined, 'nft', ['-j']), ['nft', ['-j']]);
  t.same(nsCommand('obx-x', 'nft', ['-j']), ['ip', ['netns', 'exec', 'obx-x', 'nft', '-j']]);
});
