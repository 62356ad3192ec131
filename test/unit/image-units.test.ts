/**
 * The image's own root units (images/system/): each runs with only what its job needs, scored by
 * `systemd-analyze security --offline=true` (growroot, which they replace, scored 9.5 as plain root), and
 * the test-only self-test can be switched on by the emulator alone (QEMU's fw_cfg), never by a kernel
 * argument: on a box the command line is built from U-Boot's environment, a file on the writable FAT.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { findCommand } from '../../firmware/cli/index.js';
import { REBOOT_REQUEST_FILE } from '../../firmware/update/rauc.js';
import { GOOD_RECORD_PATH, TRIAL_MINUTES } from '../../firmware/update/trial.js';
import { ENABLED_BY_IMAGE } from '../../images/recipe.js';
import { parseUnit, parseUnitLines } from '../../scripts/sim/unit-file.js';

const dir = new URL('../../images/system/', import.meta.url).pathname;
const ROOT_UNITS: Record<string, { caps: string[]; threshold: number; noPrivateTmp?: string }> = {
  'onionbox-firstboot.service': {
    caps: ['CAP_DAC_OVERRIDE', 'CAP_SYS_ADMIN', 'CAP_SYS_RESOURCE'],
    threshold: 30,
  },
  'onionbox-relayout.service': {
    caps: ['CAP_DAC_OVERRIDE', 'CAP_SYS_ADMIN'],
    threshold: 30,
    // it runs before local-fs-pre.target; PrivateTmp= orders a unit after /var/tmp's mount (a cycle)
    noPrivateTmp: 'before the mounts',
  },
  'onionbox-selftest-early.service': {
    caps: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_NET_ADMIN'],
    threshold: 30,
  },
  'onionbox-selftest.service': {
    caps: ['CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE'],
    threshold: 30,
  },
  'onionbox-mark-good.service': { caps: [], threshold: 15 },
  'onionbox-reboot.service': { caps: [], threshold: 15 },
  'onionbox-trial.service': { caps: [], threshold: 15 },
};

function analyze(unit: string, threshold: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'systemd-analyze',
      ['security', '--offline=true', `--threshold=${threshold}`, '--no-pager', `${dir}${unit}`],
      { timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

for (const [unit, want] of Object.entries(ROOT_UNITS)) {
  t.test(`${unit}: sandboxed to its job`, async (t) => {
    const svc = parseUnit(readFileSync(`${dir}${unit}`, 'utf8')).Service ?? {};
    t.same(svc.NoNewPrivileges, ['yes']);
    t.same(svc.ProtectSystem, ['strict']);
    if (want.noPrivateTmp) {
      t.notOk(svc.PrivateTmp, `no PrivateTmp= (${want.noPrivateTmp})`);
      t.same(svc.ProtectSystem, ['strict'], 'so /tmp and /var/tmp are read-only to it');
    } else t.same(svc.PrivateTmp, ['yes']);
    t.same(svc.ProtectHome, ['yes']);
    t.same([...(svc.CapabilityBoundingSet ?? [])].sort(), want.caps, 'only the capabilities it uses');
    t.notOk(svc.User, 'root (its job needs it) but with the bounding set above');
    t.ok((svc.SystemCallFilter ?? []).includes('@system-service'));
    t.same(svc.SystemCallErrorNumber, ['EPERM']);
    const r = await analyze(unit, want.threshold);
    const score = Number(/Overall exposure level for [^:]+: ([0-9.]+)/.exec(r.out)?.[1]);
    t.ok(score <= want.threshold / 10, `exposure ${score} <= ${want.threshold / 10}`);
    t.equal(r.code, 0, 'systemd-analyze passes the threshold');
  });
}

t.test('the self-test is switched on by QEMU fw_cfg only', async (t) => {
  for (const unit of [
    'onionbox-selftest-early.service',
    'onionbox-selftest.service',
    'onionbox-selftest-wifi.service',
    'onionbox-selftest-update.service',
    'onionbox-selftest-rollback.service',
  ]) {
    const text = readFileSync(`${dir}${unit}`, 'utf8');
    const parsed = parseUnit(text);
    t.notOk(parsed.Unit?.ConditionKernelCommandLine, `${unit}: no kernel-argument switch`);
    const cond = (parsed.Service?.ExecCondition ?? []).join(' ');
    t.match(cond, /devicetree\/base\/fw-cfg@/, `${unit}: needs the emulator's fw-cfg device`);
    t.match(cond, /qemu_fw_cfg\/by_name\/opt\/onionbox\/selftest\/raw/, `${unit}: and the test's item in it`);
  }
  const script = readFileSync(`${dir}onionbox-selftest`, 'utf8');
  t.notMatch(script, /proc\/cmdline.*selftest/, 'the script does not look at the command line either');
  t.match(script, /\[ -e \/sys\/firmware\/qemu_fw_cfg\/by_name\/opt\/onionbox\/selftest\/raw \] \|\|/);
});

t.test('the mark-good trigger carries nothing but "the running slot is good"', async (t) => {
  const path = parseUnit(readFileSync(`${dir}onionbox-mark-good.path`, 'utf8'));
  t.same(path.Path?.PathChanged, ['/run/onionbox/slot-good']);
  const svc = parseUnit(readFileSync(`${dir}onionbox-mark-good.service`, 'utf8')).Service ?? {};
  t.same(svc.ExecStart, ['/usr/bin/rauc', 'status', 'mark-good', 'booted']);
  t.same(svc.PrivateNetwork, ['yes']);
  // then the record of which install was marked good, in RAUC's directory on the data partition
  t.same(parseUnitLines(readFileSync(`${dir}onionbox-mark-good.service`, 'utf8')).Service?.ExecStartPost, [
    '/usr/bin/node --jitless /opt/onionbox/dist/firmware/cli/main.js slot record-good',
  ]);
  t.same(svc.ReadWritePaths, ['/var/lib/rauc'], 'the one writable path');
  t.ok(GOOD_RECORD_PATH.startsWith('/var/lib/rauc/'));
  t.ok(findCommand(['slot', 'record-good']), 'the CLI has the step');
});

/** A unit's node command lines: each runs without the JIT, which MemoryDenyWriteExecute=yes forbids. */
t.test('node in a root unit runs --jitless under MemoryDenyWriteExecute', async (t) => {
  for (const unit of ['onionbox-mark-good.service', 'onionbox-trial.service']) {
    const svc = parseUnitLines(readFileSync(`${dir}${unit}`, 'utf8')).Service ?? {};
    const lines = [...(svc.ExecStart ?? []), ...(svc.ExecStartPost ?? [])].filter((l) =>
      l.startsWith('/usr/bin/node'),
    );
    t.ok(lines.length > 0, `${unit} runs node`);
    for (const l of lines) t.match(l, /^\/usr\/bin\/node --jitless /, `${unit}: ${l}`);
    t.same(svc.MemoryDenyWriteExecute, ['yes']);
  }
});

