/**
 * The live-session table of one comet application: which sessions are alive now, and how many
 * setups are between admission and their FSM's `init`. An ETS table in OTP terms: written by the
 * connections as they start and end (`comet_sup.ts` wires their `onStarted`/`onEnded` here), read
 * by `handleSetup` (the session limit), `broadcast`, the metrics and the observer.
 *
 * Each row keeps the connection's own data record, so a read-only view of a session
 * (`session_info.ts`) costs no message to the FSM and the FSM pays nothing for being viewable;
 * the record names the FSM, so the table is also where the local router finds a session's FSM
 * by its sid (`fsmOf`), as the post finds it by the registered name: one lookup by the sid
 * itself instead of a `session:<sid>` string built and hashed per request. A row is there from
 * the FSM's `init` to its `terminate` (or its exit, when killed): a session being set up or
 * ending is not one a request can reach either way (the registry's name would lead to a process
 * whose call fails with `unknown_session`).
 */
import type { FsmRef } from '../otp/gen_fsm.js';
import type { ParentRef } from '../otp/nact.js';
import type { ConnectionData, ConnectionEvent } from './connection.js';
import type { Sid } from './ids.js';

/** The session table of each actor system that runs a comet tree (comet_sup.ts attaches it), as
 *  an ETS `named_table` is found from any process: what `localRouter(system)` reads. */
const bySystem = new WeakMap<object, SessionTable>();

/** Make `table` the session table of `system`'s comet tree. */
export function attachSessionTable(system: ParentRef, table: SessionTable): void {
  bySystem.set(system, table);
}

/** The session table attached to `system`, if a comet tree runs in it. */
export function sessionTableOf(system: ParentRef): SessionTable | undefined {
  return bySystem.get(system);
}

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

  /** The FSM of a live session. */
  fsmOf(sid: Sid): FsmRef<ConnectionEvent> | undefined {
    return this.#live.get(sid)?.self;
  }

  /** One session's data record, for read-only views only. */
  dataOf(sid: Sid): ConnectionData | undefined {
    return this.#live.get(sid);
  }

  [Symbol.iterator](): Iterator<Sid> {
    return this.#live.keys();
  }
}
