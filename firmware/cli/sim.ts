/**
 * `onionbox sim info [--json]` and `onionbox sim exec -- CMD [ARGS...]`: the running simulator (started
 * by `npm start`, scripts/sim/) as seen from the repository root. The simulator writes its description
 * to `.onionbox-sim/sim.json` (or $ONIONBOX_SIM_DIR/sim.json); these commands read it, check that the
 * simulator's process is alive, and `exec` runs the command as the LAN device (`ip netns exec`, the
 * command as an argument array, never a shell).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { obxError } from '../errors.js';
import { parseCliArgs } from './args.js';
import type { CliCommand } from './types.js';

export const SIM_DIR = '.onionbox-sim';

export interface SimInfo {
  pid: number;
  lan: { netns: string; interface: string; address: string };
  box: { netns: string; lanAddress: string; webPort: number; wanInterface: string; stateDir: string };
  /** `censored`: the simulated ISP drops TCP to every relay (`npm start -- --censored`). */
  internet: { netns: string; hostname: string; censored?: boolean };
  page: { url: string | null };
  [k: string]: unknown;
}

const NETNS = /^[a-z][a-z0-9]{1,9}-(lan|box|inet)$/;

/** Whether a process with this PID exists (signal 0: nothing is sent). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The running simulator's description, or null when none runs (no file, or its process is gone). */
export function readSimInfo(dir = process.env.ONIONBOX_SIM_DIR ?? SIM_DIR): SimInfo | null {
  let info: SimInfo;
  try {
    info = JSON.parse(readFileSync(join(resolve(dir), 'sim.json'), 'utf8')) as SimInfo;
  } catch {
    return null;
  }
  if (!Number.isInteger(info.pid) || info.pid <= 0 || !processAlive(info.pid)) return null;
  if (!NETNS.test(info.lan?.netns ?? '') || typeof info.box?.stateDir !== 'string') return null;
  return info;
}

function requireSim(): SimInfo {
  const info = readSimInfo();
  if (!info) {
    throw obxError('SIM_NOT_RUNNING', 'start it with `npm start` from the repository root');
  }
  return info;
}

export const simInfoCommand: CliCommand = {
  name: 'sim info',
  summary: 'Describe the running simulator (namespaces, addresses, the page)',
  usage: 'onionbox sim info [--json]',
  async run(argv, ctx) {
    const json = parseCliArgs(argv, { json: { type: 'boolean' } }).values.json === true;
    const info = requireSim();
    if (json) {
      ctx.out(`${JSON.stringify(info, null, 2)}\n`);
      return 0;
    }
    ctx.out(
      [
        `simulator pid   ${info.pid}`,
        `page            ${info.page.url ?? '(no host relay)'}`,
        `LAN device      ${info.lan.address} in ${info.lan.netns} (${info.lan.interface})`,
        `box             ${info.box.lanAddress}:${info.box.webPort} in ${info.box.netns}, WAN ${info.box.wanInterface}`,
        `internet        ${info.internet.hostname} in ${info.internet.netns}${info.internet.censored === true ? ', censored (relays blocked, bridges open)' : ''}`,
        `box state       ${info.box.stateDir}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

export const simExecCommand: CliCommand = {
  name: 'sim exec',
  summary: 'Run a command as the LAN device (its DNS and traffic go through the box)',
  usage: 'onionbox sim exec -- CMD [ARGS...]',
  async run(argv, ctx) {
    // Not options: the LAN device's own command line, passed on word for word (after an optional `--`).
    const args = argv[0] === '--' ? argv.slice(1) : argv;
    if (args.length === 0) throw obxError('CLI_USAGE', 'a command to run is required');
    const info = requireSim();
    return new Promise((resolveCode) => {
      const child = spawn('ip', ['netns', 'exec', info.lan.netns, ...args], { stdio: 'inherit' });
      child.once('error', (e) => {
        ctx.err(`onionbox sim exec: ${e.message}\n`);
        resolveCode(1);
      });
      child.once('exit', (code, signal) => resolveCode(code ?? (signal ? 128 : 1)));
    });
  },
};

export const SIM_COMMANDS: readonly CliCommand[] = [simInfoCommand, simExecCommand];
