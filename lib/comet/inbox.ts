/**
 * The message inbox of one session (client -> server): rid ordering and exactly-once delivery of
 * wire contract v1. Pure data: no timers, no I/O. The connection FSM calls `accept` once per request
 * and hands the returned batches, in order, to the application.
 *
 * Why it is needed: a client has two connections, so request rid 2 can overtake rid 1; and it
 * retransmits a request whose response it never got, so a rid can arrive twice. See
 * docs/session-state.md for the exactly-once argument.
 */
import { CometError } from './errors.js';
import { asRid, type Rid } from './ids.js';
import { JsonText } from './json_text.js';
import { messagesOf, type Messages } from './wire.js';

/** How far (inclusive) a rid may be from the highest rid seen, in either direction. */
export const RID_WINDOW = 16;

/** The messages of one request, delivered together. */
export type Batch = readonly unknown[];

/**
 * The messages of one request while they wait for a lower rid: the UTF-8 bytes of their JSON
 * array, parsed when they are delivered. A parsed body can cost twenty times its text (64 KiB of
 * nested `[]` parses into over a megabyte of arrays), so the inbox never keeps one parsed, and the
 * server's body reader never builds them for a request that is only buffered. `bytes` is what it
 * costs: its bytes, and {@link BATCH_OVERHEAD_BYTES}.
 */
export type EncodedBatch = { readonly data: Buffer; readonly bytes: number };

/**
 * What a buffered batch costs beyond its bytes: its Map entry and record (about 150 bytes of
 * heap), and the Buffer's objects (its Uint8Array and ArrayBuffer, about 130 more) and native
 * bookkeeping (the backing store, about 130). Measured: 200,000 16-byte batches in a Map took
 * 262 bytes of heap and 641 of RSS each after a full GC.
 */
export const BATCH_OVERHEAD_BYTES = 512;

/**
 * Encode a request's messages for the buffer, as bytes of their own: a copy, never a view of the
 * request's body (a short message in a long body must not keep the whole body alive uncounted).
 * Messages still as text are copied as they are; values came from a JSON body, so they encode.
 */
export function encodeBatch(messages: Messages): EncodedBatch {
  const json = messages instanceof JsonText ? messages.json : JSON.stringify(messages);
  // Not from Buffer's shared pool either: a small slice of it would pin its whole 8 KiB slab.
  const data = Buffer.allocUnsafeSlow(Buffer.byteLength(json));
  data.write(json);
  return { data, bytes: data.length + BATCH_OVERHEAD_BYTES };
}

/**
 * What {@link Inbox.accept} would do with a rid, without doing it: `deliver` (it is the next
 * expected), `buffer` (a lower rid is missing), `duplicate` or `bad_rid`.
 */
export type RidFate = 'deliver' | 'buffer' | 'duplicate' | 'bad_rid';

/**
 * Outcome of {@link Inbox.accept}:
 * - `deliver`: `batches` are now deliverable, one per rid, in rid order; hand them to the application
 *   in this order. Normally the first is the request's own messages, followed by buffered rids the
 *   request unblocked. A rid with no messages yields an empty batch.
 * - `duplicate`: the rid was seen before (a retransmission): deliver nothing, answer it as usual.
 * - `buffered`: a lower rid has not arrived yet; the messages are kept and come out, in order, from
 *   the call that fills the gap.
 * - `bad_rid`: more than {@link RID_WINDOW} from the highest rid seen (`400 bad_rid`); the inbox
 *   did not change.
 */
export type InboxResult =
  | { readonly kind: 'deliver'; readonly batches: readonly Batch[] }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'buffered' }
  | { readonly kind: 'bad_rid' };

/** Stable code of the error {@link Inbox.accept} throws on a caller bug. */
export type InboxErrorCode = 'ERR_COMET_INVALID_RID';

/** A {@link CometError} with this code (thrown only when the caller broke the documented contract). */
export type InboxError = CometError & { readonly code: InboxErrorCode };

// Shared results: the non-deliver outcomes carry no data, so no call needs to allocate one.
const DUPLICATE: InboxResult = Object.freeze({ kind: 'duplicate' });
const BUFFERED: InboxResult = Object.freeze({ kind: 'buffered' });
const BAD_RID: InboxResult = Object.freeze({ kind: 'bad_rid' });
const EMPTY_DELIVERY: InboxResult = Object.freeze({ kind: 'deliver', batches: Object.freeze([Object.freeze([])]) });

