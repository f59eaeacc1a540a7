/**
 * gen_statem on nact: OTP's modern state machine behaviour (OTP 20 deprecated gen_fsm for it).
 * An event is a type and a content (`{call, From}`, `cast`, `info`, `timeout`, `state_timeout`,
 * `{timeout, Name}`, `internal`); a state callback returns the next state, the data and a list of
 * transition actions (`reply`, `postpone`, `next_event`, the three timeouts, `hibernate`).
 *
 * One transition, in OTP's order: the callback's actions run in list order (replies are sent
 * at once; for each timeout type the last action wins); the state enter call, if the mode asks for
 * it and the state changed (or `repeat_state`), and its actions, appended; then the event is
 * postponed if asked; on a state change the postponed events go back in the queue, oldest first,
 * and the running state timeout is cancelled; `next_event`s go in front of the queue; the timeouts
 * are started, restarted, updated or cancelled; a timeout of 0 is queued at the end (an event
 * timeout of 0 only if the queue is empty, since any event cancels it). Queued events are handled
 * before the next message is taken from the mailbox.
 *
 * Timers: a timeout's message goes through the mailbox like any other. Each running timeout has a
 * sequence number; a message whose number is not the running one's (the timer was cancelled or
 * restarted after it fired, its message already queued) is dropped, so a stale timeout is never
 * delivered: OTP's synchronous `cancel_timer` and its flush.
 *
 * Exports, in OTP's order: the callback contract, the API, then the proc_lib core.
 */
import { isDeepStrictEqual } from 'node:util';
import { OtpError, describe, exitReasonOf, type ExitReason } from './errors.js';
import * as proc from './proc_lib.js';
import type { From, InitOutcome, Link, Pid, ProcessContext, ProcessCore, StartOptions, StartResult, Step } from './proc_lib.js';
import type { TimerRef } from './timers.js';

/** `gen_statem:call/2` waits for ever (OTP's `infinity`); a monitor still ends the wait if the machine exits. */
export const DEFAULT_CALL_TIMEOUT = Infinity;

// ---------------------------------------------------------------------------------------------
// Callback contract: events
// ---------------------------------------------------------------------------------------------

/**
 * What a machine's events carry: for each OTP event type it accepts, the type of the content.
 * Leave a key out and that event type does not exist for the machine (its switch need not handle
 * it). `reply` is what calls are answered with; `enter: true` declares state enter calls, and
 * must go with `stateEnter: true` in the behaviour.
 * @example
 * type DoorEvents = { call: 'status'; reply: string; cast: { code: string }; state_timeout: 'lock'; enter: true };
 */
export interface Events {
  readonly call?: unknown;
  readonly reply?: unknown;
  readonly cast?: unknown;
  readonly info?: unknown;
  readonly internal?: unknown;
  readonly timeout?: unknown;
  readonly state_timeout?: unknown;
  readonly generic_timeout?: unknown;
  readonly enter?: true;
}

type Has<E, K extends keyof Events> = K extends keyof E ? true : false;
type C<E, K extends keyof Events> = K extends keyof E ? E[K] : never;
/** The reply type of a machine's calls. */
export type ReplyOf<E extends Events> = C<E, 'reply'>;

/**
 * An event as a state callback sees it: OTP's `(EventType, EventContent)` as one object. A
 * generic timeout's `{timeout, Name}` is `{ type: 'generic_timeout', name }`.
 */
export type Event<E extends Events> =
  | (Has<E, 'call'> extends true ? { readonly type: 'call'; readonly from: From<ReplyOf<E>>; readonly content: C<E, 'call'> } : never)
  | (Has<E, 'cast'> extends true ? { readonly type: 'cast'; readonly content: C<E, 'cast'> } : never)
  | (Has<E, 'info'> extends true ? { readonly type: 'info'; readonly content: C<E, 'info'> } : never)
  | (Has<E, 'internal'> extends true ? { readonly type: 'internal'; readonly content: C<E, 'internal'> } : never)
  | (Has<E, 'timeout'> extends true ? { readonly type: 'timeout'; readonly content: C<E, 'timeout'> } : never)
  | (Has<E, 'state_timeout'> extends true ? { readonly type: 'state_timeout'; readonly content: C<E, 'state_timeout'> } : never)
  | (Has<E, 'generic_timeout'> extends true
    ? { readonly type: 'generic_timeout'; readonly name: string; readonly content: C<E, 'generic_timeout'> } : never);

