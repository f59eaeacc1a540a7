/**
 * The requests in flight, by sid: from admission until their response closed. One table for what
 * two used to index separately, the same requests by the same sid: the handler's bound on one
 * session's requests in flight (`maxConnectionsPerSession`), and what `heldCount`, the
 * `comet_polls_held` gauge and the test hook `dropHeldPoll` read (the requests still waiting for
 * their session's answer). A session's entry is its first request, and each request links the
 * next of the same session: a poll and a send in flight together make no array, and one leaving
 * makes no copy.
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

export class HeldPolls {
  readonly #bySid = new Map<string, InFlightRequest>();
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
    if (last === undefined) this.#bySid.set(sid, r);
    else {
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
      if (r.nextInFlight === undefined) this.#bySid.delete(sid);
      else this.#bySid.set(sid, r.nextInFlight);
    } else {
      let prev = first;
      while (prev !== undefined && prev.nextInFlight !== r) prev = prev.nextInFlight;
      if (prev === undefined) return;
      prev.nextInFlight = r.nextInFlight;
    }
    r.nextInFlight = undefined;
  }

  /** Sessions with a request in flight (tests). */
  get sessions(): number {
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
