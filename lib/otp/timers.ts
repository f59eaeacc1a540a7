/**
 * Erlang's process timers (`erlang:start_timer/3`, `gen_fsm:start_timer/2`, `cancel_timer/1`) for
 * one process. A timer's message goes through the mailbox like any other, so a timer can fire
 * while its cancel is in flight: the timeout is already queued when the handler cancels it. OTP
 * answers that race by flushing the mailbox in `cancel_timer`; a nact mailbox cannot be searched,
 * so we keep the set of live refs instead and drop, on delivery, any timeout whose ref is no
 * longer live. The effect is the same: after `cancelTimer(ref)` returns, that timeout is never seen.
 */
import type { Clock, TimerHandle } from './clock.js';

declare const timerBrand: unique symbol;
/** A reference to one started timer, as returned by `startTimer`. */
export type TimerRef = { readonly [timerBrand]: true; readonly id: number };

let nextTimerId = 1;

/** A ref as the table keeps it: with its due time on the table's clock, for `cancel`'s time left. */
interface LiveRef {
  readonly id: number;
  readonly at: number;
}

/** The map's value for a timer that fired: its timeout is in the mailbox, not yet handled. */
const FIRED = Symbol('fired');

/** The live timers of one process. */
export class TimerTable {
  readonly #clock: Clock;
  // Lazily created: most processes never start a timer, and thousands of sessions stay live.
  #live: Map<TimerRef, TimerHandle | typeof FIRED> | undefined;
  // Set once the process exits: a timer started by terminate (or by a handler still running
  // after a kill) would fire into a dead mailbox and keep the event loop alive meanwhile.
  #closed = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Start a timer; `deliver` runs when it fires (it should put a timeout in the mailbox). */
  start(ms: number, deliver: (ref: TimerRef) => void): TimerRef {
    const at = this.#clock.now() + Math.max(0, ms);
    const ref = { id: nextTimerId++, at } satisfies LiveRef as unknown as TimerRef;
    if (this.#closed) return ref; // never live, never delivered
    const handle = this.#clock.setTimeout(() => {
      // Still live until its timeout is handled (or flushed by a cancel): mark it fired.
      if (this.#live?.has(ref)) this.#live.set(ref, FIRED);
      deliver(ref);
    }, ms);
    (this.#live ??= new Map()).set(ref, handle);
    return ref;
  }

  /**
   * Cancel a timer, as `gen_fsm:cancel_timer/1`: the ms that were left if it had not fired
   * (`erlang:cancel_timer/1`'s answer); `0` if it had fired and its timeout is still in the
   * mailbox (which is flushed: the timeout will be dropped); `false` if it had been handled or
   * cancelled already. Whatever the answer, its timeout is never delivered after this.
   */
  cancel(ref: TimerRef): number | false {
    const handle = this.#live?.get(ref);
    if (handle === undefined) return false;
    this.#live?.delete(ref);
    if (handle === FIRED) return 0;
    this.#clock.clearTimeout(handle);
    // erlang:cancel_timer rounds the time left up to whole ms; a timer due now has 0 left.
    return Math.max(0, Math.ceil((ref as unknown as LiveRef).at - this.#clock.now()));
  }

  /**
   * Called when a timeout reaches the front of the mailbox: true if it is still live (and is now
   * consumed), false if it was cancelled after it fired, in which case the timeout is dropped.
   */
  consume(ref: TimerRef): boolean {
    return this.#live?.delete(ref) ?? false;
  }

  /** Whether a timer is live: started, and neither cancelled nor delivered. */
  isLive(ref: TimerRef): boolean {
    return this.#live?.has(ref) ?? false;
  }

  /** Cancel every live timer, and start none from now on: a process's timers die with it. */
  cancelAll(): void {
    this.#closed = true;
    if (!this.#live) return;
    for (const handle of this.#live.values()) if (handle !== FIRED) this.#clock.clearTimeout(handle);
    this.#live = undefined;
  }

  get size(): number {
    return this.#live?.size ?? 0;
  }
}
