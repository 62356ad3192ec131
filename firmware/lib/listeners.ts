/**
 * A set of listeners for one kind of event: `add` returns the function that removes the listener, `emit`
 * calls every listener registered when it starts (one added or removed by a listener during an emit
 * takes effect at the next emit). A listener that throws never stops the others: its error goes to the
 * set's `onError` (the owner logs it). The boards' switch and button edges, the firewall's tamper watch,
 * the box's status listeners and tor's control connection use it.
 */
export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>();
  readonly #onError: (err: unknown) => void;

  /** `onError` hears every listener's throw (the others still run); its own throw is dropped. */
  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  add(listener: (value: T) => void): () => void {
    this.#set.add(listener);
    return () => {
      this.#set.delete(listener);
    };
  }

  /** Calls every listener; one that throws is reported to `onError` and the others still run. */
  emit(value: T): void {
    for (const l of [...this.#set]) {
      try {
        l(value);
      } catch (err) {
        try {
          this.#onError(err);
        } catch {
          // the report itself failed: the next listener still runs
        }
      }
    }
  }

  get size(): number {
    return this.#set.size;
  }
}