/** The state enter call, `StateName(enter, OldState, Data)`: `oldState` equals the state on the first entry and on `repeat_state`. */
export type EnterEvent<S> = { readonly type: 'enter'; readonly oldState: S };

/** What a state callback is called with: an event, or the enter call if the machine declared `enter`. */
export type CallbackEvent<S, E extends Events> = Event<E> | (Has<E, 'enter'> extends true ? EnterEvent<S> : never);

// ---------------------------------------------------------------------------------------------
// Callback contract: actions and results
// ---------------------------------------------------------------------------------------------

/** `{reply, From, Reply}`: answer a call, now (the caller may have called in an earlier state). */
export type ReplyAction<E extends Events> = { readonly type: 'reply'; readonly from: From<ReplyOf<E>>; readonly reply: ReplyOf<E> };

/**
 * A timeout action: `{timeout, Time, Content}`, `{state_timeout, …}`, `{{timeout, Name}, …}`.
 * `time` is ms from now (`abs: true`: a `clock.now()` value); `Infinity` or `'cancel'` cancels
 * the running one; `'update'` changes the content of the running one (none running: as a 0).
 * For the event timeout the type must declare the content under `timeout`, etc.
 */
export type TimeoutAction<E extends Events> =
  | (Has<E, 'timeout'> extends true ? TimerSet<'timeout', C<E, 'timeout'>> : never)
  | (Has<E, 'state_timeout'> extends true ? TimerSet<'state_timeout', C<E, 'state_timeout'>> : never)
  | (Has<E, 'generic_timeout'> extends true ? TimerSet<'generic_timeout', C<E, 'generic_timeout'>> & { readonly name: string } : never);

type TimerSet<T extends string, Content> =
  | { readonly type: T; readonly time: number; readonly content: Content; readonly abs?: boolean }
  | { readonly type: T; readonly time: 'update'; readonly content: Content }
  | { readonly type: T; readonly time: 'cancel' };

/** Actions a state enter call may return (`enter_action()`): no postpone, no next_event. */
export type EnterAction<E extends Events> = ReplyAction<E> | TimeoutAction<E> | { readonly type: 'hibernate' };

/**
 * Transition actions (`action()`), run in list order. `postpone`: retry this event after the
 * next state change. `next_event`: handle this event next, before anything queued or in the
 * mailbox. `hibernate`: accepted and ignored (there is no process heap to shrink in Node).
 */
export type Action<E extends Events> =
  | EnterAction<E>
  | { readonly type: 'postpone' }
  | { readonly type: 'next_event'; readonly event: Event<E> };

/** `init/1` results: `{ok, State, Data[, Actions]}`, `{stop, Reason}`, `ignore`. */
export type InitResult<S, D, E extends Events> =
  | { readonly ok: S; readonly data: D; readonly actions?: readonly Action<E>[] }
  | { readonly stop: ExitReason }
  | { readonly ignore: true };

/**
 * What a state callback returns. `next`: `{next_state, S, D, Actions}`, a state change if `S` is
 * not deeply equal to the current state (Erlang's `=/=`); `keepState`: `{keep_state, D, Actions}`;
 * `keepStateAndData`; `repeatState` / `repeatStateAndData`: keep the state but make the enter
 * call again; `stop`: `{stop, Reason[, D]}`; `stopAndReply`: send the replies, then stop.
 */
export type Result<S, D, E extends Events, A = Action<E>> =
  | { readonly next: S; readonly data: D; readonly actions?: readonly A[] }
  | { readonly keepState: D; readonly actions?: readonly A[] }
  | { readonly keepStateAndData: true; readonly actions?: readonly A[] }
  | { readonly repeatState: D; readonly actions?: readonly A[] }
  | { readonly repeatStateAndData: true; readonly actions?: readonly A[] }
  | { readonly stop: ExitReason; readonly data?: D }
  | { readonly stopAndReply: ExitReason; readonly replies: readonly ReplyAction<E>[]; readonly data?: D };

/** What a state enter call returns: no state change (`next` only to the same state), only enter actions. */
export type EnterResult<S, D, E extends Events> = Result<S, D, E, EnterAction<E>>;

/** What a callback sees besides the event and the data. */
export interface StatemContext<E extends Events> {
  readonly self: StatemRef<E>;
  readonly logger: ProcessContext<unknown>['logger'];
  readonly clock: ProcessContext<unknown>['clock'];
  /** `gen_statem:reply/2`, the same as a `reply` action but at once. */
  reply(from: From<ReplyOf<E>>, value: ReplyOf<E>): void;
}

