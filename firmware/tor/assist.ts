/**
 * Connection assist (issue 21): a pure state machine that tells apart why tor does not connect and, when
 * Tor itself is blocked, tries bridges by itself. Fed by tor's bootstrap events, the network's facts and
 * the results of the adapters it asks for (actions); it never does I/O. Time arrives in the events.
 *
 *   no-network   no link, no lease, or a bootstrap warning with REASON=NOROUTE
 *   clock-wrong  tor reports CLOCK_SKEW (the box's clock must be corrected, then tor retries)
 *   checking     bootstrap warnings (RECOMMENDATION other than "ignore") or no progress for STALL_MS:
 *                the adapter tests whether the internet answers (`probe-internet`)
 *   offline      the internet does not answer either
 *   blocked      the internet answers, tor does not: Tor is blocked here. With bridges the owner entered,
 *                the box waits for the owner's word (never replaces them silently); otherwise it asks
 *                for the try-list (`fetch-candidates`: Moat's settings for the country, Moat's defaults,
 *                the release's built-in lines) and
 *   trying       uses one candidate after the other (`use-bridges`), each for at most TRY_MS, and keeps
 *                the first that reaches routing (`keep`)
 *   exhausted    none did (the owner's bridges come back: `restore`)
 *   connected    tor reached routing (directly, with the owner's bridges, or with a candidate); tor
 *                losing routing later (`lost`) is connecting again, so a stall is noticed again
 *
 * "Tor is blocked here" (an owner setting) skips the direct attempt: the box starts with the try-list.
 */

import { parseStatusEvent, type TorEvent } from './protocol.js';

/** How long bootstrap may stand still before the box checks the internet (Tor Browser: 60-90 s). */
export const STALL_MS = 75_000;
/** How long one candidate may take to reach routing. */
export const TRY_MS = 90_000;

export type CandidateSource = 'moat-country' | 'moat-defaults' | 'builtin';

/** A step of the try-list the box could not take, and why in words the page shows (never pretended). */
export interface AssistSkip {
  step: 'moat' | 'transport';
  reason: string;
}

/** One way to connect: the bridge lines of one setting (all lines of one transport, as Moat gives). */
export interface Candidate {
  source: CandidateSource;
  transport: string;
  lines: readonly string[];
}

export type AssistPhase =
  | 'connecting'
  | 'no-network'
  | 'clock-wrong'
  | 'checking'
  | 'offline'
  | 'blocked'
  | 'trying'
  | 'exhausted'
  | 'connected';

export interface AssistState {
  phase: AssistPhase;
  /** When the phase began (or, while connecting, when progress last moved). */
  since: number;
  progress: number;
  /** Bridges the owner entered are configured (never replaced without the owner's word). */
  ownBridges: boolean;
  /** The owner said "Tor is blocked here". */
  blockedHere: boolean;
  link: boolean;
  lease: boolean;
  candidates: readonly Candidate[];
  /** Index of the candidate in use while trying (or the one kept once connected). */
  index: number;
  /** What connected: 'direct' (no bridges or the owner's) or a candidate. */
  via: 'direct' | Candidate | null;
  /** Steps of the try-list left out (Moat not built, a transport that cannot work here), for the page. */
  skipped: readonly AssistSkip[];
}

export type AssistEvent =
  | { type: 'start'; at: number; ownBridges: boolean; blockedHere: boolean }
  | { type: 'network'; at: number; link: boolean; lease: boolean }
  | {
      type: 'bootstrap';
      at: number;
      progress: number;
      severity: 'NOTICE' | 'WARN' | 'ERR';
      reason?: string | undefined;
      recommendation?: string | undefined;
    }
  | { type: 'clock-skew'; at: number }
  | { type: 'clock-set'; at: number }
  | { type: 'internet'; at: number; answers: boolean }
  | { type: 'candidates'; at: number; list: readonly Candidate[]; skipped?: readonly AssistSkip[] }
  /** The candidate at `index` could not even be tried (tor refused its torrc): the next one at once. */
  | { type: 'try-failed'; at: number; index: number }
  | { type: 'owner-consents'; at: number }
  /** tor no longer routes (its exit circuits lost, tor restarted): from connected, connecting again. */
  | { type: 'lost'; at: number }
  | { type: 'tick'; at: number };

