/**
 * The packet outbox of one session (server -> client): seq numbering and ack bookkeeping of wire
 * contract v1. Pure data: no timers, no I/O. The connection FSM pushes application packets into it,
 * copies `pending()` into every response, and feeds it the `ack` of every request.
 *
 * Why packets stay until acked: a response can die in flight (socket closed, proxy dropped it) after
 * the server wrote it, so "written" never means "received". Only the client's `ack` proves receipt;
 * until then every packet is sent again on each later response, under the same seq, and the client
 * drops seqs it already has. See docs/session-state.md.
 */
import { CometError } from './errors.js';
import { asSeq, type Seq } from './ids.js';
import type { Packet } from './wire.js';

export type { Packet };

/** Unacked packets a session may hold before `push` answers `overloaded` (contract: `503 overloaded`). */
export const DEFAULT_MAX_QUEUE = 1000;

/**
 * One packet as it goes on the wire: `{"seq": N, "data": ...}`.
 * (lib/comet/wire.ts may define the same shape; the two are to be unified.)
 */

/** Result of {@link Outbox.push}: the seq assigned, or `overloaded` when the queue is full. */
export type PushResult = { readonly ok: true; readonly seq: Seq } | { readonly ok: false; readonly code: 'overloaded' };

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  /** Maximum count of unacked packets, a positive safe integer. Default {@link DEFAULT_MAX_QUEUE}. */
  readonly maxQueue?: number;
}

/** Stable codes of the errors {@link Outbox} throws; each is a caller bug, never client input. */
export type OutboxErrorCode = 'ERR_COMET_INVALID_MAX_QUEUE' | 'ERR_COMET_INVALID_SEQ';

/** A {@link CometError} with one of these codes (thrown only when the caller broke the documented contract). */
export type OutboxError = CometError & { readonly code: OutboxErrorCode };

const OVERLOADED: PushResult = Object.freeze({ ok: false, code: 'overloaded' });
// One shared empty snapshot: most sessions have nothing pending most of the time, and each
// response asks, so an idle poll must not allocate.
const NO_PACKETS: readonly Packet[] = Object.freeze([]);

function outboxError(code: OutboxErrorCode, message: string): OutboxError {
  return new CometError(code, message) as OutboxError;
}

/**
 * Unacked packets of one session, in seq order. Seqs start at 1, go up by 1 per accepted packet and
 * are never reused (an `overloaded` push consumes no seq). A re-sent seq carries the same data:
 * packets are frozen when pushed, and `data` is kept by reference, so the application must not
 * mutate an object after pushing it.
 *
 * Memory: four fields per instance; the packet array exists only while something is unacked
 * (up to 19,000 sessions share a process, most of them idle).
 *
 * @example
 * ```ts
 * const outbox = new Outbox({ maxQueue: 2 });
 * outbox.push('a');                // { ok: true, seq: 1 }
 * outbox.push('b');                // { ok: true, seq: 2 }
 * outbox.push('c');                // { ok: false, code: 'overloaded' }: nothing dropped
 * outbox.pending();                // [{ seq: 1, data: 'a' }, { seq: 2, data: 'b' }]
 * outbox.ack(asSeq(1));            // client got seq 1
 * outbox.pending();                // [{ seq: 2, data: 'b' }]: resent until acked
 * ```
 */
export class Outbox {
  /** Maximum count of unacked packets. */
  readonly maxQueue: number;
  #lastSeq = 0;
  #acked = 0;
  // Invariant: holds exactly seqs #acked+1 .. #lastSeq; undefined when that range is empty.
  #queue: Packet[] | undefined = undefined;

  /** @throws {OutboxError} `ERR_COMET_INVALID_MAX_QUEUE` if `maxQueue` is not a positive safe integer. */
  constructor(options: OutboxOptions = {}) {
    const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 1) {
      throw outboxError('ERR_COMET_INVALID_MAX_QUEUE', `maxQueue must be a positive integer, got ${String(maxQueue)}`);
    }
    this.maxQueue = maxQueue;
  }

  /**
   * Queue `data` under the next seq. When `maxQueue` packets are unacked the packet is refused
   * (`{ ok: false, code: 'overloaded' }`) rather than an older one dropped: dropping would break
   * "nothing is lost", refusing lets the application see the slow client.
   */
  push(data: unknown): PushResult {
    if (this.#lastSeq - this.#acked >= this.maxQueue) return OVERLOADED;
    const seq = asSeq(++this.#lastSeq);
    (this.#queue ??= []).push(Object.freeze({ seq, data }));
    return { ok: true, seq };
  }

  /**
   * The client has every packet with seq <= `upTo`: forget them. An ack above {@link lastSeq} is
   * clamped to it (a later packet cannot have been received yet, so it must not be forgotten); an ack
   * at or below a previous one changes nothing (a late or replayed request must not resurrect
   * forgotten packets, and acks only move forward).
   *
   * @throws {OutboxError} `ERR_COMET_INVALID_SEQ` if `upTo` is not a non-negative safe integer
   *   (the wire decoder answers `400 bad_request` before that can happen).
   */
  ack(upTo: Seq): void {
    if (!Number.isSafeInteger(upTo) || upTo < 0) {
      throw outboxError('ERR_COMET_INVALID_SEQ', `ack must be a non-negative integer, got ${String(upTo)}`);
    }
    const target = Math.min(upTo, this.#lastSeq);
    if (target <= this.#acked) return;
    const forgotten = target - this.#acked;
    this.#acked = target;
    if (target === this.#lastSeq) this.#queue = undefined;
    else this.#queue?.splice(0, forgotten);
  }

  /**
   * Every unacked packet, in seq order: what the next response carries. A snapshot: later pushes and
   * acks do not change an array already returned, so it can be serialised after the FSM moved on.
   */
  pending(): readonly Packet[] {
    return this.#queue === undefined ? NO_PACKETS : this.#queue.slice();
  }

  /** True when at least one packet is unacked (the FSM answers a request at once). */
  get hasPending(): boolean {
    return this.#lastSeq > this.#acked;
  }

  /** Count of unacked packets. */
  get size(): number {
    return this.#lastSeq - this.#acked;
  }

  /** True when the next `push` would answer `overloaded`. */
  get isFull(): boolean {
    return this.#lastSeq - this.#acked >= this.maxQueue;
  }

  /** Highest seq assigned so far; 0 before the first packet. */
  get lastSeq(): Seq {
    return asSeq(this.#lastSeq);
  }

  /** Highest seq the client has acked (after clamping); 0 before the first effective ack. */
  get lastAcked(): Seq {
    return asSeq(this.#acked);
  }
}
