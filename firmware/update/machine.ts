/**
 * The update state machine: a pure function from (state, input) to state, like firmware/state/machine.ts.
 * No I/O, no clock: the updater (not built yet: it needs the A/B image) feeds it what the check, the
 * download, the signature and hash checks, RAUC and the trial boot report, and shows its state.
 *
 *   idle -> checking -> available -> downloading -> verifying -> ready -> installing -> trial-boot -> good
 *                                                                                                   \-> fell-back
 *
 * `ready` holds a verified bundle until the owner's policy says install ("install and restart at night"
 * waits for the night, "ask me first" for the owner's yes).
 *
 * Every failure before the trial boot goes back to idle with the reason in words and the old slot
 * untouched; a version that fell back is remembered in `failed` and never offered again (a fresh 'found'
 * for it is refused here too, whatever the policy said). An input that makes no sense in a phase changes
 * nothing. `running` changes only when the new version reaches routing.
 */

/** Every phase of the update state machine, in the order a release passes through them. */
export const UPDATE_PHASES = [
  'idle',
  'checking',
  'available',
  'downloading',
  'verifying',
  'ready',
  'installing',
  'trial-boot',
  'good',
  'fell-back',
] as const;
export type UpdatePhase = (typeof UPDATE_PHASES)[number];

export interface UpdateState {
  readonly phase: UpdatePhase;
  /** The version in the slot the box trusts. */
  readonly running: string;
  /** The version being offered, fetched, installed or tried; null in idle and checking. */
  readonly target: string | null;
  /** Versions that were tried and did not reach routing: never retried automatically. */
  readonly failed: readonly string[];
  /** The last outcome, in words for the page ("1.2.0 is available", "download stalled", ...). */
  readonly result: string | null;
  /** Bytes of the bundle so far while downloading. */
  readonly progress: { readonly done: number; readonly total: number } | null;
}

export type UpdateInput =
  | { type: 'check' }
  | { type: 'found'; version: string }
  | { type: 'none'; reason: string }
  | { type: 'check-failed'; reason: string }
  | { type: 'download' }
  | { type: 'progress'; done: number; total: number }
  | { type: 'downloaded' }
  | { type: 'download-failed'; reason: string }
  | { type: 'verified' }
  | { type: 'verify-failed'; reason: string }
  | { type: 'install' }
  | { type: 'installed' }
  | { type: 'install-failed'; reason: string }
  | { type: 'routing' }
  | { type: 'trial-failed'; reason: string }
  | { type: 'dismiss' };

export function initialUpdateState(running: string, failed: readonly string[] = []): UpdateState {
  return Object.freeze({
    phase: 'idle',
    running,
    target: null,
    failed: Object.freeze([...new Set(failed)]),
    result: null,
    progress: null,
  });
}

/** The edges of the machine; tests check every transition is one of these. */
export const UPDATE_EDGES: Readonly<Record<UpdatePhase, readonly UpdatePhase[]>> = Object.freeze({
  idle: ['checking'],
  checking: ['idle', 'available'],
  available: ['checking', 'downloading', 'idle'],
  downloading: ['verifying', 'idle'],
  verifying: ['ready', 'idle'],
  ready: ['installing', 'checking', 'idle'],
  installing: ['trial-boot', 'idle'],
  'trial-boot': ['good', 'fell-back'],
  good: ['idle', 'checking'],
  'fell-back': ['idle', 'checking'],
});

export function updateStep(state: UpdateState, input: UpdateInput): UpdateState {
  const to = (phase: UpdatePhase, changes: Partial<UpdateState> = {}): UpdateState =>
    Object.freeze({ ...state, progress: null, ...changes, phase });
  const back = (result: string): UpdateState => to('idle', { target: null, result });
  switch (state.phase) {
    case 'idle':
    case 'good':
    case 'fell-back':
    case 'available':
    case 'ready':
      if (input.type === 'check') return to('checking', { target: null });
      if (input.type === 'dismiss' && state.phase !== 'idle') return to('idle', { target: null });
      if (input.type === 'download' && state.phase === 'available') {
        return to('downloading', { progress: { done: 0, total: 0 } });
      }
      if (input.type === 'install' && state.phase === 'ready') {
        return to('installing', { result: `installing ${state.target}` });
      }
      return state;
    case 'checking':
      if (input.type === 'found') {
        if (state.failed.includes(input.version)) {
          return back(`${input.version} failed on this box before; not retried automatically`);
        }
        return to('available', { target: input.version, result: `${input.version} is available` });
      }
      if (input.type === 'none') return back(input.reason);
      if (input.type === 'check-failed') return back(`check failed: ${input.reason}`);
      return state;
    case 'downloading':
      if (input.type === 'progress') {
        return to('downloading', { progress: { done: input.done, total: input.total } });
      }
      if (input.type === 'downloaded') return to('verifying');
      if (input.type === 'download-failed') return back(`download failed: ${input.reason}`);
      return state;
    case 'verifying':
      if (input.type === 'verified') {
        return to('ready', { result: `${state.target} is downloaded, verified and ready to install` });
      }
      if (input.type === 'verify-failed') return back(`refused: ${input.reason}`);
      return state;
    case 'installing':
      if (input.type === 'installed') {
        return to('trial-boot', { result: `restarting into ${state.target} on trial` });
      }
      if (input.type === 'install-failed') return back(`install failed: ${input.reason}`);
      return state;
    case 'trial-boot': {
      const target = state.target ?? '';
      if (input.type === 'routing') {
        return to('good', { running: target, result: `${target} reached Tor and is kept` });
      }
      if (input.type === 'trial-failed') {
        return to('fell-back', {
          failed: Object.freeze([...state.failed.filter((v) => v !== target), target]),
          result: `${target} ${input.reason}; the box went back to ${state.running}`,
        });
      }
      return state;
    }
  }
}

/** Folds a sequence of inputs (for tests and replays). */
export function updateAfter(state: UpdateState, inputs: readonly UpdateInput[]): UpdateState {
  return inputs.reduce(updateStep, state);
}
