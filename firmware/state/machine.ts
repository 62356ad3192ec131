/**
 * The box's state machine: pure functions from (state, input) to state, and from state to what the
 * firewall, the LEDs and the OLED must show. No I/O, no clock: the BoxController feeds it inputs and
 * carries out its outputs (firmware/box/controller.ts).
 *
 * The invariant every input sequence keeps (test/unit/state-machine.test.ts checks it with generated
 * sequences): the firewall mode is 'routing' only when tor reports ready, the hardware kill switch is
 * readable and released, the web page's kill switch is off, and no fault is pending.
 */
import type { BoxStateName, FirewallModeName } from '../box/api.js';

/** What tor's supervisor (firmware/tor/) emits as 'tor:status' on the EventBus. */
export interface TorStatus {
  phase: 'stopped' | 'starting' | 'bootstrapping' | 'ready' | 'crashed' | 'failed';
  progress: number;
  summary: string;
  ready: boolean;
  /** tor's PID while it runs (the supervisor's; the machine ignores it). */
  pid?: number;
}

/** Hardware kill switch. An unreadable, unexportable or unwatchable pin counts as engaged. */
export type SwitchPosition = 'engaged' | 'released' | 'unreadable';

/** Where a fault came from; each source is cleared separately once it recovers. */
/** 'network': a WAN/LAN change failed; 'wan': the WAN's leased subnet overlaps the LAN range. */
export type FaultSource = 'firewall' | 'config' | 'tor' | 'network' | 'wan';

/**
 * A WAN or LAN change in progress (firmware/net/change.ts): 'closed' while interfaces, addresses and
 * the firewall's names change (lockdown), 'reconnecting' while tor proves a new exit circuit over the
 * new network (tor may reach the WAN, the LAN gets nothing). null: no change running.
 */
export type NetChangePhase = 'closed' | 'reconnecting';

export type MachineInput =
  | { type: 'tor'; status: TorStatus }
  | { type: 'switch'; position: SwitchPosition }
  | { type: 'soft-kill'; engaged: boolean }
  | { type: 'fault'; source: FaultSource; message: string }
  | { type: 'fault-cleared'; source: FaultSource }
  | { type: 'net-change'; phase: NetChangePhase | null; reason?: string };

export interface MachineState {
  readonly tor: Readonly<TorStatus>;
  /** False until tor's supervisor reported anything but 'stopped'. */
  readonly torSeen: boolean;
  readonly hardware: SwitchPosition;
  readonly softKill: boolean;
  readonly faults: Readonly<Partial<Record<FaultSource, string>>>;
  /** A network change in progress (see NetChangePhase), with what changes, in words. */
  readonly netChange?: { readonly phase: NetChangePhase; readonly reason: string } | null;
}

export type LedState = 'off' | 'on' | 'blink';
export interface LedPattern {
  green: LedState;
  amber: LedState;
  red: LedState;
}

/** What the OLED shows: the layout is drawn by board/oled/screens.ts. */
export interface Screen {
  state: BoxStateName;
  /** Bootstrap percentage while connecting, else null. */
  progress: number | null;
  /** One short line under the headline (tor's summary, the fault, why the box is killed). */
  detail: string;
  killSwitch: SwitchPosition;
  softKill: boolean;
  /** Where the web page answers, e.g. 10.42.0.1 (filled in by the controller). */
  lanAddress: string;
  /** One-time claim code while the box is unclaimed, else null (filled in by the controller). */
  claimCode: string | null;
  /** Id of the pending claim a press of the button would approve (shown beside the code), else null. */
  claimId?: string | null | undefined;
  /** Why the last press of the claim button approved nothing (shown for a few seconds instead of the code). */
  claimNotice?: string | null | undefined;
  /** A short update warning (tor no longer recommended, old software) shown once the box is claimed. */
  updateWarning?: string | null | undefined;
  /** While connecting: the connection assist's line ("blocked: try 2/4", "no network: cable?"), else null. */
  assist?: string | null | undefined;
}

