/**
 * The live-session table of one comet application: which sessions are alive now, and how many
 * setups are between admission and their FSM's `init`. An ETS table in OTP terms: written by the
 * connections as they start and end (`comet_sup.ts` wires their `onStarted`/`onEnded` here), read
 * by `handleSetup` (the session limit), `broadcast` and the metrics.
 */
import type { Sid } from './ids.js';

export class SessionTable implements Iterable<Sid> {
  readonly #live = new Set<Sid>();
  readonly #onEnded: ((sid: Sid) => void) | undefined;
  /** Setups admitted and not yet finished: they count against the session limit, or a burst of
   *  setups arriving together would all pass the check before any of their FSMs started. */
  settingUp = 0;

  /** `onEnded`: told of every end too (the per-client limits count sessions down by it). */
  constructor(onEnded?: (sid: Sid) => void) {
    this.#onEnded = onEnded;
  }

  /** How many sessions are alive. */
  get size(): number {
    return this.#live.size;
  }

  /** A connection FSM started (called from its `init`). */
  started(sid: Sid): void {
    this.#live.add(sid);
  }

  /** A connection FSM ended, whatever the reason (called from its `terminate`). */
  ended(sid: Sid): void {
    this.#live.delete(sid);
    this.#onEnded?.(sid);
  }

  /** Whether `sid` is alive. */
  has(sid: Sid): boolean {
    return this.#live.has(sid);
  }

  [Symbol.iterator](): Iterator<Sid> {
    return this.#live.values();
  }
}
