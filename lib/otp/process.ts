/**
 * The process: one nact actor per incarnation, its mailbox loop, and its exits.
 *
 * - the init handshake's process side (`proc_lib:init_ack`): the starter's promise settles once
 *   init has run;
 * - one way out for every exit, whatever its cause (a failed init, a `{ stop }` result, a thrown
 *   error or rejected promise, a shutdown, a kill): `terminate` if due, then the link and the
 *   monitors, each told on its own so that one listener's throw cannot silence the others nor
 *   leave the starter waiting;
 * - the watchers an exit tells: monitors (`erlang:monitor/2`) and calls in flight (gen.ts);
 * - links between any two processes and exit signals (`link/1`, `unlink/1`, `exit/2`,
 *   `process_flag(trap_exit, _)`), with Erlang's rules: a non-trapping process dies of an
 *   abnormal signal (no terminate), a trapping one gets `{'EXIT', Pid, Reason}` as a message,
 *   `kill` from `exit/2` is untrappable and reaches the links as `killed`;
 * - the system side of `sys` (sys.ts): state, status, suspend/resume, trace, statistics;
 * - gen_server's `{continue, C}` and receive timeouts, run here between two mailbox messages;
 * - what a pid prints as: its registered name, its label, or `<0.N.0>`.
 *
 * The public functions are in proc_lib.ts, calls in gen.ts; nact itself is only reached through
 * nact.ts.
 */
import { systemClock, type Clock } from './clock.js';
import { OtpError, describe, exitReasonOf, isNormalExit, type ExitReason } from './errors.js';
import { nullLogger, type Logger } from './logger.js';
import {
  crashedActor, dispatch, pathOf, printRefsWith, spawnActor, stopActor, stopDecision,
  type CrashContext, type ParentRef, type Ref,
} from './nact.js';
import { unregister } from './registry.js';
import { TimerTable, type TimerRef } from './timers.js';

declare const pidBrand: unique symbol;

/**
 * A process id: the reference of one incarnation. A restarted child has a new Pid. It prints
 * (`String(pid)`, JSON, `util.inspect`) as `pidToString` says: registered name, label or `<0.N.0>`.
 */
export type Pid<M> = Ref<Envelope<M>> & { readonly [pidBrand]: (msg: M) => void; toString(): string };

/** What `start` resolves to, as OTP's `{ok, Pid} | ignore | {error, Reason}`. */
export type StartResult<P> = { readonly ok: P } | { readonly error: unknown } | { readonly ignore: true };

/** A link to the starter: `onExit` is called once, after `terminate`, with the exit reason. */
export interface Link {
  readonly parent: ParentRef;
  readonly onExit: (pid: Pid<never>, reason: ExitReason) => void;
}

export interface StartOptions {
  /** Register the process under this name (Erlang's `{local, Name}`); `whereis` finds it. */
  readonly name?: string;
  /** Called once when the process exits, after `terminate` (what a link delivers in Erlang). */
  readonly onExit?: (pid: Pid<never>, reason: ExitReason) => void;
  /** The clock timers read; inject a `ManualClock` in tests. */
  readonly clock?: Clock;
  /** Where crashes are reported. */
  readonly logger?: Logger;
  /**
   * What the pid prints as when it has no registered name (in logs, reports, `pidToString`),
   * e.g. a supervisor child's `sup/id`; without one it prints as `<0.N.0>`.
   */
  readonly label?: string;
}

/** `{'EXIT', Pid, Reason}`: an exit signal a trapping process gets as a message. `pid` is the
 *  sender: the linked process that exited, or the caller of `exit/2` (`undefined` when that was
 *  code outside any process). */
export interface ExitMessage {
  readonly tag: 'EXIT';
  readonly pid: Pid<never> | undefined;
  readonly reason: ExitReason;
}

/** What a trace hook sees (`sys:trace/2`): each message a process takes in, its state after each
 *  handler, and its exit. */
export type TraceEvent =
  | { readonly type: 'in'; readonly msg: unknown }
  | { readonly type: 'state'; readonly state: unknown }
  | { readonly type: 'exit'; readonly reason: ExitReason };

/** A `sys.trace` hook: called inside the process, in order; a throw is logged and ignored. */
export type TraceHook = (event: TraceEvent, pid: Pid<never>) => void;

/** `sys:statistics/2`: counted from the start, on the process's clock. */
export interface ProcessStatistics {
  readonly startTime: number;
  readonly currentTime: number;
  /** Mailbox messages taken in, system messages included. */
  readonly messagesIn: number;
  /** OTP's reductions, here the messages the behaviour handled (callbacks run). */
  readonly reductions: number;
}