export interface MachineView {
  state: BoxStateName;
  firewallMode: FirewallModeName;
  leds: LedPattern;
  explanation: string;
  screen: Omit<Screen, 'lanAddress' | 'claimCode' | 'claimId' | 'claimNotice' | 'updateWarning' | 'assist'>;
}

export const INITIAL_TOR: Readonly<TorStatus> = Object.freeze({
  phase: 'stopped',
  progress: 0,
  summary: '',
  ready: false,
});

/** The state at power-on: the switch counts as engaged until it has been read. */
export function initialState(): MachineState {
  return { tor: INITIAL_TOR, torSeen: false, hardware: 'unreadable', softKill: false, faults: {} };
}

const PHASES: ReadonlySet<string> = new Set([
  'stopped',
  'starting',
  'bootstrapping',
  'ready',
  'crashed',
  'failed',
]);
const POSITIONS: ReadonlySet<string> = new Set(['engaged', 'released', 'unreadable']);
const SOURCES: ReadonlySet<string> = new Set(['firewall', 'config', 'tor', 'network', 'wan']);
const NET_PHASES: ReadonlySet<string> = new Set(['closed', 'reconnecting']);

/** A tor status from outside, made safe: anything malformed reads as "not ready". */
export function sanitizeTorStatus(s: unknown): TorStatus {
  const o = (s && typeof s === 'object' ? s : {}) as Record<string, unknown>;
  const phase =
    typeof o.phase === 'string' && PHASES.has(o.phase) ? (o.phase as TorStatus['phase']) : 'failed';
  const raw = typeof o.progress === 'number' && Number.isFinite(o.progress) ? o.progress : 0;
  const progress = Math.max(0, Math.min(100, Math.round(raw)));
  const summary = typeof o.summary === 'string' ? o.summary.replace(/[^\x20-\x7e]/g, '').slice(0, 200) : '';
  // Ready only when tor says so in both fields: a half-ready report must never open the LAN.
  const ready = o.ready === true && phase === 'ready';
  return { phase, progress, summary, ready };
}

/** One transition. Unknown or malformed inputs change nothing except toward safety. */
export function step(state: MachineState, input: MachineInput): MachineState {
  switch (input.type) {
    case 'tor': {
      const tor = sanitizeTorStatus(input.status);
      return { ...state, tor, torSeen: state.torSeen || tor.phase !== 'stopped' };
    }
    case 'switch': {
      const position = POSITIONS.has(input.position) ? input.position : 'unreadable';
      return { ...state, hardware: position };
    }
    case 'soft-kill':
      // Only a literal false releases the soft kill switch.
      return { ...state, softKill: input.engaged !== false };
    case 'fault': {
      const source: FaultSource = SOURCES.has(input.source) ? input.source : 'firewall';
      return { ...state, faults: { ...state.faults, [source]: String(input.message).slice(0, 200) } };
    }
    case 'fault-cleared': {
      if (!SOURCES.has(input.source)) return state;
      const faults = { ...state.faults };
      delete faults[input.source];
      return { ...state, faults };
    }
    case 'net-change': {
      if (input.phase === null) return { ...state, netChange: null };
      // Anything but a known phase reads as the most closed one.
      const phase: NetChangePhase = NET_PHASES.has(input.phase) ? input.phase : 'closed';
      const reason = String(input.reason ?? 'network change')
        .replace(/[^\x20-\x7e]/g, '')
        .slice(0, 120);
      return { ...state, netChange: { phase, reason } };
    }
    default:
      return state;
  }
}

/** True when the LAN may be routed through tor: the one place this decision is made. */
export function mayRoute(state: MachineState): boolean {
  return (
    state.tor.ready === true &&
    state.tor.phase === 'ready' &&
    state.hardware === 'released' &&
    state.softKill === false &&
    Object.keys(state.faults).length === 0 &&
    (state.netChange ?? null) === null
  );
}

export function isKilled(state: MachineState): boolean {
  return state.hardware !== 'released' || state.softKill;
}

function firstFault(state: MachineState): string | null {
  for (const source of ['firewall', 'wan', 'network', 'config', 'tor'] as const) {
    const f = state.faults[source];
    if (f !== undefined) return `${source}: ${f}`;
  }
  return null;
}

