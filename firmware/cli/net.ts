/**
 * `onionbox net render hostapd|dnsmasq`: print the access point's hostapd.conf or the LAN's dnsmasq.conf
 * for the given values. Every value goes through firmware/net/grammar.ts first: a bad one prints a clear
 * error on stderr, exits non-zero and prints nothing on stdout. The renderers load only when these run.
 */
import { type CliOptions, parseCliArgs } from '../args.js';
import { obxError } from '../errors.js';
import type { CliCommand } from './types.js';

/** Every option here is a string. */
function parse(argv: string[], options: CliOptions, required: string[]) {
  return parseCliArgs(argv, options, { required }).values as Record<string, string | undefined>;
}

export const netRenderHostapdCommand: CliCommand = {
  name: 'net render hostapd',
  summary: "Print the access point's hostapd.conf (WPA2-PSK/CCMP; --security wpa2-wpa3 adds SAE)",
  usage:
    'onionbox net render hostapd --interface IF --ssid SSID --passphrase PASS --country CC --channel N ' +
    '[--security wpa2|wpa2-wpa3]',
  async run(argv, ctx) {
    const v = parse(
      argv,
      {
        interface: { type: 'string' },
        ssid: { type: 'string' },
        passphrase: { type: 'string' },
        country: { type: 'string' },
        channel: { type: 'string' },
        security: { type: 'string' },
      },
      ['interface', 'ssid', 'passphrase', 'country', 'channel'],
    );
    const { renderHostapd } = await import('../net/render.js');
    ctx.out(renderHostapd({ ...v, security: v.security ?? 'wpa2' }));
    return 0;
  },
};

export const netRenderDnsmasqCommand: CliCommand = {
  name: 'net render dnsmasq',
  summary: "Print the LAN's dnsmasq.conf (DHCP only: the box as router and DNS)",
  usage:
    'onionbox net render dnsmasq --interface IF --lan-addr A.B.C.D/N [--lease-file PATH] ' +
    '[--lease-seconds N] [--wan-addr A.B.C.D/N]',
  async run(argv, ctx) {
    const v = parse(
      argv,
      {
        interface: { type: 'string' },
        'lan-addr': { type: 'string' },
        'lease-file': { type: 'string' },
        'lease-seconds': { type: 'string' },
        'wan-addr': { type: 'string' },
      },
      ['interface', 'lan-addr'],
    );
    const { renderDnsmasq } = await import('../net/render.js');
    const { parseCidr } = await import('../net/grammar.js');
    const secs = v['lease-seconds'];
    if (secs !== undefined && !/^[0-9]{1,7}$/.test(secs)) {
      throw obxError('CLI_USAGE', '--lease-seconds must be a number of seconds');
    }
    ctx.out(
      renderDnsmasq({
        interface: v.interface,
        lanAddr: v['lan-addr'],
        leaseFile: v['lease-file'],
        leaseSeconds: secs === undefined ? undefined : Number(secs),
        wan: v['wan-addr'] === undefined ? null : parseCidr(v['wan-addr'], 'wanAddr'),
      }),
    );
    return 0;
  },
};

export const NET_COMMANDS: readonly CliCommand[] = [netRenderHostapdCommand, netRenderDnsmasqCommand];