type Maybe<T> = T | Promise<T>;

/** `StateName(EventType, EventContent, Data)` in the `state_functions` mode. */
export type StateFunction<S, D, E extends Events> =
  (event: CallbackEvent<S, E>, data: D, ctx: StatemContext<E>) => Maybe<Result<S, D, E>>;

interface Callbacks<Args, S, D, E extends Events> {
  init(args: Args, ctx: StatemContext<E>): Maybe<InitResult<S, D, E>>;
  /** Runs on every stop: a `stop` result, a crash, a shutdown by the supervisor, `stop()`. */
  terminate?(reason: ExitReason, state: S, data: D, ctx: StatemContext<E>): void | Promise<void>;
}

/** `state_enter` in `callback_mode()`: required exactly when the events declare `enter: true`. */
type StateEnterFlag<E extends Events> = Has<E, 'enter'> extends true ? { readonly stateEnter: true } : { readonly stateEnter?: false };

/** `callback_mode() -> state_functions`: one function per state; states are names. */
export type StateFunctions<Args, S extends string, D, E extends Events> = Callbacks<Args, S, D, E> & StateEnterFlag<E> & {
  readonly callbackMode: 'state_functions';
  readonly states: { readonly [K in S]: StateFunction<S, D, E> };
};

/** `callback_mode() -> handle_event_function`: one function for every state; a state is any value. */
export type HandleEventFunction<Args, S, D, E extends Events> = Callbacks<Args, S, D, E> & StateEnterFlag<E> & {
  readonly callbackMode: 'handle_event_function';
  handleEvent(event: CallbackEvent<S, E>, state: S, data: D, ctx: StatemContext<E>): Maybe<Result<S, D, E>>;
};

/** The callbacks a gen_statem implements, in either callback mode. */
export type GenStatem<Args, S, D, E extends Events> =
  | ([S] extends [string] ? StateFunctions<Args, S, D, E> : never)
  | HandleEventFunction<Args, S, D, E>;

/** The messages a gen_statem process receives. */
export type StatemMsg<E extends Events> =
  | { readonly tag: 'call'; readonly from: From<ReplyOf<E>>; readonly request: C<E, 'call'> }
  | { readonly tag: 'cast'; readonly msg: C<E, 'cast'> }
  | { readonly tag: 'info'; readonly msg: C<E, 'info'> }
  | { readonly tag: 'timer'; readonly kind: TimerKind; readonly name: string; readonly seq: number };

/** A running gen_statem. */
export type StatemRef<E extends Events> = Pid<StatemMsg<E>>;

type TimerKind = 'timeout' | 'state_timeout' | 'generic_timeout';

