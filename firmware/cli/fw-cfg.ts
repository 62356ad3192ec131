/**
 * `onionbox fw-cfg handover --user NAME`: root only, run by onionboxd.service before the daemon starts
 * (ExecStartPre=+). In QEMU, gives the test network the emulator handed over (fw_cfg) to the firmware's
 * user; on a Pi (no fw_cfg device in its device tree) it does nothing and loads nothing
 * (firmware/tor/fw-cfg.ts).
 */
import { fwCfgHandover } from '../tor/fw-cfg.js';
import { rootStepUser } from './board.js';
import type { CliCommand } from './types.js';

export const fwCfgHandoverCommand: CliCommand = {
  name: 'fw-cfg handover',
  summary: "Root, before onionboxd: give an emulator's test network (fw_cfg) to the firmware user",
  usage: 'onionbox fw-cfg handover --user NAME',
  async run(argv, ctx) {
    const { user, owner } = await rootStepUser(argv, 'fw-cfg handover');
    const r = await fwCfgHandover({ uid: owner.uid, gid: owner.gid });
    ctx.out(
      r.outcome === 'handed'
        ? `test network ${r.path} handed to ${user}\n`
        : r.outcome === 'no-entry'
          ? 'fw_cfg device, but no test network in it\n'
          : 'no fw_cfg device: nothing to hand over\n',
    );
    return 0;
  },
};