export type AssistAction =
  | { kind: 'probe-internet' }
  | { kind: 'fetch-candidates' }
  | { kind: 'use-bridges'; candidate: Candidate; attempt: number; of: number }
  | { kind: 'keep'; candidate: Candidate }
  | { kind: 'restore' };

export function initialAssist(at = 0): AssistState {
  return {
    phase: 'connecting',
    since: at,
    progress: 0,
    ownBridges: false,
    blockedHere: false,
    link: true,
    lease: true,
    candidates: [],
    index: 0,
    via: null,
    skipped: [],
  };
}

/**
 * The try-list: Moat's settings for the country, then Moat's defaults, then the built-in lines, each
 * setting once (the same lines from two sources are tried once, at the first place).
 */
export function tryList(parts: {
  country?: readonly Omit<Candidate, 'source'>[];
  defaults?: readonly Omit<Candidate, 'source'>[];
  builtin?: readonly Omit<Candidate, 'source'>[];
}): Candidate[] {
  const out: Candidate[] = [];
  const seen = new Set<string>();
  const add = (source: CandidateSource, list: readonly Omit<Candidate, 'source'>[] | undefined) => {
    for (const c of list ?? []) {
      const key = [...c.lines].sort().join('\n');
      if (c.lines.length === 0 || seen.has(key)) continue;
      seen.add(key);
      out.push({ source, transport: c.transport, lines: [...c.lines] });
    }
  };
  add('moat-country', parts.country);
  add('moat-defaults', parts.defaults);
  add('builtin', parts.builtin);
  return out;
}

type Step = { state: AssistState; actions: AssistAction[] };

const at = (
  s: AssistState,
  phase: AssistPhase,
  time: number,
  patch: Partial<AssistState> = {},
): AssistState => ({
  ...s,
  ...patch,
  phase,
  since: time,
});

/** The phases in which the box itself is working towards a connection (no-network etc. pause it). */
function networkUp(s: AssistState): boolean {
  return s.link && s.lease;
}

/** What comes after "Tor is blocked here" is known. */
function onBlocked(s: AssistState, time: number): Step {
  if (s.ownBridges) return { state: at(s, 'blocked', time), actions: [] };
  return {
    state: at(s, 'blocked', time, { candidates: [], index: 0 }),
    actions: [{ kind: 'fetch-candidates' }],
  };
}

function tryCandidate(s: AssistState, index: number, time: number): Step {
  const candidate = s.candidates[index];
  if (candidate === undefined) {
    return { state: at(s, 'exhausted', time, { index }), actions: [{ kind: 'restore' }] };
  }
  return {
    state: at(s, 'trying', time, { index, progress: 0 }),
    actions: [{ kind: 'use-bridges', candidate, attempt: index + 1, of: s.candidates.length }],
  };
}

