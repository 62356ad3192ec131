/**
 * The access point service against a fake hostapd (no Wi-Fi radio here; test/helpers/bin/fake-hostapd
 * behaves like hostapd -B -P, including refusing a channel the country forbids before it forks) run as
 * onionbox-hostapd.service says, by the simulator's stand-in for systemd (scripts/sim/helper-units.ts:
 * the .path trigger, the unit's user and capabilities, its credential), and fake iw/rfkill: the
 * country is set before hostapd restarts, hostapd runs as its own user, a failing config is replaced by
 * the last working one, bad input changes nothing, a crash is the unit's to restart.
 */
import { chmodSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { AccessPoint } from '../../firmware/net/access-point.js';
import { capEff, HelperUnit, uidOf, userName } from '../../scripts/sim/helper-units.js';
import { alive, until } from '../helpers/child.js';
import { rootSkipReason } from '../helpers/netns.js';
import { tmpDir } from '../helpers/tmp.js';

const helperBin = (n: string) => fileURLToPath(new URL(`../helpers/bin/${n}`, import.meta.url));
const AP = {
  interface: 'wlan0',
  ssid: 'Onionbox',
  passphrase: 'correct horse battery',
  country: 'DE',
  channel: 6,
  security: 'wpa2',
};
// the stand-in switches to the unit's user (setpriv): root only
const skip = rootSkipReason(['setpriv']);

t.test('access point lifecycle', { skip }, async (t) => {
  const dir = tmpDir(t);
  chmodSync(dir, 0o711);
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  process.env.FAKE_HOSTAPD_LOG = log;
  t.teardown(() => {
    delete process.env.FAKE_HOSTAPD_LOG;
  });
  for (const tool of ['iw', 'rfkill']) symlinkSync(helperBin('fake-radio-tool'), join(dir, tool));
  const conf = join(dir, 'hostapd.conf');
  const unit = new HelperUnit({
    name: 'hostapd',
    pathMap: { '/var/lib/onionbox': dir, '/run': join(dir, 'run') },
    binary: helperBin('fake-hostapd'),
  });
  unit.start();
  t.teardown(() => unit.stop());
  const ap = new AccessPoint({
    settings: AP,
    confPath: conf,
    pidFile: join(dir, 'run/onionbox-ap/hostapd.pid'),
    iw: join(dir, 'iw'),
    rfkill: join(dir, 'rfkill'),
    settleMs: 300,
    startTimeoutMs: 4000,
  });
  t.equal(ap.pid, null, 'the constructor started nothing');
  await ap.start();
  const pid = ap.pid ?? 0;
  t.ok(alive(pid));
  t.equal(pid, unit.pid(), "the unit's process, from its PID file");
  t.equal(userName(uidOf(pid) ?? -1), 'onionbox-ap', 'hostapd runs as its own user');
  // CAP_NET_ADMIN (12) and CAP_NET_RAW (13), nothing else
  t.equal(capEff(pid), '0000000000003000', 'only NET_ADMIN and NET_RAW');
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');
  t.same(
    calls().map((l) => l.split(' ').slice(0, 5).join(' ')),
    ['rfkill unblock wlan', 'iw reg set DE', 'start wlan0 DE 6 onionbox-ap'],
    'country before hostapd',
  );
  t.equal(statSync(conf).mode & 0o777, 0o600, 'holds the passphrase: 0600');
  t.equal(
    readFileSync(`${conf}.good`, 'utf8'),
    readFileSync(conf, 'utf8'),
    'kept as the last working config',
  );

  const bad = await ap.update({ ...AP, ssid: 'a\nwpa=0' }).catch((e: unknown) => e);
  t.ok(isObxError(bad, 'NET_VALUE_INVALID'));
  t.equal(ap.pid, pid, 'bad input: the running hostapd untouched');

  const refused = await ap.update({ ...AP, country: 'US', channel: 13 }).catch((e: unknown) => e);
  t.ok(isObxError(refused, 'NET_AP_FAILED'), 'hostapd refused the channel');
  t.match((refused as Error).message, /journalctl -u onionbox-hostapd/, "where hostapd's own words are");
  t.match(readFileSync(conf, 'utf8'), /^country_code=DE$/m, 'the last working config is back');
  t.match(readFileSync(conf, 'utf8'), /^channel=6$/m);
  t.ok(ap.pid && alive(ap.pid) && ap.pid !== pid, 'and running again');
  // systemd (Restart=, a second trigger) may start either settings more than once: repeats merged
  const tail = calls()
    .slice(calls().lastIndexOf(calls().find((l) => l.startsWith('iw reg set US')) ?? ''))
    .map((l) => l.split(' ').slice(0, 4).join(' '))
    .filter((l, i, all) => l !== all[i - 1]);
  t.equal(tail[0], 'iw reg set US');
  t.equal(tail[1], 'start wlan0 US 13');
  // (under load a start that systemd's Restart= began before `iw reg set DE` may log after it)
  const regBack = tail.indexOf('iw reg set DE', 2);
  t.ok(regBack > 1, 'the country back to DE after the refused start');
  t.equal(tail.at(-1), 'start wlan0 DE 6', 'then the last working ones');

  await ap.update({ ...AP, channel: 44, security: 'wpa2-wpa3' });
  t.match(
    readFileSync(`${conf}.good`, 'utf8'),
    /^channel=44$/m,
    'a working update becomes the last good one',
  );

  const last = ap.pid ?? 0;
  await ap.stop();
  t.ok(alive(last), "stop ends nothing: hostapd's unit stops with onionboxd's (PartOf=)");
  await unit.stop();
  await until(() => !alive(last));
});