/** `sys:get_status/1`, as a record. */
export interface ProcessStatus {
  readonly pid: Pid<never>;
  /** What the pid prints as: registered name, label, or `<0.N.0>`. */
  readonly name: string;
  readonly registeredName: string | undefined;
  /** `gen_server`, `gen_fsm`, `supervisor` ... */
  readonly behaviour: string;
  readonly status: 'running' | 'suspended';
  /** The process it runs under (its supervisor, for a child), or `undefined` under the system. */
  readonly parent: Pid<never> | undefined;
  readonly state: unknown;
  readonly trapExit: boolean;
  readonly links: readonly Pid<never>[];
  readonly statistics: ProcessStatistics;
}

/** A system request (sys.ts), answered in mailbox order, even while suspended. */
export type SystemRequest =
  | { readonly op: 'replace_state'; readonly fn: (state: unknown) => unknown }
  | { readonly op: 'get_status' }
  | { readonly op: 'suspend' }
  | { readonly op: 'resume' }
  | { readonly op: 'trace'; readonly hook: TraceHook | undefined }
  | { readonly op: 'statistics' };

/** A system request's answer: a value, or what went wrong (sys.ts turns it into a rejection). */
export type SystemReply = { readonly ok: unknown } | { readonly error: unknown };

/** The context every behaviour callback sees. */
export interface ProcessContext<M> {
  readonly self: Pid<M>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Send `msg` to self after `ms` (Erlang's `start_timer`); `cancelTimer` guarantees it is never seen. */
  startTimer(ms: number, msg: M): TimerRef;
  /**
   * Cancel a timer (`gen_fsm:cancel_timer/1`): the ms left; `0` if it fired and its message,
   * still queued, is flushed; `false` if it was already delivered or cancelled.
   */
  cancelTimer(ref: TimerRef): number | false;
  /** Whether a timer is started and not yet delivered or cancelled. */
  isTimerLive(ref: TimerRef): boolean;
  /**
   * `process_flag(trap_exit, on)`: with it on, exit signals (but `exit(pid, 'kill')`) arrive as
   * `ExitMessage`s; off (the default), an abnormal one ends the process. Returns the old value.
   */
  processFlag(flag: 'trap_exit', on: boolean): boolean;
  /** `link/1` from this process. To a process that is not running: an `{'EXIT', pid, 'noproc'}`
   *  if trapping, else throws `ERR_OTP_NOPROC` (the caller crashes, as in Erlang). */
  link(pid: Pid<never> | Pid<unknown>): void;
  /** `unlink/1` from this process. */
  unlink(pid: Pid<never> | Pid<unknown>): void;
  /** `exit/2` from this process: an exit signal to `pid`. */
  exit(pid: Pid<never> | Pid<unknown>, reason: ExitReason): void;
}

/**
 * What a behaviour's init resolves to, at the proc_lib level. `continue` (gen_server's
 * `{continue, C}`) runs `handleContinue` before any message; `timeout` (ms) arms a receive timeout.
 */
export type InitOutcome<S> =
  | { readonly ok: S; readonly timeout?: number }
  | { readonly ok: S; readonly continue: unknown }
  | { readonly stop: ExitReason }
  | { readonly ignore: true };
/**
 * What a behaviour's message handler resolves to, at the proc_lib level. After `{ next, continue }`
 * the core's `handleContinue` runs before the next message; after `{ next, timeout }` the core's
 * `handleTimeout` runs if no message arrives within `timeout` ms (any message cancels it).
 */
export type Step<S> =
  | { readonly next: S; readonly timeout?: number }
  | { readonly next: S; readonly continue: unknown }
  | { readonly stop: ExitReason; readonly state: S };

/** The part of a behaviour proc_lib drives (gen_server and gen_fsm each provide one). */
export interface ProcessCore<S, M> {
  /** Used in actor names and logs, e.g. 'gen_server'. */
  readonly label: string;
  init(ctx: ProcessContext<M>): InitOutcome<S> | Promise<InitOutcome<S>>;
  handle(state: S, msg: M, ctx: ProcessContext<M>): Step<S> | Promise<Step<S>>;
  terminate(reason: ExitReason, state: S, ctx: ProcessContext<M>): void | Promise<void>;
  /** A trapped exit signal, `{'EXIT', Pid, Reason}`. Without it the message is logged and dropped. */
  handleExit?(state: S, msg: ExitMessage, ctx: ProcessContext<M>): Step<S> | Promise<Step<S>>;
  /** Runs for a `continue` in a Step or InitOutcome, before the next message. */
  handleContinue?(state: S, cont: unknown, ctx: ProcessContext<M>): Step<S> | Promise<Step<S>>;
  /** Runs when a Step's `timeout` passed with no message. */
  handleTimeout?(state: S, ctx: ProcessContext<M>): Step<S> | Promise<Step<S>>;
}

/** What actually travels through the nact mailbox. */
export type Envelope<M> =
  | { readonly kind: 'init' }
  | { readonly kind: 'msg'; readonly msg: M }
  | { readonly kind: 'timeout'; readonly ref: TimerRef; readonly msg: M }
  | { readonly kind: 'shutdown'; readonly reason: ExitReason }
  | { readonly kind: 'get_state'; readonly from: From<unknown> }
  /** A trapped exit signal. */
  | { readonly kind: 'exit'; readonly msg: ExitMessage }
  /** A Step's receive timeout fired. */
  | { readonly kind: 'recv_timeout'; readonly ref: TimerRef }
  | { readonly kind: 'system'; readonly req: SystemRequest; readonly from: From<SystemReply> };

/**
 * Something told when a process exits: a monitor, or a call waiting for its reply. Watchers are
 * linked into their process's ring through their own two fields (undefined while on none): a
 * session always has its tree's monitor, and a call per request beside it, so a `Set` of
 * watchers was made for every session and churned (an add and a delete, and now and then a
 * rehash) by every request.
 */
export interface Watcher {
  watchPrev: Watcher | undefined;
  watchNext: Watcher | undefined;
  down(reason: ExitReason): void;
}

declare const fromBrand: unique symbol;

/**
 * Where to send the reply of a synchronous request (OTP's `From`, the caller's `{Pid, Tag}`).
 * Reply with `reply(from, value)`; only the first reply counts, and one to a caller that gave up
 * is dropped.
 */
export type From<R> = { readonly [fromBrand]: (reply: R) => void };

/**
 * What a `From` is at run time (gen.ts's PendingCall). Named here so a process can answer
 * `get_state` without importing gen.ts, which is built on this module.
 */
export interface ReplySlot<R> {
  settle(value: R): void;
}

type Status = 'starting' | 'running' | 'exiting' | 'exited';

const processes = new WeakMap<object, Process<unknown, unknown>>();
let incarnation = 0;

/** The process a pid (or a process's child container) belongs to, if it ever started. */
export function lookup(pid: Ref<unknown>): Process<unknown, unknown> | undefined {
  return processes.get(pid);
}

/**
 * What a pid prints as: its label when it has one, else its registered name while it runs under one, else
 * `<0.N.0>` with N its incarnation (stable, and never reused). A ref that is no process's pid
 * (the system, a child container) prints as its actor path.
 */
export function displayName(pid: Ref<unknown>): string | undefined {
  const proc = processes.get(pid);
  return proc?.pid === pid ? proc.displayName : undefined;
}

/** A `monitor/2`: `onDown(reason, arg)` once, unless cancelled first. */
export class Monitor<A = undefined> implements Watcher {
  watchPrev: Watcher | undefined = undefined;
  watchNext: Watcher | undefined = undefined;
  owner: Process<unknown, unknown> | undefined;
  readonly #onDown: (reason: ExitReason, arg: A) => void;
  readonly #arg: A;