function killReason(state: MachineState): string {
  if (state.hardware === 'unreadable') return 'switch unreadable';
  if (state.hardware === 'engaged') return 'kill switch on';
  return 'web kill switch on';
}

/** The outputs of a state: firewall mode, LEDs, OLED screen and a sentence for the web page. */
export function view(state: MachineState): MachineView {
  const killed = isKilled(state);
  const fault = firstFault(state);
  const base = { killSwitch: state.hardware, softKill: state.softKill };
  const torDown =
    state.torSeen &&
    (state.tor.phase === 'crashed' || state.tor.phase === 'failed' || state.tor.phase === 'stopped');

  if (fault !== null) {
    return {
      state: 'error',
      // Fail closed: the most closed mode, and 'killed' keeps the web page answering when killed.
      firewallMode: killed ? 'killed' : 'lockdown',
      leds: { green: 'off', amber: 'off', red: 'blink' },
      explanation: `Something went wrong (${fault}); every device is cut off until it is fixed.`,
      screen: { ...base, state: 'error', progress: null, detail: fault },
    };
  }
  if (killed) {
    const reason = killReason(state);
    return {
      state: 'killed',
      firewallMode: 'killed',
      leds: { green: 'off', amber: torDown || !state.tor.ready ? 'blink' : 'off', red: 'on' },
      explanation:
        state.hardware === 'unreadable'
          ? 'The kill switch cannot be read, so every device is cut off. Check its wiring.'
          : `The kill switch is on (${reason === 'kill switch on' ? 'on the box' : 'from the web page'}): every device is cut off.`,
      screen: { ...base, state: 'killed', progress: null, detail: reason },
    };
  }
  const change = state.netChange ?? null;
  if (change !== null) {
    const closed = change.phase === 'closed';
    return {
      state: 'connecting',
      // While names and addresses change nothing passes; then tor alone may reach the new WAN.
      firewallMode: closed ? 'lockdown' : 'connecting',
      leds: { green: 'off', amber: 'blink', red: 'off' },
      explanation: closed
        ? `The box is changing its network (${change.reason}); devices are cut off meanwhile.`
        : `The box changed its network (${change.reason}) and is connecting to tor again; devices wait until it is ready.`,
      screen: {
        ...base,
        state: 'connecting',
        progress: null,
        detail: closed ? 'changing network' : 'reconnecting tor',
      },
    };
  }
  if (!state.torSeen) {
    return {
      state: 'booting',
      firewallMode: 'lockdown',
      leds: { green: 'off', amber: 'on', red: 'off' },
      explanation: 'The box is starting; devices are cut off until tor is connected.',
      screen: { ...base, state: 'booting', progress: null, detail: 'starting tor' },
    };
  }
  if (torDown) {
    return {
      state: 'tor-down',
      // tor may reach the WAN to come back; the LAN gets nothing.
      firewallMode: 'connecting',
      leds: { green: 'off', amber: 'on', red: 'blink' },
      explanation: `Tor is not running (${state.tor.phase}); devices are cut off until it is back.`,
      screen: {
        ...base,
        state: 'tor-down',
        progress: null,
        detail: state.tor.summary || `tor ${state.tor.phase}`,
      },
    };
  }
  if (mayRoute(state)) {
    return {
      state: 'routing',
      firewallMode: 'routing',
      leds: { green: 'on', amber: 'off', red: 'off' },
      explanation: 'Connected: every device on this network reaches the internet only through tor.',
      screen: { ...base, state: 'routing', progress: null, detail: 'all traffic via tor' },
    };
  }
  return {
    state: 'connecting',
    firewallMode: 'connecting',
    leds: { green: 'off', amber: 'blink', red: 'off' },
    explanation: `Connecting to the tor network (${state.tor.progress} %); devices wait until it is ready.`,
    screen: {
      ...base,
      state: 'connecting',
      progress: state.tor.progress,
      detail: state.tor.summary || 'connecting to tor',
    },
  };
}
