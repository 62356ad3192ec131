/**
 * One typed event bus for the firmware. Listeners are keyed by owner so a service can drop all of its
 * listeners at stop(); a listener that throws is logged and contained, so the daemon survives it.
 * Subsystems add their events to `BoxEvents` by declaration merging in their own module.
 */
import type { Logger } from 'pino';

// biome-ignore lint/suspicious/noEmptyInterface: extended by declaration merging in each subsystem.
export interface BoxEvents {}

type Listener<T> = (payload: T) => void | Promise<void>;

export class EventBus<Events extends object = BoxEvents> {
  readonly #listeners = new Map<keyof Events, Map<Listener<never>, string>>();

  constructor(private readonly log?: Pick<Logger, 'error'>) {}

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
    this.log?.error(
      { event, owner, err: err instanceof Error ? err.message : String(err) },
      'event listener failed',
    );
  }
}
