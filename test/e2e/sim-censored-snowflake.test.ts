/**
 * Snowflake in the censored simulated world, as far as Debian's packages go (issue 21). The box has only
 * a snowflake line (a placeholder address, url= the test broker, fronts= its CDN name, ice= coturn);
 * the internet drops TCP to every relay. Its tor starts lyrebird's snowflake client, which:
 *
 *   1. resolves the front and the STUN host through tor's resolver (the WAN lease's, tor's uid only);
 *   2. sends its offer to the broker (scripts/privnet/snowflake-broker.ts) over TLS to the front (SNI the
 *      front, Host the broker: domain fronting), POST /client, version 1.0;
 *   3. gets the answer of Debian's snowflake-proxy 2.5.1, which polled the broker (POST /proxy, /answer)
 *      and was given the world's relay (RelayURL);
 *   4. opens the WebRTC data channel to the proxy over UDP (ICE, DTLS, SCTP), from the box's WAN to the
 *      proxy's public address;
 *   5. sends turbotunnel's token, its client id and tor's TLS handshake (KCP and smux framing) through
 *      it; the proxy forwards them over a WebSocket to the relay endpoint, which records them.
 *
 * There it stops: the relay is not a snowflake server (no turbotunnel KCP/smux session, no bridge ORPort
 * behind it), because Debian packages none (only the client, lyrebird, and the proxy). Nothing answers
 * the client, lyrebird drops the proxy after its idle timeout and asks for another, and tor never gets
 * past "Connected to a relay"; the box stays closed. The test asserts exactly that, and that the WAN
 * capture holds only tor's uid's snowflake traffic: DNS to the lease's resolver, TCP 443 to the front,
 * UDP to the STUN server and the proxy. Last the firewall's side: as tor's uid, UDP to private and CGNAT
 * addresses and to ports 53 and 123 of public ones is refused in the box, while the STUN server answers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import {
  SNOWFLAKE_ADDR,
  SNOWFLAKE_BROKER_HOST,
  SNOWFLAKE_FINGERPRINT,
  SNOWFLAKE_FRONT_HOST,
  SNOWFLAKE_RELAY_URL,
  SNOWFLAKE_SIM_LINE,
  TURBOTUNNEL_TOKEN_HEX,
} from '../../scripts/sim/snowflake-world.js';
import { ADDR, HOSTNAME, uniquePrefix, type World } from '../../scripts/sim/world.js';
import { describeFrame, parsePcap, rootSkipReason } from '../helpers/netns.js';
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
  'snowflake-proxy',
  'turnserver',
  'setpriv',
]);

/**
 * One UDP datagram from namespace `ns` as `user` (setpriv): 'EPERM' when the box's output hook refused
 * it, 'answered' when a reply came within 2 s, else 'silent'. Test code; only to the world's addresses.
 */
async function udpProbe(w: World, ns: string, user: string, host: string, port: number, hex: string) {
  if (!/^[0-9.]{7,15}$/.test(host) || !/^[0-9a-f]*$/.test(hex)) throw new Error('bad probe');
  const script = `
const s = require('node:dgram').createSocket('udp4');
const timer = setTimeout(() => { console.log('silent'); s.close(); }, 2000);
s.on('message', () => { clearTimeout(timer); console.log('answered'); s.close(); });
s.send(Buffer.from(${JSON.stringify(hex)}, 'hex'), ${port}, ${JSON.stringify(host)}, (err) => {
  if (err) { clearTimeout(timer); console.log(err.code === 'EPERM' ? 'EPERM' : 'error ' + err.code); s.close(); }
});
`;
  const args = [`--reuid=${user}`, `--regid=${user}`, '--clear-groups', process.execPath, '-e', script];
  return (await w.exec(ns, 'setpriv', args, 15_000)).trim();
}

/** A STUN binding request (RFC 5389): type 1, no attributes, the magic cookie, a transaction id. */
const STUN_BINDING = `00010000${'2112a442'}${'6f6e696f6e626f7831323334'}`;

