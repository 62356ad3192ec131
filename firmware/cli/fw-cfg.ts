/**
 * `onionbox fw-cfg handover --user NAME`: root only, run by onionboxd.service before the daemon starts
 * (ExecStartPre=+). In QEMU, gives the test network the emulator handed over (fw_cfg) to the firmware's
 * user; on a Pi (no fw_cfg device in its device tree) it does nothing and loads nothing
 * (firmware/tor/fw-cfg.ts).
 */
import { obxError } from '../errors.js';
import { fwCfgHandover } from '../tor/fw-cfg.js';
import { systemUser } from '../tor/process.js';
import { parseCliArgs, stringOption } from './args.js';
import type { CliCommand } from './types.js';

export const fwCfgHandoverCommand: CliCommand = {
  name: 'fw-cfg handover',
  summary: "Root, before onionboxd: give an emulator's test network (fw_cfg) to the firmware user",
  usage: 'onionbox fw-cfg handover --user NAME',
  async run(argv, ctx) {
    const user = stringOption(parseCliArgs(argv, { user: { type: 'string' } }).values, 'user');
    if (user === undefined || !/^[a-z_][a-z0-9_-]{0,31}$/.test(user))
      throw obxError('CLI_USAGE', "--user NAME (the firmware's system user) is required");
    if (process.getuid?.() !== 0) throw obxError('CLI_USAGE', 'fw-cfg handover must run as root');
    const owner = await systemUser(user).catch(() => {
      throw obxError('CLI_USAGE', `no system user "${user}"`);
    });
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