/** A running timeout, as `timeouts()` lists it (OTP's sys:get_status shows them too). */
export interface RunningTimeout {
  readonly type: TimerKind;
  /** The name of a generic timeout; `''` for the other two. */
  readonly name: string;
  readonly content: unknown;
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * `gen_statem:start/3,4`: start a machine under `parent`. Resolves once `init` has run, and with
 * it the first state's enter call and the events `init`'s actions inserted.
 * @example
 * const r = await start(system, door, undefined, { name: 'door' });
 * if ('ok' in r) cast(r.ok, { code: '1234' });
 */
export function start<Args, S, D, E extends Events>(
  parent: Link['parent'], behaviour: GenStatem<Args, S, D, E>, args: Args, opts: StartOptions = {},
): Promise<StartResult<StatemRef<E>>> {
  return proc.start(parent, new StatemCore(behaviour, args), opts);
}

/** `gen_statem:start_link/3,4`: started by a supervisor, which hears of the exit through `link`. */
export function startLink<Args, S, D, E extends Events>(
  link: Link, behaviour: GenStatem<Args, S, D, E>, args: Args, opts: StartOptions = {},
): Promise<StartResult<StatemRef<E>>> {
  return proc.startLink(link, new StatemCore(behaviour, args), opts);
}

/**
 * `gen_statem:call/3`: an event `{ type: 'call', from, content: request }`; the machine answers
 * with a `reply` action (or `ctx.reply`), in this state or a later one. Waits for ever by default
 * (OTP's `infinity`). Rejects with an OtpError: `ERR_OTP_TIMEOUT`, `ERR_OTP_NOPROC`, or
 * `ERR_OTP_EXIT` the moment the machine exits without replying.
 */
export function call<E extends Events>(ref: StatemRef<E>, request: C<E, 'call'>, timeoutMs: number = DEFAULT_CALL_TIMEOUT): Promise<ReplyOf<E>> {
  return proc.call(ref, (from: From<ReplyOf<E>>): StatemMsg<E> => ({ tag: 'call', from, request }), timeoutMs);
}

/** `gen_statem:cast/2`: an event `{ type: 'cast', content: msg }`; to a dead machine, dropped. */
export function cast<E extends Events>(ref: StatemRef<E>, msg: C<E, 'cast'>): void {
  proc.send(ref, { tag: 'cast', msg });
}

/** `Pid ! Msg`: an event `{ type: 'info', content: msg }`. */
export function info<E extends Events>(ref: StatemRef<E>, msg: C<E, 'info'>): void {
  proc.send(ref, { tag: 'info', msg });
}

/** `gen_statem:reply/2`: answer a call from any callback. A reply to a caller that gave up is dropped. */
export const reply = proc.reply;

/** `gen_statem:stop/1,3`: ask the machine to exit with `reason`; resolves once terminate has run. */
export function stop(ref: Pid<never> | Pid<unknown>, reason: ExitReason = 'normal', timeout: proc.Shutdown = 'infinity'): Promise<void> {
  return proc.shutdown(ref, reason, timeout);
}

/**
 * The machine's running timeouts, for tests and debugging (what OTP's `sys:get_status` shows as
 * its time-outs). Read after something that goes through the mailbox (`getState`), it reflects
 * every event sent before. A machine that is not running has none.
 */
export function timeouts(ref: Pid<never> | Pid<unknown>): readonly RunningTimeout[] {
  return proc.isAlive(ref) ? (cores.get(ref)?.running() ?? []) : [];
}

// ---------------------------------------------------------------------------------------------
// proc_lib core
// ---------------------------------------------------------------------------------------------

/** What sys:get_state shows: OTP's `{State, Data}`. */
interface Current<S, D> {
  readonly state: S;
  readonly data: D;
}

/** A transition that ends the machine: proc_lib's stop step. */
type Stop<S, D> = { readonly stop: ExitReason; readonly state: Current<S, D> };
type Outcome<S, D> = Current<S, D> | Stop<S, D>;

interface Timer {
  readonly seq: number;
  /** Undefined for an absolute time already past: its message was sent at once. */
  ref: TimerRef | undefined;
  content: unknown;
  /** For a time beyond what one clock timer takes: the clock time it is due at. */
  readonly due?: number;
}

/** Node's timers take at most 2^31-1 ms (about 24.8 days); a longer timeout is armed in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/** What the actions of one transition ask for, once parsed. */
interface Parsed<E extends Events> {
  postpone: boolean;
  readonly nextEvents: Event<E>[];
  /** The last action of each timer type (generic ones by name), in the order first set. */
  readonly timeouts: Map<string, TimeoutAction<E>>;
}

type AnyEvent = { readonly type: string; readonly content?: unknown; readonly name?: string; readonly oldState?: unknown };
type AnyResult = Record<string, unknown>;

const cores = new WeakMap<object, StatemCore<unknown, unknown, unknown, Events>>();
let nextSeq = 1;

// A class, as gen_fsm's core: one per process, holding what OTP keeps beside State and Data
// (the postponed events, the queue, the running timeouts) so sys:get_state shows just those two.
class StatemCore<Args, S, D, E extends Events> implements ProcessCore<Current<S, D>, StatemMsg<E>> {
  readonly label = 'gen_statem';
  readonly #b: GenStatem<Args, S, D, E>;
  readonly #args: Args;
  #ctx!: ProcessContext<StatemMsg<E>>;
  #sctx!: StatemContext<E>;
  /** Events postponed in this state, oldest first. */
  #postponed: AnyEvent[] = [];
  /** Events to handle before the next mailbox message: inserted, retried, timeouts of 0. */
  #queue: AnyEvent[] = [];
  readonly #timers = new Map<string, Timer>();

  constructor(b: GenStatem<Args, S, D, E>, args: Args) {
    this.#b = b;
    this.#args = args;
  }

