/**
 * The box's reconcile core: the state machine's state, and the one loop that brings the firewall to the
 * mode that state wants. BoxController (firmware/box/controller.ts) feeds it inputs (switch edges, tor status, the
 * page's kill switch, faults) and renders LEDs, OLED and status after each change; this file owns what
 * happens between an input and the kernel.
 *
 * Applies are serialised; while one runs, later inputs only update the desired mode and the newest is
 * applied next (a burst of switch toggles ends in the last position, never in a stale one). An apply that
 * fails puts the machine into 'error', whose mode is the most closed one ('lockdown', or 'killed' when
 * the switch is on), and that is applied at once; after `retryMs` the fault is cleared and the real
 * target is tried again. If nft refuses even the closed modes, the containment (onionboxd stops tor)
 * holds until a ruleset loads again.
 */
import type { BoardLogger } from '../../board/types.js';
import { describeError } from '../errors.js';
import { isClosed } from '../firewall/params.js';
import { initialState, type MachineInput, type MachineState, step, view } from '../state/machine.js';
import type { DropCounters, FirewallModeName } from './api.js';

/** Implemented by firmware/firewall/ (Firewall). */
export interface FirewallLike {
  apply(mode: FirewallModeName): Promise<unknown>;
  counters(): Promise<DropCounters>;
  /**
   * Reports a kernel table found missing or changed by someone else (Firewall's audit): the box treats
   * it as a firewall fault and applies its closed mode at once.
   */
  onTamper?(listener: (reason: string) => void): () => void;
}

/** The last resort when nft refuses every closed ruleset (see BoxControllerDeps.containment). */
export interface Containment {
  engage(): Promise<void>;
  release(): Promise<void>;
}

export interface ReconcilerDeps {
  firewall: FirewallLike;
  log: BoardLogger;
  retryMs?: number | undefined;
  containment?: Containment | undefined;
  /** One line for the box's event log (diagnostics). */
  record(line: string): void;
  /** After every state change and apply attempt: LEDs, OLED, status listeners. */
  changed(): void;
}

export class ModeReconciler {
  #state: MachineState = initialState();
  #applied: FirewallModeName | null = null;
  #applying: Promise<void> = Promise.resolve();
  #running = false;
  #again = false;
  #contained = false;
  #retry: NodeJS.Timeout | null = null;
  #started = false;

  readonly #deps: ReconcilerDeps;
  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  get state(): MachineState {
    return this.#state;
  }

  /** The mode last loaded into the kernel (null before the first apply and after a failed one). */
  get applied(): FirewallModeName | null {
    return this.#applied;
  }

  get started(): boolean {
    return this.#started;
  }

  /** Takes the inputs read at start (switch, web kill switch, tor) and follows inputs from now on. */
  begin(inputs: MachineInput[]): void {
    this.#state = inputs.reduce(step, this.#state);
    this.#started = true;
  }

  /** Stops following inputs and waits for an apply in flight. The kernel keeps its last ruleset. */
  async end(): Promise<void> {
    this.#started = false;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    await this.#applying.catch(() => undefined);
  }

  /** One input: the machine steps, the firewall follows (not awaited), the box renders. */
  input(input: MachineInput): void {
    if (!this.#started) return;
    const before = view(this.#state);
    this.#state = step(this.#state, input);
    const after = view(this.#state);
    if (before.state !== after.state || before.firewallMode !== after.firewallMode) {
      this.#deps.record(`${input.type}: ${before.state} -> ${after.state} (firewall ${after.firewallMode})`);
    }
    void this.reconcile();
    this.#deps.changed();
  }

  /** Whatever the kernel holds now is not known to be what was applied: the next pass loads it again. */
  forget(): void {
    this.#applied = null;
  }

  /** Resolves once the firewall holds the mode the current state asks for (or an apply failed). */
  async settled(): Promise<void> {
    while (this.#running) await this.#applying;
  }

  reconcile(): Promise<void> {
    this.#again = true;
    if (this.#running) return this.#applying;
    this.#running = true;
    // The loop starts synchronously: the firewall call is the first thing an input causes.
    this.#applying = this.#applyLoop();
    return this.#applying;
  }

  async #applyLoop(): Promise<void> {
    try {
      while (this.#again && this.#started) {
        this.#again = false;
        const want = view(this.#state).firewallMode;
        const faulted = this.#state.faults.firewall !== undefined;
        // After a failure any closed ruleset will do until the retry: 'killed' and 'lockdown' both cut the LAN.
        if (want === this.#applied || (faulted && isClosed(want) && isClosed(this.#applied))) continue;
        try {
          await this.#deps.firewall.apply(want);
          this.#applied = want;
          this.#deps.log.info({ mode: want }, 'firewall mode applied');
          await this.#contain(false);
          if (faulted) this.#scheduleRetry();
        } catch (err) {
          // nft loads a ruleset all or nothing: the kernel still holds the previous one (maybe routing).
          this.#applied = null;
          this.#deps.log.error(
            { mode: want, err: describeError(err) },
            'firewall apply failed: failing closed',
          );
          this.#deps.record(`firewall apply ${want} failed: ${describeError(err)}`);
          if (!faulted) {
            this.#state = step(this.#state, {
              type: 'fault',
              source: 'firewall',
              message: `apply ${want} failed`,
            });
            this.#again = true; // try the closed mode at once
          } else {
            // The closed mode itself failed: try the other closed mode before waiting for the retry.
            const other: FirewallModeName = want === 'killed' ? 'lockdown' : 'killed';
            try {
              await this.#deps.firewall.apply(other);
              this.#applied = other;
              await this.#contain(false);
              this.#deps.log.warn({ mode: other }, `firewall fell back to ${other}`);
            } catch (err2) {
              this.#deps.log.error(
                { mode: other, err: describeError(err2) },
                'no closed ruleset could be loaded: the kernel keeps its previous ruleset',
              );
              await this.#contain(true);
            }
            this.#scheduleRetry();
          }
        }
        this.#deps.changed();
      }
    } finally {
      // Synchronously at the end of the loop: an input arriving after this starts a new loop.
      this.#running = false;
    }
  }

  /** Engages or releases the last-resort containment (once each way); its own failure is only logged. */
  async #contain(engage: boolean): Promise<void> {
    const c = this.#deps.containment;
    if (!c || this.#contained === engage) return;
    this.#contained = engage;
    this.#deps.record(engage ? 'containment engaged: tor stopped' : 'containment released');
    try {
      await (engage ? c.engage() : c.release());
      this.#deps.log.warn(
        { engaged: engage },
        engage ? 'last resort: tor stopped until a ruleset loads' : 'last resort released',
      );
    } catch (err) {
      this.#deps.log.error({ engaged: engage, err: describeError(err) }, 'containment failed');
    }
  }

  #scheduleRetry(): void {
    if (this.#retry || !this.#started) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (!this.#started) return;
      // Try the real target again; a new failure brings the fault (and the closed mode) straight back.
      this.#applied = null;
      this.input({ type: 'fault-cleared', source: 'firewall' });
    }, this.#deps.retryMs ?? 5000);
    this.#retry.unref();
  }
}
