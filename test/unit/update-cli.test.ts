/**
 * The owner's surfaces of the updater: `onionbox update status|check|install [FILE]` through the real CLI
 * and a real control socket whose update handlers are the daemon's own (registerUpdateIpc) over a recording
 * target; the status in words; the warnings for the page and the OLED line.
 */
import t from 'tap';
import { renderScreen } from '../../board/oled/screens.js';
import { runCli } from '../../firmware/cli/index.js';
import { offlineFiles } from '../../firmware/cli/update.js';
import {
  registerUpdateIpc,
  type UpdateIpcTarget,
  updateInstallArgs,
} from '../../firmware/control/commands.js';
import { IpcServer, socketPath } from '../../firmware/control/socket.js';
import { disabledUpdates, oledWarning } from '../../firmware/phases/update.js';
import { initialState, view } from '../../firmware/state/machine.js';
import type { UpdateStatus } from '../../firmware/update/service.js';
import {
  ageInWords,
  dangerousVersionWarning,
  imageAgeWarning,
  phaseInWords,
} from '../../firmware/update/words.js';
import { tmpDir } from '../helpers/tmp.js';

const NOW = new Date('2026-12-07T10:00:00Z');
const status: UpdateStatus = {
  enabled: true,
  disabledReason: null,
  phase: 'available',
  running: '1.0.0',
  compatible: 'onionbox-rpi3',
  built: '2026-05-01T00:00:00Z',
  target: '1.1.0',
  result: '1.1.0 is available',
  failed: ['0.9.9'],
  lastCheck: {
    at: '2026-12-07T09:30:00.000Z',
    ok: true,
    result: '1.1.0 is available from the onion service',
  },
  nextCheck: '2026-12-08T09:30:00.000Z',
  available: {
    version: '1.1.0',
    released: '2026-12-06T00:00:00Z',
    expires: '2027-01-06T00:00:00Z',
    notes: 'tor 0.4.9.3\nkernel fixes',
    size: 300 * 1024 * 1024,
    source: 'the onion service',
  },
  progress: null,
  policy: 'ask',
};

