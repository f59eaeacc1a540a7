/**
 * Byte budgets: what one session holds (messages buffered ahead of a missing rid, unacked packets,
 * replies written and not yet flushed to a socket) and what all the sessions of a server hold
 * together. Erlang bounds a process with `max_heap_size` and the node lives on; Node has one heap
 * for everything, so each session counts its bytes here, and what would go over a budget is
 * refused (`503 overloaded` to a request, a typed `overloaded` to `handlePacket`) instead of
 * taking the process down with every other session on it.
 *
 * Shared counters, as Erlang's `counters` module is: the FSM that owns a session charges and
 * refunds what its inbox and outbox hold, and the HTTP side gives back a reply's bytes once its
 * socket took them, with no message in between (the session may have ended by then; the server's
 * count must still go down).
 */

/** What one session may hold, in bytes: 4 MiB, 64 echoes of a full 64 KiB body. */
export const DEFAULT_MAX_SESSION_BYTES = 4 * 1024 * 1024;

/**
 * What all sessions of a server may hold together, in bytes: 256 MiB. With 20,000 sessions of
 * overhead besides (about 3 KiB each) that stays well under the heap V8 gives a process on a
 * machine with 2 GiB or more (a quarter of its memory); see docs/session-state.md.
 */
export const DEFAULT_MAX_SERVER_BYTES = 256 * 1024 * 1024;

/** The bytes all sessions of one server hold; every {@link SessionBudget} of the server adds to it. */
export class ServerBudget {
  /** Bytes held now, across every session. */
  used = 0;
  constructor(readonly max: number) {}
}

/** The bytes one session holds, counted in its session's and its server's budget. */
export class SessionBudget {
  /** Bytes held now: inbox, outbox and unflushed replies. */
  used = 0;
  /** The part of {@link used} in replies written and not yet flushed. */
  unflushed = 0;

  constructor(readonly server: ServerBudget, readonly max: number) {}

  /** True while this session, or the whole server, is at or over its budget. */
  get full(): boolean {
    return this.used >= this.max || this.server.used >= this.server.max;
  }

  /** True when `bytes` more stay within both budgets. */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.max && this.server.used + bytes <= this.server.max;
  }

  /** Count `bytes` more (negative: fewer), in both budgets. */
  charge(bytes: number): void {
    this.used += bytes;
    this.server.used += bytes;
  }

  /**
   * A reply of `bytes` was written: count it until its socket took it. Returns the release, to call
   * on the response's 'finish' or 'close'; a second call does nothing.
   */
  written(bytes: number): () => void {
    this.charge(bytes);
    this.unflushed += bytes;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.charge(-bytes);
      this.unflushed -= bytes;
    };
  }
}
