/**
 * The requests in flight, by sid: from admission until their response closed. One table for what
 * two used to index separately, the same requests by the same sid: the handler's bound on one
 * session's requests in flight (`maxConnectionsPerSession`), and what `heldCount`, the
 * `comet_polls_held` gauge and the test hook `dropHeldPoll` read (the requests still waiting for
 * their session's answer). A session's entry is its first request, and each request links the
 * next of the same session: a poll and a send in flight together make no array, and one leaving
 * makes no copy.
 *
 * A session whose last request left keeps its key, with no request under it, until enough such
 * keys pile up to be swept together ({@link EMPTY_KEYS_SWEPT_PAST}). Deleting the key each time
 * made V8 rehash the Map as it shrank and grew again, every turn with 20 echo clients, and a
 * rehashed-away table is not cleared: it keeps its entries and a link to its successor. This
 * table lives in old space, so every table it left behind did too, dead but unmarked until the
 * next mark-compact, and a scavenge treats what such a table points at as alive: every request
 * in flight at a rehash outlived its scavenges and was promoted, 1.4 MB per scavenge, most of the
 * echo server's GC (docs/benchmarks.md, "Issue 15, third pass").
 */
import type { ServerResponse } from 'node:http';
import type { Sid } from '../comet/ids.js';

/** One request in the table. */
export interface InFlightRequest {
  readonly res: ServerResponse;
  /** True until its session answered it (or the call failed). */
  readonly awaitingReply: boolean;
  /** The next request of the same session in flight: the table's link, set by the table only. */
  nextInFlight?: InFlightRequest | undefined;
}

/**
 * How many keys with no request in flight the table keeps beyond the number with one, before it
 * drops them all at once. Whatever sids clients send (a known session's or not), the table stays
 * within twice its live keys plus this: with 19,000 sessions in flight, at most 42,096 keys, about
 * 1.8 MB of table, against 0.9 MB for the live keys alone.
 */
export const EMPTY_KEYS_SWEPT_PAST = 4096;

export class HeldPolls {
  /** A sid's first request in flight; `undefined` for a sid with none, kept until a sweep. */
  readonly #bySid = new Map<string, InFlightRequest | undefined>();
  /** Keys with a request in flight. */
  #live = 0;
  #awaiting = 0;

  /** How many requests wait for their session's answer. */
  get size(): number {
    return this.#awaiting;
  }

  /** The requests of `sid` in flight (answered or not, until their response closed). */
  count(sid: string): number {
    let n = 0;
    for (let r = this.#bySid.get(sid); r !== undefined; r = r.nextInFlight) n++;
    return n;
  }

  /** `r` of `sid` is in flight, waiting for its answer. */
  add(sid: string, r: InFlightRequest): void {
    r.nextInFlight = undefined;
    let last = this.#bySid.get(sid);
    if (last === undefined) {
      this.#bySid.set(sid, r);
      this.#live++;
    } else {
      while (last.nextInFlight !== undefined) last = last.nextInFlight;
      last.nextInFlight = r;
    }
    this.#awaiting++;
  }

  /** `r` got its answer (or its call failed): it no longer counts as held. */
  answered(): void {
    this.#awaiting--;
  }

  /** `r`'s response closed: it leaves the table. */
  delete(sid: string, r: InFlightRequest): void {
    const first = this.#bySid.get(sid);
    if (first === r) {
      this.#bySid.set(sid, r.nextInFlight);
      if (r.nextInFlight === undefined) this.#left();
    } else {
      let prev = first;
      while (prev !== undefined && prev.nextInFlight !== r) prev = prev.nextInFlight;
      if (prev === undefined) return;
      prev.nextInFlight = r.nextInFlight;
    }
    r.nextInFlight = undefined;
  }

  /** A sid's last request left: its key stays, until the keys without requests are many. */
  #left(): void {
    this.#live--;
    if (this.#bySid.size - this.#live <= this.#live + EMPTY_KEYS_SWEPT_PAST) return;
    for (const [sid, first] of this.#bySid) if (first === undefined) this.#bySid.delete(sid);
  }

  /** Sessions with a request in flight (tests). */
  get sessions(): number {
    return this.#live;
  }

  /** Keys in the table, with a request in flight or not (tests). */
  get keys(): number {
    return this.#bySid.size;
  }

  /** Destroy the socket of every request of `sid` still waiting for its answer (a dead
   *  network); how many. */
  drop(sid: Sid | string): number {
    let n = 0;
    // A socket's 'close' comes later, never inside destroy(): the list stays as it is meanwhile.
    for (let r = this.#bySid.get(sid); r !== undefined; r = r.nextInFlight) {
      if (!r.awaitingReply) continue;
      r.res.socket?.destroy();
      n++;
    }
    return n;
  }
}
