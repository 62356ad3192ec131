/**
 * The control socket's commands (firmware/control/socket.ts carries them): every command the `onionbox`
 * CLI (and, later, a separate web process) may send to onionboxd, its arguments' check and its handler,
 * in this one file. Arguments are checked here before anything runs; the handlers then call the same
 * BoxApi and supervisor methods the page uses. The `ipc` phase (firmware/phases/control.ts) registers
 * them all before the socket listens.
 *
 *   status                     onionboxd's summary (Daemon.status)
 *   board.switch {engaged}     the simulated kill switch           (OBX_ERR_BOARD_NOT_SIMULATED on a Pi)
 *   board.press {holdMs?}      the simulated claim button
 *   board.leds                 the simulated LEDs
 *   box.leakTest               the leak self-test
 *   net.change {wanInterface?, lanInterface?, lanAddress?, lanPrefix?}   a WAN/LAN change
 *   tor.status                 tor's phase, warnings and built circuits
 *   tor.newnym                 new circuits (NEWNYM)
 *   tor.circuits               tor's circuits
 *   tor.check                  "is this Tor?" through tor's SOCKS port
 *   tor.bridges {bridges}      the page's bridge form: the same validation, rollback and storage
 *   update.status              the updater's status (firmware/update/service.ts)
 *   update.check               check now, through tor
 *   update.install {bundle?, manifest?, signature?}   install what is available or ready now, or an
 *                              offline bundle with its manifest and signature (absolute paths the daemon
 *                              can read; the same checks as a download)
 */
import type { BoxApi, CircuitInfo, LeakReport, SimBoardControls } from '../box/api.js';
import type { NetworkChangeInput } from '../box/network-change.js';
import { obxError } from '../errors.js';
import type { TorStatus } from '../tor/supervisor.js';
import type { UpdateStatus } from '../update/service.js';
import type { IpcServer } from './socket.js';

type Register = Pick<IpcServer, 'register'>;

/** What the tor commands need from the supervisor (TorSupervisor implements it). */
export interface TorIpcTarget {
  status(): TorStatus;
  lastWarnings(): string[];
  newIdentity(): Promise<void>;
  circuits(): Promise<CircuitInfo[]>;
}

export interface TorStatusReply extends TorStatus {
  warnings: string[];
  /** Built circuits when tor is connected, else absent. */
  circuits?: CircuitInfo[];
}

/** The box as the commands see it (BoxController). */
export type BoxTarget = BoxApi & {
  readonly sim?: SimBoardControls | undefined;
  settled?(): Promise<void>;
  runLeakTest(): Promise<LeakReport>;
  changeNetwork(input: NetworkChangeInput): Promise<{ steps: string[] }>;
};

/** What the update commands need of the updater (UpdateService implements it). */
export interface UpdateIpcTarget {
  status(): UpdateStatus;
  check(): Promise<UpdateStatus>;
  install(): Promise<UpdateStatus>;
  installFile(bundle: string, manifest: string, signature: string): Promise<UpdateStatus>;
}

/** Everything the commands act on: what the daemon's phases returned. */
export interface ControlTargets {
  status(): Record<string, unknown>;
  box: BoxTarget;
  tor: TorIpcTarget;
  torCheck(): Promise<unknown>;
  updates: UpdateIpcTarget;
}

/** Registers every command (the `ipc` phase, before the socket listens). */
export function registerControlCommands(ipc: Register, t: ControlTargets): void {
  ipc.register('status', async () => t.status());
  registerBoardIpc(ipc, t.box);
  ipc.register('box.leakTest', () => t.box.runLeakTest());
  // `onionbox net set`: the same path as the page's forms (firmware/net/change.ts)
  ipc.register('net.change', async (args) => t.box.changeNetwork(networkChangeArgs(args)));
  registerTorIpc(ipc, t.tor);
  ipc.register('tor.check', () => t.torCheck());
  registerUpdateIpc(ipc, t.updates);
}

/** `update.install`: nothing, or three absolute paths of plain characters. */
export function updateInstallArgs(
  args: Record<string, unknown>,
): { bundle: string; manifest: string; signature: string } | null {
  const keys = ['bundle', 'manifest', 'signature'] as const;
  if (keys.every((k) => args[k] === undefined)) return null;
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = args[k];
    if (typeof v !== 'string' || !/^\/[A-Za-z0-9._/+-]{1,4095}$/.test(v) || v.includes('/../')) {
      throw obxError('BOX_BAD_INPUT', `"${k}" must be an absolute path of plain characters`);
    }
    out[k] = v;
  }
  return {
    bundle: out.bundle as string,
    manifest: out.manifest as string,
    signature: out.signature as string,
  };
}

