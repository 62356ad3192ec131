/**
 * The access point service against a fake hostapd (no Wi-Fi radio here; test/helpers/bin/fake-hostapd
 * behaves like hostapd in the foreground, including refusing a channel the country forbids) and fake
 * iw/rfkill: the country is set before hostapd starts, a failing config is replaced by the last
 * working one, bad input changes nothing, a crash is restarted, stop ends the PID.
 */
import { readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { AccessPoint } from '../../firmware/net/access-point.js';
import { alive, until } from '../helpers/child.js';
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

t.test('access point lifecycle', async (t) => {
  const dir = tmpDir(t);
  const log = join(dir, 'calls.log');
  process.env.FAKE_HOSTAPD_LOG = log;
  t.teardown(() => {
    delete process.env.FAKE_HOSTAPD_LOG;
  });
  for (const tool of ['iw', 'rfkill']) symlinkSync(helperBin('fake-radio-tool'), join(dir, tool));
  const conf = join(dir, 'hostapd.conf');
  const ap = new AccessPoint({
    settings: AP,
    confPath: conf,
    hostapd: helperBin('fake-hostapd'),
    iw: join(dir, 'iw'),
    rfkill: join(dir, 'rfkill'),
    backoffMs: { initial: 50, max: 200 },
  });
  t.teardown(() => ap.stop());
  t.equal(ap.pid, null, 'the constructor started nothing');
  await ap.start();
  const pid = ap.pid ?? 0;
  t.ok(alive(pid));
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');
  t.same(
    calls().map((l) => l.split(' ').slice(0, 4).join(' ')),
    ['rfkill unblock wlan', 'iw reg set DE', 'start wlan0 DE 6'],
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
  t.match((refused as Error).message, /Could not select hw_mode and channel/);
  t.match(readFileSync(conf, 'utf8'), /^country_code=DE$/m, 'the last working config is back');
  t.match(readFileSync(conf, 'utf8'), /^channel=6$/m);
  t.ok(ap.pid && alive(ap.pid) && ap.pid !== pid, 'and running again');
  t.same(
    calls()
      .slice(-4)
      .map((l) => l.split(' ').slice(0, 4).join(' ')),
    ['iw reg set US', 'start wlan0 US 13', 'iw reg set DE', 'start wlan0 DE 6'],
  );

  await ap.update({ ...AP, channel: 44, security: 'wpa2-wpa3' });
  t.match(
    readFileSync(`${conf}.good`, 'utf8'),
    /^channel=44$/m,
    'a working update becomes the last good one',
  );

  const running = ap.pid ?? 0;
  process.kill(running, 'SIGKILL');
  await until(() => ap.pid !== null && ap.pid !== running);
  t.equal(ap.restarts, 1, 'a crash is restarted');
  const last = ap.pid ?? 0;
  await ap.stop();
  await until(() => !alive(last));
  t.pass('stop ended the PID it started');
});
