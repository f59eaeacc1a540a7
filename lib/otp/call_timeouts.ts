/**
 * The safety-net timeouts of calls, on one coarse timer wheel instead of a Node timer per call.
 * A held poll is a call that lives for its whole wait; a `Timeout` per call cost about 180 bytes
 * per held poll and a timer-list insert and removal per request (about 1.6% of the echo server's
 * CPU). Here a call's deadline is rounded up to the next multiple of
 * {@link CALL_TIMEOUT_GRANULARITY_MS} and the call is linked into that bucket's list; one timer,
 * for the earliest bucket, serves every call.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/**
 * How coarse call timeouts are, in ms: a timeout fires no earlier than asked and at most this much
 * later (plus event-loop lag, like every timer). Calls' timeouts are safety nets (a held poll's is its
 * wait plus a margin, and its FSM answers first), so lateness costs nothing; a call with a shorter
 * timeout than this keeps a timer of its own, since being this late would more than double it.
 */
export const CALL_TIMEOUT_GRANULARITY_MS = 100;

/** A place in a bucket's circular list: a bucket's head, or a call on it. */
export interface WheelLink {
  /** Undefined while the entry is on no bucket. */
  wheelPrev: WheelLink | undefined;
  wheelNext: WheelLink | undefined;
}

/** What the wheel times: told `expired()` once its deadline has passed, unless removed before. */
export interface WheelEntry extends WheelLink {
  expired(): void;
}

/** A bucket: the head of a circular doubly linked list, so removal needs no bucket lookup. */
class Bucket implements WheelLink {
  wheelPrev: WheelLink = this;
  wheelNext: WheelLink = this;
}

/**
 * A hashed timer wheel: buckets by deadline (`ceil(deadline / granularity)`), one clock timer
 * armed for the earliest bucket while any entry waits, and none once nothing does. Adding is a Map
 * lookup and a link; removing is an unlink, O(1) and without touching the timer while other
 * entries wait (a timer left armed for an emptied bucket fires once, finds nothing and re-arms
 * for the earliest bucket left). Once the last entry is removed the timer no longer keeps the
 * process alive (it is unref'd, and ref'd again by the next entry; on a clock that cannot, it is
 * cleared): a ref'd timer due a minute later would keep a process that has nothing left to do
 * from exiting. Unref'd rather than cleared because a wheel that empties and fills again with
 * every request would otherwise make a Node timer per request, which is what it is there to save.
 */
export class CallTimerWheel {
  readonly #clock: Clock;
  readonly #granularity: number;
  readonly #buckets = new Map<number, Bucket>();
  #count = 0;
  #timer: TimerHandle | undefined;
  /** Whether the timer keeps the process alive: while any entry waits. */
  #refd = false;
  /** The bucket the timer is armed for; undefined when no timer is armed. */
  #armedFor: number | undefined;
  #firing = false;

  constructor(clock: Clock = systemClock, granularityMs: number = CALL_TIMEOUT_GRANULARITY_MS) {
    this.#clock = clock;
    this.#granularity = granularityMs;
  }

  /** Entries added and not yet expired or removed. */
  get size(): number {
    return this.#count;
  }

  /** True while the wheel holds a clock timer that keeps the process alive. */
  get armed(): boolean {
    return this.#timer !== undefined && this.#refd;
  }

  /** Time `entry` out `ms` from now (rounded up to the granularity). The entry must be on no bucket. */
  add(entry: WheelEntry, ms: number): void {
    const slot = Math.ceil((this.#clock.now() + ms) / this.#granularity);
    let bucket = this.#buckets.get(slot);
    if (bucket === undefined) {
      bucket = new Bucket();
      this.#buckets.set(slot, bucket);
    }
    const last = bucket.wheelPrev;
    entry.wheelPrev = last;
    entry.wheelNext = bucket;
    last.wheelNext = entry;
    bucket.wheelPrev = entry;
    this.#count++;
    if (!this.#firing && (this.#armedFor === undefined || slot < this.#armedFor)) this.#arm(slot);
    else if (!this.#refd && this.#timer !== undefined) this.#setRef(true);
  }

  /** Take `entry` off its bucket; nothing if it is on none (expired, removed, never added). */
  remove(entry: WheelEntry): void {
    const prev = entry.wheelPrev;
    const next = entry.wheelNext;
    if (prev === undefined || next === undefined) return;
    prev.wheelNext = next;
    next.wheelPrev = prev;
    entry.wheelPrev = undefined;
    entry.wheelNext = undefined;
    this.#count--;
    if (this.#count === 0 && !this.#firing) {
      if (this.#clock.setRef !== undefined) this.#setRef(false);
      else this.#disarm();
    }
  }

  #setRef(ref: boolean): void {
    if (this.#timer !== undefined) this.#clock.setRef?.(this.#timer, ref);
    this.#refd = ref;
  }

  /** Nothing waits: no timer, no bucket. */
  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = undefined;
    this.#refd = false;
    this.#buckets.clear();
  }

  #arm(slot: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#armedFor = slot;
    this.#timer = this.#clock.setTimeout(this.#fire, Math.max(0, slot * this.#granularity - this.#clock.now()));
    this.#refd = true;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedFor = undefined;
    this.#refd = false;
    // Only buckets whose whole span has passed: a timer that fires a little early (Node rounds
    // to whole ms) re-arms rather than expire a call before its time.
    const due = Math.floor(this.#clock.now() / this.#granularity);
    this.#firing = true;
    try {
      for (const [slot, bucket] of this.#buckets) {
        if (slot > due) continue;
        this.#buckets.delete(slot);
        for (let entry = bucket.wheelNext; entry !== bucket; entry = bucket.wheelNext) {
          this.remove(entry as WheelEntry);
          (entry as WheelEntry).expired();
        }
      }
    } finally {
      this.#firing = false;
      this.#rearm();
    }
  };

  #rearm(): void {
    if (this.#count === 0) {
      this.#disarm();
      return;
    }
    let earliest = Infinity;
    for (const [slot, bucket] of this.#buckets) {
      if (bucket.wheelNext === bucket) this.#buckets.delete(slot);
      else if (slot < earliest) earliest = slot;
    }
    this.#arm(earliest);
  }
}
