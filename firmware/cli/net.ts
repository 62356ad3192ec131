/**
 * `onionbox net render hostapd|dnsmasq`: print the access point's hostapd.conf or the LAN's dnsmasq.conf
 * for the given values. Every value goes through firmware/net/grammar.ts first: a bad one prints a clear
 * error on stderr, exits non-zero and prints nothing on stdout. The renderers load only when these run.
 *
 * `onionbox net set --wan IF | --lan IF | --lan-addr A.B.C.D/N`: change the box's WAN or LAN through
 * onionboxd (the same path as the page: lockdown while it changes, back to routing once tor is ready
 * again; firmware/net/change.ts). It waits for the whole change (tor may take a minute to reconnect).
 */

import { obxError } from '../errors.js';
import { type CliOptions, parseCliArgs } from './args.js';
import { daemonCall } from './status.js';
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

export const netSetCommand: CliCommand = {
  name: 'net set',
  summary: "Change the box's WAN or LAN interface or LAN address (through lockdown)",
  usage: 'onionbox net set [--wan IF] [--lan IF] [--lan-addr A.B.C.D/N]',
  async run(argv, ctx) {
    const v = parse(
      argv,
      { wan: { type: 'string' }, lan: { type: 'string' }, 'lan-addr': { type: 'string' } },
      [],
    );
    const args: Record<string, unknown> = {};
    if (v.wan !== undefined) args.wanInterface = v.wan;
    if (v.lan !== undefined) args.lanInterface = v.lan;
    const cidr = v['lan-addr'];
    if (cidr !== undefined) {
      const m = /^([0-9.]{7,15})\/([0-9]{1,2})$/.exec(cidr);
      if (!m) throw obxError('CLI_USAGE', '--lan-addr must be A.B.C.D/N');
      args.lanAddress = m[1];
      args.lanPrefix = Number(m[2]);
    }
    if (Object.keys(args).length === 0) throw obxError('CLI_USAGE', 'give --wan, --lan or --lan-addr');
    // tor's reconnect may take up to its apply timeout (90 s)
    const result = (await daemonCall(ctx.stateDir, 'net.change', args, 180_000)) as { steps: string[] };
    ctx.out(
      result.steps.length === 0
        ? 'nothing to change\n'
        : `network changed (${result.steps.join(', ')}); the box routes again once tor is ready\n`,
    );
    return 0;
  },
};

export const NET_COMMANDS: readonly CliCommand[] = [
  netRenderHostapdCommand,
  netRenderDnsmasqCommand,
  netSetCommand,
];
