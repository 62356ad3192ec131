/**
 * `onionbox wifi scan|connect|status`: the upstream Wi-Fi from the command line. These run nmcli
 * directly on this machine (as root on the box), not through onionboxd: NetworkManager is already the
 * one owner of the WAN interface, and the commands must work while the daemon is down. The passphrase
 * is never a flag (it would show in the process list): it is read from a file or from stdin.
 * $ONIONBOX_WIFI_INTERFACE stands in for --interface.
 */
import { readFile } from 'node:fs/promises';
import { obxError } from '../errors.js';
import { type CliOptions, parseCliArgs } from './args.js';
import type { CliCommand } from './types.js';

const impl = () => import('../net/wifi.js');

function parse(argv: string[], options: CliOptions) {
  return parseCliArgs(argv, options).values;
}

function iface(v: Record<string, unknown>): string {
  const i = v.interface ?? process.env.ONIONBOX_WIFI_INTERFACE;
  if (typeof i !== 'string') throw obxError('CLI_USAGE', '--interface is required');
  return i;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (chunks.reduce((n, b) => n + b.length, 0) > 4096) throw obxError('CLI_USAGE', 'stdin too long');
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One line of a file or stdin, without its line end (the grammar refuses anything else). */
function firstLine(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export const wifiScanCommand: CliCommand = {
  name: 'wifi scan',
  summary: 'Rescan and list Wi-Fi networks the WAN interface sees (strongest first)',
  usage: 'onionbox wifi scan --interface IF [--json]',
  async run(argv, ctx) {
    const v = parse(argv, { interface: { type: 'string' }, json: { type: 'boolean' } });
    const { NetworkManagerWan } = await impl();
    const list = await new NetworkManagerWan({ interface: iface(v) }).scan();
    if (v.json) {
      ctx.out(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    for (const n of list) {
      const name = n.ssidHex === '' ? '(hidden)' : JSON.stringify(n.ssid);
      ctx.out(
        `${n.inUse ? '*' : ' '} ${String(n.signal).padStart(3)}% ch ${String(n.channel).padEnd(3)} ${(n.security || 'open').padEnd(10)} ${name}\n`,
      );
    }
    if (list.length === 0) ctx.out('no networks\n');
    return 0;
  },
};

export const wifiConnectCommand: CliCommand = {
  name: 'wifi connect',
  summary: 'Join a Wi-Fi network as the WAN (passphrase from a file or stdin, never a flag)',
  usage:
    'onionbox wifi connect --interface IF --ssid SSID [--passphrase-file FILE | --passphrase-stdin] [--hidden]',
  async run(argv, ctx) {
    const v = parse(argv, {
      interface: { type: 'string' },
      ssid: { type: 'string' },
      'passphrase-file': { type: 'string' },
      'passphrase-stdin': { type: 'boolean' },
      hidden: { type: 'boolean' },
    });
    if (typeof v.ssid !== 'string') throw obxError('CLI_USAGE', '--ssid is required');
    if (v['passphrase-file'] !== undefined && v['passphrase-stdin']) {
      throw obxError('CLI_USAGE', 'give --passphrase-file or --passphrase-stdin, not both');
    }
    let passphrase: string | null = null;
    if (typeof v['passphrase-file'] === 'string') {
      try {
        passphrase = firstLine(await readFile(v['passphrase-file'], 'utf8'));
      } catch (err) {
        throw obxError(
          'CLI_USAGE',
          `cannot read the passphrase file: ${(err as NodeJS.ErrnoException).code}`,
        );
      }
    } else if (v['passphrase-stdin']) {
      passphrase = firstLine(await readStdin());
    }
    const { NetworkManagerWan } = await impl();
    const st = await new NetworkManagerWan({ interface: iface(v) }).connect({
      ssid: v.ssid,
      passphrase,
      hidden: v.hidden === true,
    });
    ctx.out(
      `joined ${JSON.stringify(st.ssid ?? v.ssid)} on ${st.interface}: ${st.address ?? 'no address yet'}\n`,
    );
    return 0;
  },
};

export const wifiStatusCommand: CliCommand = {
  name: 'wifi status',
  summary: "The WAN interface's state, address, network and signal",
  usage: 'onionbox wifi status --interface IF [--json]',
  async run(argv, ctx) {
    const v = parse(argv, { interface: { type: 'string' }, json: { type: 'boolean' } });
    const { NetworkManagerWan } = await impl();
    const s = await new NetworkManagerWan({ interface: iface(v) }).status();
    if (v.json) {
      ctx.out(`${JSON.stringify(s, null, 2)}\n`);
      return 0;
    }
    ctx.out(
      `${[
        `interface  ${s.interface} (${s.type})`,
        `state      ${s.state}${s.connection ? ` (${s.connection})` : ''}`,
        `address    ${s.address ?? '-'}${s.gateway ? ` via ${s.gateway}` : ''}`,
        ...(s.ssid !== null ? [`network    ${JSON.stringify(s.ssid)}, signal ${s.signal ?? '?'}%`] : []),
      ].join('\n')}\n`,
    );
    return 0;
  },
};

export const WIFI_COMMANDS: readonly CliCommand[] = [wifiScanCommand, wifiConnectCommand, wifiStatusCommand];
