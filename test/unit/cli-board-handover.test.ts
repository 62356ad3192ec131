/**
 * `onionbox board handover` (the root step of onionboxd.service): its arguments, its user look-up, and the
 * board settings it reads (config.json, else its last good copy, else the defaults; never through a link).
 * The hand-over itself is board/gpio/handover.ts's (test/unit/board-handover.test.ts).
 */
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../../firmware/cli/index.js';
import { defaultConfig } from '../../firmware/config/schema.js';
import { tmpDir } from '../helpers/tmp.js';

function cli(stateDir: string, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  return runCli(['--state-dir', stateDir, ...argv], {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  }).then((code) => ({ code, out: out.join(''), err: err.join('') }));
}

t.test('the user is required, and must be a system user name', async (t) => {
  const dir = tmpDir(t);
  let r = await cli(dir, ['board', 'handover']);
  t.equal(r.code, 2);
  t.match(r.err, /--user NAME .* is required/);
  r = await cli(dir, ['board', 'handover', '--user', 'on ionbox;rm']);
  t.equal(r.code, 2, 'a name outside the allowlist is refused before anything is read');
  if (process.getuid?.() === 0) {
    r = await cli(dir, ['board', 'handover', '--user', 'no-such-user-obx']);
    t.equal(r.code, 2);
    t.match(r.err, /no system user "no-such-user-obx"/);
  } else {
    r = await cli(dir, ['board', 'handover', '--user', 'root']);
    t.match(r.err, /must run as root/);
  }
});

t.test(
  'the settings come from config.json, never through a link; a broken one is said and skipped',
  { skip: process.getuid?.() === 0 || process.env.CI === 'true' ? false : 'the hand-over runs as root' },
  async (t) => {
    const dir = tmpDir(t);
    const secret = join(dir, 'elsewhere');
    writeFileSync(secret, 'not json at all');
    symlinkSync(secret, join(dir, 'config.json'));
    const c = defaultConfig();
    c.board.gpioChip = 'no-such-controller';
    writeFileSync(join(dir, 'config.json.bak'), JSON.stringify(c));
    const r = await cli(dir, ['board', 'handover', '--user', 'root']);
    t.match(r.err, /config\.json: .*(ELOOP|symbolic link)/, 'the link is refused, not followed');
    t.notMatch(r.err, /not json at all/, "the link's target was never read");
    // then the last good copy is used: its controller is the one looked for (on a machine without sysfs
    // GPIO the look-up stops earlier, at /sys/class/gpio)
    t.match(r.err, /no GPIO controller \(no-such-controller\)|ENOENT/);
    t.equal(r.code, 1);
  },
);