  constructor(onDown: (reason: ExitReason, arg: A) => void, arg: A) {
    this.#onDown = onDown;
    this.#arg = arg;
  }

  down(reason: ExitReason): void {
    this.owner = undefined;
    this.#onDown(reason, this.#arg);
  }

  cancel(): boolean {
    const owner = this.owner;
    this.owner = undefined;
    return owner?.unwatch(this) ?? false;
  }
}

/** The actor's behaviour, shared by every process: its state is the Process itself. */
function receiveEnvelope<S, M>(proc: Process<S, M>, env: Envelope<M>): Process<S, M> | Promise<Process<S, M>> {
  const r = proc.receive(env);
  return r === undefined ? proc : r.then(() => proc);
}

function onActorCrash(_msg: unknown, err: unknown, ctx: CrashContext): symbol | Promise<symbol> {
  const proc = lookup(crashedActor(ctx));
  return proc ? proc.crashed(err, ctx) : stopDecision(ctx);
}

/** The context a process's callbacks see: prototype methods, so it costs a process one object. */
class ProcessCtx<M> implements ProcessContext<M> {
  readonly self: Pid<M>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly #timers: TimerTable;

  constructor(self: Pid<M>, clock: Clock, logger: Logger, timers: TimerTable) {
    this.self = self;
    this.clock = clock;
    this.logger = logger;
    this.#timers = timers;
  }

  startTimer(ms: number, msg: M): TimerRef {
    // The timer carries this context and its message (its two arguments): a shared callback, no
    // closure nor record per timer.
    return this.#timers.start(ms, deliverTimeout, this as ProcessCtx<unknown>, msg as unknown);
  }

  cancelTimer(ref: TimerRef): number | false {
    return this.#timers.cancel(ref);
  }

  isTimerLive(ref: TimerRef): boolean {
    return this.#timers.isLive(ref);
  }