/** One event in, the next state and what the adapters should do. Pure. */
export function stepAssist(s: AssistState, ev: AssistEvent): Step {
  switch (ev.type) {
    case 'start': {
      const base = at(initialAssist(ev.at), 'connecting', ev.at, {
        ownBridges: ev.ownBridges,
        blockedHere: ev.blockedHere,
        link: s.link,
        lease: s.lease,
      });
      if (!networkUp(base)) return { state: at(base, 'no-network', ev.at), actions: [] };
      if (ev.blockedHere && !ev.ownBridges) return onBlocked(base, ev.at);
      return { state: base, actions: [] };
    }
    case 'network': {
      const next = { ...s, link: ev.link, lease: ev.lease };
      if (!networkUp(next)) {
        if (s.phase === 'connected') return { state: next, actions: [] }; // tor notices by itself
        return { state: at(next, 'no-network', ev.at), actions: [] };
      }
      if (s.phase === 'no-network' || s.phase === 'offline') {
        // back: start over (the try-list, if any, again from its first entry)
        return stepAssist(next, {
          type: 'start',
          at: ev.at,
          ownBridges: s.ownBridges,
          blockedHere: s.blockedHere,
        });
      }
      return { state: next, actions: [] };
    }
    case 'clock-skew':
      if (s.phase === 'connected') return { state: s, actions: [] };
      return { state: at(s, 'clock-wrong', ev.at), actions: [] };
    case 'clock-set':
      if (s.phase !== 'clock-wrong') return { state: s, actions: [] };
      return stepAssist(s, {
        type: 'start',
        at: ev.at,
        ownBridges: s.ownBridges,
        blockedHere: s.blockedHere,
      });
    case 'bootstrap': {
      if (ev.progress >= 100) {
        if (s.phase === 'trying') {
          const candidate = s.candidates[s.index];
          if (candidate !== undefined) {
            return {
              state: at(s, 'connected', ev.at, { progress: 100, via: candidate }),
              actions: [{ kind: 'keep', candidate }],
            };
          }
        }
        return { state: at(s, 'connected', ev.at, { progress: 100, via: s.via ?? 'direct' }), actions: [] };
      }
      if (ev.severity !== 'NOTICE' && ev.reason === 'NOROUTE' && s.phase !== 'trying') {
        return { state: at(s, 'no-network', ev.at, { progress: ev.progress }), actions: [] };
      }
      const moved = ev.progress > s.progress;
      const progressed = moved ? { ...s, progress: ev.progress, since: ev.at } : s;
      const warned = ev.severity !== 'NOTICE' && (ev.recommendation ?? 'warn') !== 'ignore';
      if (s.phase === 'connecting' && warned) {
        return { state: at(progressed, 'checking', ev.at), actions: [{ kind: 'probe-internet' }] };
      }
      if (s.phase === 'trying')
        return { state: { ...s, progress: Math.max(s.progress, ev.progress) }, actions: [] };
      return { state: s.phase === 'connecting' ? progressed : s, actions: [] };
    }
    case 'tick': {
      if (s.phase === 'connecting' && ev.at - s.since >= STALL_MS) {
        return { state: at(s, 'checking', ev.at), actions: [{ kind: 'probe-internet' }] };
      }
      if (s.phase === 'trying' && ev.at - s.since >= TRY_MS) return tryCandidate(s, s.index + 1, ev.at);
      if (s.phase === 'offline' && ev.at - s.since >= STALL_MS) {
        return { state: at(s, 'checking', ev.at), actions: [{ kind: 'probe-internet' }] };
      }
      return { state: s, actions: [] };
    }
    case 'internet':
      if (s.phase !== 'checking') return { state: s, actions: [] };
      return ev.answers ? onBlocked(s, ev.at) : { state: at(s, 'offline', ev.at), actions: [] };
    case 'candidates':
      // never while the owner's own bridges stand (they are replaced only with the owner's word)
      if (s.phase !== 'blocked' || s.ownBridges) return { state: s, actions: [] };
      return tryCandidate({ ...s, candidates: [...ev.list], skipped: [...(ev.skipped ?? [])] }, 0, ev.at);
    case 'try-failed':
      if (s.phase !== 'trying' || ev.index !== s.index) return { state: s, actions: [] };
      return tryCandidate(s, s.index + 1, ev.at);
    case 'lost':
      // the way it connected is kept (shown again if it routes again); stalling now counts from here
      if (s.phase !== 'connected') return { state: s, actions: [] };
      return { state: at(s, 'connecting', ev.at, { progress: 0 }), actions: [] };
    case 'owner-consents':
      if (s.phase !== 'blocked' || !s.ownBridges) return { state: s, actions: [] };
      return {
        state: at(s, 'blocked', ev.at, { ownBridges: false, candidates: [], index: 0 }),
        actions: [{ kind: 'fetch-candidates' }],
      };
  }
}