t.test('the trial check: 15 minutes after boot, root, after a mark-good in flight', async (t) => {
  const timer = parseUnit(readFileSync(`${dir}onionbox-trial.timer`, 'utf8'));
  t.same(timer.Timer?.OnBootSec, [`${TRIAL_MINUTES}min`], 'the same minutes as the code says');
  t.same(timer.Timer?.Unit, ['onionbox-trial.service']);
  t.same(timer.Install?.WantedBy, ['timers.target']);
  t.ok(ENABLED_BY_IMAGE.includes('onionbox-trial.timer'), 'the image enables the timer');
  t.notOk(ENABLED_BY_IMAGE.includes('onionbox-trial.service'), 'the service only runs from the timer');
  const unit = parseUnit(readFileSync(`${dir}onionbox-trial.service`, 'utf8'));
  t.same(parseUnitLines(readFileSync(`${dir}onionbox-trial.service`, 'utf8')).Service?.ExecStart, [
    '/usr/bin/node --jitless /opt/onionbox/dist/firmware/cli/main.js slot trial-check',
  ]);
  t.same(unit.Service?.Type, ['oneshot']);
  t.notOk(unit.Service?.ReadWritePaths, 'it writes nothing itself');
  t.same(unit.Service?.PrivateNetwork, ['yes']);
  t.match(
    (unit.Unit?.After ?? []).join(' '),
    /onionbox-mark-good\.service/,
    'waits for a mark-good in flight',
  );
  t.ok(findCommand(['slot', 'trial-check']), 'the CLI has the step');
});

t.test('the restart after an update: a file in /run, a root oneshot that only reboots', async (t) => {
  const path = parseUnit(readFileSync(`${dir}onionbox-reboot.path`, 'utf8'));
  t.same(path.Path?.PathChanged, [`/run/onionbox/${REBOOT_REQUEST_FILE}`], 'the file the firmware writes');
  const svc = parseUnit(readFileSync(`${dir}onionbox-reboot.service`, 'utf8')).Service ?? {};
  t.same(svc.ExecStart, ['/usr/bin/systemctl', '--no-block', 'reboot']);
  t.same(svc.PrivateNetwork, ['yes']);
  t.ok(ENABLED_BY_IMAGE.includes('onionbox-reboot.path'), 'the image enables its trigger');
});
