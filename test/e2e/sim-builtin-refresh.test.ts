/**
 * The built-in bridge lines refreshed over tor (issue 21), in the simulated world: the box routes through
 * the private Tor network (not censored), then onionboxd asks Moat's `/circumvention/builtin` through its
 * tor's SocksPort. The mock Moat is a host of the simulated internet (moat.sim.test, its test CA trusted
 * through the environment in the simulator only), reached through the private network's exit; its answer
 * names the private network's obfs4 bridge (not one of the release's lines) and one line the grammar
 * refuses. The stored file holds the good line, written by onionboxd's user, and the status says when and
 * how many.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BUILTIN_BRIDGES } from '../../firmware/tor/builtin-bridges.js';
import { BUILTIN_FILE, parseStoredBuiltin } from '../../firmware/tor/builtin-refresh.js';
import { formatBridgeLine, parseBridgeLine } from '../../firmware/tor/grammar.js';
import { ADDR, EXIT_ADDR, uniquePrefix } from '../../scripts/sim/world.js';
import { rootSkipReason } from '../helpers/netns.js';
import { boxStatus, startWorld, until } from '../helpers/sim-world.js';
import { tmpDir } from '../helpers/tmp.js';

const skip = rootSkipReason(['ip', 'nft', 'tor', 'dnsmasq', 'dhclient', 'curl', 'lyrebird', 'openssl']);

t.test(
  'once routing, the built-in lines are refreshed from Moat through tor and stored',
  { skip, timeout: 600_000 },
  async (t) => {
    const dir = tmpDir(t);
    const t0 = Date.now();
    const world = await startWorld(t, { prefix: uniquePrefix(), dir, obfs4Bridge: true, moat: true });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    const expected = formatBridgeLine(parseBridgeLine(bridge.line));
    t.notOk(BUILTIN_BRIDGES.obfs4.includes(expected), "Moat's line is not one of the release's");

    const routed = await until(
      'routing',
      async () => {
        const s = await boxStatus(world);
        return s.state === 'routing' ? s : null;
      },
      300_000,
    );
    t.ok(routed);
    const file = join(world.boxStateDir, BUILTIN_FILE);
    const status = await until(
      'the built-in lines refreshed',
      async () => {
        const s = await boxStatus(world);
        return /^refreshed over Tor /.test(String(s.builtinBridges)) ? s : null;
      },
      240_000,
    );
    t.comment(`world start to refreshed lines: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    t.match(
      String(status.builtinBridges),
      /^refreshed over Tor \d{4}-\d\d-\d\dT[0-9:.]+Z \(obfs4 1\)$/,
      'the status says when and how many per transport',
    );
    const stored = parseStoredBuiltin(readFileSync(file, 'utf8'));
    t.same(stored.lines, { obfs4: [expected] }, "Moat's good line stored, the bad one dropped");
    const st = statSync(file);
    t.equal(st.mode & 0o777, 0o600, 'the stored file is onionboxd’s only');
    t.not(st.uid, 0, 'written by onionboxd’s user, not root');

    // asked through tor: the mock Moat saw the exit's address, never the box's WAN address
    const moatLog = readFileSync(join(dir, 'meek-moat.log'), 'utf8');
    t.match(
      moatLog,
      new RegExp(`MOAT GET /moat/circumvention/builtin +from ${EXIT_ADDR.replace(/\./g, '\\.')}`),
    );
    t.notMatch(moatLog, new RegExp(`from ${ADDR.boxWan.replace(/\./g, '\\.')}`), 'never from the clearnet');
    const logged = /"dropped":(\d+).*"msg":"built-in bridge lines refreshed over tor"/.exec(
      readFileSync(join(dir, 'onionboxd.log'), 'utf8'),
    );
    t.equal(logged?.[1], '1', 'the refused line dropped and counted in the log');
    await world.stop();
  },
);
