/**
 * gen: the call mechanism every behaviour shares, as OTP's gen.erl. A call is a message carrying
 * its reply slot (`From`), guarded by a monitor on the callee (so the caller learns at once that it
 * died) and by a timeout; `reply` settles it.
 */
import { CALL_TIMEOUT_GRANULARITY_MS, CallTimerWheel, type WheelEntry, type WheelLink } from './call_timeouts.js';
import { OtpError, describe, type ExitReason } from './errors.js';
import { dispatch } from './nact.js';
import { lookup, printPid, type Envelope, type From, type Pid, type Process, type ReplySlot, type Watcher } from './process.js';

export type { From };

/** What a request waits for, named in its timeout's message. */
export type Awaited = 'reply' | 'state' | 'system reply';

/** Node's timers take at most 2^31-1 ms; a longer call timeout (or Infinity, OTP's `infinity`)
 *  waits for ever, as OTP's `infinity` does: the monitor still ends it if the process dies. */
const MAX_TIMER_MS = 2_147_483_647;

/** Every call's timeout, on one timer (see {@link CALL_TIMEOUT_GRANULARITY_MS}). */
const callTimeouts = new CallTimerWheel();

/**
 * A synchronous request: `make(from)` builds the message, the process answers with `reply(from, v)`
 * now or later. Rejects with `ERR_OTP_NOPROC` if the process is not running, `ERR_OTP_EXIT` the moment
 * it exits before replying (a monitor, not a timeout), `ERR_OTP_TIMEOUT` after `timeoutMs`: never
 * sooner, and up to {@link CALL_TIMEOUT_GRANULARITY_MS} later for a timeout at least that long
 * (calls share one coarse timer).
 */
export function call<M, R>(pid: Pid<M>, make: (from: From<R>) => M, timeoutMs: number): Promise<R> {
  return request<M, R>(pid, (from) => ({ kind: 'msg', msg: make(from) }), timeoutMs, 'reply');
}

/**
 * What waits for a call made with {@link callWith}: told once, of the reply or of the error
 * (`ERR_OTP_NOPROC`, `ERR_OTP_EXIT`, `ERR_OTP_TIMEOUT`, as `call` rejects). Called synchronously,
 * from inside the callee's `reply` (its handler is still running) or its exit: a waiter that
 * does I/O defers it.
 */
export interface CallWaiter<R> {
  resolved(value: R): void;
  rejected(err: OtpError): void;
}

/**
 * {@link call} with a waiter instead of a promise: what an HTTP request waits on for up to `wait`,
 * so it keeps one object alive (the waiter, which the caller makes anyway) where a promise
 * keeps a promise, its two resolving functions and their context. `ERR_OTP_NOPROC` is told at
 * once, before this returns.
 */
export function callWith<M, R>(pid: Pid<M>, make: (from: From<R>) => M, timeoutMs: number, waiter: CallWaiter<R>): void {
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') {
    waiter.rejected(new OtpError('ERR_OTP_NOPROC', `no process ${printPid(pid)}`));
    return;
  }
  const pending = new PendingCall<R>(proc, pid as Pid<unknown>, 'reply');
  proc.watch(pending);
  pending.wait(timeoutMs, waiter);
  dispatch(pid, { kind: 'msg', msg: make(pending as unknown as From<R>) });
}

/** A promise's resolving functions as a waiter. */
class PromiseWaiter<R> implements CallWaiter<R> {
  constructor(readonly resolved: (value: R) => void, readonly rejected: (err: OtpError) => void) {}
}

/** Answer a synchronous request (OTP's `gen:reply/2`). A reply to a caller that gave up is dropped. */
export function reply<R>(from: From<R>, value: R): void {
  (from as unknown as ReplySlot<R>).settle(value);
}

/**
 * `gen:do_call`: monitor, send, wait for the reply, the exit or the timeout, whichever comes first.
 * `make` builds the envelope (a behaviour's message, or a system message such as `get_state`);
 * `what` names the awaited answer in the timeout's message.
 */
export function request<M, R>(pid: Pid<M>, make: (from: From<R>) => Envelope<M>, timeoutMs: number, what: Awaited): Promise<R> {
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') {
    return Promise.reject(new OtpError('ERR_OTP_NOPROC', `no process ${printPid(pid)}`));
  }
  const pending = new PendingCall<R>(proc, pid as Pid<unknown>, what);
  proc.watch(pending);
  return new Promise<R>((resolve, reject) => {
    pending.wait(timeoutMs, new PromiseWaiter(resolve, reject));
    dispatch(pid, make(pending as unknown as From<R>));
  });
}

/**
 * One synchronous request in flight: the caller's `From` (the reply slot), its monitor on the
 * callee and its timeout, in one object, since a call is made for every HTTP request. Whichever of
 * reply, exit or timeout comes first settles the call; the others find it settled and do nothing.
 * The timeout is a place on the shared wheel (the two links), or for a timeout shorter than the
 * wheel's granularity a Node timer of its own.
 */
class PendingCall<R> implements Watcher, ReplySlot<R>, WheelEntry {
  watchPrev: Watcher | undefined = undefined;
  watchNext: Watcher | undefined = undefined;
  wheelPrev: WheelLink | undefined = undefined;
  wheelNext: WheelLink | undefined = undefined;
  #owner: Process<unknown, unknown> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timeoutMs = 0;
  /** Until the call is settled. */
  #waiter: CallWaiter<R> | undefined;
  readonly #pid: Pid<unknown>;
  readonly #what: Awaited;

  constructor(owner: Process<unknown, unknown>, pid: Pid<unknown>, what: Awaited) {
    this.#owner = owner;
    this.#pid = pid;
    this.#what = what;
  }

  wait(timeoutMs: number, waiter: CallWaiter<R>): void {
    this.#waiter = waiter;
    if (!(timeoutMs < MAX_TIMER_MS)) return;
    this.#timeoutMs = timeoutMs;
    if (timeoutMs >= CALL_TIMEOUT_GRANULARITY_MS) callTimeouts.add(this, timeoutMs);
    else this.#timer = setTimeout(callTimedOut, Math.max(0, timeoutMs), this);
  }

  settle(value: R): void {
    this.#done()?.resolved(value);
  }

  down(reason: ExitReason): void {
    this.#owner = undefined;
    this.#done()?.rejected(new OtpError('ERR_OTP_EXIT', `process ${printPid(this.#pid)} exited during call: ${describe(reason)}`, reason));
  }

  expired(): void {
    this.#timer = undefined;
    this.#done()?.rejected(new OtpError('ERR_OTP_TIMEOUT', `no ${this.#what} from ${printPid(this.#pid)} within ${this.#timeoutMs} ms`));
  }

  /** The waiter, the first time only: the call is settled now, its monitor and timeout let go. */
  #done(): CallWaiter<R> | undefined {
    const waiter = this.#waiter;
    if (waiter === undefined) return undefined;
    this.#waiter = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    callTimeouts.remove(this);
    this.#owner?.unwatch(this);
    this.#owner = undefined;
    return waiter;
  }
}

// A shared callback (the call rides as the timer's argument): no closure per call.
function callTimedOut<R>(pending: PendingCall<R>): void {
  pending.expired();
}

/** The wheel's state, for tests: calls on it, and whether it holds a timer. */
export function callTimeoutsPending(): { readonly size: number; readonly armed: boolean } {
  return { size: callTimeouts.size, armed: callTimeouts.armed };
}