  processFlag(_flag: 'trap_exit', on: boolean): boolean {
    const proc = lookup(this.self) as Process<unknown, unknown>;
    const old = proc.trapExit;
    proc.trapExit = on;
    return old;
  }

  link(pid: Pid<never> | Pid<unknown>): void {
    linkPids(this.self, pid);
  }

  unlink(pid: Pid<never> | Pid<unknown>): void {
    unlinkPids(this.self, pid);
  }

  exit(pid: Pid<never> | Pid<unknown>, reason: ExitReason): void {
    exitSignal(pid, reason, this.self);
  }
}

function deliverTimeout(ref: TimerRef, ctx: ProcessCtx<unknown>, msg: unknown): void {
  dispatch(ctx.self, { kind: 'timeout', ref, msg });
}

function deliverRecvTimeout(ref: TimerRef, pid: Pid<unknown>): void {
  dispatch(pid, { kind: 'recv_timeout', ref });
}

/**
 * `link/1` as `a` calling it on `b`. Linking a process to itself does nothing. If `a` is not
 * running, or `b` is not running and `a` does not trap exits: throws `ERR_OTP_NOPROC` (Erlang's
 * `noproc` error in the caller). If `b` is not running and `a` traps: `a` gets
 * `{'EXIT', b, noproc}`.
 */
export function linkPids(a: Pid<never> | Pid<unknown>, b: Pid<never> | Pid<unknown>): void {
  const pa = lookup(a);
  if (!pa || pa.status === 'exited') throw new OtpError('ERR_OTP_NOPROC', `link: no process ${printPid(a)}`, 'noproc');
  if (a === b) return;
  const pb = lookup(b);
  if (!pb || pb.status === 'exited' || pb.pid !== b) {
    if (!pa.trapExit) throw new OtpError('ERR_OTP_NOPROC', `link: no process ${printPid(b)}`, 'noproc');
    pa.signal(b, 'noproc', true);
    return;
  }
  pa.addLink(pb);
  pb.addLink(pa);
}

/** `unlink/1` as `a` calling it on `b`; nothing if they were not linked. */
export function unlinkPids(a: Pid<never> | Pid<unknown>, b: Pid<never> | Pid<unknown>): void {
  const pa = lookup(a);
  const pb = lookup(b);
  if (pa && pb) {
    pa.removeLink(pb);
    pb.removeLink(pa);
  }
}

/** `exit/2`: an exit signal to `pid` from `from` (a process, or none). Nothing if not running. */
export function exitSignal(pid: Pid<never> | Pid<unknown>, reason: ExitReason, from?: Pid<never> | Pid<unknown>): void {
  const proc = lookup(pid);
  if (proc?.pid === pid) proc.signal(from, reason, false);
}

// nact names allow only RFC1738 characters; the counter makes every incarnation's path unique,
// so a stale Pid can never reach a restarted child. The registered name is not part of it: a
// session's name holds its sid (a credential, kept out of paths and logs), and nact keeps an
// actor's name in five places.
function actorName(label: string, n: number): string {
  return `${label.replace(/[^a-z0-9\-$_.+!*'(),]/gi, '_')}.${n}`;
}

/** The rarely used parts of a process, made on first use: most processes never link, trap,
 *  suspend or trace, and thousands of sessions live at once. */
interface Extras<M> {
  links: Set<Process<unknown, unknown>> | undefined;
  /** Defined while suspended: what arrived meanwhile, replayed in order on resume. */
  deferred: Envelope<M>[] | undefined;
  trace: TraceHook | undefined;
}

/** Node's timers take at most 2^31-1 ms: a longer receive timeout is OTP's `infinity` (none). */
const MAX_TIMER_MS = 2_147_483_647;

/** What a pid prints as in logs and errors: `displayName`, or the actor path of any other ref. */
export function printPid(ref: Ref<unknown>): string {
  return displayName(ref) ?? pathOf(ref);
}

/** Held while suspended (deferred, replayed on resume): what the behaviour handles. System
 *  messages, `get_state` and a shutdown are served while suspended, as OTP's sys loop does. */
function deferrable(kind: Envelope<unknown>['kind']): boolean {
  return kind === 'msg' || kind === 'timeout' || kind === 'exit' || kind === 'recv_timeout';
}

export class Process<S, M> {
  /**
   * Spawn the actor of a new process under `parent`; its init has not run yet (`run` sends it).
   * An `OtpError` if the parent is not running.
   */
  static spawn<S, M>(parent: ParentRef, core: ProcessCore<S, M>, opts: StartOptions): Process<S, M> | OtpError {
    const proc = new Process<S, M>(core, opts);
    let pid: Pid<M>;
    try {
      // The actor's state is its Process, so its handlers are shared functions, not two closures
      // per process (thousands of sessions live at once).
      pid = spawnActor<Process<S, M>, Envelope<M>>(parent, actorName(core.label, proc.#n), receiveEnvelope, {
        initialState: proc,
        onCrash: onActorCrash,
      }) as Pid<M>;
    } catch (err) {
      return new OtpError('ERR_OTP_NOPROC', `cannot spawn under a parent that is not running: ${describe(err)}`, err);
    }
    printRefsWith(pid, displayName);
    proc.#bind(pid, parent, opts);
    return proc;
  }

