/**
 * The whole simulated box for a test: the world of scripts/sim/world.ts (the same one `npm start`
 * builds) with onionboxd run from source under tap's loader, and the page exposed on a free loopback
 * port the way the host's browser reaches it. Stopped (every namespace, process and file) at teardown.
 */
import type { Test } from 'tap';
import { buildWorld, uniquePrefix, type World, type WorldOptions } from '../../scripts/sim/world.js';
import { nodeTsArgs } from './node-ts.js';
import { tmpDir } from './tmp.js';

const root = new URL('../../', import.meta.url).pathname;

export async function startSimBox(
  t: Test,
  opts: Partial<WorldOptions> = {},
): Promise<{ world: World; address: string }> {
  const world = await buildWorld({
    prefix: uniquePrefix(),
    dir: tmpDir(t),
    daemonCommand: [process.execPath, ...nodeTsArgs(), `${root}firmware/main.ts`],
    log: (l) => t.comment(l),
    ...opts,
  });
  t.teardown(() => world.stop());
  const address = await world.exposePage(0);
  return { world, address };
}
