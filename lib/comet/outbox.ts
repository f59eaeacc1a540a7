/**
 * The packet outbox of one session (server -> client): seq numbering and ack bookkeeping of wire
 * contract v1. Pure data: no timers, no I/O. The connection FSM pushes application packets into it
 * (encoded: each packet's data as JSON text, made once when it was pushed), takes the oldest
 * pending ones into every response, up to a byte limit, and feeds it the `ack` of every request.
 *
 * Why packets stay until acked: a response can die in flight (socket closed, proxy dropped it) after
 * the server wrote it, so "written" never means "received". Only the client's `ack` proves receipt;
 * until then every packet is sent again on each later response, under the same seq, and the client
 * drops seqs it already has. See docs/session-state.md.
 */
import { CometError } from './errors.js';
import { asSeq, type Seq } from './ids.js';
import type { EncodedData, EncodedPacket } from './wire.js';

export type { EncodedPacket };

/** Unacked packets a session may hold before `push` answers `overloaded` (contract: `503 overloaded`). */
export const DEFAULT_MAX_QUEUE = 1000;

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
const NO_PACKETS: readonly EncodedPacket[] = Object.freeze([]);

function outboxError(code: OutboxErrorCode, message: string): OutboxError {
  return new CometError(code, message) as OutboxError;
}

/**
 * Unacked packets of one session, in seq order. Seqs start at 1, go up by 1 per accepted packet and
 * are never reused (an `overloaded` push consumes no seq). A re-sent seq carries the same data:
 * a packet is kept as the JSON text of its data, encoded when it was pushed, and frozen, so what
 * goes out again under a seq is byte for byte what went out the first time (and the application
 * may change its object after pushing it). Its memory is its `bytes`, counted in {@link bytes}.
 *
 * Memory: five fields per instance; the packet array exists only while something is unacked
 * (up to 19,000 sessions share a process, most of them idle).
 *
 * @example
 * ```ts
 * const outbox = new Outbox({ maxQueue: 2 });
 * const enc = (x: unknown) => { const json = JSON.stringify(x); return { json, bytes: textBytes(json) + PACKET_OVERHEAD_BYTES }; };
 * outbox.push(enc('a'));           // { ok: true, seq: 1 }
 * outbox.push(enc('b'));           // { ok: true, seq: 2 }
 * outbox.push(enc('c'));           // { ok: false, code: 'overloaded' }: nothing dropped
 * outbox.pending();                // [{ seq: 1, json: '"a"', … }, { seq: 2, json: '"b"', … }]
 * outbox.pending(80);              // [{ seq: 1, json: '"a"', … }]: the oldest, up to 80 bytes
 * outbox.ack(asSeq(1));            // client got seq 1
 * outbox.pending();                // [{ seq: 2, json: '"b"', … }]: resent until acked
 * ```
 */
export class Outbox {
  /** Maximum count of unacked packets. */
  readonly maxQueue: number;
  #lastSeq = 0;
  #acked = 0;
  #bytes = 0;
  // Invariant: holds exactly seqs #acked+1 .. #lastSeq; undefined when that range is empty.
  #queue: EncodedPacket[] | undefined = undefined;

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
  push(data: EncodedData): PushResult {
    if (this.isFull) return OVERLOADED;
    return { ok: true, seq: this.pushPastBound(data) };
  }

  /**
   * Queue `data` under the next seq even when `maxQueue` packets are unacked. For what the
   * application pushes in answer to a message already accepted: refusing it would lose it, and
   * the caller bounds the overshoot instead (the FSM takes no new messages while the queue is full,
   * so it goes over by what one request's messages push, at most).
   */
  pushPastBound(data: EncodedData): Seq {
    const seq = asSeq(++this.#lastSeq);
    (this.#queue ??= []).push(Object.freeze({ seq, json: data.json, bytes: data.bytes }));
    this.#bytes += data.bytes;
    return seq;
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
    if (target === this.#lastSeq) {
      this.#queue = undefined;
      this.#bytes = 0;
      return;
    }
    const gone = this.#queue?.splice(0, forgotten) ?? [];
    for (const p of gone) this.#bytes -= p.bytes;
  }

  /**
   * The oldest unacked packets, in seq order, as many as fit in `maxBytes` (their `bytes` summed),
   * but always the oldest one: what the next response carries, so a response costs O(limit), not
   * O(queue); the rest go in the next one. Without `maxBytes`, every unacked packet. A snapshot:
   * later pushes and acks do not change an array already returned.
   */
  pending(maxBytes = Infinity): readonly EncodedPacket[] {
    const queue = this.#queue;
    if (queue === undefined) return NO_PACKETS;
    if (maxBytes >= this.#bytes) return queue.slice();
    let n = 0;
    for (let sum = 0; n < queue.length; n++) {
      sum += (queue[n] as EncodedPacket).bytes;
      if (sum > maxBytes && n > 0) break;
    }
    return queue.slice(0, n);
  }

  /**
   * {@link pending}, for a caller that reads the packets at once and keeps nothing (a response
   * encoded on the spot): when every unacked packet fits, the queue itself rather than a copy of
   * it, valid only until the next push or ack. Every response asked for its copy.
   */
  peekPending(maxBytes = Infinity): readonly EncodedPacket[] {
    const queue = this.#queue;
    return queue !== undefined && maxBytes >= this.#bytes ? queue : this.pending(maxBytes);
  }

  /** What the unacked packets cost: the sum of their `bytes`. */
  get bytes(): number {
    return this.#bytes;
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
