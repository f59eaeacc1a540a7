/**
 * gen_fsm on nact: one function per state name, each taking (event, data, ctx) and returning the
 * next state, as `StateName(Event, StateData)` does in Erlang. The public functions only send an
 * event; the transitions run inside the process, one event at a time.
 *
 * Timers are Erlang's `gen_fsm:start_timer/2` and `cancel_timer/1`: the event a timer carries is
 * delivered to the state function current when it fires, and a timer cancelled after it fired (its
 * timeout already in the mailbox) is never delivered — OTP's flush, done with live refs.
 *
 * Exports, in OTP's order: the callback contract, the API, then the proc_lib core.
 */
import { OtpError, type ExitReason } from './errors.js';
import * as proc from './proc_lib.js';
import type { ExitMessage, From, InitOutcome, Link, Pid, ProcessContext, ProcessCore, StartOptions, StartResult, Step } from './proc_lib.js';

export type { ExitMessage } from './proc_lib.js';
import type { TimerRef } from './timers.js';

// ---------------------------------------------------------------------------------------------
// Callback contract
// ---------------------------------------------------------------------------------------------

/** `init/1` results: `{ok, StateName, StateData}`, `{stop, Reason}`, `ignore`. */
export type FsmInitResult<N extends string, D> =
  | { readonly ok: N; readonly data: D }
  | { readonly stop: ExitReason }
  | { readonly ignore: true };

/** A state function's result: `{next_state, StateName, StateData}` or `{stop, Reason, StateData}`. */
export type Transition<N extends string, D> =
  | { readonly next: N; readonly data: D }
  | { readonly stop: ExitReason; readonly data: D };

/** What a state function sees besides the event and the data. */
export interface FsmContext<E> {
  readonly self: FsmRef<E>;
  /** The state whose function is running. */
  readonly state: string;
  readonly logger: ProcessContext<E>['logger'];
  readonly clock: ProcessContext<E>['clock'];
  /** `gen_fsm:start_timer/2`: deliver `event` to the then-current state after `ms`. */
  startTimer(ms: number, event: E): TimerRef;
  /**
   * `gen_fsm:cancel_timer/1`: the ms that were left; `0` if the timer had fired and its event,
   * still in the mailbox, is flushed; `false` if it was delivered or cancelled already. After
   * this returns, that timer's event is never delivered.
   */
  cancelTimer(ref: TimerRef): number | false;
  /** Whether the timer is started and not yet delivered or cancelled. */
  isTimerLive(ref: TimerRef): boolean;
  /** `gen_fsm:reply/2`: answer a `syncSendEvent` now or in a later state. */
  reply<R>(from: From<R>, value: R): void;
  /** `process_flag(trap_exit, on)`; returns the old value. Trapped exit signals go to `handleInfo`. */
  processFlag(flag: 'trap_exit', on: boolean): boolean;
  /** `link/1` from this FSM (see `procLib.link`). */
  link(pid: Pid<never> | Pid<unknown>): void;
  /** `unlink/1` from this FSM. */
  unlink(pid: Pid<never> | Pid<unknown>): void;
  /** `exit/2` from this FSM. */
  exit(pid: Pid<never> | Pid<unknown>, reason: ExitReason): void;
}

export type StateFunction<N extends string, D, E> =
  (event: E, data: D, ctx: FsmContext<E>) => Transition<N, D> | Promise<Transition<N, D>>;

/**
 * The callbacks a gen_fsm implements. `states` has one function per state name: a state the
 * machine can enter without a function is a type error.
 */
export interface GenFsm<Args, N extends string, D, E> {
  init(args: Args, ctx: FsmContext<E>): FsmInitResult<N, D> | Promise<FsmInitResult<N, D>>;
  readonly states: { readonly [K in N]: StateFunction<N, D, E> };
  /**
   * `handle_info/3`, for what reaches the FSM that is not an event: a trapped exit signal,
   * `{'EXIT', Pid, Reason}`. Without it such a message is logged and dropped.
   */
  handleInfo?(info: ExitMessage, state: N, data: D, ctx: FsmContext<E>): Transition<N, D> | Promise<Transition<N, D>>;
  /** Runs on every stop: a `{stop}` transition, a crash, a shutdown by the supervisor, `stop()`. */
  terminate?(reason: ExitReason, state: N, data: D, ctx: FsmContext<E>): void | Promise<void>;
}

