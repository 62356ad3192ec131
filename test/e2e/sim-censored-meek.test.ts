/**
 * A meek_lite bridge end to end behind the censoring ISP (issue 21): the simulated world's meek front
 * (scripts/privnet/meek-moat.ts on front.sim.test, 198.18.0.19:443, a test CA) serves, besides the mock
 * Moat, the reflector meek-bridge.sim.test, whose meek sessions (scripts/privnet/meek-server.ts) it
 * connects to the private network's bridge's ORPort (scripts/sim/meek-bridge.ts). A fresh box (empty tor
 * data directory) with the meek_lite line in its stored settings bootstraps through lyrebird's meek_lite
 * client: TLS to the front, looked up through tor's private resolv.conf (the WAN lease's resolver), the
 * reflector's name only inside the encrypted HTTP. A LAN device fetches http://web.sim.test/ip through it.
 * The WAN capture holds DNS to the lease's resolver and TCP to the front's port 443, nothing else: not the
 * line's placeholder address, not one packet towards a blocked relay. The firewall is the one every
 * meek_lite line gets (firmware/tor/transports.ts); the world's one difference from a Pi is the test CA
 * in tor's unit's SSL_CERT_FILE (one file with the webtunnel front's, which this world also runs, as
 * `npm start -- --censored` does).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { MEEK_BRIDGE_HOST, meekBridgeLine } from '../../scripts/sim/meek-bridge.js';
import { ADDR, EXIT_ADDR, HOSTNAME, MOAT_FRONT_HOST, uniquePrefix } from '../../scripts/sim/world.js';
import { describeFrame, parsePcap, rootSkipReason } from '../helpers/netns.js';
import {
  boxStatus,
  cli,
  lanCurl,
  lastCurlFailure,
  macOf,
  startWorld,
  until,
  wanLeaks,
} from '../helpers/sim-world.js';
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
  'webtunnel-server',
  'openssl',
]);

t.test(
  'censored, with a meek_lite bridge in its settings: a fresh box bootstraps through the meek front only',
  { skip, timeout: 480_000 },
  async (t) => {
    const dir = tmpDir(t);
    const t0 = Date.now();
    let line = '';
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      obfs4Bridge: true,
      // as `npm start -- --censored` has it: tor's SSL_CERT_FILE then holds both fronts' test CAs
      webtunnelBridge: true,
      censored: true,
      moat: true,
      boxConfig: (privnet) => {
        if (!privnet.obfs4Bridge) throw new Error('no bridge');
        line = meekBridgeLine(privnet.obfs4Bridge, MOAT_FRONT_HOST);
        const cfg = defaultConfig();
        return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [line] } };
      },
    });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    t.equal(
      line,
      `meek_lite 192.0.2.20:80 ${bridge.fingerprint} url=https://${MEEK_BRIDGE_HOST}/ front=${MOAT_FRONT_HOST}`,
      "the line names the bridge's fingerprint, the reflector in url= and the front",
    );
    t.ok(
      world.censor.blocked.some((e) => e.address === bridge.address) === false,
      "the censor does not know the bridge (the test's point is that the box never dials it)",
    );
    const boxMac = await macOf(world, world.netns.box, 'eth0');

    // the box's tor starts from an empty data directory, with the meek_lite line as its only way in
    const seeded = readFileSync(join(dir, 'onionboxd.log'), 'utf8')
      .split('\n')
      .find((l) => l.includes('relay set seeded'));
    t.equal((JSON.parse(seeded ?? '{}') as { consensus?: number }).consensus, 0, 'a fresh box');
    const torrc = readFileSync(join(world.boxStateDir, 'tor/torrc'), 'utf8');
    t.match(torrc, /^UseBridges 1$/m);
    t.match(torrc, new RegExp(`^Bridge ${line.replace(/[+/.]/g, '\\$&')}$`, 'm'), 'the stored line');
    t.match(torrc, /^ClientTransportPlugin \S*meek_lite\S* exec \/usr\/bin\/lyrebird$/m);
    const cas = readFileSync(join(dir, 'tor-test-cas.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? [];
    t.equal(cas.length, 2, "tor's unit trusts the webtunnel front's and the meek front's test CAs");
    const kernel = await world.exec(world.netns.box, 'nft', ['list', 'table', 'inet', 'onionbox']);
    t.match(kernel, /tcp dport (\{ )?443/, "the firewall opens TCP 443 for tor's uid (meek_lite)");
    t.notMatch(kernel, /192\.0\.2\.20/, 'the placeholder address is not in the relay set');
    t.notMatch(kernel, new RegExp(bridge.address.replace(/\./g, '\\.')), "nor is the bridge's own");

    const routing = await until(
      'routing through meek_lite',
      async () => {
        const s = await boxStatus(world);
        return s.state === 'routing' ? s : null;
      },
      300_000,
    );
    t.comment(`routing ${((Date.now() - t0) / 1000).toFixed(1)} s after the world began`);
    t.match(String(routing.tor), /^ready 100%/);
    const seen = await until(
      'a fetch through meek_lite',
      () => lanCurl(world, `http://${HOSTNAME}/ip`, 20),
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message} (${lastCurlFailure()})`);
    });
    t.equal(seen.trim(), EXIT_ADDR, 'the LAN device reaches the web through the meek bridge');
    const circuits = cli(world, ['tor', 'circuits']);
    t.match(circuits.stdout, /BUILT\s+\S+\s+bridge0 ->/, 'circuits start at the bridge behind meek');
    t.match(
      readFileSync(join(dir, 'meek-moat.log'), 'utf8'),
      new RegExp(`meek: session opened for ${MEEK_BRIDGE_HOST.replace(/\./g, '\\.')}`),
      "the front handed a meek session to the bridge's ORPort",
    );
    t.equal(await world.censor.dropped(), 0, 'the box never even tried a blocked relay');

    await world.stop();
    const frames = parsePcap(readFileSync(world.captureFile ?? ''));
    const fromBox = frames.filter((f) => f.srcMac === boxMac && f.etherType === 0x0800);
    const isDns = (f: (typeof frames)[number]) => (f.proto === 6 || f.proto === 17) && f.dport === 53;
    const tcp = fromBox.filter((f) => f.proto === 6 && !isDns(f));
    t.ok(tcp.length > 10, `the box talked over TCP (${tcp.length} frames)`);
    t.same(
      [...new Set(tcp.map((f) => `${f.dst}:${f.dport}`))],
      [`${ADDR.meekFront}:443`],
      "every TCP packet went to the meek front's port 443",
    );
    const dns = fromBox.filter(isDns);
    t.same(
      [...new Set(dns.map((f) => `${f.dst}:${f.dport}`))],
      [`${ADDR.dns}:53`],
      `every DNS packet went to the WAN lease's resolver (${dns.length} frames)`,
    );
    const firstDns = fromBox.findIndex(isDns);
    const firstFront = fromBox.findIndex((f) => f.proto === 6 && f.dst === ADDR.meekFront);
    t.ok(
      firstDns >= 0 && firstDns < firstFront,
      "the box asked the resolver before its first packet to the front: the front's name was resolved",
    );
    const leaks = wanLeaks(frames, {
      mac: boxMac,
      addr: ADDR.boxWan,
      relays: new Set([`${ADDR.meekFront}:443`]),
      known: new Set([
        ADDR.modem,
        ADDR.dns,
        ADDR.meekFront,
        EXIT_ADDR,
        ...world.privnet.relays.map((r) => r.address),
        bridge.address,
      ]),
      resolvers: new Set([ADDR.dns]),
    });
    t.same(
      leaks.slice(0, 10).map(describeFrame),
      [],
      "nothing else left the box: ARP, DHCP, the lease's resolver and the meek front only",
    );
  },
);
