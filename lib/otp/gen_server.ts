/**
 * gen_server on nact: the behaviour of a server process with synchronous calls, asynchronous casts
 * and plain messages (info). As in OTP, the public functions only send a message; all the logic
 * runs inside the process, one message at a time.
 *
 * Exports, in OTP's order: the callback contract, the API, then the proc_lib core.
 */
import { OtpError, type ExitReason } from './errors.js';
import * as proc from './proc_lib.js';
import type { From, Link, Pid, ProcessContext, ProcessCore, StartOptions, StartResult, Step } from './proc_lib.js';
import type { TimerRef } from './timers.js';

/** OTP's default call timeout (gen_server:call/2 waits 5000 ms). */
export const DEFAULT_CALL_TIMEOUT = 5000;

// ---------------------------------------------------------------------------------------------
// Callback contract
// ---------------------------------------------------------------------------------------------

/** `init/1` results: `{ok, State}`, `{stop, Reason}`, `ignore`. */
export type InitResult<S> = { readonly ok: S } | { readonly stop: ExitReason } | { readonly ignore: true };

/** `handle_call/3` results: `{reply, R, S}`, `{noreply, S}` (reply later with `reply(from, r)`), `{stop, Reason, [R,] S}`. */
export type CallResult<S, R> =
  | { readonly reply: R; readonly state: S }
  | { readonly noreply: true; readonly state: S }
  | { readonly stop: ExitReason; readonly reply?: R; readonly state: S };

/** `handle_cast/2` and `handle_info/2` results: `{noreply, S}`, `{stop, Reason, S}`. */
export type NoReplyResult<S> = { readonly noreply: true; readonly state: S } | { readonly stop: ExitReason; readonly state: S };

/** What a gen_server callback sees besides its arguments. */
export interface ServerContext<Info> {
  readonly self: Pid<ServerMsg<never, never, never, Info>>;
  readonly logger: ProcessContext<unknown>['logger'];
  readonly clock: ProcessContext<unknown>['clock'];
  /** `erlang:start_timer/3` for an info message to self; `cancelTimer` guarantees it is never seen. */
  sendAfter(ms: number, info: Info): TimerRef;
  /**
   * `erlang:cancel_timer/1`, with gen_fsm's flush: the ms that were left; `0` if the timer had
   * fired and its info, still in the mailbox, is flushed; `false` if it was handled or cancelled.
   */
  cancelTimer(ref: TimerRef): number | false;
}

/**
 * The callbacks a gen_server implements. Any callback may be async; a thrown error or rejected
 * promise is a crash, and `terminate` still runs with the last state.
 */
export interface GenServer<Args, S, Call = never, Reply = never, Cast = never, Info = never> {
  init(args: Args, ctx: ServerContext<Info>): InitResult<S> | Promise<InitResult<S>>;
  handleCall?(request: Call, from: From<Reply>, state: S, ctx: ServerContext<Info>): CallResult<S, Reply> | Promise<CallResult<S, Reply>>;
  handleCast?(msg: Cast, state: S, ctx: ServerContext<Info>): NoReplyResult<S> | Promise<NoReplyResult<S>>;
  handleInfo?(info: Info, state: S, ctx: ServerContext<Info>): NoReplyResult<S> | Promise<NoReplyResult<S>>;
  /** Runs on every stop: `{stop}` results, a crash, a shutdown by the supervisor, `stop()`. */
  terminate?(reason: ExitReason, state: S, ctx: ServerContext<Info>): void | Promise<void>;
}

/** The messages a gen_server process receives. */
export type ServerMsg<Call, Reply, Cast, Info> =
  | { readonly tag: 'call'; readonly request: Call; readonly from: From<Reply> }
  | { readonly tag: 'cast'; readonly msg: Cast }
  | { readonly tag: 'info'; readonly msg: Info };

/** A running gen_server. */
export type ServerRef<Call = never, Reply = never, Cast = never, Info = never> = Pid<ServerMsg<Call, Reply, Cast, Info>>;

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * Start a gen_server under `parent` (the actor system or another actor). Resolves after `init`.
 * @example
 * const counter: GenServer<number, number, 'get', number, 'inc'> = {
 *   init: (n) => ({ ok: n }),
 *   handleCall: (_req, _from, n) => ({ reply: n, state: n }),
 *   handleCast: (_msg, n) => ({ noreply: true, state: n + 1 }),
 * };
 * const r = await start(system, counter, 0);
 * if ('ok' in r) { cast(r.ok, 'inc'); await call(r.ok, 'get'); } // 1
 */
export function start<Args, S, Call, Reply, Cast, Info>(
  parent: Link['parent'], behaviour: GenServer<Args, S, Call, Reply, Cast, Info>, args: Args, opts: StartOptions = {},
): Promise<StartResult<ServerRef<Call, Reply, Cast, Info>>> {
  return proc.start(parent, core(behaviour, args), opts);
}

/** `gen_server:start_link/3`: started by a supervisor, which hears of the exit through `link`. */
export function startLink<Args, S, Call, Reply, Cast, Info>(
  link: Link, behaviour: GenServer<Args, S, Call, Reply, Cast, Info>, args: Args, opts: StartOptions = {},
): Promise<StartResult<ServerRef<Call, Reply, Cast, Info>>> {
  return proc.startLink(link, core(behaviour, args), opts);
}

