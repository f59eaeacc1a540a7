/**
 * gen_server on nact: the behaviour of a server process with synchronous calls, asynchronous casts
 * and plain messages (info). As in OTP, the public functions only send a message; all the logic
 * runs inside the process, one message at a time.
 *
 * Exports, in OTP's order: the callback contract, the API, then the proc_lib core.
 */
import { OtpError, type ExitReason } from './errors.js';
import * as proc from './proc_lib.js';
import type { ExitMessage, From, InitOutcome, Link, Pid, ProcessContext, ProcessCore, StartOptions, StartResult, Step } from './proc_lib.js';
import type { TimerRef } from './timers.js';

export type { ExitMessage } from './proc_lib.js';

/** OTP's default call timeout (gen_server:call/2 waits 5000 ms). */
export const DEFAULT_CALL_TIMEOUT = 5000;

// ---------------------------------------------------------------------------------------------
// Callback contract
// ---------------------------------------------------------------------------------------------

/**
 * The info a gen_server gets when a callback's `timeout` passed with no message (OTP's atom
 * `timeout`, to `handle_info/2`). A result may carry `timeout` only if `Info` includes it.
 */
export type TimeoutInfo = 'timeout';
/** `timeout` in a result: ms (`Infinity` is OTP's `infinity`), allowed when Info has `'timeout'`. */
export type TimeoutMs<Info> = TimeoutInfo extends Info ? number : never;

/**
 * `init/1` results: `{ok, State}`, `{ok, State, Timeout}`, `{ok, State, {continue, C}}`,
 * `{stop, Reason}`, `ignore`.
 */
export type InitResult<S, Cont = never, Info = never> =
  | { readonly ok: S; readonly timeout?: TimeoutMs<Info> }
  | { readonly ok: S; readonly continue: Cont }
  | { readonly stop: ExitReason }
  | { readonly ignore: true };

/**
 * `handle_call/3` results: `{reply, R, S}`, `{reply, R, S, Timeout | {continue, C}}`, `{noreply, S}`
 * and `{noreply, S, Timeout | {continue, C}}` (reply later with `reply(from, r)`), `{stop, Reason, [R,] S}`.
 */
export type CallResult<S, R, Cont = never, Info = never> =
  | { readonly reply: R; readonly state: S; readonly timeout?: TimeoutMs<Info> }
  | { readonly reply: R; readonly state: S; readonly continue: Cont }
  | { readonly noreply: true; readonly state: S; readonly timeout?: TimeoutMs<Info> }
  | { readonly noreply: true; readonly state: S; readonly continue: Cont }
  | { readonly stop: ExitReason; readonly reply?: R; readonly state: S };

/**
 * `handle_cast/2`, `handle_info/2` and `handle_continue/2` results: `{noreply, S}`,
 * `{noreply, S, Timeout | {continue, C}}`, `{stop, Reason, S}`.
 */
export type NoReplyResult<S, Cont = never, Info = never> =
  | { readonly noreply: true; readonly state: S; readonly timeout?: TimeoutMs<Info> }
  | { readonly noreply: true; readonly state: S; readonly continue: Cont }
  | { readonly stop: ExitReason; readonly state: S };

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
  /**
   * `process_flag(trap_exit, on)`; returns the old value. Trapped exit signals arrive at
   * `handleInfo` as `ExitMessage`s, so `true` is allowed only when `Info` includes `ExitMessage`.
   */
  processFlag(flag: 'trap_exit', on: ExitMessage extends Info ? boolean : false): boolean;
  /** `link/1` from this server (see `procLib.link`). */
  link(pid: Pid<never> | Pid<unknown>): void;
  /** `unlink/1` from this server. */
  unlink(pid: Pid<never> | Pid<unknown>): void;
  /** `exit/2` from this server: the EXIT message a trapping `pid` gets names this server. */
  exit(pid: Pid<never> | Pid<unknown>, reason: ExitReason): void;
}

/**
 * The callbacks a gen_server implements. Any callback may be async; a thrown error or rejected
 * promise is a crash, and `terminate` still runs with the last state. `Cont` is what
 * `{ continue }` results carry to `handleContinue`.
 */
