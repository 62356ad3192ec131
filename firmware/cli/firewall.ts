/**
 * `onionbox firewall render|apply|counters`: the firewall from the command line. render prints the nft
 * script for a mode; apply loads it (one transaction, verified); counters prints the drop counters.
 * The work lives in firmware/firewall/commands.ts, loaded only when one of these commands runs, so that
 * `onionbox status` and friends do not load nft code.
 */
import type { CliCommand } from './types.js';

const RULESET_USAGE =
  '--mode lockdown|connecting|routing|killed --lan-if IF --wan-if IF --lan-addr A.B.C.D/N --tor-uid UID ' +
  '[--relays FILE] [--trans-port N] [--dns-port N] [--web-port N]';

const impl = () => import('../firewall/commands.js');

export const firewallRenderCommand: CliCommand = {
  name: 'firewall render',
  summary: 'Print the nft ruleset for a firewall mode',
  usage: `onionbox firewall render ${RULESET_USAGE}`,
  run: async (argv, ctx) => (await impl()).runRender(argv, ctx),
};

export const firewallApplyCommand: CliCommand = {
  name: 'firewall apply',
  summary: 'Load a firewall mode into the kernel (one transaction, verified)',
  usage: `onionbox firewall apply ${RULESET_USAGE} [--netns NS]`,
  run: async (argv, ctx) => (await impl()).runApply(argv, ctx),
};

export const firewallCountersCommand: CliCommand = {
  name: 'firewall counters',
  summary: 'Print the firewall drop counters (ipv6, invalid, udp, icmp, other)',
  usage: 'onionbox firewall counters [--json] [--netns NS]',
  run: async (argv, ctx) => (await impl()).runCounters(argv, ctx),
};

export const firewallCommands: readonly CliCommand[] = [
  firewallRenderCommand,
  firewallApplyCommand,
  firewallCountersCommand,
];
