/**
 * `onionbox sim info` (firmware/cli/sim.ts) reading the running simulator's sim.json: the lines it prints,
 * and a censored world (`npm start -- --censored`) said so.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { simInfoCommand } from '../../firmware/cli/sim.js';
import { tmpDir } from '../helpers/tmp.js';

function info(censored: boolean | undefined) {
  return {
    pid: process.pid,
    lan: { netns: 'obxsim-lan', interface: 'eth0', address: '10.42.0.2' },
    box: { netns: 'obxsim-box', lanAddress: '10.42.0.1', webPort: 80, wanInterface: 'eth0', stateDir: '/x' },
    internet: {
      netns: 'obxsim-inet',
      hostname: 'web.sim.test',
      ...(censored === undefined ? {} : { censored }),
    },
    page: { url: 'http://127.0.0.1:8080/' },
  };
}

async function run(t: Test, censored: boolean | undefined) {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'sim.json'), JSON.stringify(info(censored)));
  const before = process.env.ONIONBOX_SIM_DIR;
  process.env.ONIONBOX_SIM_DIR = dir;
  let out = '';
  try {
    const code = await simInfoCommand.run([], {
      stateDir: '/x',
      out: (s) => {
        out += s;
      },
      err: () => undefined,
    });
    t.equal(code, 0);
  } finally {
    if (before === undefined) delete process.env.ONIONBOX_SIM_DIR;
    else process.env.ONIONBOX_SIM_DIR = before;
  }
  return out;
}

t.test('a censored world says so', async (t) => {
  const out = await run(t, true);
  t.match(out, /^internet\s+web\.sim\.test in obxsim-inet, censored \(relays blocked, bridges open\)$/m);
});

t.test('an ordinary world, and one from before the field existed, do not', async (t) => {
  for (const c of [false, undefined]) {
    const out = await run(t, c);
    t.match(out, /^internet\s+web\.sim\.test in obxsim-inet$/m);
    t.notMatch(out, /censored/);
  }
});