/** A running gen_fsm that accepts events of type `E`. */
export type FsmRef<E> = Pid<E>;

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * Start a gen_fsm under `parent`. Resolves after `init`.
 * @example
 * type Ev = { type: 'push' } | { type: 'coin' };
 * const turnstile: GenFsm<void, 'locked' | 'open', number, Ev> = {
 *   init: () => ({ ok: 'locked', data: 0 }),
 *   states: {
 *     locked: (ev, n) => ev.type === 'coin' ? { next: 'open', data: n + 1 } : { next: 'locked', data: n },
 *     open: (ev, n) => ev.type === 'push' ? { next: 'locked', data: n } : { next: 'open', data: n },
 *   },
 * };
 * const r = await start(system, turnstile, undefined);
 * if ('ok' in r) sendEvent(r.ok, { type: 'coin' });
 */
export function start<Args, N extends string, D, E>(
  parent: Link['parent'], behaviour: GenFsm<Args, N, D, E>, args: Args, opts: StartOptions = {},
): Promise<StartResult<FsmRef<E>>> {
  return proc.start(parent, core(behaviour, args), opts);
}

/** `gen_fsm:start_link/3`: started by a supervisor, which hears of the exit through `link`. */
export function startLink<Args, N extends string, D, E>(
  link: Link, behaviour: GenFsm<Args, N, D, E>, args: Args, opts: StartOptions = {},
): Promise<StartResult<FsmRef<E>>> {
  return proc.startLink(link, core(behaviour, args), opts);
}

/** `gen_fsm:send_event/2`: asynchronous; an event to a dead FSM is dropped. */
export function sendEvent<E>(fsm: FsmRef<E>, event: E): void {
  proc.send(fsm, event);
}

/**
 * `gen_fsm:sync_send_event/3`: `make(from)` builds the event; the FSM answers with
 * `ctx.reply(from, value)`, in this state or a later one. Rejects with an OtpError: `ERR_OTP_TIMEOUT`,
 * `ERR_OTP_NOPROC`, or `ERR_OTP_EXIT` the moment the FSM exits without replying.
 */
export function syncSendEvent<E, R>(fsm: FsmRef<E>, make: (from: From<R>) => E, timeoutMs: number): Promise<R> {
  return proc.call(fsm, make, timeoutMs);
}

/**
 * {@link syncSendEvent} with a waiter instead of a promise (proc_lib's `callWith`): told once,
 * synchronously, of the reply or the error; `ERR_OTP_NOPROC` before this returns.
 */
export function syncSendEventWith<E, R>(fsm: FsmRef<E>, make: (from: From<R>) => E, timeoutMs: number, waiter: proc.CallWaiter<R>): void {
  proc.callWith(fsm, make, timeoutMs, waiter);
}

/** `gen_fsm:reply/2`. */
export const reply = proc.reply;

/** Ask the FSM to exit with `reason`; resolves once terminate has run. */
export function stop(fsm: FsmRef<never> | Pid<unknown>, reason: ExitReason = 'normal', timeout: proc.Shutdown = 'infinity'): Promise<void> {
  return proc.shutdown(fsm, reason, timeout);
}

// ---------------------------------------------------------------------------------------------
// proc_lib core
// ---------------------------------------------------------------------------------------------

interface Current<N extends string, D> {
  readonly state: N;
  readonly data: D;
}

function core<Args, N extends string, D, E>(b: GenFsm<Args, N, D, E>, args: Args): ProcessCore<Current<N, D>, E> {
  return new FsmCore(b, args);
}

// Classes rather than objects of closures: thousands of FSMs live at once, and prototype methods
// cost a process nothing where each closure (with its context) costs every process ~60 bytes.
class FsmCore<Args, N extends string, D, E> implements ProcessCore<Current<N, D>, E> {
  readonly label = 'gen_fsm';
  readonly #b: GenFsm<Args, N, D, E>;
  // Only init reads them: let go after, so a long-lived FSM does not keep its start arguments.
  #args: Args | undefined;
  // One context object per process, its `state` field updated as the machine moves, so a
  // transition allocates nothing beyond the state record.
  #fctx: FsmCtx<E> | undefined;

  constructor(b: GenFsm<Args, N, D, E>, args: Args) {
    this.#b = b;
    this.#args = args;
  }