/**
 * Rid bookkeeping of one session. Seen-ness is exact inside the window without a growing set: every
 * rid below {@link nextExpected} has been seen, and above it only the buffered ones have (at most
 * {@link RID_WINDOW} of them).
 *
 * A rid the window has left behind unseen can never arrive (it would be `bad_rid`). Such a gap only
 * opens if a client breaks "+1 per request" (e.g. rids 16, 32, 48...); rather than buffer forever
 * behind it, the inbox steps over the unreachable rids and delivers what follows. A conforming client
 * never triggers this; it keeps the buffer bounded against one that does.
 *
 * Memory: four fields per instance; the buffer Map exists only while a rid is waiting for a gap.
 *
 * @example
 * ```ts
 * const inbox = new Inbox();
 * inbox.accept(asRid(2), ['b']);  // { kind: 'buffered' }: rid 1 took the other connection
 * inbox.accept(asRid(1), ['a']);  // { kind: 'deliver', batches: [['a'], ['b']] }
 * inbox.accept(asRid(2), ['b']);  // { kind: 'duplicate' }: a retransmission, not delivered again
 * inbox.accept(asRid(19), []);    // { kind: 'bad_rid' }: 17 above the highest seen (2)
 * ```
 */
export class Inbox {
  #highest = 0;
  #next = 1;
  #bytes = 0;
  #buffered: Map<number, EncodedBatch> | undefined = undefined;

  /** What {@link accept} would do with `rid`; changes nothing. */
  peek(rid: Rid): RidFate {
    // The window is checked before seen-ness: a rid that far away is rejected even if it was once
    // seen, and it leaves no trace, so a wild rid cannot move the window.
    if (Math.abs(rid - this.#highest) > RID_WINDOW) return 'bad_rid';
    if (rid < this.#next || this.#buffered?.has(rid) === true) return 'duplicate';
    return rid === this.#next ? 'deliver' : 'buffer';
  }

  /**
   * Record request `rid` carrying `messages` and say what to deliver. See {@link InboxResult}.
   * Buffered messages are kept as the bytes of their JSON text (`encoded` when the caller already
   * made it for `messages`, to count its bytes first), and parsed when delivered; messages still
   * as text (a {@link JsonText}) are parsed only then, or never when the rid is a duplicate.
   *
   * @throws {InboxError} `ERR_COMET_INVALID_RID` if `rid` is not a positive safe integer (the wire
   *   decoder answers `400 bad_request` before that can happen).
   */
  accept(rid: Rid, messages: Messages, encoded?: EncodedBatch): InboxResult {
    if (!Number.isSafeInteger(rid) || rid < 1) {
      throw new CometError('ERR_COMET_INVALID_RID', `rid must be a positive integer, got ${String(rid)}`);
    }
    switch (this.peek(rid)) {
      case 'bad_rid':
        return BAD_RID;
      case 'duplicate':
        return DUPLICATE;
      case 'deliver':
        this.#highest = Math.max(this.#highest, rid);
        this.#next++;
        // A poll (no messages, nothing buffered behind it): the one shared result, no allocation.
        if (messages.length === 0 && this.#buffered === undefined) return EMPTY_DELIVERY;
        return { kind: 'deliver', batches: this.#drain([messagesOf(messages)]) };
      case 'buffer': {
        this.#highest = Math.max(this.#highest, rid);
        const batch = encoded ?? encodeBatch(messages);
        (this.#buffered ??= new Map()).set(rid, batch);
        this.#bytes += batch.bytes;
        const batches = this.#drain([]);
        return batches.length === 0 ? BUFFERED : { kind: 'deliver', batches };
      }
    }
  }

  /**
   * Move `#next` past every buffered rid that is now in order, and past unseen rids that fell out of
   * the window (they can never arrive), collecting batches in rid order.
   */
  #drain(batches: Batch[]): Batch[] {
    const buffered = this.#buffered;
    if (buffered === undefined) return batches;
    const floor = this.#highest - RID_WINDOW;
    // Terminates: buffered rids are <= #highest, so past #highest nothing is found and #next >= floor.
    for (;;) {
      const batch = buffered.get(this.#next);
      if (batch !== undefined) {
        buffered.delete(this.#next);
        this.#bytes -= batch.bytes;
        batches.push(JSON.parse(batch.data.toString('utf8')) as Batch);
      } else if (this.#next >= floor) {
        break;
      }
      this.#next++;
    }
    if (buffered.size === 0) this.#buffered = undefined;
    return batches;
  }

  /** Highest rid accepted so far (delivered or buffered); 0 before the first request. */
  get highestSeen(): Rid | 0 {
    return this.#highest === 0 ? 0 : asRid(this.#highest);
  }

  /** Lowest rid not seen yet: the rid whose arrival delivers the buffered ones. 1 after setup. */
  get nextExpected(): Rid {
    return asRid(this.#next);
  }

  /** Count of rids waiting for a lower rid (at most {@link RID_WINDOW}). */
  get bufferedCount(): number {
    return this.#buffered?.size ?? 0;
  }

  /** What the buffered messages cost: the sum of their batches' `bytes`. */
  get bufferedBytes(): number {
    return this.#bytes;
  }
}
