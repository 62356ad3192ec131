/**
 * The emulator's test network as firmware data (firmware/tor/fw-cfg.ts): the root step does nothing
 * without QEMU's fw_cfg device in the device tree (every Pi), and the daemon reads the entry with the
 * same schema as --test-network, finding nothing where there is none.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../../firmware/cli/index.js';
import { firmwareTestNetwork, fwCfgHandover, hasFwCfgDevice } from '../../firmware/tor/fw-cfg.js';
import { tmpDir } from '../helpers/tmp.js';

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
const NETWORK = JSON.stringify({
  torrc: ['TestingTorNetwork 1', 'DirAuthority auth0 orport=5000 no-v2 v3ident=AAAA 198.18.0.10:7000 BBBB'],
  checkUrl: 'http://web.sim.test/api/ip',
});

function deviceTree(dir: string, nodes: Record<string, string>): string {
  const dt = join(dir, 'dt');
  mkdirSync(dt);
  for (const [name, compatible] of Object.entries(nodes)) {
    mkdirSync(join(dt, name));
    writeFileSync(join(dt, name, 'compatible'), compatible);
  }
  return dt;
}

t.test("a Pi's device tree has no fw_cfg device: nothing is loaded or changed", async (t) => {
  const dir = tmpDir(t);
  const dt = deviceTree(dir, { soc: 'simple-bus\0', 'fw-cfg@1000': 'vendor,other-device\0' });
  let probed = 0;
  const r = await fwCfgHandover({ uid, gid, dtRoot: dt, modprobe: async () => void probed++ });
  t.equal(r.outcome, 'no-device');
  t.equal(probed, 0, 'the module is never loaded');
  t.equal(await hasFwCfgDevice(join(dir, 'no-such-dir')), false, 'no device tree at all (ACPI)');
});

t.test("QEMU's fw_cfg device: the module is loaded, the entry handed over 0400", async (t) => {
  const dir = tmpDir(t);
  const dt = deviceTree(dir, { 'fw-cfg@9020000': 'qemu,fw-cfg-mmio\0' });
  t.ok(await hasFwCfgDevice(dt));
  const entry = join(dir, 'raw');
  let probed = 0;
  const none = await fwCfgHandover({
    uid,
    gid,
    dtRoot: dt,
    entry,
    waitMs: 200,
    modprobe: async () => void probed++,
  });
  t.equal(none.outcome, 'no-entry', 'an emulator started without a test network');
  t.equal(probed, 1);
  writeFileSync(entry, NETWORK, { mode: 0o644 });
  const r = await fwCfgHandover({ uid, gid, dtRoot: dt, entry, modprobe: async () => undefined });
  t.equal(r.outcome, 'handed');
  t.equal(statSync(entry).mode & 0o777, 0o400);
  t.equal(statSync(entry).uid, uid);
});

t.test('the daemon reads the entry with the --test-network schema', async (t) => {
  const dir = tmpDir(t);
  t.equal(await firmwareTestNetwork(join(dir, 'absent')), undefined, 'none on a Pi');
  t.equal(await firmwareTestNetwork(join(dir, 'absent', 'raw')), undefined);
  const entry = join(dir, 'raw');
  writeFileSync(entry, NETWORK);
  const n = await firmwareTestNetwork(entry);
  t.equal(n?.torrc[0], 'TestingTorNetwork 1');
  t.equal(n?.checkUrl, 'http://web.sim.test/api/ip');
  writeFileSync(entry, JSON.stringify({ torrc: ['ControlPort 0.0.0.0:9051'] }));
  await t.rejects(
    firmwareTestNetwork(entry),
    { code: 'OBX_ERR_TOR_VALUE_INVALID' },
    'a keyword outside the allowlist',
  );
  writeFileSync(entry, JSON.stringify({ torrc: ['TestingTorNetwork 1'], extra: 1 }));
  await t.rejects(firmwareTestNetwork(entry), { code: 'OBX_ERR_TOR_VALUE_INVALID' }, 'an unknown key');
  writeFileSync(entry, 'x'.repeat(70_000));
  await t.rejects(firmwareTestNetwork(entry), /too long/);
});

t.test('`onionbox fw-cfg handover`: root, a system user, and nothing to do on this machine', async (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const cli = (argv: string[]) => runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  t.equal(await cli(['fw-cfg', 'handover']), 2);
  t.match(err.join(''), /--user NAME .* is required/);
  t.equal(await cli(['fw-cfg', 'handover', '--user', 'x;y']), 2, 'a name outside the allowlist');
  if (process.getuid?.() === 0 && !(await hasFwCfgDevice())) {
    t.equal(await cli(['fw-cfg', 'handover', '--user', 'root']), 0);
    t.match(out.join(''), /no fw_cfg device: nothing to hand over/);
  }
});
