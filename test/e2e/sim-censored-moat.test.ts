/**
 * Moat over meek_lite end to end, in the censored simulated world (issue 21): the internet drops TCP to
 * every relay's ORPort and DirPort; the box has no bridge line and no built-in line it can reach (the
 * release's own, which this world does not have). Its connection assist notices that tor is blocked and
 * asks Moat: onionboxd writes the job, onionbox-moat.service (as debian-tor, tor's private resolv.conf)
 * runs lyrebird's meek_lite client against the world's meek reflector (front.sim.test:443, a test CA) and
 * the mock Moat behind it, whose settings name the private network's obfs4 bridge. The box tries that,
 * routes, stores it, and the LAN device fetches through it. The WAN capture holds TCP only to the bridge,
 * the meek front on 443 and the relays the censor dropped; UDP only DNS to the WAN's resolver and DHCP;
 * and once a bridge is found the firewall's Moat window is closed again.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ADDR, EXIT_ADDR, HOSTNAME, MOAT_SIM_ENDPOINT, uniquePrefix } from '../../scripts/sim/world.js';
import { parsePcap, rootSkipReason } from '../helpers/netns.js';
import { boxStatus, lanCurl, macOf, startWorld, until } from '../helpers/sim-world.js';
import { tmpDir } from '../helpers/tmp.js';

const skip = rootSkipReason([
  'ip',
  'nft',
  'tor',
  'tcpdump',
  'dnsmasq',
  'dhclient',
  'curl',
  'lyrebird',
  'openssl',
]);

function uidOfUser(name: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  return Number(line?.split(':')[2]);
}

t.test(
  'censored, no reachable built-in line: the box asks Moat over meek_lite, routes through its bridge',
  { skip, timeout: 600_000 },
  async (t) => {
    const dir = tmpDir(t);
    const t0 = Date.now();
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      obfs4Bridge: true,
      censored: true,
      moat: true,
    });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    const testNetwork = JSON.parse(readFileSync(join(dir, 'test-network.json'), 'utf8')) as {
      builtinBridges?: string[];
      moat?: unknown;
    };
    t.same(testNetwork.moat, MOAT_SIM_ENDPOINT, "the world names its Moat as the box's");
    t.equal(testNetwork.builtinBridges, undefined, "no built-in line of the world's: only the release's");
    const boxMac = await macOf(world, world.netns.box, 'eth0');

    const trying = await until(
      "the assist tries Moat's bridge",
      async () => {
        const s = await boxStatus(world);
        return /seems to block Tor\. Trying a bridge \(1 of 2\)/.test(String(s.assist)) ? s : null;
      },
      300_000,
    );
    t.equal(trying.state, 'connecting', 'the LAN stays closed while it tries');
    const routed = await until(
      "routing through Moat's bridge",
      async () => {
        const s = await boxStatus(world);
        return s.state === 'routing' && /through a obfs4 bridge the box found/.test(String(s.assist))
          ? s
          : null;
      },
      240_000,
    );
    t.ok(routed);
    t.comment(
      `fresh box to routing via Moat: ${((Date.now() - t0) / 1000).toFixed(1)} s (world start included)`,
    );
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
    t.same(config.tor.bridges, [bridge.line], "Moat's bridge, stored");
    t.equal(config.assist?.found?.source, 'moat-country', "from Moat's settings (the first step)");

    // Moat was asked as Moat is: settings, then defaults, over the meek tunnel
    const moatLog = readFileSync(join(dir, 'meek-moat.log'), 'utf8');
    t.match(moatLog, /MOAT POST \/moat\/circumvention\/settings \{"transports":\["obfs4"\]\}/);
    t.match(moatLog, /MOAT POST \/moat\/circumvention\/defaults \{"transports":\["obfs4"\]\}/);
    // the Moat client ran as tor's user: its answer is debian-tor's
    const answer = join(dir, 'runroot', 'onionbox-moat', 'answer.json');
    t.equal(
      statSync(answer).uid,
      uidOfUser('debian-tor'),
      'onionbox-moat.service wrote its answer as debian-tor',
    );
    t.equal(statSync(answer).mode & 0o777, 0o640, 'readable by tor’s group (onionboxd) only');

    // the Moat window is closed again: obfs4 needs no DNS and no TCP 443
    const rules = execFileSync(
      'ip',
      ['netns', 'exec', world.netns.box, 'nft', 'list', 'table', 'inet', 'onionbox'],
      {
        encoding: 'utf8',
      },
    );
    t.notMatch(rules, /tcp dport \{ 443 \} accept/, 'no TCP 443 opening once a bridge routes');
    t.notMatch(rules, /skuid \d+ .*th dport 53 accept/, "no DNS for tor's uid any more");
    // what the Moat step took (onionboxd's log): the window open, the job, the answer, the window closed
    const asked = /"ms":(\d+),"country":(\d+),"defaults":(\d+).*"msg":"connection assist: Moat asked"/.exec(
      readFileSync(join(dir, 'onionboxd.log'), 'utf8'),
    );
    t.ok(asked, 'onionboxd logged the Moat step');
    t.same(
      [asked?.[2], asked?.[3]],
      ['1', '1'],
      "one setting from the country's answer, one from the defaults",
    );
    t.comment(`Moat step (window, job, meek_lite, answers): ${asked?.[1]} ms`);

    const seen = await until(
      'a fetch through the bridge',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    );
    t.equal(seen.trim(), EXIT_ADDR);

    await world.stop();
    const frames = parsePcap(readFileSync(world.captureFile ?? '')).filter(
      (f) => f.srcMac === boxMac && f.etherType === 0x0800,
    );
    const allowedTcp = new Set([
      `${bridge.address}:${bridge.port}`,
      `${ADDR.meekFront}:443`,
      ...world.privnet.relays.map((r) => `${r.address}:${r.orPort}`),
    ]);
    const tcp = frames.filter((f) => f.proto === 6);
    t.ok(
      tcp.some((f) => `${f.dst}:${f.dport}` === `${ADDR.meekFront}:443`),
      'the Moat client reached the meek front',
    );
    t.same(
      tcp.filter((f) => !allowedTcp.has(`${f.dst}:${f.dport}`)).map((f) => `${f.dst}:${f.dport}`),
      [],
      'every TCP packet went to a relay (the censor drops them), the bridge or the meek front',
    );
    const udp = frames.filter((f) => f.proto === 17);
    t.same(
      udp
        .filter((f) => !(f.dst === ADDR.dns && f.dport === 53) && !(f.sport === 68 && f.dport === 67))
        .map((f) => `${f.dst}:${f.dport}`),
      [],
      "UDP only DNS to the WAN's resolver and DHCP",
    );
  },
);
