/**
 * A change of the box's WAN or LAN as a pure plan plus a thin executor (the shape of balena's
 * compose/app.ts and composition-steps.ts):
 *
 *   planNetworkChange(current, wanted) -> ordered steps      (pure, unit-tested by table)
 *   executeNetworkChange(steps, handlers)                    (runs each step's handler in order)
 *
 * Every plan that changes anything has the same frame: `close` (the state machine goes to lockdown
 * and the firewall holds it) first; then only the steps the difference needs, in the order that keeps
 * the box closed and consistent:
 *
 *   firewall     the ruleset re-rendered with the new interface names and LAN range (still lockdown)
 *   wan-watch    the WAN lease watcher follows the new WAN interface (the DHCP exception names its server)
 *   lan-address  the new LAN address on the (new) LAN interface, the old one removed
 *   dhcp         dnsmasq re-rendered, checked and restarted for the new interface/range
 *   access-point hostapd restarted on the new LAN interface (only when one is configured)
 *   tor-listen   tor's TransPort/DNSPort moved to the new LAN address (torrc re-rendered; the RELOAD
 *                is reconnect's)
 *   reconnect    firewall `connecting` with the new names, tor proves a fresh exit circuit
 *   commit       the new network written to the config store (atomic; a power cut before this keeps
 *                the old one, which is what the box boots with)
 *   open         the change is over: the state machine routes again once tor is ready
 *
 * The executor stops at the first failing step and reports which one; the caller (BoxController)
 * closes the box with a 'network' fault, does not commit (the old config stays) and puts the old
 * network back: it reopens over it once every step back worked (firmware/box/network-change.ts).
 */
import type { NetworkConfig } from '../config/schema.js';
import { obxError } from '../errors.js';
import type { Log } from '../log.js';
import { parseInterface, parseLanRange } from './grammar.js';

/** The parts of the network configuration a change plan looks at. */
export interface NetworkShape {
  wanInterface: string;
  lanInterface: string;
  lanAddress: string;
  lanPrefix: number;
  /** An access point is configured (hostapd runs on the LAN interface). */
  accessPoint: boolean;
}

/** The configured network's shape (the network the box runs on until a change replaces it). Pure. */
export function configuredNetwork(n: NetworkConfig): NetworkShape {
  return {
    wanInterface: n.wanInterface,
    lanInterface: n.lanInterface,
    lanAddress: n.lanAddress,
    lanPrefix: n.lanPrefix,
    accessPoint: n.accessPoint !== null,
  };
}

export type ChangeStep =
  | { kind: 'close'; reason: string }
  | { kind: 'firewall'; network: NetworkShape }
  | { kind: 'wan-watch'; wanInterface: string }
  | {
      kind: 'lan-address';
      lanInterface: string;
      address: string;
      prefix: number;
      previous: { lanInterface: string; address: string; prefix: number };
    }
  | { kind: 'dhcp'; lanInterface: string; lanAddress: string; lanPrefix: number }
  | { kind: 'access-point'; lanInterface: string }
  | { kind: 'tor-listen'; lanAddress: string }
  | { kind: 'commit' }
  | { kind: 'reconnect' }
  | { kind: 'open' };

export type ChangeStepKind = ChangeStep['kind'];

/** The reasons a wanted network is refused before anything runs, by field. Pure. */
export function networkShapeProblems(wanted: NetworkShape): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, name] of [
    ['wanInterface', wanted.wanInterface],
    ['lanInterface', wanted.lanInterface],
  ] as const) {
    try {
      parseInterface(name);
    } catch {
      out[field] = 'must be a network interface name (1-15 characters: letters, digits, _ . -)';
    }
  }
  if (out.wanInterface === undefined && wanted.wanInterface === wanted.lanInterface) {
    out.wanInterface = 'must differ from the LAN interface';
  }
  try {
    // private, a host address, 16-30 bits, clear of tor's VirtualAddrNetworkIPv4
    parseLanRange(`${wanted.lanAddress}/${wanted.lanPrefix}`);
  } catch (err) {
    out.lanAddress = err instanceof Error ? err.message.replace(/^[^:]*: /, '') : String(err);
  }
  return out;
}