  async init(ctx: ProcessContext<StatemMsg<E>>): Promise<InitOutcome<Current<S, D>>> {
    this.#ctx = ctx;
    this.#sctx = { self: ctx.self, logger: ctx.logger, clock: ctx.clock, reply: (from, value) => proc.reply(from, value) };
    const mode: unknown = (this.#b as { callbackMode?: unknown }).callbackMode;
    if (mode !== 'state_functions' && mode !== 'handle_event_function') {
      throw new OtpError('ERR_OTP_BAD_RETURN', 'gen_statem callbackMode is neither state_functions nor handle_event_function', {
        bad_return_from_callback_mode: mode,
      });
    }
    const r = (await this.#b.init(this.#args, this.#sctx)) as unknown;
    if (!isObject(r)) throw badInit(r);
    if ('stop' in r) return { stop: r.stop as ExitReason };
    if ('ignore' in r && r.ignore === true) return { ignore: true };
    if (!('ok' in r) || !('data' in r) || !this.#isState(r.ok)) throw badInit(r);
    cores.set(ctx.self, this as unknown as StatemCore<unknown, unknown, unknown, Events>);
    // The initial state: its enter call and init's actions (postpone ignored, as OTP) run now,
    // and the events they insert are handled before start resolves and before any message.
    const cur: Current<S, D> = { state: r.ok as S, data: r.data as D };
    const actions = (r as { actions?: unknown }).actions;
    const out = await this.#guard(cur, () => this.#transition(cur, undefined, cur.state, cur.data, actions, this.#b.stateEnter === true, true));
    const end = isStop(out) ? out : await this.#drain(out);
    if (isStop(end)) {
      // Past init in OTP, this would be a running machine exiting: terminate runs.
      await this.terminate(end.stop, end.state, ctx);
      cores.delete(ctx.self);
      return { stop: end.stop };
    }
    return { ok: end };
  }

  handle(cur: Current<S, D>, msg: StatemMsg<E>, _ctx: ProcessContext<StatemMsg<E>>): Step<Current<S, D>> | Promise<Step<Current<S, D>>> {
    const ev = this.#toEvent(msg);
    if (ev === undefined) return { next: cur }; // a stale timeout: not an event at all
    const out = this.#event(cur, ev);
    if (out instanceof Promise) return out.then((o) => (isStop(o) ? o : this.#drain(o))).then((o) => this.#step(o));
    if (isStop(out)) return this.#step(out);
    const end = this.#drain(out);
    return end instanceof Promise ? end.then((o) => this.#step(o)) : this.#step(end);
  }

  async terminate(reason: ExitReason, cur: Current<S, D>, _ctx: ProcessContext<StatemMsg<E>>): Promise<void> {
    cores.delete(this.#ctx.self);
    this.#timers.clear();
    await this.#b.terminate?.(reason, cur.state, cur.data, this.#sctx);
  }

  running(): RunningTimeout[] {
    return [...this.#timers].map(([key, t]) => ({ type: kindOf(key), name: nameOf(key), content: t.content }));
  }

  #step(o: Outcome<S, D>): Step<Current<S, D>> {
    if (isStop(o)) {
      this.#timers.clear();
      return o;
    }
    return { next: o };
  }

  /** A mailbox message as an event, or undefined for a timeout that is no longer the running one. */
  #toEvent(msg: StatemMsg<E>): AnyEvent | undefined {
    switch (msg.tag) {
      case 'call':
        return { type: 'call', from: msg.from, content: msg.request } as AnyEvent;
      case 'cast':
        return { type: 'cast', content: msg.msg };
      case 'info':
        return { type: 'info', content: msg.msg };
      case 'timer': {
        const key = timerKey(msg.kind, msg.name);
        const t = this.#timers.get(key);
        if (t?.seq !== msg.seq) return undefined;
        const left = t.due === undefined ? 0 : t.due - this.#ctx.clock.now();
        if (left > 0) {
          t.ref = this.#ctx.startTimer(Math.min(left, MAX_TIMER_MS), msg);
          return undefined;
        }
        this.#timers.delete(key);
        return msg.kind === 'generic_timeout'
          ? { type: msg.kind, name: msg.name, content: t.content }
          : { type: msg.kind, content: t.content };
      }
    }
  }

  /** Handle the queued events until none is left (they come before the next mailbox message). */
  #drain(cur: Current<S, D>): Outcome<S, D> | Promise<Outcome<S, D>> {
    let c = cur;
    for (;;) {
      const ev = this.#queue.shift();
      if (ev === undefined) return c;
      const out = this.#event(c, ev);
      if (out instanceof Promise) return out.then((o) => (isStop(o) ? o : this.#drain(o)));
      if (isStop(out)) return out;
      c = out;
    }
  }

  /** One event: the state callback, then the transition it asks for. A crash stops the machine here. */
  #event(cur: Current<S, D>, ev: AnyEvent): Outcome<S, D> | Promise<Outcome<S, D>> {
    // Any event cancels the event timeout: it fires only if nothing at all happens first.
    this.#cancel('timeout');
    return this.#guard(cur, () => {
      const r = this.#callback(cur.state, ev, cur.data);
      return r instanceof Promise
        ? r.then((v) => this.#guard(cur, () => this.#result(cur, ev, v)), (err: unknown) => this.#crash(cur, err))
        : this.#result(cur, ev, r);
    });
  }

  #callback(state: S, ev: AnyEvent, data: D): Maybe<unknown> {
    const b = this.#b;
    if (b.callbackMode === 'handle_event_function') return b.handleEvent(ev as CallbackEvent<S, E>, state, data, this.#sctx);
    const fn = (b.states as Record<string, StateFunction<S, D, E>>)[state as string];
    return fn!(ev as CallbackEvent<S, E>, data, this.#sctx);
  }

  /** Interpret a state callback's result (OTP's parse_event_result). */
  #result(cur: Current<S, D>, ev: AnyEvent, r: unknown): Outcome<S, D> | Promise<Outcome<S, D>> {
    if (!isObject(r)) throw badReturn(r, 'bad_return_from_state_function');
    const res = r as AnyResult;
    const actions = res.actions;
    if ('stop' in res) return { stop: res.stop as ExitReason, state: { state: cur.state, data: 'data' in res ? (res.data as D) : cur.data } };
    if ('stopAndReply' in res) return this.#stopAndReply(cur, res);
    if ('next' in res && 'data' in res && this.#isState(res.next)) {
      const next = res.next as S;
      return this.#transition(cur, ev, next, res.data as D, actions, this.#b.stateEnter === true && !sameState(next, cur.state), false);
    }
    if ('keepState' in res) return this.#transition(cur, ev, cur.state, res.keepState as D, actions, false, false);
    if ('keepStateAndData' in res && res.keepStateAndData === true) return this.#transition(cur, ev, cur.state, cur.data, actions, false, false);
    if ('repeatState' in res) return this.#transition(cur, ev, cur.state, res.repeatState as D, actions, this.#b.stateEnter === true, false);
    if ('repeatStateAndData' in res && res.repeatStateAndData === true) {
      return this.#transition(cur, ev, cur.state, cur.data, actions, this.#b.stateEnter === true, false);
    }
    throw badReturn(r, 'bad_return_from_state_function');
  }

  #stopAndReply(cur: Current<S, D>, res: AnyResult): Stop<S, D> {
    const replies = res.replies;
    if (!Array.isArray(replies)) throw badReturn(res, 'bad_return_from_state_function');
    for (const a of replies as unknown[]) {
      if (!isObject(a) || (a as AnyResult).type !== 'reply') throw badReturn(a, 'bad_reply_action_from_state_function');
      proc.reply((a as ReplyAction<E>).from, (a as ReplyAction<E>).reply);
    }
    return { stop: res.stopAndReply as ExitReason, state: { state: cur.state, data: 'data' in res ? (res.data as D) : cur.data } };
  }

  /**
   * The transition to `next` with `data` (OTP's loop_state_transition). `ev` is undefined for the
   * initial one, where postpone is ignored. `enter`: make the state enter call.
   */
  #transition(
    cur: Current<S, D>, ev: AnyEvent | undefined, next: S, data: D, actions: unknown, enter: boolean, initial: boolean,
  ): Outcome<S, D> | Promise<Outcome<S, D>> {
    const parsed: Parsed<E> = { postpone: false, nextEvents: [], timeouts: new Map() };
    this.#parse(actions, parsed, false);
    if (!enter) return this.#commit(cur, ev, { state: next, data }, parsed, initial);
    return this.#enter(cur, ev, { state: next, data }, parsed, initial);
  }

  /** The state enter call (repeated while it returns `repeatState`), its actions appended. */
  #enter(cur: Current<S, D>, ev: AnyEvent | undefined, to: Current<S, D>, parsed: Parsed<E>, initial: boolean): Outcome<S, D> | Promise<Outcome<S, D>> {
    // The old state is the current one; on the initial entry that is the initial state itself.
    const enterEv: EnterEvent<S> = { type: 'enter', oldState: initial ? to.state : cur.state };
    return this.#guard(to, () => {
      const r = this.#callback(to.state, enterEv, to.data);
      const go = (v: unknown): Outcome<S, D> | Promise<Outcome<S, D>> => this.#guard(to, () => {
        if (!isObject(v)) throw badReturn(v, 'bad_state_enter_return_from_state_function');
        const res = v as AnyResult;
        if ('stop' in res) return { stop: res.stop as ExitReason, state: { state: to.state, data: 'data' in res ? (res.data as D) : to.data } };
        if ('stopAndReply' in res) return this.#stopAndReply(to, res);
        let data: D;
        let again = false;
        if ('next' in res && 'data' in res && sameState(res.next, to.state)) data = res.data as D;
        else if ('keepState' in res) data = res.keepState as D;
        else if ('keepStateAndData' in res && res.keepStateAndData === true) data = to.data;
        else if ('repeatState' in res) { data = res.repeatState as D; again = true; }
        else if ('repeatStateAndData' in res && res.repeatStateAndData === true) { data = to.data; again = true; }
        else throw badReturn(v, 'bad_state_enter_return_from_state_function');
        this.#parse(res.actions, parsed, true);
        const now = { state: to.state, data };
        return again ? this.#enter(cur, ev, now, parsed, initial) : this.#commit(cur, ev, now, parsed, initial);
      });
      return r instanceof Promise ? r.then(go, (err: unknown) => this.#crash(to, err)) : go(r);
    });
  }

