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
import type { From, Link, Pid, ProcessContext, ProcessCore, StartOptions, StartResult, Step } from './proc_lib.js';
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
  /** `gen_fsm:cancel_timer/1`: after this returns, that timer's event is never delivered. */
  cancelTimer(ref: TimerRef): boolean;
  /** Whether the timer is started and not yet delivered or cancelled. */
  isTimerLive(ref: TimerRef): boolean;
  /** `gen_fsm:reply/2`: answer a `syncSendEvent` now or in a later state. */
  reply<R>(from: From<R>, value: R): void;
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
  const isState = (n: unknown): n is N => typeof n === 'string' && Object.hasOwn(b.states, n);
  // One context object per process, its `state` field updated as the machine moves, so a
  // transition allocates nothing beyond the state record (thousands of FSMs live at once).
  let fctx: (FsmContext<E> & { state: string }) | undefined;
  const fsmContext = (ctx: ProcessContext<E>, state: string): FsmContext<E> => {
    fctx ??= {
      self: ctx.self,
      state,
      logger: ctx.logger,
      clock: ctx.clock,
      startTimer: (ms, event) => ctx.startTimer(ms, event),
      cancelTimer: (ref) => ctx.cancelTimer(ref),
      isTimerLive: (ref) => ctx.isTimerLive(ref),
      reply: proc.reply,
    };
    fctx.state = state;
    return fctx;
  };
  const step = (cur: Current<N, D>, t: Transition<N, D>): Step<Current<N, D>> => {
    if (typeof t === 'object' && t !== null) {
      if ('next' in t && isState(t.next)) {
        return { next: t.next === cur.state && t.data === cur.data ? cur : { state: t.next, data: t.data } };
      }
      if ('stop' in t) return { stop: t.stop, state: { state: cur.state, data: t.data } };
    }
    throw badReturn(t, cur.state);
  };
  return {
    label: 'gen_fsm',
    async init(ctx) {
      const r = await b.init(args, fsmContext(ctx, 'init'));
      if (typeof r === 'object' && r !== null) {
        if ('ok' in r && isState(r.ok)) return { ok: { state: r.ok, data: r.data } };
        if ('stop' in r) return { stop: r.stop };
        if ('ignore' in r && r.ignore === true) return { ignore: true };
      }
      throw badReturn(r, 'init');
    },
    handle(cur, event, ctx): Step<Current<N, D>> | Promise<Step<Current<N, D>>> {
      const t = b.states[cur.state](event, cur.data, fsmContext(ctx, cur.state));
      // A state function that returns a promise is awaited; a plain one (every state of the
      // connection FSM) runs the whole transition in this turn, with no promise made.
      return t instanceof Promise ? t.then((v) => step(cur, v)) : step(cur, t);
    },
    async terminate(reason, cur, ctx) {
      // cur is undefined only if init never completed, and then terminate is not called.
      await b.terminate?.(reason, cur.state, cur.data, fsmContext(ctx, cur.state));
    },
  };
}

function badReturn(value: unknown, state: string): OtpError {
  return new OtpError(
    'ERR_OTP_BAD_RETURN',
    `gen_fsm state function ${state} returned an unrecognised value`,
    { bad_return_from_state_function: value },
  );
}
