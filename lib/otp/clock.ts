/**
 * Time as an injectable dependency. Every timer in the OTP layer (gen_fsm timers, the dietimer,
 * supervisor restart intensity, shutdown timeouts) reads time through a Clock, so tests advance a
 * manual clock instead of sleeping.
 */

/** An opaque handle for a scheduled callback. */
export type TimerHandle = { readonly __timer: unique symbol };

export interface Clock {
  /** Monotonic milliseconds (never goes backwards; unrelated to wall time). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Optional: whether `handle` keeps the process alive (Node's `ref`/`unref`); a clock without
   *  processes to keep alive (ManualClock) leaves it out. */
  setRef?(handle: TimerHandle, ref: boolean): void;
}

/** The real clock: `performance.now()` and Node's timers. Timers are unref'd only if asked. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimeout: (h) => clearTimeout(h as unknown as NodeJS.Timeout),
  setRef: (h, ref) => {
    const timer = h as unknown as NodeJS.Timeout;
    if (ref) timer.ref();
    else timer.unref();
  },
};

interface Scheduled {
  readonly at: number;
  readonly order: number;
  readonly fn: () => void;
}

/**
 * A clock that only moves when told. `advance(ms)` runs every callback due by then, in time order
 * (ties in scheduling order), including callbacks scheduled by callbacks it runs.
 * @example
 * const clock = new ManualClock();
 * clock.setTimeout(() => console.log('fired'), 1000);
 * clock.advance(999); // nothing
 * clock.advance(1);   // fired
 */
export class ManualClock implements Clock {
  #now = 0;
  #order = 0;
  readonly #pending = new Map<TimerHandle, Scheduled>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {} as TimerHandle;
    this.#pending.set(handle, { at: this.#now + Math.max(0, ms), order: this.#order++, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#pending.delete(handle);
  }

  /** Number of callbacks scheduled and not yet run or cleared. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [TimerHandle, Scheduled] | undefined;
      for (const entry of this.#pending) {
        if (entry[1].at > target) continue;
        if (!next || entry[1].at < next[1].at || (entry[1].at === next[1].at && entry[1].order < next[1].order)) next = entry;
      }
      if (!next) break;
      this.#pending.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = target;
  }
}
