/**
 * gen: the call mechanism every behaviour shares, as OTP's gen.erl. A call is a message carrying
 * its reply slot (`From`), guarded by a monitor on the callee (so the caller learns at once that it
 * died) and by a timeout; `reply` settles it.
 */
import { OtpError, describe, type ExitReason } from './errors.js';
import { dispatch } from './nact.js';
import { lookup, printPid, type Envelope, type From, type Pid, type Process, type ReplySlot, type Watcher } from './process.js';

export type { From };

/** What a request waits for, named in its timeout's message. */
export type Awaited = 'reply' | 'state' | 'system reply';

/** Node's timers take at most 2^31-1 ms; a longer call timeout (or Infinity, OTP's `infinity`)
 *  waits for ever, as OTP's `infinity` does: the monitor still ends it if the process dies. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A synchronous request: `make(from)` builds the message, the process answers with `reply(from, v)`
 * now or later. Rejects with `ERR_OTP_NOPROC` if the process is not running, `ERR_OTP_EXIT` the moment
 * it exits before replying (a monitor, not a timeout), `ERR_OTP_TIMEOUT` after `timeoutMs`.
 */
export function call<M, R>(pid: Pid<M>, make: (from: From<R>) => M, timeoutMs: number): Promise<R> {
  return request<M, R>(pid, (from) => ({ kind: 'msg', msg: make(from) }), timeoutMs, 'reply');
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
    pending.wait(timeoutMs, resolve, reject);
    dispatch(pid, make(pending as unknown as From<R>));
  });
}

/**
 * One synchronous request in flight: the caller's `From` (the reply slot), its monitor on the
 * callee and its timeout, in one object, since a call is made for every HTTP request. Whichever of
 * reply, exit or timeout comes first settles the call; the others find it settled and do nothing.
 */
class PendingCall<R> implements Watcher, ReplySlot<R> {
  #owner: Process<unknown, unknown> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resolve: ((value: R) => void) | undefined;
  #reject!: (err: OtpError) => void;
  readonly #pid: Pid<unknown>;
  readonly #what: Awaited;

  constructor(owner: Process<unknown, unknown>, pid: Pid<unknown>, what: Awaited) {
    this.#owner = owner;
    this.#pid = pid;
    this.#what = what;
  }

  wait(timeoutMs: number, resolve: (value: R) => void, reject: (err: OtpError) => void): void {
    this.#resolve = resolve;
    this.#reject = reject;
    if (timeoutMs < MAX_TIMER_MS) this.#timer = setTimeout(callTimedOut, Math.max(0, timeoutMs), this, timeoutMs);
  }

  settle(value: R): void {
    const resolve = this.#resolve;
    if (!this.#done()) return;
    resolve?.(value);
  }

  down(reason: ExitReason): void {
    this.#owner = undefined;
    if (!this.#done()) return;
    this.#reject(new OtpError('ERR_OTP_EXIT', `process ${printPid(this.#pid)} exited during call: ${describe(reason)}`, reason));
  }

  timedOut(ms: number): void {
    this.#timer = undefined;
    if (!this.#done()) return;
    this.#reject(new OtpError('ERR_OTP_TIMEOUT', `no ${this.#what} from ${printPid(this.#pid)} within ${ms} ms`));
  }

  /** True the first time: the call is settled now, its monitor and timer let go. */
  #done(): boolean {
    if (this.#resolve === undefined) return false;
    this.#resolve = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#owner?.unwatch(this);
    this.#owner = undefined;
    return true;
  }
}

// A shared callback (the call rides as the timer's argument): no closure per call.
function callTimedOut<R>(pending: PendingCall<R>, ms: number): void {
  pending.timedOut(ms);
}