  /** Do the transition: postpone, retry postponed, insert next events, set the timers. */
  #commit(cur: Current<S, D>, ev: AnyEvent | undefined, to: Current<S, D>, parsed: Parsed<E>, initial: boolean): Current<S, D> {
    if (parsed.postpone && ev !== undefined && !initial) this.#postponed.push(ev);
    if (!initial && !sameState(to.state, cur.state)) {
      // A state change: the postponed events are retried, oldest first; the state timeout ends.
      if (this.#postponed.length > 0) {
        this.#queue = [...this.#postponed, ...this.#queue];
        this.#postponed = [];
      }
      this.#cancel('state_timeout');
    }
    if (parsed.nextEvents.length > 0) this.#queue = [...(parsed.nextEvents as AnyEvent[]), ...this.#queue];
    const zero: AnyEvent[] = [];
    for (const [key, a] of parsed.timeouts) this.#setTimer(key, a, zero);
    for (const z of zero) {
      // An event timeout of 0 is cancelled by any event before it: queued only if nothing is.
      if (z.type !== 'timeout' || this.#queue.length === 0) this.#queue.push(z);
    }
    return to.state === cur.state && to.data === cur.data ? cur : to;
  }

  #setTimer(key: string, a: TimerAction, zero: AnyEvent[]): void {
    const kind = a.type;
    const name = a.name ?? '';
    const running = this.#timers.get(key);
    const event = (content: unknown): AnyEvent => (kind === 'generic_timeout' ? { type: kind, name, content } : { type: kind, content });
    if (a.time === 'cancel' || a.time === Infinity) {
      this.#cancel(key);
      return;
    }
    if (a.time === 'update') {
      if (running) running.content = a.content;
      else zero.push(event(a.content));
      return;
    }
    const ms = a.abs === true ? a.time - this.#ctx.clock.now() : a.time;
    this.#cancel(key);
    if (ms === 0 && a.abs !== true) {
      zero.push(event(a.content));
      return;
    }
    const seq = nextSeq++;
    const msg: StatemMsg<E> = { tag: 'timer', kind, name, seq };
    // An absolute time already past fires at once, as erlang:start_timer does: its message goes
    // in the mailbox now, behind what is already there.
    if (ms <= 0) {
      this.#timers.set(key, { seq, ref: undefined, content: a.content });
      proc.send(this.#ctx.self, msg);
      return;
    }
    if (ms > MAX_TIMER_MS) {
      const due = this.#ctx.clock.now() + ms;
      this.#timers.set(key, { seq, ref: this.#ctx.startTimer(MAX_TIMER_MS, msg), content: a.content, due });
      return;
    }
    this.#timers.set(key, { seq, ref: this.#ctx.startTimer(ms, msg), content: a.content });
  }

