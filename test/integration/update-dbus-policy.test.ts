/**
 * The image's D-Bus policy for RAUC (firmware/system/dbus-1/onionbox-rauc.conf), judged by a real
 * dbus-daemon: a private bus with a system bus's default policy, Debian's rauc-service policy (which lets
 * anyone control RAUC; copied in test/fixtures/update/debian-rauc-service.conf) and ours after it, and a
 * stand-in owning RAUC's name (dbus-test-tool echo answers every call). onionboxd's user may call exactly
 * Installer.InstallBundle; everyone else nothing; root everything. `onionbox` is played by `nobody`,
 * another local user by `daemon` (the policy's user name is the only thing changed).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { busCall, DBUS_POLICY_TOOLS, policyBus } from '../helpers/dbus-policy.js';
import { rootSkipReason } from '../helpers/netns.js';

const POLICY = new URL('../../firmware/system/dbus-1/onionbox-rauc.conf', import.meta.url).pathname;
const DEBIAN = new URL('../fixtures/update/debian-rauc-service.conf', import.meta.url).pathname;
const skip = rootSkipReason(DBUS_POLICY_TOOLS);

const bus = (t: Parameters<typeof policyBus>[0], withOurs: boolean) =>
  policyBus(
    t,
    [
      readFileSync(DEBIAN, 'utf8'),
      ...(withOurs ? [readFileSync(POLICY, 'utf8').replaceAll('user="onionbox"', 'user="nobody"')] : []),
    ],
    'de.pengutronix.rauc',
  );

const rauc = (user: string, address: string, member: string, args: string[]) =>
  busCall(user, address, 'de.pengutronix.rauc', '/', member, args);

t.test(
  'onionbox may call exactly InstallBundle; other users nothing; root everything',
  { skip, timeout: 60_000 },
  async (t) => {
    const address = await bus(t, true);
    const bundle = ['/var/lib/onionbox/updates/b.raucb', '@a{sv} {}'];
    t.equal(await rauc('nobody', address, 'de.pengutronix.rauc.Installer.InstallBundle', bundle), '()');
    for (const [member, args] of [
      ['de.pengutronix.rauc.Installer.Install', ['/x']],
      ['de.pengutronix.rauc.Installer.Mark', ['good', 'booted']],
      ['de.pengutronix.rauc.Installer.GetSlotStatus', []],
      ['org.freedesktop.DBus.Properties.GetAll', ['de.pengutronix.rauc.Installer']],
    ] as const) {
      t.match(
        await rauc('nobody', address, member, [...args]),
        /AccessDenied/,
        `onionbox: ${member} refused`,
      );
    }
    t.match(
      await rauc('daemon', address, 'de.pengutronix.rauc.Installer.InstallBundle', bundle),
      /AccessDenied/,
    );
    t.equal(await rauc('root', address, 'de.pengutronix.rauc.Installer.Mark', ['good', 'booted']), '()');
  },
);

t.test(
  "without our file, Debian's policy lets any user control RAUC (why the image needs it)",
  { skip, timeout: 60_000 },
  async (t) => {
    const address = await bus(t, false);
    t.equal(await rauc('daemon', address, 'de.pengutronix.rauc.Installer.Mark', ['bad', 'other']), '()');
  },
);
