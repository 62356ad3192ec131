/**
 * A set of listeners for one kind of event: `add` returns the function that removes the listener, `emit`
 * calls every listener registered when it starts (one added or removed by a listener during an emit
 * takes effect at the next emit). The boards' switch and button events use it.
 */
export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.#set.add(listener);
    return () => {
      this.#set.delete(listener);
    };
  }

  /** Calls every listener; a listener that throws stops the emit and the error goes to the caller. */
  emit(value: T): void {
    for (const l of [...this.#set]) l(value);
  }

  /** Calls every listener; one that throws is reported to `onError` and the others still run. */
  emitEach(value: T, onError: (err: unknown) => void): void {
    for (const l of [...this.#set]) {
      try {
        l(value);
      } catch (err) {
        onError(err);
      }
    }
  }

  get size(): number {
    return this.#set.size;
  }
}