export interface GenServer<Args, S, Call = never, Reply = never, Cast = never, Info = never, Cont = never> {
  init(args: Args, ctx: ServerContext<Info>): InitResult<S, Cont, Info> | Promise<InitResult<S, Cont, Info>>;
  handleCall?(request: Call, from: From<Reply>, state: S, ctx: ServerContext<Info>): CallResult<S, Reply, Cont, Info> | Promise<CallResult<S, Reply, Cont, Info>>;
  handleCast?(msg: Cast, state: S, ctx: ServerContext<Info>): NoReplyResult<S, Cont, Info> | Promise<NoReplyResult<S, Cont, Info>>;
  handleInfo?(info: Info, state: S, ctx: ServerContext<Info>): NoReplyResult<S, Cont, Info> | Promise<NoReplyResult<S, Cont, Info>>;
  /** `handle_continue/2`: runs for a `{ continue }` result, before the next message. */
  handleContinue?(cont: Cont, state: S, ctx: ServerContext<Info>): NoReplyResult<S, Cont, Info> | Promise<NoReplyResult<S, Cont, Info>>;
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
export function start<Args, S, Call, Reply, Cast, Info, Cont = never>(
  parent: Link['parent'], behaviour: GenServer<Args, S, Call, Reply, Cast, Info, Cont>, args: Args, opts: StartOptions = {},
): Promise<StartResult<ServerRef<Call, Reply, Cast, Info>>> {
  return proc.start(parent, core(behaviour, args), opts);
}

/** `gen_server:start_link/3`: started by a supervisor, which hears of the exit through `link`. */
export function startLink<Args, S, Call, Reply, Cast, Info, Cont = never>(
  link: Link, behaviour: GenServer<Args, S, Call, Reply, Cast, Info, Cont>, args: Args, opts: StartOptions = {},
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

function core<Args, S, Call, Reply, Cast, Info, Cont>(
  b: GenServer<Args, S, Call, Reply, Cast, Info, Cont>, args: Args,
): ProcessCore<S, ServerMsg<Call, Reply, Cast, Info>> {
  let sctx: ServerContext<Info> | undefined;
  const serverContext = (ctx: ProcessContext<ServerMsg<Call, Reply, Cast, Info>>): ServerContext<Info> =>
    (sctx ??= {
      self: ctx.self as unknown as ServerContext<Info>['self'],
      logger: ctx.logger,
      clock: ctx.clock,
      sendAfter: (ms, msg) => ctx.startTimer(ms, { tag: 'info', msg }),
      cancelTimer: (ref) => ctx.cancelTimer(ref),
      processFlag: (flag, on) => ctx.processFlag(flag, on),
      link: (pid) => ctx.link(pid),
      unlink: (pid) => ctx.unlink(pid),
      exit: (pid, reason) => ctx.exit(pid, reason),
    });
  // handle_info, for a plain message, a trapped EXIT or the receive timeout. OTP's default
  // handle_info logs and drops an unexpected message; so do we.
  const info = (msg: Info, state: S, c: ServerContext<Info>): Step<S> | Promise<Step<S>> => {
    if (!b.handleInfo) {
      c.logger.warn({ pid: proc.pidToString(c.self) }, 'gen_server: unexpected info message dropped');
      return { next: state };
    }
    const r = b.handleInfo(msg, state, c);
    return r instanceof Promise ? r.then(noReply) : noReply(r);
  };
  return {
    label: 'gen_server',
    async init(ctx): Promise<InitOutcome<S>> {
      const r: unknown = await b.init(args, serverContext(ctx));
      if (isObject(r)) {
        if ('ok' in r && validAfter(r)) return r as InitOutcome<S>;
        if ('stop' in r || ('ignore' in r && r.ignore === true)) return r as InitOutcome<S>;
      }
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
        case 'info':
          return info(msg.msg, state, c);
      }
    },
    // A trapped exit signal is an info message, {'EXIT', Pid, Reason}: the server's Info type
    // includes ExitMessage whenever it can trap (ServerContext.processFlag's type sees to it).
    handleExit(state, msg, ctx) {
      return info(msg as Info, state, serverContext(ctx));
    },
    handleTimeout(state, ctx) {
      return info(TIMEOUT as Info, state, serverContext(ctx));
    },
    handleContinue(state, cont, ctx) {
      if (!b.handleContinue) throw new OtpError('ERR_OTP_BAD_RETURN', 'gen_server has no handleContinue', { undef: 'handleContinue' });
      const r = b.handleContinue(cont as Cont, state, serverContext(ctx));
      return r instanceof Promise ? r.then(noReply) : noReply(r);
    },
    async terminate(reason, state, ctx) {
      await b.terminate?.(reason, state, serverContext(ctx));
    },
  };
}

const TIMEOUT: TimeoutInfo = 'timeout';

function callStep<S, Reply>(r: CallResult<S, Reply, unknown, unknown>, from: From<Reply>): Step<S> {
  if (!isObject(r) || !('state' in r)) throw badReturn(r);
  if ('stop' in r) {
    if ('reply' in r) proc.reply(from, r.reply as Reply);
    return { stop: r.stop, state: r.state };
  }
  if ('reply' in r) {
    if (!validAfter(r)) throw badReturn(r);
    proc.reply(from, r.reply);
    return after(r.state, r);
  }
  if ('noreply' in r && r.noreply === true && validAfter(r)) return after(r.state, r);
  throw badReturn(r);
}

function noReply<S>(r: NoReplyResult<S, unknown, unknown>): Step<S> {
  if (!isObject(r) || !('state' in r)) throw badReturn(r);
  if ('stop' in r) return { stop: r.stop, state: r.state };
  if ('noreply' in r && r.noreply === true && validAfter(r)) return after(r.state, r);
  throw badReturn(r);
}

/** A result's `timeout` is a number of ms, 0 or more (OTP's `infinity` is `Infinity`). */
function validAfter(r: object): boolean {
  if (!('timeout' in r) || r.timeout === undefined) return true;
  return typeof r.timeout === 'number' && r.timeout >= 0;
}

/** The proc_lib step for a result that keeps the server running: with its continue or timeout. */
function after<S>(state: S, r: object): Step<S> {
  if ('continue' in r) return { next: state, continue: r.continue };
  if ('timeout' in r && typeof r.timeout === 'number') return { next: state, timeout: r.timeout };
  return { next: state };
}

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

function badReturn(value: unknown): OtpError {
  return new OtpError('ERR_OTP_BAD_RETURN', 'gen_server callback returned an unrecognised value', { bad_return_value: value });
}