/** The status page's words for the state (no JavaScript needed: it is text). */
export function describeAssist(s: AssistState): string {
  switch (s.phase) {
    case 'connecting':
      return `Connecting to Tor (${s.progress} %).`;
    case 'no-network':
      return 'No network: check the cable (or the Wi-Fi network the box joins).';
    case 'clock-wrong':
      return "The box's clock is wrong, so Tor cannot connect; correcting it from Tor's answers. If this stays, set the clock on the settings page.";
    case 'checking':
      return 'Tor is slow to connect. Checking whether the internet answers...';
    case 'offline':
      return 'The internet does not answer. The box tries again when the connection is back.';
    case 'blocked':
      return s.ownBridges
        ? 'Your internet provider seems to block Tor, and your bridges do not get through. The box can try other bridges if you allow it.'
        : 'Your internet provider seems to block Tor. Looking for a bridge...';
    case 'trying':
      return `Your internet provider seems to block Tor. Trying a bridge (${s.index + 1} of ${s.candidates.length})...`;
    case 'exhausted':
      return 'Your internet provider seems to block Tor, and no bridge the box knows got through. Paste bridge lines from another device on the settings page.';
    case 'connected':
      return s.via !== null && s.via !== 'direct'
        ? `Connected through a ${s.via.transport} bridge the box found.`
        : 'Connected to Tor.';
  }
}

/** The OLED's line for the state (21 characters at most: 128 pixels of a 6-pixel font). */
export function assistOledLine(s: AssistState): string {
  const line = ((): string => {
    switch (s.phase) {
      case 'connecting':
        return `tor ${s.progress}%`;
      case 'no-network':
        return 'no network: cable?';
      case 'clock-wrong':
        return 'clock wrong: fixing';
      case 'checking':
        return 'checking internet';
      case 'offline':
        return 'offline';
      case 'blocked':
        return s.ownBridges ? 'blocked: see the page' : 'tor blocked';
      case 'trying':
        return `blocked: try ${s.index + 1}/${s.candidates.length}`;
      case 'exhausted':
        return 'blocked: no bridge';
      case 'connected':
        return s.via !== null && s.via !== 'direct' ? `via ${s.via.transport}` : 'tor ok';
    }
  })();
  return line.slice(0, 21);
}

/**
 * The assist's event in one of tor's: `STATUS_CLIENT ... BOOTSTRAP PROGRESS= ... WARNING= REASON=
 * RECOMMENDATION=` and `STATUS_GENERAL ... CLOCK_SKEW`; null for anything else. Progress 100 is passed
 * on as tor says it: the adapter feeds "reached routing" (readiness, an exit circuit) as progress 100
 * too, since "Bootstrapped 100%" can come before an exit relay is known. Throws on a malformed event
 * (OBX_ERR_TOR_PROTOCOL), as the parser does.
 */
export function assistEventOf(ev: TorEvent, at: number): AssistEvent | null {
  if (ev.type !== 'STATUS_CLIENT' && ev.type !== 'STATUS_GENERAL') return null;
  const st = parseStatusEvent(ev);
  if (st.action === 'CLOCK_SKEW') return { type: 'clock-skew', at };
  if (st.action !== 'BOOTSTRAP' || ev.type !== 'STATUS_CLIENT') return null;
  const progress = Number(st.args.PROGRESS);
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) return null;
  const severity = st.severity === 'WARN' || st.severity === 'ERR' ? st.severity : 'NOTICE';
  return {
    type: 'bootstrap',
    at,
    progress,
    severity,
    reason: st.args.REASON,
    recommendation: st.args.RECOMMENDATION,
  };
}
