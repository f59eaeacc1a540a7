/**
 * The responses to request frames in flight, by sid: what `heldCount`, the `comet_polls_held`
 * gauge and the test hook `dropHeldPoll` read. The handler tells it of each response through its
 * `inFlight` option.
 */
import type { ServerResponse } from 'node:http';
import { asSid, type Sid } from '../comet/ids.js';

export class HeldPolls {
  readonly #held = new Map<ServerResponse, Sid>();

  /** How many responses are in flight. */
  get size(): number {
    return this.#held.size;
  }

  /** A request frame is in flight on `res` (a setup has no sid and is not counted). */
  add(res: ServerResponse, body: unknown): void {
    const sid = typeof body === 'object' && body !== null && 'sid' in body && typeof body.sid === 'string' ? body.sid : undefined;
    if (sid !== undefined) this.#held.set(res, asSid(sid));
  }

  delete(res: ServerResponse): void {
    this.#held.delete(res);
  }

  /** Destroy the socket of every request of `sid` in flight (a dead network); how many. */
  drop(sid: Sid | string): number {
    let n = 0;
    for (const [res, s] of this.#held) {
      if (s === sid) {
        res.socket?.destroy();
        n++;
      }
    }
    return n;
  }
}