  async init(ctx: ProcessContext<E>): Promise<InitOutcome<Current<N, D>>> {
    const args = this.#args as Args;
    this.#args = undefined;
    const r = await this.#b.init(args, this.#context(ctx, 'init'));
    if (typeof r === 'object' && r !== null) {
      if ('ok' in r && this.#isState(r.ok)) return { ok: { state: r.ok, data: r.data } };
      if ('stop' in r) return { stop: r.stop };
      if ('ignore' in r && r.ignore === true) return { ignore: true };
    }
    throw badReturn(r, 'init');
  }

  handle(cur: Current<N, D>, event: E, ctx: ProcessContext<E>): Step<Current<N, D>> | Promise<Step<Current<N, D>>> {
    const t = this.#b.states[cur.state](event, cur.data, this.#context(ctx, cur.state));
    // A state function that returns a promise is awaited; a plain one (every state of the
    // connection FSM) runs the whole transition in this turn, with no promise made.
    return t instanceof Promise ? t.then((v) => this.#step(cur, v)) : this.#step(cur, t);
  }

  handleExit(cur: Current<N, D>, msg: ExitMessage, ctx: ProcessContext<E>): Step<Current<N, D>> | Promise<Step<Current<N, D>>> {
    if (!this.#b.handleInfo) {
      ctx.logger.warn({ pid: proc.pidToString(ctx.self) }, 'gen_fsm: unexpected EXIT message dropped');
      return { next: cur };
    }
    const t = this.#b.handleInfo(msg, cur.state, cur.data, this.#context(ctx, cur.state));
    return t instanceof Promise ? t.then((v) => this.#step(cur, v)) : this.#step(cur, t);
  }

  async terminate(reason: ExitReason, cur: Current<N, D>, ctx: ProcessContext<E>): Promise<void> {
    // cur is undefined only if init never completed, and then terminate is not called.
    await this.#b.terminate?.(reason, cur.state, cur.data, this.#context(ctx, cur.state));
  }

  #step(cur: Current<N, D>, t: Transition<N, D>): Step<Current<N, D>> {
    if (typeof t === 'object' && t !== null) {
      if ('next' in t && this.#isState(t.next)) {
        return { next: t.next === cur.state && t.data === cur.data ? cur : { state: t.next, data: t.data } };
      }
      if ('stop' in t) return { stop: t.stop, state: { state: cur.state, data: t.data } };
    }
    throw badReturn(t, cur.state);
  }

  #isState(n: unknown): n is N {
    return typeof n === 'string' && Object.hasOwn(this.#b.states, n);
  }

  #context(ctx: ProcessContext<E>, state: string): FsmContext<E> {
    const fctx = (this.#fctx ??= new FsmCtx(ctx));
    fctx.state = state;
    return fctx;
  }
}

class FsmCtx<E> implements FsmContext<E> {
  state = 'init';
  readonly self: FsmRef<E>;
  readonly logger: ProcessContext<E>['logger'];
  readonly clock: ProcessContext<E>['clock'];
  readonly #ctx: ProcessContext<E>;

  constructor(ctx: ProcessContext<E>) {
    this.self = ctx.self;
    this.logger = ctx.logger;
    this.clock = ctx.clock;
    this.#ctx = ctx;
  }

  startTimer(ms: number, event: E): TimerRef {
    return this.#ctx.startTimer(ms, event);
  }

  cancelTimer(ref: TimerRef): number | false {
    return this.#ctx.cancelTimer(ref);
  }

  isTimerLive(ref: TimerRef): boolean {
    return this.#ctx.isTimerLive(ref);
  }

  reply<R>(from: From<R>, value: R): void {
    proc.reply(from, value);
  }

  processFlag(flag: 'trap_exit', on: boolean): boolean {
    return this.#ctx.processFlag(flag, on);
  }

  link(pid: Pid<never> | Pid<unknown>): void {
    this.#ctx.link(pid);
  }

  unlink(pid: Pid<never> | Pid<unknown>): void {
    this.#ctx.unlink(pid);
  }

  exit(pid: Pid<never> | Pid<unknown>, reason: ExitReason): void {
    this.#ctx.exit(pid, reason);
  }
}

function badReturn(value: unknown, state: string): OtpError {
  return new OtpError(
    'ERR_OTP_BAD_RETURN',
    `gen_fsm state function ${state} returned an unrecognised value`,
    { bad_return_from_state_function: value },
  );
}