/** The updater: `onionbox update status|check|install [FILE]`. */
export function registerUpdateIpc(ipc: Register, updates: UpdateIpcTarget): void {
  ipc.register('update.status', async () => updates.status());
  ipc.register('update.check', () => updates.check());
  ipc.register('update.install', async (args) => {
    const files = updateInstallArgs(args);
    return files ? updates.installFile(files.bundle, files.manifest, files.signature) : updates.install();
  });
}

// --- argument schemas ---

/** `board.switch`: {engaged: boolean}. */
function switchArgs(args: Record<string, unknown>): boolean {
  if (typeof args.engaged !== 'boolean') throw obxError('BOX_BAD_INPUT', '"engaged" must be true or false');
  return args.engaged;
}

/** `board.press`: {holdMs?: integer 0..60000}. */
function pressArgs(args: Record<string, unknown>): number {
  const holdMs = args.holdMs === undefined ? 0 : args.holdMs;
  if (typeof holdMs !== 'number' || !Number.isInteger(holdMs) || holdMs < 0 || holdMs > 60_000) {
    throw obxError('BOX_BAD_INPUT', '"holdMs" must be an integer from 0 to 60000');
  }
  return holdMs;
}

/** `tor.bridges`: {bridges: string[] (at most 50)}; the lines themselves are the tor settings' to check. */
function bridgesArgs(args: Record<string, unknown>): string[] {
  const lines = args.bridges;
  if (!Array.isArray(lines) || lines.some((l) => typeof l !== 'string') || lines.length > 50) {
    throw obxError('CONFIG_INVALID', 'bridges must be a list of at most 50 bridge lines');
  }
  return lines as string[];
}

/** `net.change`: the arguments, typed (the plan validates the values). */
export function networkChangeArgs(args: Record<string, unknown>): NetworkChangeInput {
  const out: NetworkChangeInput = {};
  for (const k of ['wanInterface', 'lanInterface', 'lanAddress'] as const) {
    const v = args[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw obxError('NET_VALUE_INVALID', `${k} must be a string`);
    out[k] = v;
  }
  if (args.lanPrefix !== undefined) {
    if (typeof args.lanPrefix !== 'number') throw obxError('NET_VALUE_INVALID', 'lanPrefix must be a number');
    out.lanPrefix = args.lanPrefix;
  }
  return out;
}

// --- the commands, by what they act on ---

/**
 * The simulated board (`onionbox board switch on|off`, `onionbox board press`, LEDs; on a real board they
 * answer OBX_ERR_BOARD_NOT_SIMULATED) and `onionbox tor bridges`.
 */
export function registerBoardIpc(
  ipc: Register,
  controller: BoxApi & { readonly sim?: SimBoardControls | undefined; settled?(): Promise<void> },
): void {
  const sim = (): SimBoardControls => {
    if (!controller.sim) throw obxError('BOARD_NOT_SIMULATED');
    return controller.sim;
  };
  ipc.register('board.switch', async (args) => {
    const engaged = switchArgs(args);
    sim().setSwitch(engaged);
    await controller.settled?.();
    const s = controller.status();
    return { state: s.state, firewallMode: s.firewallMode, killSwitch: s.killSwitch };
  });
  ipc.register('board.press', async (args) => {
    const holdMs = pressArgs(args);
    sim().pressClaimButton(holdMs);
    // What the press approved is for the browser that started the claim (and the OLED), not the CLI.
    return { pressed: true };
  });
  ipc.register('board.leds', async () => sim().leds());
  // The page's bridge form, from the command line: the same validation, rollback and storage.
  ipc.register('tor.bridges', async (args) => {
    const lines = bridgesArgs(args);
    const tor = controller.settings().tor;
    return controller.applyTorSettings({ ...tor, useBridges: lines.length > 0, bridges: lines });
  });
}

/** tor: `onionbox tor status|newnym|circuits`. */
export function registerTorIpc(ipc: Register, sup: TorIpcTarget): void {
  ipc.register('tor.status', async (): Promise<TorStatusReply> => {
    const status = sup.status();
    const reply: TorStatusReply = { ...status, warnings: sup.lastWarnings() };
    if (status.phase !== 'stopped' && status.phase !== 'crashed' && status.phase !== 'failed') {
      reply.circuits = (await sup.circuits().catch(() => [])).filter((c) => c.status === 'BUILT');
    }
    return reply;
  });
  ipc.register('tor.newnym', async () => {
    await sup.newIdentity();
    return { ok: true };
  });
  ipc.register('tor.circuits', async () => sup.circuits());
}
