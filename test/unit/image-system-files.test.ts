/**
 * The image takes the firmware's system files from firmware/system/ and NetworkManager's files from
 * firmware/net's renderers, never from copies: every file there has a place, the paths the units name
 * are the paths the files land at, and the masked units include the firmware's own list.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { defaultConfig } from '../../firmware/config/schema.js';
import { renderEthernetKeyfile, renderNetworkManagerConf } from '../../firmware/net/render.js';
import { IMAGE_MASKED_UNITS } from '../../images/recipe.js';
import { ImageRecipeError } from '../../images/render.js';
import {
  MASKED_UNITS,
  maskedUnits,
  NETWORK_UNITS,
  networkManagerFiles,
  parseUnitList,
  placeSystemFile,
  placeSystemFiles,
} from '../../images/system-files.js';

const systemDir = fileURLToPath(new URL('../../firmware/system/', import.meta.url));
const systemFiles = readdirSync(systemDir, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile())
  .map((e) => join(e.parentPath, e.name).slice(systemDir.length));

t.test('every file in firmware/system/ has a place in the image', async (t) => {
  t.ok(systemFiles.length >= 5, `${systemFiles.length} files`);
  const placed = placeSystemFiles(systemFiles);
  for (const f of systemFiles) {
    if (f === 'masked-units.txt') continue; // read by the build: the units to mask
    t.ok(
      placed.some((p) => p.src === f),
      `${f} is installed`,
    );
  }
  const dests = placed.map((p) => p.dest);
  t.equal(new Set(dests).size, dests.length, 'no two files at one path');
  for (const p of placed) t.notMatch(p.dest, /^\//, `${p.dest} is relative to the root`);
});

t.test('the units find what they name where the image puts it', async (t) => {
  const placed = placeSystemFiles(systemFiles);
  const units = systemFiles.filter((f) => f.endsWith('.service'));
  t.ok(units.includes('systemd/onionboxd.service'));
  t.ok(units.includes('systemd/onionbox-lockdown.service'));
  for (const u of units) {
    const text = readFileSync(join(systemDir, u), 'utf8');
    const named = [...text.matchAll(/^Exec[A-Za-z]+=[-+!@:]*\S+ .*?(\/etc\/onionbox\/\S+)/gm)].map(
      (m) => m[1],
    );
    for (const path of named) {
      t.ok(
        placed.some((p) => `/${p.dest}` === path),
        `${u} names ${path}, which the image installs`,
      );
    }
  }
  const lockdown = readFileSync(join(systemDir, 'systemd/onionbox-lockdown.service'), 'utf8');
  t.match(lockdown, /ExecStart=\/usr\/sbin\/nft -f \/etc\/onionbox\/lockdown\.nft/);
  const daemon = readFileSync(join(systemDir, 'systemd/onionboxd.service'), 'utf8');
  t.match(daemon, /ExecStopPost=\+\/usr\/sbin\/nft -f \/etc\/onionbox\/lockdown\.nft/);
  t.match(daemon, /^User=onionbox$/m);
  t.match(daemon, /--tor-data-dir \/var\/lib\/tor/);
  // the board's lines and bus are handed to that user by a root step before the daemon starts
  t.match(
    daemon,
    /^ExecStartPre=-\+\/usr\/bin\/node \/opt\/onionbox\/dist\/firmware\/cli\/main\.js --state-dir \/var\/lib\/onionbox board handover --user onionbox$/m,
  );
  // and, in QEMU only, the emulator's test network (fw_cfg); the step is a no-op on a Pi
  t.match(
    daemon,
    /^ExecStartPre=-\+\/usr\/bin\/node \/opt\/onionbox\/dist\/firmware\/cli\/main\.js fw-cfg handover --user onionbox$/m,
  );
});

t.test('the lockdown drop-in goes to every unit that brings a link up', async (t) => {
  const p = placeSystemFile('systemd/onionbox-network-requires-lockdown.conf');
  t.same(
    p.map((x) => x.dest),
    NETWORK_UNITS.map((u) => `etc/systemd/system/${u}.d/onionbox-lockdown.conf`),
  );
  t.ok(NETWORK_UNITS.includes('NetworkManager.service'));
  t.ok(NETWORK_UNITS.includes('hostapd.service'));
  t.same(placeSystemFile('masked-units.txt'), []);
  t.same(placeSystemFile('60-onionbox.conf'), [{ dest: 'etc/sysctl.d/60-onionbox.conf', mode: 0o644 }]);
  t.same(placeSystemFile('modules-load.d/onionbox-board.conf'), [
    { dest: 'etc/modules-load.d/onionbox-board.conf', mode: 0o644 },
  ]);
  t.match(readFileSync(join(systemDir, 'modules-load.d/onionbox-board.conf'), 'utf8'), /^i2c-dev$/m);
});

t.test('a file without a place stops the build, naming the file and the fix', async (t) => {
  for (const bad of ['README', 'systemd/evil.sh', 'tor.nft', '../etc/passwd', 'systemd/x.conf']) {
    t.throws(() => placeSystemFile(bad), ImageRecipeError, bad);
  }
  t.throws(() => placeSystemFiles(['onionbox-lockdown.nft', 'new-thing.txt']), {
    message: /firmware\/system\/new-thing\.txt has no place in the image.*placeSystemFile/,
  });
});

t.test('masked units: the firmware list and the image own, once each', async (t) => {
  const firmware = parseUnitList(readFileSync(join(systemDir, 'masked-units.txt'), 'utf8'));
  for (const u of firmware) t.ok(MASKED_UNITS.includes(u), `${u} (firmware list) masked`);
  for (const u of IMAGE_MASKED_UNITS) t.ok(MASKED_UNITS.includes(u), `${u} (image) masked`);
  t.equal(new Set(MASKED_UNITS).size, MASKED_UNITS.length);
  t.same(maskedUnits('# c\nb.service\n\na.timer # x\n', ['b.service', 'c.socket']), [
    'a.timer',
    'b.service',
    'c.socket',
  ]);
  t.throws(() => parseUnitList('nftables.service; rm -rf /\n'), ImageRecipeError);
  t.throws(() => parseUnitList('../x.service\n'), ImageRecipeError);
});

t.test('NetworkManager files are what the firmware renders for the default configuration', async (t) => {
  const net = defaultConfig().network;
  const files = networkManagerFiles();
  t.equal(files.length, 2);
  const conf = files.find((f) => f.dest.startsWith('etc/NetworkManager/conf.d/'));
  const wan = files.find((f) => f.dest.startsWith('etc/NetworkManager/system-connections/'));
  t.equal(conf?.text, renderNetworkManagerConf({ unmanaged: [net.lanInterface] }));
  t.equal(wan?.text, renderEthernetKeyfile({ interface: net.wanInterface }));
  t.equal(wan?.mode, 0o600, 'NetworkManager ignores keyfiles others can read');
  t.equal(wan?.dest, `etc/NetworkManager/system-connections/onionbox-wan-${net.wanInterface}.nmconnection`);
  t.match(conf?.text ?? '', /\[connectivity\]\nenabled=false/);
  t.match(conf?.text ?? '', /dns=none/);
  t.match(wan?.text ?? '', /\[ipv6\]\nmethod=disabled/);
  t.match(wan?.text ?? '', /dhcp-send-hostname=false/);
  const other = networkManagerFiles({ lanInterface: 'eth1', wanInterface: 'eth0' });
  t.match(other[0]?.text ?? '', /unmanaged-devices=interface-name:eth1/);
  t.throws(() => networkManagerFiles({ lanInterface: 'eth1;x', wanInterface: 'eth0' }));
});