/**
 * `gen_server:call/3`. Rejects with an OtpError: `ERR_OTP_TIMEOUT`, `ERR_OTP_NOPROC` (not running),
 * or `ERR_OTP_EXIT` the moment the server exits without replying.
 */
export function call<Call, Reply, Cast, Info>(
  server: ServerRef<Call, Reply, Cast, Info>, request: Call, timeoutMs: number = DEFAULT_CALL_TIMEOUT,
): Promise<Reply> {
  return proc.call(server, (from: From<Reply>): ServerMsg<Call, Reply, Cast, Info> => ({ tag: 'call', request, from }), timeoutMs);
}

/** `gen_server:cast/2`: fire and forget; a cast to a dead server is dropped. */
export function cast<Call, Reply, Cast, Info>(server: ServerRef<Call, Reply, Cast, Info>, msg: Cast): void {
  proc.send(server, { tag: 'cast', msg });
}

/** `Pid ! Msg`: a plain message, handled by `handleInfo`. */
export function info<Call, Reply, Cast, Info>(server: ServerRef<Call, Reply, Cast, Info>, msg: Info): void {
  proc.send(server, { tag: 'info', msg });
}

/** `gen_server:reply/2`, for a call answered later (`{ noreply: true }` from handleCall). */
export const reply = proc.reply;

/** `gen_server:stop/3`: ask the server to exit with `reason`, wait until terminate has run. */
export function stop(server: Pid<never> | Pid<unknown>, reason: ExitReason = 'normal', timeout: proc.Shutdown = 'infinity'): Promise<void> {
  return proc.shutdown(server, reason, timeout);
}

// ---------------------------------------------------------------------------------------------
// proc_lib core
// ---------------------------------------------------------------------------------------------

function core<Args, S, Call, Reply, Cast, Info>(
  b: GenServer<Args, S, Call, Reply, Cast, Info>, args: Args,
): ProcessCore<S, ServerMsg<Call, Reply, Cast, Info>> {
  let sctx: ServerContext<Info> | undefined;
  const serverContext = (ctx: ProcessContext<ServerMsg<Call, Reply, Cast, Info>>): ServerContext<Info> =>
    (sctx ??= {
      self: ctx.self as unknown as ServerContext<Info>['self'],
      logger: ctx.logger,
      clock: ctx.clock,
      sendAfter: (ms, msg) => ctx.startTimer(ms, { tag: 'info', msg }),
      cancelTimer: (ref) => ctx.cancelTimer(ref),
    });
  return {
    label: 'gen_server',
    async init(ctx) {
      const r = await b.init(args, serverContext(ctx));
      if (isObject(r) && ('ok' in r || 'stop' in r || ('ignore' in r && r.ignore === true))) return r;
      throw badReturn(r);
    },
    // Synchronous when the callback is (a promise is made only when a callback returns one), as
    // gen_fsm's: every setup calls the session-id server.
    handle(state, msg, ctx): Step<S> | Promise<Step<S>> {
      const c = serverContext(ctx);
      switch (msg.tag) {
        case 'call': {
          if (!b.handleCall) throw new OtpError('ERR_OTP_BAD_RETURN', 'gen_server has no handleCall', { undef: 'handleCall' });
          const r = b.handleCall(msg.request, msg.from, state, c);
          return r instanceof Promise ? r.then((v) => callStep(v, msg.from)) : callStep(r, msg.from);
        }
        case 'cast': {
          if (!b.handleCast) throw new OtpError('ERR_OTP_BAD_RETURN', 'gen_server has no handleCast', { undef: 'handleCast' });
          const r = b.handleCast(msg.msg, state, c);
          return r instanceof Promise ? r.then(noReply) : noReply(r);
        }
        case 'info': {
          // OTP's default handle_info logs and drops an unexpected message; so do we.
          if (!b.handleInfo) {
            c.logger.warn({ pid: proc.pidToString(c.self) }, 'gen_server: unexpected info message dropped');
            return { next: state };
          }
          const r = b.handleInfo(msg.msg, state, c);
          return r instanceof Promise ? r.then(noReply) : noReply(r);
        }
      }
    },
    async terminate(reason, state, ctx) {
      await b.terminate?.(reason, state, serverContext(ctx));
    },
  };
}

function callStep<S, Reply>(r: CallResult<S, Reply>, from: From<Reply>): Step<S> {
  if (!isObject(r) || !('state' in r)) throw badReturn(r);
  if ('stop' in r) {
    if ('reply' in r) proc.reply(from, r.reply as Reply);
    return { stop: r.stop, state: r.state };
  }
  if ('reply' in r) {
    proc.reply(from, r.reply);
    return { next: r.state };
  }
  if ('noreply' in r && r.noreply === true) return { next: r.state };
  throw badReturn(r);
}

function noReply<S>(r: NoReplyResult<S>): Step<S> {
  if (!isObject(r) || !('state' in r)) throw badReturn(r);
  if ('stop' in r) return { stop: r.stop, state: r.state };
  if ('noreply' in r && r.noreply === true) return { next: r.state };
  throw badReturn(r);
}

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

function badReturn(value: unknown): OtpError {
  return new OtpError('ERR_OTP_BAD_RETURN', 'gen_server callback returned an unrecognised value', { bad_return_value: value });
}