  status: Status = 'starting';
  exitReason: ExitReason | undefined;
  /** `process_flag(trap_exit, _)`: exit signals arrive as messages instead of ending the process. */
  trapExit = false;
  /** Monitors and calls in flight, told of the exit, in the order they came: the first of a
   *  ring linked through the watchers themselves (its `watchPrev` is the last). */
  #watchers: Watcher | undefined;
  /** Processes spawned under this one's actor: nact stops their actors with ours, so we must
   *  also end them as processes (OTP's link from parent to child). */
  children: Set<Process<unknown, unknown>> | undefined;
  #parentProc: Process<unknown, unknown> | undefined;
  readonly #core: ProcessCore<S, M>;
  // The start options' fields, not the options record: every session kept one (64 bytes) for
  // these three; clock and logger live in the context.
  readonly #name: string | undefined;
  readonly #label: string | undefined;
  readonly #onExit: StartOptions['onExit'];
  readonly #timers: TimerTable;
  /** The incarnation number: `<0.N.0>`, and the actor name's suffix. */
  readonly #n: number;
  readonly #startTime: number;
  #messagesIn = 0;
  #reductions = 0;
  /** A Step's receive timeout, while armed. */
  #recvTimer: TimerRef | undefined;
  #ext: Extras<M> | undefined;
  #state: S | undefined;
  #ctx!: ProcessContext<M>;
  #pid!: Pid<M>;
  #parent!: ParentRef;
  #started: ((r: StartResult<Pid<M>>) => void) | undefined;

  #container: ParentRef | undefined;

  private constructor(core: ProcessCore<S, M>, opts: StartOptions) {
    this.#core = core;
    this.#name = opts.name;
    this.#label = opts.label;
    this.#onExit = opts.onExit;
    const clock = opts.clock ?? systemClock;
    this.#timers = new TimerTable(clock);
    this.#n = ++incarnation;
    this.#startTime = clock.now();
  }

  get pid(): Pid<M> {
    return this.#pid;
  }

  get name(): string | undefined {
    return this.#name;
  }

  get logger(): Logger {
    return this.#ctx.logger;
  }

