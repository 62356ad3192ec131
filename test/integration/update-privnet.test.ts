/**
 * The updater through a real private Tor network (scripts/privnet, on loopback): the release server's
 * files behind an onion service of that network and, as the mirror, the same server reached through the
 * network's exit. The box's own code runs unchanged (UpdateService with torConnect: tor's SocksPort with
 * the updater's SOCKS username); only the install step is a recorder (RAUC needs slots). It fetches from the
 * onion address first; with the onion service's tor stopped, from the mirror; a bad signature behind the
 * onion address changes nothing. Prints the bundle's download time through the network.
 *
 * The mirror here is plain http through the exit: the box's configuration allows only https mirrors (the
 * TLS layer is torConnect's, tested in update-download.test.ts); a test CA the box's Node would trust is
 * not part of this test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import type { UpdateConfig } from '../../firmware/config/schema.js';
import type { Installer } from '../../firmware/update/rauc.js';
import { UPDATE_SOCKS_USERNAME, UpdateService } from '../../firmware/update/service.js';
import { torConnect } from '../../firmware/update/socks5.js';
import { freePorts, startPrivnet } from '../../scripts/privnet/index.js';
import { startOnionService } from '../../scripts/privnet/onion-service.js';
import { tmpDir } from '../helpers/tmp.js';
import { makeRelease, publish, serveRelease, testTrust } from '../helpers/update-release.js';

const BUNDLE_BYTES = 8 * 1024 * 1024;
t.test(
  'updates through the private Tor network: onion service first, then the mirror',
  { timeout: 400_000 },
  async (t) => {
    const dir = tmpDir(t, 'obx-upd-privnet-');
    const releases = join(dir, 'releases');
    mkdirSync(releases);
    const server = await serveRelease(releases);
    t.teardown(() => server.close());
    const net = await startPrivnet({ dir: join(dir, 'net'), exitPorts: [server.port] });
    t.teardown(() => net.stop());

    // the box's tor: a client of the network with a SocksPort on loopback
    const [socksPort] = await freePorts(1);
    const clientDir = join(dir, 'client');
    mkdirSync(clientDir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(clientDir, 'torrc'),
      [
        ...net.clientTorrcLines,
        `DataDirectory ${clientDir}/data`,
        `SocksPort 127.0.0.1:${socksPort}`,
        'Log notice stdout',
        `__OwningControllerProcess ${process.pid}`,
        '',
      ].join('\n'),
    );
    const client: ChildProcess = spawn('tor', ['-f', join(clientDir, 'torrc')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.teardown(() => {
      client.kill('SIGTERM');
    });
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`client tor did not bootstrap\n${log}`)), 120_000);
      client.stdout?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('Bootstrapped 100%')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });

    const onion = await startOnionService({
      dir: join(dir, 'onion'),
      networkLines: net.clientTorrcLines,
      target: `127.0.0.1:${server.port}`,
    });
    t.teardown(() => onion.stop());

    const installed: string[] = [];
    const installer: Installer = {
      install: async (p) => {
        installed.push(p);
      },
      restart: async () => undefined,
    };
    const settings: UpdateConfig = { onion: `http://${onion.hostname}/`, mirror: server.base, policy: 'ask' };
    const deps = {
      dir: join(dir, 'updates'),
      image: { version: '1.0.0', compatible: 'onionbox-test', built: null },
      trust: testTrust(),
      settings: () => settings,
      connect: torConnect({ socksPort: socksPort ?? 0, username: UPDATE_SOCKS_USERNAME, timeoutMs: 60_000 }),
      installer,
      log: pino({ level: 'silent' }),
      bootId: async () => '11111111-1111-4111-8111-111111111111',
      freeBytes: async () => 1e10,
      torReady: () => false,
      fetchTimeoutMs: 60_000,
      stallMs: 30_000,
    };

    // A bad signature behind the onion address: refused, nothing fetched beyond the manifest.
    const good = makeRelease('1.1.0', { size: BUNDLE_BYTES });
    publish(releases, { ...good, manifestText: good.manifestText.replace('fixes', 'fixez') });
    const box = new UpdateService(deps);
    await box.start();
    t.teardown(() => box.stop());
    // The descriptor may take a few seconds to be findable: retry while the onion service is not reached.
    let first: unknown = null;
    for (let i = 0; i < 24; i++) {
      settings.mirror = null; // only the onion service here
      first = await box.check().catch((e: unknown) => e);
      if (
        !/onion service descriptor|introduction|rendezvous|timed out|host unreachable/.test(
          String((first as Error)?.message ?? ''),
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 5000));
    }
    t.match(first, { code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID' }, 'a bad signature is refused');
    t.equal(box.status().phase, 'idle');

    // The good release: found at the onion address, downloaded through tor, handed to the installer.
    publish(releases, good);
    settings.mirror = server.base;
    server.paths.length = 0;
    const st = await box.check();
    t.equal(st.phase, 'available');
    t.equal(st.available?.source, 'the onion service');
    const started = Date.now();
    await box.install();
    const seconds = (Date.now() - started) / 1000;
    t.comment(
      `bundle of ${BUNDLE_BYTES / 1024 / 1024} MiB through the private Tor network (onion service): ${seconds.toFixed(1)} s`,
    );
    t.equal(installed.length, 1);
    t.equal(box.status().phase, 'trial-boot');
    t.ok(
      server.paths.includes('/onionbox-1.1.0.raucb'),
      'the bundle came from the same server, through the onion service',
    );
    await box.stop();

    // The onion service down: a fresh box finds 1.2.0 at the mirror, through the exit.
    await onion.stop();
    publish(releases, makeRelease('1.2.0', { size: 64 * 1024 }));
    const box2 = new UpdateService({ ...deps, dir: join(dir, 'updates2') });
    await box2.start();
    t.teardown(() => box2.stop());
    const st2 = await box2.check();
    t.equal(st2.phase, 'available');
    t.match(st2.lastCheck?.result, /1\.2\.0 is available from the mirror 127\.0\.0\.1/);
  },
);
