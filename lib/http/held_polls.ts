/**
 * The requests in flight, by sid: from admission until their response closed. One table for what
 * two used to index separately, the same requests by the same sid: the handler's bound on one
 * session's requests in flight (`maxConnectionsPerSession`), and what `heldCount`, the
 * `comet_polls_held` gauge and the test hook `dropHeldPoll` read (the requests still waiting for
 * their session's answer). A session's entry is its one request itself (the common case: its
 * held poll), an array only while it has several.
 */
import type { ServerResponse } from 'node:http';
import type { Sid } from '../comet/ids.js';

/** One request in the table. */
export interface InFlightRequest {
  readonly res: ServerResponse;
  /** True until its session answered it (or the call failed). */
  readonly awaitingReply: boolean;
}

export class HeldPolls {
  readonly #bySid = new Map<string, InFlightRequest | InFlightRequest[]>();
  #awaiting = 0;

  /** How many requests wait for their session's answer. */
  get size(): number {
    return this.#awaiting;
  }

  /** The requests of `sid` in flight (answered or not, until their response closed). */
  count(sid: string): number {
    const e = this.#bySid.get(sid);
    return e === undefined ? 0 : Array.isArray(e) ? e.length : 1;
  }

  /** `r` of `sid` is in flight, waiting for its answer. */
  add(sid: string, r: InFlightRequest): void {
    const e = this.#bySid.get(sid);
    if (e === undefined) this.#bySid.set(sid, r);
    else if (Array.isArray(e)) e.push(r);
    else this.#bySid.set(sid, [e, r]);
    this.#awaiting++;
  }

  /** `r` got its answer (or its call failed): it no longer counts as held. */
  answered(): void {
    this.#awaiting--;
  }

  /** `r`'s response closed: it leaves the table. */
  delete(sid: string, r: InFlightRequest): void {
    const e = this.#bySid.get(sid);
    if (e === r) {
      this.#bySid.delete(sid);
    } else if (Array.isArray(e)) {
      const i = e.indexOf(r);
      if (i !== -1) e.splice(i, 1);
      if (e.length === 1) this.#bySid.set(sid, e[0] as InFlightRequest);
      else if (e.length === 0) this.#bySid.delete(sid);
    }
  }

  /** Sessions with a request in flight (tests). */
  get sessions(): number {
    return this.#bySid.size;
  }

  /** Destroy the socket of every request of `sid` still waiting for its answer (a dead
   *  network); how many. */
  drop(sid: Sid | string): number {
    const e = this.#bySid.get(sid);
    if (e === undefined) return 0;
    let n = 0;
    for (const r of Array.isArray(e) ? [...e] : [e]) {
      if (!r.awaitingReply) continue;
      r.res.socket?.destroy();
      n++;
    }
    return n;
  }
}
