/** A listener for events whose payload is `T`. */
export type Listener<T> = (event: T) => void;

type ListenerSets<M> = { [K in keyof M]?: Set<Listener<M[K]>> };

/**
 * A tiny typed event emitter that runs in browsers and Node alike. We do not use `EventTarget`
 * because its payloads are untyped `Event`s and the client's events are discriminated by name.
 *
 * A listener that throws must not break the client's loops (a throwing `message` handler would
 * otherwise stop polling), so exceptions go to `onListenerError` instead of propagating.
 */
export class TypedEmitter<M extends object> {
  readonly #listeners: ListenerSets<M> = {};
  readonly #onListenerError: (error: unknown, type: keyof M) => void;

  constructor(onListenerError: (error: unknown, type: keyof M) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(type: K, listener: Listener<M[K]>): () => void {
    let set = this.#listeners[type];
    if (set === undefined) {
      set = new Set();
      this.#listeners[type] = set;
    }
    set.add(listener);
    return () => this.off(type, listener);
  }

  /** Adds a listener that runs at most once; returns a function that removes it. */
  once<K extends keyof M>(type: K, listener: Listener<M[K]>): () => void {
    const off = this.on(type, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  /** Removes a listener added with {@link on}. */
  off<K extends keyof M>(type: K, listener: Listener<M[K]>): void {
    this.#listeners[type]?.delete(listener);
  }

  /** Number of listeners for `type`. */
  listenerCount(type: keyof M): number {
    return this.#listeners[type]?.size ?? 0;
  }

  /** Calls every listener of `type` with `event`. */
  emit<K extends keyof M>(type: K, event: M[K]): void {
    const set = this.#listeners[type];
    if (set === undefined) return;
    // Copy: a listener may remove itself (once) or add others while we iterate.
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error, type);
      }
    }
  }
}
