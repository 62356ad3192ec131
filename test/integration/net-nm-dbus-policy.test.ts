/**
 * The image's D-Bus policy for NetworkManager (firmware/system/dbus-1/onionbox-networkmanager.conf),
 * judged by a real dbus-daemon (test/helpers/dbus-policy.ts): Debian's NetworkManager policy (copied in
 * test/fixtures/net/debian-networkmanager-dbus.conf), ours after it, and a stand-in owning
 * NetworkManager's name. The image runs NetworkManager with auth-polkit=false (no polkitd), so whatever
 * the bus lets through is allowed: onionboxd's user must reach the public API (the upstream Wi-Fi's scan,
 * add, activate, delete, nmcli's secret agent), no other local user anything, and nobody but root the
 * members NetworkManager keeps for root. `onionbox` is played by `nobody`, another local user (the page's,
 * tor's) by `daemon`.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { busCall, DBUS_POLICY_TOOLS, policyBus } from '../helpers/dbus-policy.js';
import { rootSkipReason } from '../helpers/netns.js';

const POLICY = new URL('../../firmware/system/dbus-1/onionbox-networkmanager.conf', import.meta.url).pathname;
const DEBIAN = new URL('../fixtures/net/debian-networkmanager-dbus.conf', import.meta.url).pathname;
const skip = rootSkipReason(DBUS_POLICY_TOOLS);
const NM = 'org.freedesktop.NetworkManager';

const bus = (t: Parameters<typeof policyBus>[0], withOurs: boolean) =>
  policyBus(
    t,
    [
      readFileSync(DEBIAN, 'utf8'),
      ...(withOurs ? [readFileSync(POLICY, 'utf8').replaceAll('user="onionbox"', 'user="nobody"')] : []),
    ],
    NM,
  );

const nm = (user: string, address: string, path: string, member: string, args: string[] = []) =>
  busCall(user, address, NM, path, member, args);

const SETTINGS = '/org/freedesktop/NetworkManager/Settings';
const ROOT = '/org/freedesktop/NetworkManager';
const EMPTY_SETTINGS = '@a{sa{sv}} {}';

/** What onionboxd's nmcli calls: scan, add, activate, delete, read, its secret agent. */
const PUBLIC: [string, string, string[]][] = [
  [ROOT, `${NM}.GetDevices`, []],
  [ROOT, 'org.freedesktop.DBus.Properties.GetAll', [NM]],
  [ROOT, `${NM}.ActivateConnection`, ['@o "/"', '@o "/"', '@o "/"']],
  [SETTINGS, `${NM}.Settings.AddConnection`, [EMPTY_SETTINGS]],
  [SETTINGS, `${NM}.Settings.ListConnections`, []],
  [`${SETTINGS}/1`, `${NM}.Settings.Connection.Delete`, []],
  [`${ROOT}/Devices/3`, `${NM}.Device.Wireless.RequestScan`, ['@a{sv} {}']],
  [`${ROOT}/Devices/3`, `${NM}.Device.Disconnect`, []],
  [`${ROOT}/AgentManager`, `${NM}.AgentManager.Register`, ['"nmcli-connect"']],
];

/** Root's alone in NetworkManager's own policy. */
const ROOT_ONLY: [string, string, string[]][] = [
  [SETTINGS, `${NM}.Settings.LoadConnections`, ['@as []']],
  [SETTINGS, `${NM}.Settings.ReloadConnections`, []],
  [ROOT, `${NM}.SetLogging`, ['"debug"', '"ALL"']],
  [ROOT, `${NM}.Sleep`, ['true']],
];

t.test(
  "onionbox reaches NetworkManager's public API; other users nothing; root everything",
  { skip, timeout: 90_000 },
  async (t) => {
    const address = await bus(t, true);
    for (const [path, member, args] of PUBLIC) {
      t.equal(await nm('nobody', address, path, member, args), '()', `onionbox: ${member}`);
      t.match(
        await nm('daemon', address, path, member, args),
        /AccessDenied/,
        `another user: ${member} refused`,
      );
    }
    for (const [path, member, args] of ROOT_ONLY) {
      t.match(await nm('nobody', address, path, member, args), /AccessDenied/, `onionbox: ${member} refused`);
      t.equal(await nm('root', address, path, member, args), '()', `root: ${member}`);
    }
  },
);

t.test(
  'without our file, any local user may add and activate profiles (NetworkManager would allow it: auth-polkit=false)',
  { skip, timeout: 60_000 },
  async (t) => {
    const address = await bus(t, false);
    t.equal(await nm('daemon', address, SETTINGS, `${NM}.Settings.AddConnection`, [EMPTY_SETTINGS]), '()');
  },
);
