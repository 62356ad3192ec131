/**
 * The box behind a censoring ISP (issue 21): the simulated world (scripts/sim/world.ts) with `censored`,
 * whose internet drops TCP from the box's side to every relay's ORPort and DirPort, the authorities'
 * among them (scripts/sim/censor.ts), but not to the private network's obfs4 bridge (lyrebird's server
 * side, its line read from lyrebird's pt_state/obfs4_bridgeline.txt).
 *
 *   - With the bridge line in the box's stored settings (what the page and `onionbox tor bridges` store),
 *     a fresh box (empty tor data directory) bootstraps through lyrebird to the bridge, a LAN device
 *     fetches http://web.sim.test/ip through it, and the WAN capture holds only ARP, the DHCP client and
 *     TCP to the bridge's obfs4 port: not one packet towards a blocked relay.
 *   - Without a bridge the box's tor is seen trying the relays and being dropped; the owner then gives it
 *     the line with `onionbox tor bridges` (the page's path: checked, applied, stored) and the box routes.
 *   - With a webtunnel bridge's line (webtunnel-server behind a TLS front on 198.18.0.18:443 whose
 *     certificate the private network's test CA signed; the box's tor unit has SSL_CERT_FILE naming that
 *     CA, the world's one difference from a Pi), the same from an empty data directory. The line's `url=`
 *     names the front (https://webtunnel.sim.test/...): lyrebird resolves it through tor's private
 *     resolv.conf, which onionboxd wrote from the WAN lease's DNS server (the modem, as nmcli reports the
 *     DHCP server's offer), and the firewall lets only tor's uid ask that resolver. The capture holds DNS
 *     to that resolver (before the first packet to the front) and TCP to the front's port 443 only (the
 *     line's address is a placeholder, never dialled); root on the box asks the resolver in vain.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import {
  ADDR,
  EXIT_ADDR,
  HOSTNAME,
  uniquePrefix,
  WEBTUNNEL_ADDR,
  WEBTUNNEL_HOST,
} from '../../scripts/sim/world.js';
import { describeFrame, parsePcap, rootSkipReason } from '../helpers/netns.js';
import {
  boxStatus,
  cli,
  cliAsync,
  dnsQuery,
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
  'censored, with an obfs4 bridge in its settings: a fresh box bootstraps through the bridge only',
  { skip, timeout: 420_000 },
  async (t) => {
    const dir = tmpDir(t);
    const t0 = Date.now();
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      obfs4Bridge: true,
      censored: true,
      boxConfig: (privnet) => {
        const cfg = defaultConfig();
        return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [privnet.obfs4Bridge?.line ?? ''] } };
      },
    });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    t.match(bridge.line, /^obfs4 198\.18\.0\.17:5011 [0-9A-F]{40} cert=[A-Za-z0-9+/]{70} iat-mode=[0-2]$/);
    t.ok(world.censor.active(), 'the internet censors');
    t.equal(world.info().internet.censored, true, 'and `onionbox sim info` says so');
    const blocked = new Set(world.censor.blocked.map((e) => `${e.address}:${e.port}`));
    for (const r of world.privnet.relays) {
      t.ok(blocked.has(`${r.address}:${r.orPort}`), `${r.nickname}'s ORPort is blocked`);
      if (r.role === 'authority')
        t.ok(blocked.has(`${r.address}:${r.dirPort}`), `${r.nickname}'s DirPort too`);
    }
    t.notOk(blocked.has(`${bridge.address}:${bridge.port}`), "the bridge's obfs4 port is not");
    t.notOk(blocked.has(`${bridge.address}:${bridge.orPort}`), 'nor its ORPort');
    const boxMac = await macOf(world, world.netns.box, 'eth0');

    // the box's tor starts from an empty data directory, with the bridge as its only way in
    const seeded = readFileSync(join(dir, 'onionboxd.log'), 'utf8')
      .split('\n')
      .find((l) => l.includes('relay set seeded'));
    const sizes = JSON.parse(seeded ?? '{}') as { consensus?: number };
    t.equal(sizes.consensus, 0, 'no cached consensus: a fresh box');
    const torrc = readFileSync(join(world.boxStateDir, 'tor/torrc'), 'utf8');
    t.match(torrc, /^UseBridges 1$/m);
    t.match(torrc, new RegExp(`^Bridge ${bridge.line.replace(/[+/.]/g, '\\$&')}$`, 'm'), 'the stored line');
    t.match(torrc, /^ClientTransportPlugin \S*obfs4\S* exec \/usr\/bin\/lyrebird$/m);

    const routing = await until(
      'routing through the bridge',
      async () => {
        const s = await boxStatus(world);
        return s.state === 'routing' ? s : null;
      },
      240_000,
    );
    t.comment(`routing ${((Date.now() - t0) / 1000).toFixed(1)} s after the world began`);
    t.match(String(routing.tor), /^ready 100%/);
    const seen = await until(
      'a fetch through the bridge',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message} (${lastCurlFailure()})`);
    });
    t.equal(
      seen.trim(),
      EXIT_ADDR,
      'the LAN device reaches the web through the bridge; the site sees the exit',
    );
    const circuits = cli(world, ['tor', 'circuits']);
    t.match(circuits.stdout, /BUILT\s+\S+\s+bridge0 ->/, 'circuits start at the bridge');
    t.equal(await world.censor.dropped(), 0, 'the box never even tried a blocked relay');

    await world.stop();
    const frames = parsePcap(readFileSync(world.captureFile ?? ''));
    const tcp = frames.filter((f) => f.srcMac === boxMac && f.etherType === 0x0800 && f.proto === 6);
    t.ok(tcp.length > 10, `the box talked over TCP (${tcp.length} frames)`);
    t.same(
      [...new Set(tcp.map((f) => `${f.dst}:${f.dport}`))],
      [`${bridge.address}:${bridge.port}`],
      "every TCP packet went to the bridge's obfs4 port",
    );
    const known = new Set([
      ADDR.modem,
      EXIT_ADDR,
      ...world.privnet.relays.map((r) => r.address),
      bridge.address,
    ]);
    const leaks = wanLeaks(frames, {
      mac: boxMac,
      addr: ADDR.boxWan,
      relays: new Set([`${bridge.address}:${bridge.port}`]),
      known,
    });
    t.same(
      leaks.slice(0, 10).map(describeFrame),
      [],
      'nothing else left the box: ARP, DHCP and the bridge only',
    );
  },
);

t.test(
  "censored, no bridge: the box's tor is dropped; the owner's bridge line gets it through",
  { skip, timeout: 420_000 },
  async (t) => {
    const dir = tmpDir(t);
    // the box's own find (the connection assist with the bridge as its built-in line) is
    // sim-censored-assist.test.ts: here only the owner's line may get it through
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      obfs4Bridge: true,
      censored: true,
      builtinBridge: false,
    });
    const bridge = world.privnet.obfs4Bridge;
    if (!bridge) throw new Error('no bridge');
    const dropped = await until(
      'the censor dropping the box',
      async () => {
        const n = await world.censor.dropped();
        return n > 0 ? n : null;
      },
      120_000,
    );
    t.ok(dropped > 0, `the censor dropped ${dropped} packets of the box's tor towards the relays`);
    const before = await boxStatus(world);
    t.not(
      before.state,
      'routing',
      `the box cannot route (${String(before.state)}, tor ${String(before.tor)})`,
    );
    t.equal(await lanCurl(world, `http://${HOSTNAME}/ip`, 4), null, 'and the LAN device reaches nothing');

    // the owner's path: the bridge line checked, applied (rolled back if tor cannot use it), stored
    const set = await cliAsync(world, ['tor', 'bridges', bridge.line]);
    t.equal(set.code, 0, set.out);
    t.match(set.out, /ready with the new settings/);
    await until(
      'routing through the bridge',
      async () => (await boxStatus(world)).state === 'routing',
      120_000,
    );
    const seen = await until(
      'a fetch through the bridge',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    );
    t.equal(seen.trim(), EXIT_ADDR, 'the LAN device reaches the web through the bridge');
    const stored = JSON.parse(readFileSync(join(world.boxStateDir, 'config.json'), 'utf8')) as {
      tor: { useBridges: boolean; bridges: string[] };
    };
    t.same(stored.tor, { ...stored.tor, useBridges: true, bridges: [bridge.line] }, 'and the line is stored');

    // the censor lifted (as when the owner travels): the box still routes through its bridge
    await world.censor.set(false);
    t.notOk(world.censor.active());
    t.equal(await world.censor.dropped(), 0);
    const again = await until('a fetch, uncensored', () => lanCurl(world, `http://${HOSTNAME}/ip`), 60_000);
    t.equal(again.trim(), EXIT_ADDR);
  },
);

t.test(
  'censored, with a webtunnel bridge in its settings: a fresh box bootstraps through the TLS front only',
  { skip, timeout: 420_000 },
  async (t) => {
    const dir = tmpDir(t);
    const t0 = Date.now();
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      webtunnelBridge: true,
      censored: true,
      boxConfig: (privnet) => {
        const cfg = defaultConfig();
        const line = privnet.webtunnelBridge?.line ?? '';
        return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [line] } };
      },
    });
    const bridge = world.privnet.webtunnelBridge;
    if (!bridge) throw new Error('no webtunnel bridge');
    t.match(
      bridge.line,
      /^webtunnel 192\.0\.2\.3:1 [0-9A-F]{40} url=https:\/\/webtunnel\.sim\.test\/[0-9a-f]{24} ver=0\.0\.1$/,
      'the line names its front by host name, as a real one does',
    );
    t.equal(bridge.address, WEBTUNNEL_ADDR);
    t.notOk(
      world.censor.blocked.some((e) => e.address === bridge.address),
      "the censor does not know the bridge's front",
    );
    const boxMac = await macOf(world, world.netns.box, 'eth0');
    const torrc = readFileSync(join(world.boxStateDir, 'tor/torrc'), 'utf8');
    t.match(torrc, /^ClientTransportPlugin \S*webtunnel\S* exec \/usr\/bin\/lyrebird$/m);
    const kernel = await world.exec(world.netns.box, 'nft', ['list', 'table', 'inet', 'onionbox']);
    t.match(kernel, /tcp dport (\{ )?443/, "the firewall opens TCP 443 for tor's uid (webtunnel)");
    t.notMatch(kernel, /192\.0\.2\.3/, 'the placeholder address is not in the relay set');
    // the name's way: the lease's DNS server (as nmcli reports it), in tor's resolv.conf and the firewall
    t.match(
      readFileSync(join(dir, 'run', 'tor-resolv.conf'), 'utf8'),
      new RegExp(`^nameserver ${ADDR.dns.replace(/\./g, '\\.')}$`, 'm'),
      "tor's private resolv.conf names the WAN lease's resolver",
    );
    const dnsRules = kernel.split('\n').filter((l) => /th [sd]port 53\b/.test(l) && l.includes(ADDR.dns));
    t.match(
      dnsRules.join('\n'),
      /meta skuid \S+ ip daddr (\{ )?198\.18\.0\.53( \})? meta l4proto \{ tcp, udp \} th dport 53 accept/,
      "the firewall opens DNS to the lease's resolver for tor's uid",
    );
    for (const l of dnsRules)
      t.match(
        l.trim(),
        /^(meta skuid \S+ ip daddr|ct state established ct direction reply ip saddr) (\{ )?198\.18\.0\.53\b/,
        `and for no one else: ${l.trim()}`,
      );

    await until(
      'routing through webtunnel',
      async () => (await boxStatus(world)).state === 'routing',
      240_000,
    );
    t.comment(`routing ${((Date.now() - t0) / 1000).toFixed(1)} s after the world began`);
    const seen = await until(
      'a fetch through webtunnel',
      () => lanCurl(world, `http://${HOSTNAME}/ip`),
      60_000,
    );
    t.equal(seen.trim(), EXIT_ADDR, 'the LAN device reaches the web through the webtunnel bridge');
    const circuits = cli(world, ['tor', 'circuits']);
    t.match(circuits.stdout, /BUILT\s+\S+\s+bridge1 ->/, 'circuits start at the webtunnel bridge');
    // the resolver answers tor's uid, and only tor's uid: root on the box (and so any other uid) is dropped
    t.equal(
      await dnsQuery(world, world.netns.box, 'debian-tor', ADDR.dns, WEBTUNNEL_HOST),
      WEBTUNNEL_ADDR,
      "as tor's uid the box's resolver query is answered with the front's address",
    );
    t.equal(
      await dnsQuery(world, world.netns.box, null, ADDR.dns, WEBTUNNEL_HOST),
      null,
      'as root the same query never leaves the box',
    );

    await world.stop();
    const frames = parsePcap(readFileSync(world.captureFile ?? ''));
    const fromBox = frames.filter((f) => f.srcMac === boxMac && f.etherType === 0x0800);
    const isDns = (f: (typeof frames)[number]) => (f.proto === 6 || f.proto === 17) && f.dport === 53;
    const tcp = fromBox.filter((f) => f.proto === 6 && !isDns(f));
    t.ok(tcp.length > 10, `the box talked over TCP (${tcp.length} frames)`);
    t.same(
      [...new Set(tcp.map((f) => `${f.dst}:${f.dport}`))],
      [`${bridge.address}:${bridge.port}`],
      "every TCP packet went to the webtunnel front's port 443",
    );
    const dns = fromBox.filter(isDns);
    t.same(
      [...new Set(dns.map((f) => `${f.dst}:${f.dport}`))],
      [`${ADDR.dns}:53`],
      `every DNS packet went to the WAN lease's resolver (${dns.length} frames)`,
    );
    const firstDns = fromBox.findIndex(isDns);
    const firstFront = fromBox.findIndex((f) => f.proto === 6 && f.dst === bridge.address);
    t.ok(
      firstDns >= 0 && firstDns < firstFront,
      'the box asked the resolver before its first packet to the front: the name was resolved',
    );
    const known = new Set([
      ADDR.modem,
      ADDR.dns, // the box asks for the resolver's link address (ARP) before tor's first lookup
      EXIT_ADDR,
      ...world.privnet.relays.map((r) => r.address),
      bridge.address,
    ]);
    const leaks = wanLeaks(frames, {
      mac: boxMac,
      addr: ADDR.boxWan,
      relays: new Set([`${bridge.address}:${bridge.port}`]),
      known,
      resolvers: new Set([ADDR.dns]),
    });
    t.same(
      leaks.slice(0, 10).map(describeFrame),
      [],
      "nothing else left the box: ARP, DHCP, the lease's resolver and the front only",
    );
  },
);
