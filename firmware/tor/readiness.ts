/**
 * tor's readiness as a pure reducer: (state, event) -> state. No timers, no sockets: the supervisor feeds
 * it what tor said (bootstrap progress, circuit events, the probe's EXTENDCIRCUIT reply) and what it did
 * (launched tor, reloaded, tor exited), and carries out what the state asks for (a readiness probe after
 * `probeWantedInMs`). Unit-tested on real tor transcripts: test/unit/tor-readiness.test.ts.
 *
 * Ready means a general-purpose (exit) circuit was built after Bootstrapped 100% (EXTENDCIRCUIT 0 ->
 * CIRC <id> BUILT with three hops), not just the bootstrap message: "Bootstrapped 100%" can arrive
 * before any exit is in the consensus.
 */
import type { TorStatus } from '../state/machine.js';
import { parseCircuitLine, parseKeywords, parseStatusEvent, type TorEvent } from './protocol.js';

export interface Readiness {
  /** What the box shows (phase, progress, summary, ready); the supervisor adds tor's PID. */
  status: TorStatus;
  /** The probe circuit being watched (the id EXTENDCIRCUIT 0 returned), if any. */
  probeCircuit: string | null;
  /** A probe is wanted after this many ms (the supervisor sets a timer, then sends 'probe-timer-set'). */
  probeWantedInMs: number | null;
  /** A probe timer is pending (a second request waits for it instead of setting another). */
  probeTimerSet: boolean;
}

export type ReadinessEvent =
  /** The supervisor is launching tor. */
  | { type: 'starting' }
  /** Bootstrap progress (GETINFO status/bootstrap-phase or a STATUS_CLIENT BOOTSTRAP event). */
  | { type: 'bootstrap'; progress: number; summary: string }
  /** STATUS_CLIENT CIRCUIT_NOT_ESTABLISHED or NOT_ENOUGH_DIR_INFO: tor lost its circuits or directory. */
  | { type: 'not-established'; reason: string }
  /** A CIRC event. */
  | { type: 'circuit'; id: string; status: string; hops: number }
  /** EXTENDCIRCUIT 0 answered `250 EXTENDED <id>`. */
  | { type: 'probe-launched'; circuit: string }
  /** EXTENDCIRCUIT 0 was refused (tor not ready for it yet). */
  | { type: 'probe-refused' }
  /** The probe circuit was not built within its time: try another. */
  | { type: 'probe-expired'; circuit: string }
  /** The supervisor set the probe timer the state asked for / the timer fired. */
  | { type: 'probe-timer-set' }
  | { type: 'probe-timer-fired' }
  /** tor was told to reload new settings: a probe launched before says nothing about them. */
  | { type: 'reloading' }
  /** tor exited, failed to start, or was stopped. */
  | { type: 'crashed'; summary: string }
  | { type: 'failed'; summary: string }
  | { type: 'stopped' };

export const STOPPED: TorStatus = {
  phase: 'stopped',
  progress: 0,
  summary: 'tor is not running',
  ready: false,
};
export const READY_SUMMARY = 'Connected: an exit circuit is built';

export function initialReadiness(): Readiness {
  return { status: { ...STOPPED }, probeCircuit: null, probeWantedInMs: null, probeTimerSet: false };
}

/** Asks for a probe after ms, unless one is already asked for or its timer is pending. */
function wantProbe(s: Readiness, ms: number): Readiness {
  return s.probeTimerSet || s.probeWantedInMs !== null ? s : { ...s, probeWantedInMs: ms };
}

function notReady(s: Readiness, summary: string): Readiness {
  if (!s.status.ready && s.status.phase === 'bootstrapping') return s;
  return { ...s, status: { phase: 'bootstrapping', progress: s.status.progress, summary, ready: false } };
}

export function reduceReadiness(s: Readiness, ev: ReadinessEvent): Readiness {
  switch (ev.type) {
    case 'starting':
      return {
        ...s,
        probeCircuit: null,
        status: { phase: 'starting', progress: 0, summary: 'starting tor', ready: false },
      };
    case 'bootstrap': {
      if (s.status.ready) return { ...s, status: { ...s.status, progress: ev.progress } };
      const next: Readiness = {
        ...s,
        status: { phase: 'bootstrapping', progress: ev.progress, summary: ev.summary, ready: false },
      };
      return ev.progress === 100 ? wantProbe(next, 0) : next;
    }
    case 'not-established':
      return wantProbe(notReady(s, ev.reason), 2000);
    case 'circuit':
      if (ev.id !== s.probeCircuit) return s;
      if (ev.status === 'BUILT' && ev.hops >= 3) {
        return {
          ...s,
          probeCircuit: null,
          status: { phase: 'ready', progress: 100, summary: READY_SUMMARY, ready: true },
        };
      }
      if (ev.status === 'FAILED' || ev.status === 'CLOSED')
        return wantProbe({ ...s, probeCircuit: null }, 1000);
      return s;
    case 'probe-launched':
      return { ...s, probeCircuit: ev.circuit };
    case 'probe-refused':
      return wantProbe(s, 2000);
    case 'probe-expired':
      if (s.probeCircuit !== ev.circuit || s.status.ready) return s;
      return wantProbe({ ...s, probeCircuit: null }, 0);
    case 'probe-timer-set':
      return { ...s, probeWantedInMs: null, probeTimerSet: true };
    case 'probe-timer-fired':
      return { ...s, probeTimerSet: false };
    case 'reloading':
      return wantProbe({ ...notReady(s, 'applying new settings'), probeCircuit: null }, 200);
    case 'crashed':
      return {
        ...s,
        probeCircuit: null,
        status: { phase: 'crashed', progress: 0, summary: ev.summary, ready: false },
      };
    case 'failed':
      return {
        ...s,
        probeCircuit: null,
        status: { phase: 'failed', progress: 0, summary: ev.summary, ready: false },
      };
    case 'stopped':
      return initialReadiness();
  }
}

/** Whether a fired probe timer should send EXTENDCIRCUIT 0 now (not ready, no probe outstanding). */
export function probeNeeded(s: Readiness): boolean {
  return !s.status.ready && s.probeCircuit === null;
}

/** The readiness event in one tor event, if any (from STATUS_CLIENT/STATUS_GENERAL and CIRC). */
export function readinessEventOf(ev: TorEvent): ReadinessEvent | null {
  if (ev.type === 'STATUS_CLIENT' || ev.type === 'STATUS_GENERAL') {
    const st = parseStatusEvent(ev);
    if (st.action === 'BOOTSTRAP') {
      const progress = Number(st.args.PROGRESS);
      return Number.isInteger(progress)
        ? { type: 'bootstrap', progress, summary: st.args.SUMMARY ?? '' }
        : null;
    }
    if (st.action === 'CIRCUIT_NOT_ESTABLISHED' || st.action === 'NOT_ENOUGH_DIR_INFO') {
      return {
        type: 'not-established',
        reason: st.args.REASON ?? st.action.toLowerCase().replace(/_/g, ' '),
      };
    }
    return null;
  }
  if (ev.type === 'CIRC') {
    const c = parseCircuitLine(ev.body);
    return { type: 'circuit', id: c.id, status: c.status, hops: c.hops.length };
  }
  return null;
}

/** The probe circuit's id from the EXTENDCIRCUIT reply line (`EXTENDED <id>`), or null. */
export function extendedCircuit(replyText: string): string | null {
  const { positional } = parseKeywords(replyText);
  return positional[0] === 'EXTENDED' && positional[1] ? positional[1] : null;
}
