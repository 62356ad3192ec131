/**
 * The page's commands (firmware/control/web-protocol.ts) on the page socket: each request's arguments
 * are checked against the command's schema before the box sees them, then the same BoxApi method the
 * page called in-process before runs. Every reply carries the Mirror after the command; `web.watch`
 * sends the Mirror now and at each status change. The page gets no command the BoxApi does not offer
 * it: not the claim-button reset, not the CLI's network change, tor or board commands. The updater's
 * commands (`web.update.*`) call the `update` phase's methods of the same name (the UpdateService the CLI
 * uses too); the CLI's offline install from a file is not among them.
 */
import type { PageApi, PageUpdatesApi, SimBoardControls } from '../box/api.js';
import { obxError } from '../errors.js';
import type { IpcServer } from './socket.js';
import {
  checked,
  type Mirror,
  NoArgs,
  WATCH_COMMAND,
  WEB_COMMANDS,
  type WebArgs,
  type WebCommand,
} from './web-protocol.js';

/** The box as the page's commands see it (BoxController). */
export type PageTarget = PageApi & { readonly sim?: SimBoardControls | undefined };

/** Everything the page reads without asking, now (`updates`: the updater the commands were given). */
export function mirrorOf(box: PageTarget, updates?: PageUpdatesApi): Mirror {
  return {
    status: box.status(),
    settings: box.settings() as Mirror['settings'],
    claimed: box.isClaimed(),
    sessionKey: box.sessionKey(),
    lastLeakTest: box.lastLeakTest(),
    sim: box.sim !== undefined,
    updates: updates !== undefined,
  };
}

type Handlers = {
  [C in WebCommand]: (box: PageTarget, args: WebArgs<C>, updates: PageUpdatesApi | undefined) => unknown;
};

const sim = (box: PageTarget): SimBoardControls => {
  if (!box.sim) throw obxError('BOARD_NOT_SIMULATED');
  return box.sim;
};
const updater = (updates: PageUpdatesApi | undefined): PageUpdatesApi => {
  if (!updates) throw obxError('UPDATE_NOT_CONFIGURED', 'this box runs no updater');
  return updates;
};
const done = async (p: Promise<void> | void): Promise<null> => {
  await p;
  return null;
};

/** What each command does: the BoxApi method of the same name. */
const HANDLERS: Handlers = {
  'web.circuits': (box) => box.circuits(),
  'web.counters': (box) => box.counters(),
  'web.newIdentity': (box) => done(box.newIdentity()),
  'web.runLeakTest': (box) => box.runLeakTest(),
  'web.setSoftKill': (box, a) => done(box.setSoftKill(a.engaged)),
  'web.applyTorSettings': (box, a) => box.applyTorSettings(a.settings),
  'web.setClock': (box, a) => done(box.setClock(a.epochMs)),
  'web.startClaim': (box) => box.startClaim(),
  'web.claimProgress': (box, a) => box.claimProgress(a.ticket),
  'web.claim': (box, a) => box.claim(a),
  'web.verifyPassword': (box, a) => box.verifyPassword(a.password),
  'web.changePassword': (box, a) => box.changePassword(a.current, a.next),
  'web.diagnostics': (box) => box.diagnostics(),
  'web.networkStatus': (box) => box.networkStatus(),
  'web.wifiScan': (box) => box.wifiScan(),
  'web.joinWifi': (box, a) => done(box.joinWifi(a)),
  'web.useCable': (box) => done(box.useCable()),
  'web.setAccessPoint': (box, a) => done(box.setAccessPoint(a)),
  'web.sim.switch': (box, a) => done(sim(box).setSwitch(a.engaged)),
  'web.sim.press': (box, a) => done(sim(box).pressClaimButton(a.holdMs)),
  'web.sim.leds': (box) => sim(box).leds(),
  'web.sim.oled': (box) => sim(box).oledPng().toString('base64'),
  'web.update.status': (_box, _a, u) => updater(u).status(),
  'web.update.warnings': (_box, _a, u) => updater(u).warnings(),
  'web.update.check': (_box, _a, u) => updater(u).check(),
  'web.update.install': (_box, _a, u) => updater(u).install(),
  'web.update.setPolicy': (_box, a, u) => done(updater(u).setPolicy(a.policy)),
  'web.setBlockedHere': (box, a) => done(box.setBlockedHere(a.blockedHere)),
  'web.assistConsent': (box) => done(box.assistConsent()),
};

/**
 * Registers every page command and the Mirror stream on the page socket. `onConfig`: the config store's
 * change listener (a new Mirror goes out after each stored change too, e.g. a session key rotated).
 * `updates`: the updater (absent: the update commands answer OBX_ERR_UPDATE_NOT_CONFIGURED and the
 * Mirror says there is none).
 */
export function registerWebCommands(
  ipc: Pick<IpcServer, 'register' | 'registerStream'>,
  box: PageTarget,
  onConfig?: (listener: () => void) => () => void,
  updates?: PageUpdatesApi,
): void {
  const mirror = (): Mirror => mirrorOf(box, updates);
  for (const cmd of Object.keys(WEB_COMMANDS) as WebCommand[]) {
    const run = HANDLERS[cmd] as (
      box: PageTarget,
      args: unknown,
      updates: PageUpdatesApi | undefined,
    ) => unknown;
    ipc.register(cmd, async (raw) => {
      const args = checked(WEB_COMMANDS[cmd].args, raw, cmd);
      const value = await run(box, args, updates);
      return { value: value === undefined ? null : value, mirror: mirror() };
    });
  }
  ipc.registerStream(WATCH_COMMAND, (raw, send) => {
    checked(NoArgs, raw, WATCH_COMMAND);
    send(mirror());
    const offStatus = box.onStatus(() => send(mirror()));
    const offConfig = onConfig?.(() => send(mirror()));
    return () => {
      offStatus();
      offConfig?.();
    };
  });
}
