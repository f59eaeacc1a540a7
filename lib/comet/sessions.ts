/**
 * The live-session table of one comet application: which sessions are alive now, and how many
 * setups are between admission and their FSM's `init`. An ETS table in OTP terms: written by the
 * connections as they start and end (`comet_sup.ts` wires their `onStarted`/`onEnded` here), read
 * by `handleSetup` (the session limit), `broadcast`, the metrics and the observer.
 *
 * Each row keeps the connection's own data record, so a read-only view of a session
 * (`session_info.ts`) costs no message to the FSM and the FSM pays nothing for being viewable.
 */
import type { ConnectionData } from './connection.js';
import type { Sid } from './ids.js';

export class SessionTable implements Iterable<Sid> {
  readonly #live = new Map<Sid, ConnectionData | undefined>();
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

  /** A connection FSM started (called from its `init`), with its data record when it has one. */
  started(sid: Sid, data?: ConnectionData): void {
    this.#live.set(sid, data);
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

  /** The sessions with their data records, in start order: for read-only views only. */
  rows(): IterableIterator<[Sid, ConnectionData | undefined]> {
    return this.#live.entries();
  }

  /** One session's data record, for read-only views only. */
  dataOf(sid: Sid): ConnectionData | undefined {
    return this.#live.get(sid);
  }

  [Symbol.iterator](): Iterator<Sid> {
    return this.#live.keys();
  }
}
