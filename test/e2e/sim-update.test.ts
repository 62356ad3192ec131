/**
 * Updates in the simulated world (issue 20): the unchanged onionboxd in its namespace, as user onionbox
 * with its unit's capabilities, its image release files given with --release-dir, its configuration naming
 * the release onion service. The release server and that onion service's tor run in the internet
 * namespace. `onionbox update check` finds 1.1.0 at the onion address; with "install and restart at
 * night" the box downloads the bundle through tor at once and verifies it: the sim stops at `ready` (RAUC
 * cannot run without slots; between 02:00 and 05:00 UTC the box tries to install at once, and RAUC's absence
 * is then the reported failure). A bad signature changes nothing. The WAN capture sees only ARP, the DHCP
 * client and TCP to relays: the update traffic is tor's own.
 */
import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { makeOnionKeys } from '../../scripts/privnet/onion-service.js';
import { ADDR, uniquePrefix } from '../../scripts/sim/world.js';
import { describeFrame, parsePcap, rootSkipReason } from '../helpers/netns.js';
import { boxStatus, cli, macOf, startWorld, until, wanLeaks } from '../helpers/sim-world.js';
import { tmpDir } from '../helpers/tmp.js';
import { makeRelease, publish } from '../helpers/update-release.js';

const skip = rootSkipReason(['ip', 'nft', 'tor', 'tcpdump', 'dnsmasq', 'dhclient', 'curl']);
const FIXTURES = new URL('../fixtures/update/', import.meta.url).pathname;

t.test(
  'the box updates from the onion service of the private Tor network',
  { skip, timeout: 480_000 },
  async (t) => {
    const dir = tmpDir(t);
    chmodSync(dir, 0o755);
    // the image's release files, readable by onionboxd's user
    const releaseDir = join(dir, 'etc-onionbox');
    mkdirSync(join(releaseDir, 'release-keys'), { recursive: true, mode: 0o755 });
    writeFileSync(
      join(releaseDir, 'release.json'),
      JSON.stringify({ version: '1.0.0', compatible: 'onionbox-test', built: '2026-11-01T00:00:00Z' }),
      { mode: 0o644 },
    );
    cpSync(join(FIXTURES, 'test-current.pub'), join(releaseDir, 'release-keys', 'current.pub'));
    chmodSync(join(releaseDir, 'release-keys', 'current.pub'), 0o644);
    // the release server's files: first a release whose manifest was changed after signing
    const serverDir = join(dir, 'releases');
    const good = makeRelease('1.1.0', { size: 2 * 1024 * 1024, notes: 'Simulated release.' });
    publish(serverDir, { ...good, manifestText: good.manifestText.replace('Simulated', 'Tampered') });
    const onionDir = join(dir, 'update-onion-hs');
    const onion = await makeOnionKeys(onionDir);

    const world = await startWorld(t, {
      prefix: uniquePrefix(),
      dir,
      capture: true,
      updates: { serverDir, onionDir, releaseDir },
      boxConfig: () => ({
        ...defaultConfig(),
        update: { onion: `http://${onion}/`, mirror: null, policy: 'night' },
      }),
    });
    const boxMac = await macOf(world, world.netns.box, 'eth0');
    await until('routing', async () => (await boxStatus(world)).state === 'routing', 120_000);

    const status = () =>
      JSON.parse(cli(world, ['update', 'status', '--json']).stdout) as Record<string, unknown>;
    t.match(status(), { enabled: true, running: '1.0.0', compatible: 'onionbox-test' });

    // A bad signature behind the onion address: refused, the box unchanged. The onion service's descriptor
    // may take some seconds to be findable: checks that could not reach it are asked again.
    const check = async (): Promise<string> =>
      until(
        'the onion service answered',
        async () => {
          const r = cli(world, ['update', 'check']);
          const out = `${r.stdout}${r.stderr}`;
          return /host unreachable|descriptor|introduction|rendezvous|timed out|UPDATE_BUSY/.test(out)
            ? null
            : out;
        },
        150_000,
      );
    const refused = await check();
    t.match(refused, /OBX_ERR_UPDATE_SIGNATURE_INVALID/, 'the tampered manifest is refused');
    t.match(status(), { phase: 'idle', running: '1.0.0' });

    // The real release: found at the onion address, downloaded through tor at once ("night"), verified.
    publish(serverDir, good);
    const found = await check();
    t.match(found, /1\.1\.0 is available from the onion service/);
    const started = Date.now();
    const end = await until(
      'downloaded and verified',
      async () => {
        const s = status();
        return s.phase === 'ready' || (s.phase === 'idle' && /install failed/.test(String(s.result)))
          ? s
          : null;
      },
      120_000,
    );
    t.comment(
      `2 MiB bundle through the private Tor network (onion service) in the simulator: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    if (end.phase === 'ready') {
      t.match(end.result, /1\.1\.0 is downloaded, verified and ready to install/);
    } else {
      t.match(end.result, /install failed/, 'night: the install was tried and RAUC is absent here');
    }
    t.equal(end.running, '1.0.0', 'the box still runs 1.0.0');
    const serverLog = readFileSync(join(dir, 'update-server.log'), 'utf8');
    t.match(serverLog, /GET \/onionbox-1\.1\.0\.raucb/, 'the bundle came from the release server');

    // the capture: only ARP, the DHCP client and TCP to relays
    const relays = new Set(world.privnet.relayEndpoints().map((r) => `${r.address}:${r.port}`));
    const known = new Set([ADDR.modem, ...world.privnet.relays.map((r) => r.address)]);
    await world.stop();
    const frames = parsePcap(readFileSync(world.captureFile ?? ''));
    const leaks = wanLeaks(frames, { mac: boxMac, addr: ADDR.boxWan, relays, known });
    t.same(leaks.slice(0, 10).map(describeFrame), [], 'nothing but tor left the box on the WAN');
  },
);
