/**
 * One typed event bus for the firmware. Listeners are keyed by owner so a service can drop all of its
 * listeners at stop(); a listener that throws is logged and contained, so the daemon survives it.
 * Every event the firmware sends is declared here, in TorEvents: all tor's but `clock:set`.
 */
import type { Logger } from 'pino';
import type { TorStatus } from './state/machine.js';
import type { TorEvent } from './tor/protocol.js';
import type { ClockSkew } from './tor/supervisor.js';

/** Every event on the bus and its payload: tor's, all sent by the tor supervisor (firmware/tor/supervisor.ts). */
export interface TorEvents {
  /** tor's status changed (phase, bootstrap progress, ready); the box's state machine follows it. */
  'tor:status': TorStatus;
  /** A WARN/ERR line from tor, for the page's warnings. */
  'tor:warning': string;
  /** tor reported a clock skew (STATUS_GENERAL CLOCK_SKEW); the clock service may move the clock forward. */
  'tor:clock-skew': ClockSkew;
  /** tor has a new consensus (NEWCONSENSUS): the relay set may have changed. */
  'tor:consensus': undefined;
  /** tor's version is not in the consensus's recommended list (STATUS_GENERAL DANGEROUS_VERSION). */
  'tor:dangerous-version': { current: string; reason: string };
  /** A STATUS_CLIENT or STATUS_GENERAL event as tor sent it (BOOTSTRAP, CLOCK_SKEW...): the connection assist. */
  'tor:client-status': TorEvent;
  /** The clock service set the system clock (firmware/tor/clock.ts): from tor's reports or the owner. */
  'clock:set': { by: 'tor' | 'owner' | 'saved'; at: number };
}

type Listener<T> = (payload: T) => void | Promise<void>;

export class EventBus<Events extends object = TorEvents> {
  readonly #listeners = new Map<keyof Events, Map<Listener<never>, string>>();

  readonly #log: Pick<Logger, 'error'> | undefined;
  constructor(log?: Pick<Logger, 'error'>) {
    this.#log = log;
  }

  on<K extends keyof Events>(event: K, owner: string, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Map();
      this.#listeners.set(event, set);
    }
    set.set(listener as Listener<never>, owner);
    return () => {
      set.delete(listener as Listener<never>);
    };
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const [listener, owner] of [...set]) {
      try {
        const result = (listener as Listener<Events[K]>)(payload);
        if (result && typeof (result as Promise<void>).catch === 'function') {
          (result as Promise<void>).catch((err: unknown) => this.#report(String(event), owner, err));
        }
      } catch (err) {
        this.#report(String(event), owner, err);
      }
    }
  }

  removeOwner(owner: string): void {
    for (const set of this.#listeners.values()) {
      for (const [listener, o] of [...set]) if (o === owner) set.delete(listener);
    }
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  #report(event: string, owner: string, err: unknown): void {
    this.#log?.error(
      { event, owner, err: err instanceof Error ? err.message : String(err) },
      'event listener failed',
    );
  }
}