t.test('onionbox update status|check|install through the control socket', async (t) => {
  const dir = tmpDir(t);
  const ipc = new IpcServer(socketPath(dir));
  const calls: string[] = [];
  const target: UpdateIpcTarget = {
    status: () => status,
    check: async () => {
      calls.push('check');
      return status;
    },
    install: async () => {
      calls.push('install');
      return { ...status, phase: 'trial-boot' };
    },
    installFile: async (b, m, s) => {
      calls.push(`file ${b} ${m} ${s}`);
      return { ...status, phase: 'trial-boot' };
    },
  };
  registerUpdateIpc(ipc, target);
  await ipc.start();
  t.teardown(() => ipc.stop());
  const out: string[] = [];
  const err: string[] = [];
  const ctx = { stateDir: dir, out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
  const run = async (argv: string[]) => {
    out.length = 0;
    return { code: await runCli(argv, ctx), text: out.join('') };
  };
  const st = await run(['update', 'status']);
  t.equal(st.code, 0);
  t.match(st.text, /^running {4}1\.0\.0 for onionbox-rpi3, built 2026-05-01 \(7 months ago\)/);
  t.match(st.text, /policy {5}ask me first/);
  t.match(st.text, /available {2}1\.1\.0 \(released 2026-12-06, 300\.0 MiB, from the onion service\)/);
  t.match(st.text, / {11}kernel fixes/);
  t.match(st.text, /not retried 0\.9\.9/);
  t.match(st.text, /warning {4}This box's software is 7 months old/);
  t.same(JSON.parse((await run(['update', 'status', '--json'])).text).target, '1.1.0');
  await run(['update', 'check']);
  await run(['update', 'install']);
  t.same(calls, ['check', 'install']);
  const file = await run(['update', 'install', '/media/usb/onionbox-1.1.0.raucb']);
  t.equal(file.code, 0);
  t.same(
    calls[2],
    [
      'file /media/usb/onionbox-1.1.0.raucb',
      '/media/usb/onionbox-1.1.0.raucb.manifest.json',
      '/media/usb/onionbox-1.1.0.raucb.manifest.json.minisig',
    ].join(' '),
  );
  t.equal((await run(['update', 'install', 'a', 'b'])).code, 2, 'one FILE at most');
  // the socket refuses paths that are not plain absolute paths, whatever the CLI sent
  t.throws(() => updateInstallArgs({ bundle: '/a', manifest: 'relative', signature: '/c' }), {
    code: 'OBX_ERR_BOX_BAD_INPUT',
  });
  t.throws(() => updateInstallArgs({ bundle: '/a' }), { code: 'OBX_ERR_BOX_BAD_INPUT' });
  t.equal(updateInstallArgs({}), null);
});

t.test('offline files: beside the bundle unless given', async (t) => {
  t.same(offlineFiles('b.raucb', undefined, undefined, '/m'), {
    bundle: '/m/b.raucb',
    manifest: '/m/b.raucb.manifest.json',
    signature: '/m/b.raucb.manifest.json.minisig',
  });
  t.same(offlineFiles('/x/b.raucb', 'm.json', undefined, '/m'), {
    bundle: '/x/b.raucb',
    manifest: '/m/m.json',
    signature: '/m/m.json.minisig',
  });
});

t.test('words: phases, ages, warnings', async (t) => {
  t.equal(ageInWords(new Date('2026-12-06T09:00:00Z'), NOW), '1 day');
  t.equal(ageInWords(new Date('2026-12-07T09:00:00Z'), NOW), 'less than a day');
  t.equal(ageInWords(new Date('2024-11-01T00:00:00Z'), NOW), '2 years');
  t.equal(imageAgeWarning(new Date('2026-07-01T00:00:00Z'), NOW), null, 'five months: no warning');
  t.match(imageAgeWarning(new Date('2026-05-01T00:00:00Z'), NOW), /7 months old/);
  t.equal(imageAgeWarning(null, NOW), null);
  t.match(dangerousVersionWarning('0.4.7.16'), /no longer recommends this box's tor \(0\.4\.7\.16\)/);
  t.match(
    phaseInWords({ ...status, phase: 'ready', policy: 'night' }),
    /installs tonight between 02:00 and 05:00/,
  );
  t.match(
    phaseInWords({
      ...status,
      phase: 'downloading',
      progress: { done: 50 * 1024 * 1024, total: 200 * 1024 * 1024 },
    }),
    /50\.0 MiB of 200\.0 MiB \(25%\)/,
  );
  t.match(
    phaseInWords({ ...status, enabled: false, disabledReason: 'no update source is configured' }),
    /off: no update source/,
  );
  t.match(
    phaseInWords({
      ...status,
      phase: 'fell-back',
      result: '1.1.0 did not reach Tor on its trial boot; the box went back to 1.0.0',
    }),
    /went back to 1\.0\.0/,
  );
});

t.test('the OLED: the warning on the last line once claimed, never over the claim code', async (t) => {
  t.equal(oledWarning(true, true), 'UPDATE: tor outdated');
  t.equal(oledWarning(false, true), 'UPDATE: software old');
  t.equal(oledWarning(false, false), null);
  const base = { ...view(initialState()).screen, lanAddress: '10.42.0.1' };
  const lastLine = (fb: ReturnType<typeof renderScreen>) => {
    let lit = 0;
    for (let y = 55; y < 63; y++) for (let x = 0; x < 128; x++) lit += fb.getPixel(x, y) ? 1 : 0;
    return lit;
  };
  t.equal(lastLine(renderScreen({ ...base, claimCode: null })), 0);
  t.ok(lastLine(renderScreen({ ...base, claimCode: null, updateWarning: 'UPDATE: tor outdated' })) > 0);
  const code = renderScreen({ ...base, claimCode: 'K7P2QXWM' });
  const codeAndWarning = renderScreen({
    ...base,
    claimCode: 'K7P2QXWM',
    updateWarning: 'UPDATE: tor outdated',
  });
  t.equal(lastLine(codeAndWarning), lastLine(code), 'the claim code keeps its line');
});

t.test('an updater that could not start is off and says why; the router is not held up', async (t) => {
  const u = disabledUpdates(
    { version: '1.0.0', compatible: 'onionbox-rpi3', built: new Date('2026-01-01T00:00:00Z') },
    'the updater could not start: EACCES',
  );
  t.match(u.status(), { enabled: false, disabledReason: /EACCES/, running: '1.0.0', phase: 'idle' });
  t.match(phaseInWords(u.status()), /Updates are off: the updater could not start/);
  await t.rejects(u.check(), { code: 'OBX_ERR_UPDATE_NOT_CONFIGURED' });
  await t.rejects(u.install(), { code: 'OBX_ERR_UPDATE_NOT_CONFIGURED' });
  await t.rejects(u.setPolicy('ask'), { code: 'OBX_ERR_UPDATE_NOT_CONFIGURED' });
  t.match(u.warnings()[0], /months old/);
});