t.test(
  'snowflake behind the censor: offer, proxy, data channel and the relay, then no server',
  { skip, timeout: 600_000 },
  async (t) => {
    const dir = tmpDir(t);
    const t0 = Date.now();
    const since = () => `${((Date.now() - t0) / 1000).toFixed(1)} s after the world began`;
    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      censored: true,
      snowflake: true,
      boxConfig: () => {
        const cfg = defaultConfig();
        return { ...cfg, tor: { ...cfg.tor, useBridges: true, bridges: [SNOWFLAKE_SIM_LINE] } };
      },
    });
    const sf = world.snowflake;
    if (!sf) throw new Error('no snowflake world');
    t.equal(sf.line, SNOWFLAKE_SIM_LINE);
    const boxMac = await macOf(world, world.netns.box, 'eth0');
    const brokerLog = () => readFileSync(sf.brokerLog, 'utf8');

    // the firewall opened what snowflake needs, for tor's uid only
    const udpOpening =
      /meta skuid (\d+) ip daddr != \{[^}]*\} ip saddr != 10\.42\.0\.0\/24 udp dport != \{ 53, 123 \} accept/;
    const rules = await until(
      "the firewall's snowflake opening",
      async () =>
        udpOpening.exec(await world.exec(world.netns.box, 'nft', ['list', 'table', 'inet', 'onionbox'])),
      60_000,
    );
    t.ok(
      rules,
      "UDP to public addresses but ports 53 and 123, never from the LAN's address, for tor's uid only",
    );

    // 1-2: the client's offer reached the broker, fronted, from the box's WAN address
    const client = await until(
      "the client's offer at the broker",
      async () =>
        /^BROKER CLIENT from (\S+) sni (\S+) host (\S+) version (\S+) nat (\S+) fingerprint (\S+) candidates (.*)$/m.exec(
          brokerLog(),
        ),
      240_000,
    );
    t.comment(`the offer at the broker ${since()}`);
    t.equal(client[1], ADDR.boxWan, "the offer came from the box's WAN address");
    t.equal(client[2], SNOWFLAKE_FRONT_HOST, 'TLS went to the front (SNI)');
    t.equal(client[3], SNOWFLAKE_BROKER_HOST, 'the request inside named the broker (domain fronting)');
    t.equal(client[4], '1.0', 'the versioned encoding');
    t.equal(client[6], SNOWFLAKE_FINGERPRINT, "the bridge's fingerprint from the line");
    const offered = JSON.parse(client[7] ?? '[]') as string[];
    t.ok(offered.length > 0, `the offer carries ICE candidates (${offered.join(', ')})`);
    t.ok(
      offered.every((c) => c.startsWith(`udp ${ADDR.boxWan}:`)),
      "every candidate is the box's WAN address (host, and server-reflexive from coturn)",
    );
    t.ok(
      offered.some((c) => c.endsWith(' srflx')),
      "a server-reflexive candidate: the client's STUN query to coturn was answered",
    );

    // 3: the proxy polled, was matched and given the relay, and answered
    const match = await until(
      'the proxy matched',
      async () =>
        /^BROKER MATCH proxy (\S+) from (\S+) .* version (\S+) type (\S+) .* relay (\S+)$/m.exec(brokerLog()),
      60_000,
    );
    t.equal(match[2], SNOWFLAKE_ADDR.proxy, 'the proxy polled from its own address');
    t.equal(match[3], '1.3', "snowflake-proxy 2.5.1's poll version");
    t.equal(match[4], 'standalone');
    t.equal(match[5], SNOWFLAKE_RELAY_URL, "the broker gave the proxy the world's relay");
    const answered = await until(
      "the proxy's answer delivered to the client",
      async () =>
        /^BROKER ANSWER proxy (\S+) .* delivered$/m.test(brokerLog()) &&
        /^BROKER CLIENT ANSWERED candidates (.*)$/m.exec(brokerLog()),
      60_000,
    );
    const answer = JSON.parse(answered[1] ?? '[]') as string[];
    t.ok(
      answer.length > 0 && answer.every((c) => c.startsWith(`udp ${SNOWFLAKE_ADDR.proxy}:`)),
      `the answer's candidates are the proxy's public address (${answer.join(', ')})`,
    );

    // 4: the data channel opened (the proxy's log), 5: the client's bytes reached the relay
    const proxyLog = await until(
      'the data channel open and the relay dialled',
      async () => {
        const text = readFileSync(sf.proxyLog, 'utf8');
        return /OnOpen channel/.test(text) && /connected to relay: /.test(text) ? text : null;
      },
      60_000,
    );
    t.match(proxyLog, /snowflake-proxy 2\.5\.1/, "Debian's snowflake-proxy");
    t.match(proxyLog, /Connection successful\./, 'ICE and DTLS connected');
    const relay = await until(
      "tor's TLS handshake at the relay",
      async () => (/^RELAY TLS-CLIENT-HELLO in message \d+/m.test(brokerLog()) ? brokerLog() : null),
      60_000,
    );
    t.comment(`tor's TLS ClientHello at the relay ${since()}`);
    t.match(
      relay,
      /^RELAY TLS-CLIENT-HELLO in message \d+ at byte \d+$/m,
      "tor's TLS handshake in the client's bytes",
    );
    t.match(
      relay,
      new RegExp(
        `^RELAY CONNECT /\\?client_ip=${ADDR.boxWan.replaceAll('.', '\\.')}(%3A\\d+)? from ${SNOWFLAKE_ADDR.proxy.replaceAll('.', '\\.')}$`,
        'm',
      ),
      "the proxy opened the relay's WebSocket, naming the box's address as the client",
    );
    t.match(
      relay,
      new RegExp(`^RELAY MESSAGE 1 8 bytes \\(total \\d+\\) ${TURBOTUNNEL_TOKEN_HEX}$`, 'm'),
      "the first message is turbotunnel's token",
    );
    t.match(relay, /^RELAY MESSAGE 2 8 bytes \(total \d+\) [0-9a-f]{16}$/m, 'then the client id');

    // where it stops: no snowflake server answers, tor stays at "Connected to a relay", the box closed
    const torLog = join(dir, 'onionbox-tor.log');
    const stale = await until(
      'lyrebird gives the silent proxy up',
      async () =>
        /no messages received, closing stale connection/.test(readFileSync(torLog, 'utf8')) ? true : null,
      90_000,
    );
    t.ok(stale, 'nothing came back through the proxy: lyrebird closes it as stale and asks for another');
    const status = await boxStatus(world);
    t.not(status.state, 'routing', 'the box never routes through snowflake (no server in this world)');
    t.notMatch(
      readFileSync(torLog, 'utf8'),
      /Bootstrapped (1[5-9]|[2-9]\d|100)%/,
      'tor got no further than 10%',
    );
    t.equal(await lanCurl(world, `http://${HOSTNAME}/ip`, 5), null, 'the LAN device reaches nothing');

    // the firewall's side, on the running box, as tor's uid
    const box = world.netns.box;
    t.equal(
      await udpProbe(world, box, 'debian-tor', SNOWFLAKE_ADDR.stun, 3478, STUN_BINDING),
      'answered',
      "as tor's uid, UDP to a public STUN server is allowed (coturn answers)",
    );
    t.equal(
      await udpProbe(world, box, 'onionbox', SNOWFLAKE_ADDR.stun, 3478, STUN_BINDING),
      'EPERM',
      "as onionboxd's user the same datagram is refused: the opening is tor's uid's only",
    );
    for (const [host, port, what] of [
      ['10.1.2.3', 40000, 'RFC 1918 (10/8)'],
      ['172.16.5.5', 40000, 'RFC 1918 (172.16/12)'],
      ['192.168.1.1', 40000, 'RFC 1918 (192.168/16)'],
      ['100.64.1.1', 40000, 'CGNAT (100.64/10)'],
      ['10.42.0.2', 40000, "the LAN's device"],
      ['169.254.1.1', 40000, 'link-local'],
      ['224.0.0.251', 5353, 'multicast'],
      [SNOWFLAKE_ADDR.stun, 53, 'port 53 of a public address (not the resolver)'],
      [SNOWFLAKE_ADDR.stun, 123, 'port 123 (NTP) of a public address'],
    ] as const) {
      t.equal(
        await udpProbe(world, box, 'debian-tor', host, port, STUN_BINDING),
        'EPERM',
        `as tor's uid, UDP to ${what} is refused in the box`,
      );
    }

    await world.stop();
    const frames = parsePcap(readFileSync(world.captureFile ?? ''));
    const fromBox = frames.filter((f) => f.srcMac === boxMac && f.etherType === 0x0800);
    const dhcp = (f: (typeof frames)[number]) => f.proto === 17 && f.sport === 68 && f.dport === 67;
    const dns = (f: (typeof frames)[number]) => f.dst === ADDR.dns && f.dport === 53;
    const tcp = fromBox.filter((f) => f.proto === 6 && !dns(f));
    t.ok(tcp.length > 0, `TCP to the broker's front (${tcp.length} frames)`);
    t.same(
      [...new Set(tcp.map((f) => `${f.dst}:${f.dport}`))],
      [`${SNOWFLAKE_ADDR.broker}:443`],
      "every TCP packet went to the front's port 443 (no relay, no bridge: tor dials only its snowflake line)",
    );
    const udp = fromBox.filter((f) => f.proto === 17 && !dhcp(f) && !dns(f));
    t.ok(
      udp.some((f) => f.dst === SNOWFLAKE_ADDR.proxy),
      'the data channel: UDP from the box to the proxy',
    );
    t.ok(
      frames.some((f) => f.src === SNOWFLAKE_ADDR.proxy && f.dst === ADDR.boxWan && f.proto === 17),
      'and from the proxy to the box',
    );
    t.same(
      [
        ...new Set(
          udp.map((f) => f.dst).filter((d) => d !== SNOWFLAKE_ADDR.proxy && d !== SNOWFLAKE_ADDR.stun),
        ),
      ],
      [],
      'UDP only to the STUN server and the proxy, besides DNS and DHCP',
    );
    t.same(
      udp.filter((f) => f.src !== ADDR.boxWan || f.dport === 53 || f.dport === 123).map(describeFrame),
      [],
      "all of it from the box's WAN address, none to ports 53 or 123",
    );
    t.same(
      fromBox.filter((f) => f.proto !== 6 && f.proto !== 17).map(describeFrame),
      [],
      'no other IPv4 protocol',
    );
    t.ok(fromBox.some(dns), "DNS went to the lease's resolver");
  },
);
