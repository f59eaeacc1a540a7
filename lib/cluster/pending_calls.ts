/**
 * The forwarded calls a node waits on, by call id: slots in one array, reused through a free list;
 * an id is its slot plus a multiple of the slot count (how many calls the slot has held), so a
 * late reply to a call that ended never finds the slot's next call. Not a `Map`: a `Map` with a
 * `set` and a `delete` per call is rehashed every few calls (and on every `delete` that empties
 * it), and a rehashed-away table keeps its entries, in old space once the `Map` is old, so every
 * call in flight at a rehash (its promise's resolvers, and through them its request) outlived its
 * scavenges until the next mark-compact: 0.6 MB promoted per scavenge on a node forwarding 16,000
 * calls a second (docs/benchmarks.md, "Scale-out on Redis"). A slot is cleared when its call ends,
 * and the array only grows, to the most calls ever in flight at once.
 */
import { CometError } from '../comet/errors.js';

/** The most calls in flight at once. */
export const PENDING_CALL_SLOTS = 2 ** 20;

export class PendingCalls<T> {
  /** The most calls in flight at once, and the stride of ids (their low part is the slot). */
  readonly #slots: number;
  /** How many calls a slot holds before its ids start again from the first: ids stay safe
   *  integers, and a reply can only be mistaken for a later call of its slot if it arrives after
   *  this many more calls have used that slot (about 2^33 by default: days at full load, where a
   *  reply comes within its call's timeout or never). */
  readonly #generations: number;
  readonly #values: (T | undefined)[] = [];
  /** The id of each slot's current call; 0 while the slot is free. */
  readonly #ids: number[] = [];
  /** How many calls each slot has held: the high part of its next id. */
  readonly #uses: number[] = [];
  readonly #free: number[] = [];
  #size = 0;

  /** @throws CometError `ERR_COMET_INVALID_OPTION` unless `slots` is an integer from 1 to
   *  {@link PENDING_CALL_SLOTS} and `generations` one from 1 to what keeps ids safe integers. */
  constructor(slots: number = PENDING_CALL_SLOTS, generations?: number) {
    if (!Number.isSafeInteger(slots) || slots < 1 || slots > PENDING_CALL_SLOTS) {
      throw new CometError('ERR_COMET_INVALID_OPTION', `slots must be an integer from 1 to ${PENDING_CALL_SLOTS}, got ${String(slots)}`);
    }
    // The most that keeps the largest id, (generations + 1) * slots - 1, a safe integer.
    const most = Math.floor(Number.MAX_SAFE_INTEGER / slots) - 1;
    const g = generations ?? most;
    if (!Number.isSafeInteger(g) || g < 1 || g > most) {
      throw new CometError('ERR_COMET_INVALID_OPTION', `generations must be an integer from 1 to ${most}, got ${String(g)}`);
    }
    this.#slots = slots;
    this.#generations = g;
  }

  /** Calls in flight. */
  get size(): number {
    return this.#size;
  }

  /** Keep `value` until {@link take}n; its id, a positive safe integer that none of its slot's
   *  last `generations` calls had, or undefined when as many calls as it has slots are in flight. */
  add(value: T): number | undefined {
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#values.length;
      if (slot >= this.#slots) return undefined;
      this.#values.push(undefined);
      this.#ids.push(0);
      this.#uses.push(0);
    }
    const used = this.#uses[slot] ?? 0;
    const uses = used >= this.#generations ? 1 : used + 1;
    this.#uses[slot] = uses;
    const id = uses * this.#slots + slot;
    this.#values[slot] = value;
    this.#ids[slot] = id;
    this.#size++;
    return id;
  }

  /** Whether the call `id` is in flight. */
  has(id: number): boolean {
    return this.#slotOf(id) !== undefined;
  }

  /** The call `id`, now ended; undefined if it is not in flight (answered, failed, or never an id
   *  of ours: ids come back from other nodes). */
  take(id: number): T | undefined {
    const slot = this.#slotOf(id);
    if (slot === undefined) return undefined;
    const value = this.#values[slot];
    this.#values[slot] = undefined;
    this.#ids[slot] = 0;
    this.#free.push(slot);
    this.#size--;
    return value;
  }

  /** The calls in flight, as `[id, value]`: a copy, so the caller may take them as it goes. */
  entries(): [number, T][] {
    const out: [number, T][] = [];
    for (let slot = 0; slot < this.#values.length; slot++) {
      const id = this.#ids[slot] ?? 0;
      if (id !== 0) out.push([id, this.#values[slot] as T]);
    }
    return out;
  }

  #slotOf(id: number): number | undefined {
    if (!Number.isSafeInteger(id) || id <= 0) return undefined;
    const slot = id % this.#slots;
    return this.#ids[slot] === id ? slot : undefined;
  }
}