/** In words, what differs (for the log, the page's explanation and the OLED). Pure. */
export function describeChange(current: NetworkShape, wanted: NetworkShape): string {
  const parts: string[] = [];
  if (current.wanInterface !== wanted.wanInterface) {
    parts.push(`WAN ${current.wanInterface} -> ${wanted.wanInterface}`);
  }
  if (current.lanInterface !== wanted.lanInterface) {
    parts.push(`LAN ${current.lanInterface} -> ${wanted.lanInterface}`);
  }
  const a = `${current.lanAddress}/${current.lanPrefix}`;
  const b = `${wanted.lanAddress}/${wanted.lanPrefix}`;
  if (a !== b) parts.push(`LAN address ${a} -> ${b}`);
  return parts.join(', ');
}

/**
 * The ordered steps from `current` to `wanted`; [] when nothing the box runs on changes. A wanted
 * network that is not valid throws OBX_ERR_NET_VALUE_INVALID (field details) before any step. Pure.
 */
export function planNetworkChange(current: NetworkShape, wanted: NetworkShape): ChangeStep[] {
  const problems = networkShapeProblems(wanted);
  if (Object.keys(problems).length > 0) {
    const summary = Object.entries(problems)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    throw obxError('NET_VALUE_INVALID', summary, { details: problems });
  }
  const wanChanged = current.wanInterface !== wanted.wanInterface;
  const lanIfChanged = current.lanInterface !== wanted.lanInterface;
  const addressChanged = current.lanAddress !== wanted.lanAddress;
  const rangeChanged = addressChanged || current.lanPrefix !== wanted.lanPrefix;
  const lanChanged = lanIfChanged || rangeChanged;
  if (!wanChanged && !lanChanged) return [];

  const steps: ChangeStep[] = [{ kind: 'close', reason: describeChange(current, wanted) }];
  // The firewall's names and range change whatever changed: they are all parameters of the ruleset.
  steps.push({ kind: 'firewall', network: { ...wanted } });
  if (wanChanged) steps.push({ kind: 'wan-watch', wanInterface: wanted.wanInterface });
  if (lanChanged) {
    steps.push({
      kind: 'lan-address',
      lanInterface: wanted.lanInterface,
      address: wanted.lanAddress,
      prefix: wanted.lanPrefix,
      previous: {
        lanInterface: current.lanInterface,
        address: current.lanAddress,
        prefix: current.lanPrefix,
      },
    });
    steps.push({
      kind: 'dhcp',
      lanInterface: wanted.lanInterface,
      lanAddress: wanted.lanAddress,
      lanPrefix: wanted.lanPrefix,
    });
    // hostapd serves the LAN interface: only a new interface needs it restarted.
    if (lanIfChanged && wanted.accessPoint) {
      steps.push({ kind: 'access-point', lanInterface: wanted.lanInterface });
    }
  }
  // tor listens on the LAN address: a new address needs a re-rendered torrc; a new WAN needs nothing
  // of tor's config, only fresh circuits (reconnect).
  if (addressChanged) {
    // The page (its own process, onionbox-web) follows the committed LAN address by itself.
    steps.push({ kind: 'tor-listen', lanAddress: wanted.lanAddress });
  }
  steps.push({ kind: 'reconnect' }, { kind: 'commit' }, { kind: 'open' });
  return steps;
}

export type ChangeHandlers = {
  [K in ChangeStepKind]: (step: Extract<ChangeStep, { kind: K }>) => Promise<void>;
};

/** What the executor logs with: part of the one Log (firmware/log.ts). */
export type ChangeLogger = Pick<Log, 'info' | 'error'>;

/**
 * Runs the steps in order, each by its handler. The first failure stops the run and is thrown as
 * OBX_ERR_NET_CHANGE_FAILED naming the step; the steps after it never run. Returns the steps done.
 */
export async function executeNetworkChange(
  steps: readonly ChangeStep[],
  handlers: ChangeHandlers,
  log?: ChangeLogger,
): Promise<ChangeStepKind[]> {
  const done: ChangeStepKind[] = [];
  for (const step of steps) {
    const handler = handlers[step.kind] as (s: ChangeStep) => Promise<void>;
    try {
      await handler(step);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      log?.error({ step: step.kind, done }, `network change failed at ${step.kind}: ${why}`);
      throw obxError('NET_CHANGE_FAILED', `${step.kind}: ${why}`, { cause: err });
    }
    done.push(step.kind);
    log?.info({ step: step.kind }, 'network change step done');
  }
  return done;
}
