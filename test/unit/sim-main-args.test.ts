/**
 * `npm start`'s arguments (scripts/sim/main.ts) that are refused before anything is made: no root needed,
 * no namespace, no directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { nodeTsArgs } from '../helpers/node-ts.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;

function start(args: string[], dir: string) {
  return spawnSync(
    process.execPath,
    [
      ...nodeTsArgs(),
      `${root}scripts/sim/main.ts`,
      '--dir',
      join(dir, 'sim'),
      '--work',
      join(dir, 'work'),
      ...args,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
}

t.test('--configure-bridge without --censored is refused and changes nothing', async (t) => {
  const dir = tmpDir(t);
  const r = start(['--configure-bridge'], dir);
  t.equal(r.status, 2, r.stdout + r.stderr);
  t.match(r.stdout, /--configure-bridge goes with --censored/);
  t.notOk(existsSync(join(dir, 'sim')), 'no simulator directory');
  t.notOk(existsSync(join(dir, 'work')), 'no work directory');
});

t.test('an unknown option is refused', async (t) => {
  const r = start(['--censor'], tmpDir(t));
  t.not(r.status, 0);
  t.match(r.stderr, /Unknown option '--censor'/);
});
