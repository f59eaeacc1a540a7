/**
 * Erlang's process timers (`erlang:start_timer/3`, `gen_fsm:start_timer/2`, `cancel_timer/1`) for
 * one process. A timer's message goes through the mailbox like any other, so a timer can fire
 * while its cancel is in flight: the timeout is already queued when the handler cancels it. OTP
 * answers that race by flushing the mailbox in `cancel_timer`; a nact mailbox cannot be searched,
 * so we keep the set of live refs instead and drop, on delivery, any timeout whose ref is no
 * longer live. The effect is the same: after `cancelTimer(ref)` returns, that timeout is never seen.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';

declare const timerBrand: unique symbol;
/** A reference to one started timer, as returned by `startTimer`. */
export type TimerRef = { readonly [timerBrand]: true; readonly id: number };

let nextTimerId = 1;

const ARMED = 0;
/** Its timeout is in the mailbox, not yet handled: still live (a cancel now flushes it). */
const FIRED = 1;
/** Delivered, cancelled, or never started (the table was closed). */
const DEAD = 2;

/**
 * One started timer: the ref handed out is the timer's own record, its state and its place in
 * its table's list of live timers included. Every session keeps one armed (for the wait or the
 * dietimer, whichever counts; thousands of sessions at once): no Map entry, no closure per timer.
 */
class LiveTimer<A, B = undefined> {
  readonly id = nextTimerId++;
  state: typeof ARMED | typeof FIRED | typeof DEAD = ARMED;
  handle: TimerHandle | undefined = undefined;
  prev: LiveTimer<unknown, unknown> | undefined = undefined;
  next: LiveTimer<unknown, unknown> | undefined = undefined;

  constructor(
    readonly table: TimerTable,
    /** Due time on the table's clock, for `cancel`'s time left. */
    readonly at: number,
    readonly deliver: (ref: TimerRef, arg: A, arg2: B) => void,
    readonly arg: A,
    readonly arg2: B,
  ) {}
}

// The system clock's timers take an argument: one shared callback, no closure per timer.
function fire(t: LiveTimer<unknown, unknown>): void {
  // Still live until its timeout is handled (or flushed by a cancel): mark it fired.
  if (t.state === ARMED) t.state = FIRED;
  t.handle = undefined;
  t.deliver(t as unknown as TimerRef, t.arg, t.arg2);
}

/** The live timers of one process. */
export class TimerTable {
  readonly #clock: Clock;
  /** The live timers (armed or fired), newest first: most processes have none, a session two. */
  #live: LiveTimer<unknown, unknown> | undefined = undefined;
  #size = 0;
  // Set once the process exits: a timer started by terminate (or by a handler still running
  // after a kill) would fire into a dead mailbox and keep the event loop alive meanwhile.
  #closed = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Start a timer; `deliver(ref, arg)` runs when it fires (it should put a timeout in the
   *  mailbox). Pass a shared `deliver` and the timer's own data as `arg`. */
  start(ms: number, deliver: (ref: TimerRef) => void): TimerRef;
  start<A>(ms: number, deliver: (ref: TimerRef, arg: A) => void, arg: A): TimerRef;
  /** Two arguments: a process's timer carries its context and its message, no record of both. */
  start<A, B>(ms: number, deliver: (ref: TimerRef, arg: A, arg2: B) => void, arg: A, arg2: B): TimerRef;
  start<A, B>(ms: number, deliver: (ref: TimerRef, arg: A, arg2: B) => void, arg?: A, arg2?: B): TimerRef {
    const t = new LiveTimer<A, B>(this, this.#clock.now() + Math.max(0, ms), deliver, arg as A, arg2 as B);
    if (this.#closed) {
      t.state = DEAD; // never live, never delivered
      return t as unknown as TimerRef;
    }
    const clock = this.#clock;
    t.handle = clock === systemClock
      ? setTimeout(fire, ms, t) as unknown as TimerHandle
      : clock.setTimeout(() => fire(t as LiveTimer<unknown, unknown>), ms);
    const head = this.#live;
    if (head !== undefined) {
      t.next = head;
      head.prev = t as LiveTimer<unknown, unknown>;
    }
    this.#live = t as LiveTimer<unknown, unknown>;
    this.#size++;
    return t as unknown as TimerRef;
  }

  /** The timer of `ref` if it is one of this table's live timers. */
  #own(ref: TimerRef): LiveTimer<unknown, unknown> | undefined {
    const t = ref as unknown as LiveTimer<unknown, unknown>;
    return t instanceof LiveTimer && t.table === this && t.state !== DEAD ? t : undefined;
  }

  #unlink(t: LiveTimer<unknown, unknown>): void {
    t.state = DEAD;
    if (t.prev !== undefined) t.prev.next = t.next;
    else this.#live = t.next;
    if (t.next !== undefined) t.next.prev = t.prev;
    t.prev = undefined;
    t.next = undefined;
    this.#size--;
  }

  /**
   * Cancel a timer, as `gen_fsm:cancel_timer/1`: the ms that were left if it had not fired
   * (`erlang:cancel_timer/1`'s answer); `0` if it had fired and its timeout is still in the
   * mailbox (which is flushed: the timeout will be dropped); `false` if it had been handled or
   * cancelled already. Whatever the answer, its timeout is never delivered after this.
   */
  cancel(ref: TimerRef): number | false {
    const t = this.#own(ref);
    if (t === undefined) return false;
    const fired = t.state === FIRED;
    const handle = t.handle;
    this.#unlink(t);
    if (fired) return 0;
    t.handle = undefined;
    if (handle !== undefined) this.#clock.clearTimeout(handle);
    // erlang:cancel_timer rounds the time left up to whole ms; a timer due now has 0 left.
    return Math.max(0, Math.ceil(t.at - this.#clock.now()));
  }

  /**
   * Called when a timeout reaches the front of the mailbox: true if it is still live (and is now
   * consumed), false if it was cancelled after it fired, in which case the timeout is dropped.
   */
  consume(ref: TimerRef): boolean {
    const t = this.#own(ref);
    if (t === undefined) return false;
    if (t.handle !== undefined) this.#clock.clearTimeout(t.handle);
    t.handle = undefined;
    this.#unlink(t);
    return true;
  }

  /** Whether a timer is live: started, and neither cancelled nor delivered. */
  isLive(ref: TimerRef): boolean {
    return this.#own(ref) !== undefined;
  }

  /** Cancel every live timer, and start none from now on: a process's timers die with it. */
  cancelAll(): void {
    this.#closed = true;
    for (let t = this.#live; t !== undefined;) {
      const next = t.next;
      if (t.handle !== undefined) this.#clock.clearTimeout(t.handle);
      t.handle = undefined;
      t.state = DEAD;
      t.prev = undefined;
      t.next = undefined;
      t = next;
    }
    this.#live = undefined;
    this.#size = 0;
  }

  get size(): number {
    return this.#size;
  }
}
