/**
 * images/build refuses to start without what it needs, with an error naming the fix, and writes nothing
 * under the output directory. Runs the real script with a PATH that holds only the basic tools (the
 * preflight runs before anything is downloaded or built).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const script = new URL('../../images/build', import.meta.url).pathname;
const BASIC = ['bash', 'env', 'dirname', 'realpath', 'git', 'date', 'id', 'cat', 'printf', 'node'];

function which(tool: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

t.test('missing tools: the build stops before anything, naming the packages and images/setup', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'obx-preflight-bin-'));
  const out = mkdtempSync(join(tmpdir(), 'obx-preflight-out-'));
  t.teardown(() => {
    rmSync(bin, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });
  for (const tool of BASIC) {
    const p = which(tool);
    if (p !== undefined) symlinkSync(p, join(bin, tool));
  }
  const r = spawnSync('bash', [script], {
    encoding: 'utf8',
    env: { PATH: bin, ONIONBOX_IMAGE_OUT: out, HOME: tmpdir() },
    timeout: 60_000,
  });
  t.not(r.status, 0, 'the build fails');
  if (process.getuid?.() === 0) {
    t.match(r.stderr, /images\/build: error: missing tools: mmdebstrap \(Debian package mmdebstrap\)/);
    t.match(r.stderr, /qemu-aarch64-static \(Debian package qemu-user-static\)/);
    t.match(r.stderr, /mke2fs \(Debian package e2fsprogs\)/);
    t.match(r.stderr, /Install them with: images\/setup/);
  } else {
    t.match(r.stderr, /images\/build: error: run as root .*sudo npm run image/);
  }
  t.same(readdirSync(out), [], 'nothing written under the output directory');
});