  #cancel(key: string): void {
    const t = this.#timers.get(key);
    if (t === undefined) return;
    this.#timers.delete(key);
    if (t.ref !== undefined) this.#ctx.cancelTimer(t.ref);
  }

  /** Parse actions in list order: replies now, the rest into `parsed` (OTP's parse_actions). */
  #parse(actions: unknown, parsed: Parsed<E>, enter: boolean): void {
    if (actions === undefined) return;
    const bad = enter ? 'bad_state_enter_action_from_state_function' : 'bad_action_from_state_function';
    if (!Array.isArray(actions)) throw badReturn(actions, bad);
    for (const a of actions as unknown[]) {
      if (!isObject(a)) throw badReturn(a, bad);
      const act = a as AnyResult;
      switch (act.type) {
        case 'reply':
          proc.reply(act.from as From<unknown>, act.reply);
          break;
        case 'hibernate':
          break; // a no-op: nothing to shrink
        case 'postpone':
          if (enter) throw badReturn(a, bad);
          parsed.postpone = true;
          break;
        case 'next_event':
          if (enter || !isEvent(act.event)) throw badReturn(a, bad);
          parsed.nextEvents.push(act.event as Event<E>);
          break;
        case 'timeout':
        case 'state_timeout':
        case 'generic_timeout': {
          if (!validTimer(act)) throw badReturn(a, bad);
          const key = timerKey(act.type, act.type === 'generic_timeout' ? String(act.name) : '');
          // The last of each type wins: delete first so the map keeps the order last set.
          parsed.timeouts.delete(key);
          parsed.timeouts.set(key, a as TimeoutAction<E>);
          break;
        }
        default:
          throw badReturn(a, bad);
      }
    }
  }

  /** Run `fn`; a throw (a bad return, a crashing callback) stops the machine in `at`. */
  #guard(at: Current<S, D>, fn: () => Outcome<S, D> | Promise<Outcome<S, D>>): Outcome<S, D> | Promise<Outcome<S, D>> {
    try {
      const out = fn();
      return out instanceof Promise ? out.catch((err: unknown) => this.#crash(at, err)) : out;
    } catch (err) {
      return this.#crash(at, err);
    }
  }

  /** A crash: as proc_lib reports one, but terminate sees the state the machine was in then. */
  #crash(at: Current<S, D>, err: unknown): Stop<S, D> {
    const reason = exitReasonOf(err);
    this.#ctx.logger.error({ pid: proc.pidToString(this.#ctx.self), reason: describe(reason) }, 'gen_statem crashed');
    return { stop: reason, state: at };
  }

  #isState(s: unknown): boolean {
    const b = this.#b;
    if (b.callbackMode === 'handle_event_function') return true;
    return typeof s === 'string' && Object.hasOwn(b.states, s);
  }
}

