/**
 * The connection assist end to end, in the censored simulated world (issue 21): the internet drops TCP to
 * every relay's ORPort and DirPort, not to bridges; the world names the private network's obfs4 bridge as
 * the test network's `builtinBridges` (data the box reads where it reads a release's built-in lines). A
 * fresh box without any bridge line sees tor stall, tries that bridge by itself, stores it, routes, and the
 * LAN device fetches through it; the WAN capture holds TCP only to the bridge and the relays the censor
 * dropped.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EXIT_ADDR, HOSTNAME, uniquePrefix } from '../../scripts/sim/world.js';
import { parsePcap, rootSkipReason } from '../helpers/netns.js';
import { boxStatus, lanCurl, macOf, startWorld, until } from '../helpers/sim-world.js';
import { tmpDir } from '../helpers/tmp.js';

const skip = rootSkipReason(['ip', 'nft', 'tor', 'tcpdump', 'dnsmasq', 'dhclient', 'curl', 'lyrebird']);

t.test(
  'censored: a fresh box finds a bridge by itself; the LAN device fetches through it',
  { skip, timeout: 600_000 },
  async (t) => {
    const dir = tmpDir(t);
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      obfs4Bridge: true,
      censored: true,
    });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    const testNetwork = JSON.parse(readFileSync(join(dir, 'test-network.json'), 'utf8')) as {
      builtinBridges?: string[];
    };
    t.same(
      testNetwork.builtinBridges,
      [bridge.line],
      "the world names its bridge as the box's built-in line",
    );
    const boxMac = await macOf(world, world.netns.box, 'eth0');

    // blocked: tor warns or stalls (75 s), the box has a link and a lease, so it tries its bridges
    const trying = await until(
      'the assist tries a bridge',
      async () => {
        const s = await boxStatus(world);
        return /seems to block Tor\. Trying a bridge \(1 of 1\)/.test(String(s.assist)) ? s : null;
      },
      240_000,
    );
    t.equal(trying.state, 'connecting', 'the LAN stays closed while it tries');
    const routed = await until(
      'routing through the bridge the box found',
      async () => {
        const s = await boxStatus(world);
        return s.state === 'routing' && /through a obfs4 bridge the box found/.test(String(s.assist))
          ? s
          : null;
      },
      240_000,
    );
    t.ok(routed);
    // the assist stores the setting just after tor routes with it (one atomic write of config.json)
    type Stored = {
      tor: { useBridges: boolean; bridges: string[] };
      assist?: { found: { lines: string[]; source: string } | null };
    };
    const config = await until(
      'the bridge stored',
      async () => {
        const c = JSON.parse(readFileSync(join(world.boxStateDir, 'config.json'), 'utf8')) as Stored;
        return c.assist?.found ? c : null;
      },
      30_000,
    );
    t.equal(config.tor.useBridges, true);
    t.same(config.tor.bridges, [bridge.line], 'stored: a power cut loses nothing');
    t.equal(config.assist?.found?.source, 'builtin');

    const seen = await until(
      'a fetch through the bridge',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    );
    t.equal(seen.trim(), EXIT_ADDR);
    // this test network names no Moat: neither the assist nor the refresh asks one (Tor Browser's is out
    // of the private network's reach), and the refresh says why once
    const daemonLog = readFileSync(join(dir, 'onionboxd.log'), 'utf8');
    t.notMatch(daemonLog, /connection assist: Moat asked/, 'the assist did not ask a Moat');
    t.match(daemonLog, /no Moat to ask in this network/);
    t.notMatch(daemonLog, /built-in bridge lines: refresh failed/, 'no refresh tried');

    await world.stop();
    const tcp = parsePcap(readFileSync(world.captureFile ?? '')).filter(
      (f) => f.srcMac === boxMac && f.etherType === 0x0800 && f.proto === 6,
    );
    const allowed = new Set([
      `${bridge.address}:${bridge.port}`,
      ...world.privnet.relays.map((r) => `${r.address}:${r.orPort}`),
    ]);
    t.same(
      tcp.filter((f) => !allowed.has(`${f.dst}:${f.dport}`)).map((f) => `${f.dst}:${f.dport}`),
      [],
      "every TCP packet went to a relay (the censor's drop) or the bridge",
    );
  },
);