  /** Its label when it was given one, else its registered name while it runs under one, else
   *  `<0.N.0>`. A label wins because a registered name may hold a secret (a session's
   *  `session:<sid>`): such a process gives a label that does not, and prints as that. */
  get displayName(): string {
    if (this.#label !== undefined) return this.#label;
    if (this.#name !== undefined && this.status !== 'exited') return this.#name;
    return `<0.${this.#n}.0>`;
  }

  container(): ParentRef {
    if (!this.#container) {
      const ref = spawnActor<undefined, never>(this.#pid, 'children', () => undefined, {
        initialState: undefined,
        onCrash: (_m, _e, ctx) => stopDecision(ctx),
      });
      // Children spawned under the container belong to this process (links, orphan kills).
      processes.set(ref, this as Process<unknown, unknown>);
      this.#container = ref;
    }
    return this.#container;
  }

  /** Add `w` last; nothing if it is on a ring already (a watcher watches one process). */
  watch(w: Watcher): void {
    if (w.watchNext !== undefined) return;
    const first = this.#watchers;
    if (first === undefined) {
      w.watchPrev = w;
      w.watchNext = w;
      this.#watchers = w;
      return;
    }
    const last = first.watchPrev as Watcher;
    w.watchPrev = last;
    w.watchNext = first;
    last.watchNext = w;
    first.watchPrev = w;
  }

  /** Take `w` off this process's ring: O(1). False if it was on none. */
  unwatch(w: Watcher): boolean {
    const next = w.watchNext;
    const prev = w.watchPrev;
    if (next === undefined || prev === undefined) return false;
    w.watchNext = undefined;
    w.watchPrev = undefined;
    if (next === w) {
      this.#watchers = undefined;
      return true;
    }
    prev.watchNext = next;
    next.watchPrev = prev;
    if (this.#watchers === w) this.#watchers = next;
    return true;
  }

  addLink(other: Process<unknown, unknown>): void {
    ((this.#ext ??= { links: undefined, deferred: undefined, trace: undefined }).links ??= new Set()).add(other);
  }

  removeLink(other: Process<unknown, unknown>): void {
    this.#ext?.links?.delete(other);
  }

  /**
   * An exit signal from `from` (a linked process that exited, when `viaLink`; else `exit/2`'s
   * caller, or none). Erlang's rules: `kill` from `exit/2` kills, trapped or not; a trapping
   * process gets `{'EXIT', from, reason}` in its mailbox; otherwise `normal` is ignored (but
   * `exit(self, normal)`) and any other reason ends the process at once, with no terminate, as
   * an exit signal ends a process that does not trap exits.
   */
  signal(from: Pid<never> | undefined, reason: ExitReason, viaLink: boolean): void {
    if (this.status === 'exited') return;
    if (reason === 'kill' && !viaLink) {
      this.kill();
      return;
    }
    if (this.trapExit) {
      dispatch(this.#pid, { kind: 'exit', msg: { tag: 'EXIT', pid: from, reason } });
      return;
    }
    if (reason === 'normal' && (viaLink || from !== (this.#pid as Pid<never>))) return;
    // A handler still running (awaiting) finishes, but its result is ignored: as kill.
    this.#exited(reason);
  }

  #bind(pid: Pid<M>, parent: ParentRef, opts: StartOptions): void {
    this.#pid = pid;
    this.#parent = parent;
    const parentProc = lookup(parent);
    if (parentProc) {
      this.#parentProc = parentProc;
      (parentProc.children ??= new Set()).add(this as Process<unknown, unknown>);
    }
    processes.set(pid, this as Process<unknown, unknown>);
    this.#ctx = new ProcessCtx(pid, opts.clock ?? systemClock, opts.logger ?? nullLogger, this.#timers);
  }

  /** Send init; resolves with the start result once it has run (`proc_lib:init_ack`). */
  run(): Promise<StartResult<Pid<M>>> {
    return new Promise((resolve) => {
      this.#started = resolve;
      dispatch(this.#pid, { kind: 'init' });
    });
  }

  /** Registration failed: the process never ran. */
  abandon(): void {
    this.status = 'exited';
    this.exitReason = 'normal';
    stopActor(this.#pid);
  }

  /**
   * One mailbox message. Synchronous when the behaviour's callback is (the common case, and the
   * one every HTTP request takes): a promise is made only when a callback returns one.
   */
  receive(env: Envelope<M>): undefined | Promise<undefined> {
    this.#messagesIn++;
    const deferred = this.#ext?.deferred;
    if (deferred !== undefined && deferrable(env.kind)) {
      deferred.push(env); // suspended: handled on resume, in arrival order
      return undefined;
    }
    return this.#take(env);
  }

  #take(env: Envelope<M>): undefined | Promise<undefined> {
    switch (env.kind) {
      case 'init':
        return this.#init();
      case 'timeout':
        // The timer was cancelled after it fired: the flush OTP's cancel_timer does.
        if (!this.#timers.consume(env.ref)) return undefined;
        this.#cancelRecvTimeout();
        return this.#handle(env.msg);
      case 'msg':
        this.#cancelRecvTimeout();
        return this.#handle(env.msg);
      case 'exit':
        this.#cancelRecvTimeout();
        return this.#handleExit(env.msg);
      case 'recv_timeout':
        // A message came first (it cancelled the timer), or the process moved on: stale.
        if (env.ref !== this.#recvTimer || !this.#timers.consume(env.ref)) return undefined;
        this.#recvTimer = undefined;
        return this.#handleTimeout();
      case 'shutdown':
        return this.status === 'running' ? this.exit(env.reason, true) : undefined;
      case 'get_state':
        // gen:reply/2, without importing gen.ts (it builds on this module).
        if (this.status === 'running') (env.from as unknown as ReplySlot<unknown>).settle(this.#state);
        return undefined;
      case 'system':
        return this.status === 'running' ? this.#system(env.req, env.from as unknown as ReplySlot<SystemReply>) : undefined;
    }
  }

  async #init(): Promise<undefined> {
    const outcome = await this.#core.init(this.#ctx);
    if (this.status !== 'starting') return undefined; // killed while init ran
    if ('ok' in outcome) {
      this.#state = outcome.ok;
      this.status = 'running';
      this.#ack({ ok: this.#pid });
      // gen_server's {ok, S, {continue, C}}: after the ack, before any message.
      if ('continue' in outcome) await this.#continue(outcome.continue);
      else if (outcome.timeout !== undefined) this.#armRecvTimeout(outcome.timeout);
    } else if ('stop' in outcome) {
      this.#exited(outcome.stop);
    } else {
      this.#exited('normal', { ignore: true });
    }
    return undefined;
  }

  #handle(msg: M): undefined | Promise<undefined> {
    if (this.status !== 'running') return undefined;
    this.#reductions++;
    if (this.#ext?.trace) this.#traced({ type: 'in', msg });
    return this.#then(this.#core.handle(this.#state as S, msg, this.#ctx));
  }

  #handleExit(msg: ExitMessage): undefined | Promise<undefined> {
    if (this.status !== 'running') return undefined;
    if (!this.#core.handleExit) {
      this.#ctx.logger.warn({ pid: this.displayName, from: msg.pid && printPid(msg.pid) }, `${this.#core.label}: unexpected EXIT message dropped`);
      return undefined;
    }
    this.#reductions++;
    if (this.#ext?.trace) this.#traced({ type: 'in', msg });
    return this.#then(this.#core.handleExit(this.#state as S, msg, this.#ctx));
  }

  #handleTimeout(): undefined | Promise<undefined> {
    if (this.status !== 'running' || !this.#core.handleTimeout) return undefined;
    this.#reductions++;
    if (this.#ext?.trace) this.#traced({ type: 'in', msg: 'timeout' });
    return this.#then(this.#core.handleTimeout(this.#state as S, this.#ctx));
  }

  #continue(cont: unknown): undefined | Promise<undefined> {
    if (this.status !== 'running') return undefined;
    if (!this.#core.handleContinue) {
      throw new OtpError('ERR_OTP_BAD_RETURN', `${this.#core.label} has no handleContinue`, { undef: 'handleContinue' });
    }
    this.#reductions++;
    if (this.#ext?.trace) this.#traced({ type: 'in', msg: { continue: cont } });
    return this.#then(this.#core.handleContinue(this.#state as S, cont, this.#ctx));
  }

  #then(step: Step<S> | Promise<Step<S>>): undefined | Promise<undefined> {
    return step instanceof Promise ? step.then((s) => this.#step(s)) : this.#step(step);
  }

  #step(step: Step<S>): undefined | Promise<undefined> {
    if (this.status !== 'running') return undefined; // killed while the handler awaited
    if ('next' in step) {
      this.#state = step.next;
      if (this.#ext?.trace) this.#traced({ type: 'state', state: step.next });
      // {continue, C}: handle_continue runs now, before the next message (a crash in it is a
      // crash of the process with this new state, as in OTP).
      if ('continue' in step) return this.#continue(step.continue);
      if (step.timeout !== undefined) this.#armRecvTimeout(step.timeout);
      return undefined;
    }
    this.#state = step.state;
    return this.exit(step.stop, true);
  }

  #armRecvTimeout(ms: number): void {
    this.#cancelRecvTimeout();
    if (!(ms < MAX_TIMER_MS)) return; // Infinity: OTP's infinity, no timeout
    this.#recvTimer = this.#timers.start(ms, deliverRecvTimeout, this.#pid as Pid<unknown>);
  }

  #cancelRecvTimeout(): void {
    if (this.#recvTimer === undefined) return;
    this.#timers.cancel(this.#recvTimer);
    this.#recvTimer = undefined;
  }

  /** A system request (sys.ts), served even while suspended. */
  #system(req: SystemRequest, from: ReplySlot<SystemReply>): undefined | Promise<undefined> {
    const ext = (this.#ext ??= { links: undefined, deferred: undefined, trace: undefined });
    switch (req.op) {
      case 'replace_state': {
        // As sys:replace_state: a function that throws leaves the state as it was.
        let next: unknown;
        try {
          next = req.fn(this.#state);
        } catch (err) {
          from.settle({ error: err });
          return undefined;
        }
        this.#state = next as S;
        from.settle({ ok: next });
        return undefined;
      }
      case 'get_status':
        from.settle({ ok: this.#status() });
        return undefined;
      case 'suspend':
        ext.deferred ??= [];
        from.settle({ ok: undefined });
        return undefined;
      case 'resume': {
        const deferred = ext.deferred;
        ext.deferred = undefined;
        from.settle({ ok: undefined });
        return deferred && deferred.length > 0 ? this.#replay(deferred) : undefined;
      }
      case 'trace':
        ext.trace = req.hook;
        from.settle({ ok: undefined });
        return undefined;
      case 'statistics':
        from.settle({ ok: this.#statistics() });
        return undefined;
    }
  }

  /** Resume: what arrived while suspended, in order, before anything still in the mailbox
   *  (which waits: nact takes no message until this resolves). */
  async #replay(deferred: Envelope<M>[]): Promise<undefined> {
    for (const env of deferred) {
      if (this.status !== 'running') break;
      const r = this.#take(env);
      if (r !== undefined) await r;
    }
    return undefined;
  }

  #statistics(): ProcessStatistics {
    return {
      startTime: this.#startTime,
      currentTime: this.#ctx.clock.now(),
      messagesIn: this.#messagesIn,
      reductions: this.#reductions,
    };
  }

  #status(): ProcessStatus {
    const links = this.#ext?.links;
    return {
      pid: this.#pid,
      name: this.displayName,
      registeredName: this.#name,
      behaviour: this.#core.label,
      status: this.#ext?.deferred ? 'suspended' : 'running',
      parent: this.#parentProc?.pid,
      state: this.#state,
      trapExit: this.trapExit,
      links: links ? [...links].map((p) => p.pid as Pid<never>) : [],
      statistics: this.#statistics(),
    };
  }

  #traced(event: TraceEvent): void {
    const hook = this.#ext?.trace;
    if (!hook) return;
    try {
      hook(event, this.#pid);
    } catch (err) {
      this.#ctx.logger.error({ pid: this.displayName, reason: describe(err) }, 'trace hook threw');
    }
  }

  /** nact's onCrash: a handler threw or rejected. */
  async crashed(err: unknown, ctx: CrashContext): Promise<symbol> {
    const reason = exitReasonOf(err);
    if (this.status === 'starting') {
      this.#exited(reason); // init threw: no terminate (there is no state to give it)
    } else if (this.status === 'running') {
      this.#ctx.logger.error({ pid: this.displayName, reason: describe(reason) }, `${this.#core.label} crashed`);
      await this.exit(reason, true);
    }
    return stopDecision(ctx);
  }

  /** Leave a running process: terminate (unless killed), then the one way out. */
  async exit(reason: ExitReason, runTerminate: boolean): Promise<undefined> {
    if (this.status === 'exiting' || this.status === 'exited') return undefined;
    this.status = 'exiting';
    this.#timers.cancelAll();
    if (runTerminate) {
      try {
        await this.#core.terminate(reason, this.#state as S, this.#ctx);
      } catch (err) {
        this.#ctx.logger.error({ pid: this.displayName, reason: describe(err) }, `${this.#core.label} terminate threw`);
      }
      if (this.status !== 'exiting') return undefined; // killed while terminate ran: kill already notified
    }
    this.#exited(reason);
    return undefined;
  }

  /** `exit(Pid, kill)`: from any state, no terminate (one already running is abandoned). */
  kill(): void {
    if (this.status === 'exited') return;
    this.#exited('killed');
  }

  /** Our actor has stopped, taking its child actors with it: end those processes too, so their
   *  links and monitors hear of it (reason `killed`: none of them ran terminate). */
  #orphanChildren(): void {
    this.#parentProc?.children?.delete(this as Process<unknown, unknown>);
    const children = this.children;
    this.children = undefined;
    if (children) for (const child of children) child.kill();
  }

  /**
   * The one way out, for a failed init as for a later exit (terminate, if due, has run): stop the
   * actor, then tell the starter's link, the linked processes and the monitors, each guarded, then
   * the starter if init had not answered yet. A listener that throws is logged; it neither stops
   * the others being told nor keeps `start` from settling.
   */
  #exited(reason: ExitReason, startResult?: StartResult<Pid<M>>): void {
    const starting = this.#started !== undefined;
    // Printed before the status changes: a registered name is dropped at exit.
    const shown = this.displayName;
    this.status = 'exited';
    this.exitReason = reason;
    try {
      this.#timers.cancelAll();
      this.#recvTimer = undefined;
      if (this.#name !== undefined) unregister(this.#parent, this.#name, this.#pid);
      stopActor(this.#pid);
      this.#orphanChildren();
      const ext = this.#ext;
      if (ext?.trace) this.#traced({ type: 'exit', reason });
      // A failed init sends its starter no exit signal: the start result carries the reason (as
      // OTP's start_link, which consumes the EXIT that init_fail causes).
      const onExit = this.#onExit;
      if (onExit && !starting) this.#tell(() => onExit(this.#pid, reason));
      const links = ext?.links;
      if (links) {
        ext.links = undefined;
        const self = this.#pid as Pid<never>;
        for (const other of links) {
          other.removeLink(this as Process<unknown, unknown>);
          this.#tell(() => other.signal(self, reason, true));
        }
      }
      // Each is taken off the ring before it is told: one that unwatches itself finds nothing.
      for (let w = this.#watchers; w !== undefined; w = this.#watchers) {
        this.unwatch(w);
        this.#tell(() => w.down(reason));
      }
      if (!starting && !isNormalExit(reason) && reason !== 'killed') {
        this.#ctx.logger.debug({ pid: shown, reason: describe(reason) }, `${this.#core.label} exited`);
      }
    } finally {
      if (starting) this.#ack(startResult ?? { error: reason });
    }
  }

  #tell(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#ctx.logger.error({ pid: this.displayName, reason: describe(err) }, 'exit listener threw');
    }
  }

  #ack(result: StartResult<Pid<M>>): void {
    const started = this.#started;
    this.#started = undefined;
    started?.(result);
  }
}
