/**
 * The test network of an emulated box: QEMU hands it over as firmware data (`-fw_cfg
 * name=opt/onionbox/test-network,file=...`), never as a file on the SD card, so that nothing written to a
 * card can point a Pi's tor at another network. A Pi has no fw_cfg device: the same code finds nothing.
 *
 * - `fwCfgHandover` (root, onionboxd.service's ExecStartPre=+): only when the device tree names QEMU's
 *   fw_cfg device, loads the `qemu_fw_cfg` module and gives the one entry to the firmware's user (the
 *   kernel makes it 0400 root). On a Pi it does nothing at all: no module is loaded.
 * - `firmwareTestNetwork` (onionboxd): reads that entry if it exists and validates it with the same
 *   schema as `--test-network FILE` (parseTestNetwork).
 */
import { chmod, chown, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { obxError } from '../errors.js';
import { exec } from '../lib/exec.js';
import { parseTestNetwork, type TestNetwork } from './test-network.js';

export const FW_CFG_NAME = 'opt/onionbox/test-network';
export const FW_CFG_TEST_NETWORK = `/sys/firmware/qemu_fw_cfg/by_name/${FW_CFG_NAME}/raw`;
export const DEVICE_TREE = '/sys/firmware/devicetree/base';
/** The entry may be at most this long (the schema allows 100 torrc lines). */
const MAX_BYTES = 64 * 1024;

/** Whether the device tree holds QEMU's fw_cfg device (`fw-cfg@ADDR`, compatible "qemu,fw-cfg-mmio"). */
export async function hasFwCfgDevice(dtRoot = DEVICE_TREE): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dtRoot);
  } catch {
    return false; // no device tree (ACPI) or none readable: not an emulated box we know
  }
  for (const n of names.filter((x) => x.startsWith('fw-cfg@'))) {
    const compatible = await readFile(join(dtRoot, n, 'compatible'), 'latin1').catch(() => '');
    if (compatible.split('\0').includes('qemu,fw-cfg-mmio')) return true;
  }
  return false;
}

export interface FwCfgHandoverResult {
  /** `no-device` on every Pi; `no-entry` in an emulator started without a test network. */
  outcome: 'no-device' | 'no-entry' | 'handed';
  path: string;
}

/** Root step: the fw_cfg entry, when the emulator gave one, becomes readable by uid:gid (mode 0400). */
export async function fwCfgHandover(o: {
  uid: number;
  gid: number;
  dtRoot?: string;
  entry?: string;
  modprobe?: () => Promise<void>;
  waitMs?: number;
}): Promise<FwCfgHandoverResult> {
  const entry = o.entry ?? FW_CFG_TEST_NETWORK;
  if (!(await hasFwCfgDevice(o.dtRoot))) return { outcome: 'no-device', path: entry };
  const modprobe =
    o.modprobe ??
    (async () => {
      const r = await exec('modprobe', ['qemu_fw_cfg'], { timeoutMs: 20_000 });
      if (!r.ok) throw obxError('TOR_VALUE_INVALID', `modprobe qemu_fw_cfg: ${r.stderr.trim() || r.error}`);
    });
  await modprobe();
  // the module's probe adds the by_name tree; give it a moment
  const end = Date.now() + (o.waitMs ?? 5000);
  for (;;) {
    const s = await stat(entry).catch(() => null);
    if (s?.isFile()) break;
    if (Date.now() > end) return { outcome: 'no-entry', path: entry };
    await sleep(100);
  }
  await chown(entry, o.uid, o.gid);
  await chmod(entry, 0o400);
  return { outcome: 'handed', path: entry };
}

/**
 * The emulator's test network, or undefined when there is none (every Pi, and an emulator started
 * without one). A present but invalid entry throws OBX_ERR_TOR_VALUE_INVALID: the daemon does not start.
 */
export async function firmwareTestNetwork(entry = FW_CFG_TEST_NETWORK): Promise<TestNetwork | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(entry);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw obxError('TOR_VALUE_INVALID', `test network from fw_cfg: ${(err as Error).message}`);
  }
  if (buf.length > MAX_BYTES) throw obxError('TOR_VALUE_INVALID', 'test network from fw_cfg: too long');
  return parseTestNetwork(buf.toString('utf8'));
}