type TimerAction = {
  readonly type: TimerKind; readonly time: number | 'update' | 'cancel';
  readonly content?: unknown; readonly abs?: boolean; readonly name?: string;
};

function timerKey(kind: string, name: string): string {
  return kind === 'generic_timeout' ? `generic_timeout:${name}` : kind;
}

function kindOf(key: string): TimerKind {
  return key.startsWith('generic_timeout:') ? 'generic_timeout' : (key as TimerKind);
}

function nameOf(key: string): string {
  return key.startsWith('generic_timeout:') ? key.slice('generic_timeout:'.length) : '';
}

function validTimer(a: AnyResult): boolean {
  if (a.type === 'generic_timeout' && typeof a.name !== 'string') return false;
  const t = a.time;
  if (t === 'cancel' || t === 'update') return true;
  if (typeof t !== 'number' || Number.isNaN(t)) return false;
  // OTP: a relative time is a non-negative integer or infinity; an absolute one any integer.
  return a.abs === true ? Number.isFinite(t) : t >= 0;
}

const EVENT_TYPES = new Set(['call', 'cast', 'info', 'internal', 'timeout', 'state_timeout', 'generic_timeout']);
function isEvent(e: unknown): boolean {
  return isObject(e) && EVENT_TYPES.has((e as AnyResult).type as string);
}

/** Erlang's `=:=` on states: a state is any value in the handle_event_function mode. */
function sameState(a: unknown, b: unknown): boolean {
  return a === b || (isObject(a) && isObject(b) && isDeepStrictEqual(a, b));
}

function isStop<S, D>(o: Outcome<S, D>): o is Stop<S, D> {
  return 'stop' in o;
}

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

function badReturn(value: unknown, what: string): OtpError {
  return new OtpError('ERR_OTP_BAD_RETURN', `gen_statem callback returned an unrecognised value (${what})`, { [what]: value });
}

function badInit(value: unknown): OtpError {
  return new OtpError('ERR_OTP_BAD_RETURN', 'gen_statem init returned an unrecognised value', { bad_return_from_init: value });
}
