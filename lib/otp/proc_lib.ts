/**
 * proc_lib: what every OTP behaviour process shares, on top of one nact actor per incarnation.
 *
 * - start with an init handshake (`proc_lib:start_link` + `init_ack`): `start` resolves once the
 *   process's init has run, with `{ ok: pid }`, `{ error: reason }` or `{ ignore: true }`;
 * - exits, whatever their cause (a `{ stop }` result, a thrown error or rejected promise, a
 *   shutdown from the supervisor), run `terminate` once, then notify the link and the monitors;
 * - links (`onExit`, what a supervisor passes in) and monitors (`monitor`/`demonitor`);
 * - `call`: a message carrying its reply slot (`From`), guarded by a monitor, so a caller learns at
 *   once that the process died;
 * - `shutdown(pid, reason, timeout)` and `kill(pid)`, as a supervisor uses them.
 *
 * Every process behaves as if it traps exits: a shutdown is a message handled in mailbox order,
 * and `terminate` runs for it (OTP calls terminate on shutdown only for trapping processes).
 *
 * Exports, in OTP's order: types, the API, then internals.
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { OtpError, describe, exitReasonOf, isNormalExit, type ExitReason } from './errors.js';
import { nullLogger, type Logger } from './logger.js';
import {
  dispatch, pathOf, spawnActor, stopActor, stopDecision,
  type CrashContext, type ParentRef, type Ref,
} from './nact.js';
import { register, unregister } from './registry.js';
import { TimerTable, type TimerRef } from './timers.js';

declare const pidBrand: unique symbol;
declare const fromBrand: unique symbol;

/** A process id: the reference of one incarnation. A restarted child has a new Pid. */
export type Pid<M> = Ref<Envelope<M>> & { readonly [pidBrand]: (msg: M) => void };

/**
 * Where to send the reply of a synchronous request (OTP's `From`, the caller's `{Pid, Tag}`).
 * Reply with `reply(from, value)`; only the first reply counts, and one to a caller that gave up
 * is dropped.
 */
export type From<R> = { readonly [fromBrand]: (reply: R) => void };

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
}

/** A monitor, as returned by `monitor`; pass it to `demonitor`. */
export type MonitorRef = { readonly __monitor: unique symbol };

/** The context every behaviour callback sees. */
export interface ProcessContext<M> {
  readonly self: Pid<M>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Send `msg` to self after `ms` (Erlang's `start_timer`); `cancelTimer` guarantees it is never seen. */
  startTimer(ms: number, msg: M): TimerRef;
  /** Cancel a timer: false if it had already been delivered or cancelled. */
  cancelTimer(ref: TimerRef): boolean;
  /** Whether a timer is started and not yet delivered or cancelled. */
  isTimerLive(ref: TimerRef): boolean;
}

/** What a behaviour's init resolves to, at the proc_lib level. */
export type InitOutcome<S> = { readonly ok: S } | { readonly stop: ExitReason } | { readonly ignore: true };
/** What a behaviour's message handler resolves to, at the proc_lib level. */
export type Step<S> = { readonly next: S } | { readonly stop: ExitReason; readonly state: S };

/** The part of a behaviour proc_lib drives (gen_server and gen_fsm each provide one). */
export interface ProcessCore<S, M> {
  /** Used in actor names and logs, e.g. 'gen_server'. */
  readonly label: string;
  init(ctx: ProcessContext<M>): InitOutcome<S> | Promise<InitOutcome<S>>;
  handle(state: S, msg: M, ctx: ProcessContext<M>): Step<S> | Promise<Step<S>>;
  terminate(reason: ExitReason, state: S, ctx: ProcessContext<M>): void | Promise<void>;
}

/** How long a supervisor waits for a child to run terminate: ms, `'infinity'`, or `'brutal_kill'`. */
export type Shutdown = number | 'infinity' | 'brutal_kill';

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * Spawn a process under `parent` and run its init. Resolves once init has run.
 * @example
 * const r = await start(system, core, { name: 'session_ids' });
 * if ('ok' in r) cast(r.ok, msg);
 */
export async function start<S, M>(parent: ParentRef, core: ProcessCore<S, M>, opts: StartOptions = {}): Promise<StartResult<Pid<M>>> {
  const proc = new Process<S, M>(core, opts);
  let pid: Pid<M>;
  try {
    // The actor's state is its Process, so its handlers are shared functions, not two closures
    // per process (thousands of sessions live at once).
    pid = spawnActor<Process<S, M>, Envelope<M>>(parent, actorName(core.label), receiveEnvelope, {
      initialState: proc,
      onCrash: onActorCrash,
    }) as Pid<M>;
  } catch (err) {
    return { error: new OtpError('ERR_OTP_NOPROC', `cannot spawn under a parent that is not running: ${describe(err)}`, err) };
  }
  proc.bind(pid, parent);
  if (opts.name !== undefined) {
    const holder = register(parent, opts.name, pid);
    if (holder !== undefined) {
      proc.abandon();
      return { error: { already_started: holder } };
    }
  }
  return proc.run();
}

/** Start linked to `link` (a supervisor's): its `onExit` hears of the exit. */
export function startLink<S, M>(link: Link, core: ProcessCore<S, M>, opts: StartOptions = {}): Promise<StartResult<Pid<M>>> {
  // A literal, not `{ ...opts, onExit }`: a spread copy of the caller's options gave every
  // started process an object of its own hidden class (~170 bytes per session).
  return start(link.parent, core, { name: opts.name, clock: opts.clock, logger: opts.logger, onExit: link.onExit });
}

/** Put a message in the process's mailbox. Sending to a dead process is a no-op, as in Erlang. */
export function send<M>(pid: Pid<M>, msg: M): void {
  dispatch(pid, { kind: 'msg', msg });
}

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
  (from as unknown as PendingCall<R>).settle(value);
}

/**
 * Watch a process: `onDown(reason)` runs once when it exits (`'noproc'` at once, asynchronously,
 * if it is not running), unless `demonitor` is called first.
 */
export function monitor(pid: Pid<never> | Pid<unknown>, onDown: (reason: ExitReason) => void): MonitorRef {
  const watcher = new Monitor(onDown);
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') {
    // As erlang:monitor/2 on a dead process: the old exit reason is not kept, the DOWN says noproc.
    queueMicrotask(() => onDown('noproc'));
    return watcher as unknown as MonitorRef;
  }
  watcher.owner = proc;
  proc.watch(watcher);
  return watcher as unknown as MonitorRef;
}

/** Stop watching. Returns false if the monitor had already fired or been removed. */
export function demonitor(mref: MonitorRef): boolean {
  return (mref as unknown as Monitor).cancel();
}

/** Whether the process is running (started, not exited). */
export function isAlive(pid: Pid<never> | Pid<unknown>): boolean {
  const proc = lookup(pid);
  return proc !== undefined && proc.status !== 'exited';
}

/**
 * Ask a process to exit with `reason` and wait until it has: OTP's supervisor shutdown. The request
 * is handled in mailbox order and runs `terminate`; if that takes longer than `shutdown` ms the
 * process is killed. `'brutal_kill'` kills at once (no terminate); `'infinity'` waits for ever.
 */
export function shutdown(pid: Pid<never> | Pid<unknown>, reason: ExitReason, timeout: Shutdown, clock: Clock = systemClock): Promise<void> {
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') return Promise.resolve();
  if (timeout === 'brutal_kill') {
    proc.kill();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    let timer: TimerHandle | undefined;
    monitor(pid, () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      resolve();
    });
    if (timeout !== 'infinity') timer = clock.setTimeout(() => proc.kill(), timeout);
    dispatch(pid as Pid<unknown>, { kind: 'shutdown', reason });
  });
}

/**
 * Kill a process now (`exit(Pid, kill)`): no terminate runs, the reason is `'killed'`. JavaScript
 * cannot preempt: a handler already running finishes, but its result is ignored and nothing else
 * from the mailbox runs.
 */
export function kill(pid: Pid<never> | Pid<unknown>): void {
  lookup(pid)?.kill();
}

/**
 * `sys:get_state/2`: the process's current state (for gen_fsm, `{ state, data }`), read in mailbox
 * order, so everything sent before has been handled. For tests and debugging, not for logic.
 */
export function getState(pid: Pid<never> | Pid<unknown>, timeoutMs = 5000): Promise<unknown> {
  return request<unknown, unknown>(pid as Pid<unknown>, (from) => ({ kind: 'get_state', from }), timeoutMs, 'state');
}

/**
 * Where a process spawns the processes it supervises: a nact actor under it that never handles a
 * message. nact copies an actor's map of children into the context of every message that actor
 * handles, so a supervisor holding thousands of sessions as its own nact children would pay
 * O(children) for every start and every exit. Children of the container keep the tree's shape
 * (`sup/children/...`), die with the process, and cost its messages nothing.
 */
export function childContainer(pid: Pid<never> | Pid<unknown>): ParentRef {
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') return pid;
  return proc.container();
}

/** The name a process is registered under (Erlang's `process_info(Pid, registered_name)`). */
export function registeredName(pid: Pid<never> | Pid<unknown>): string | undefined {
  const proc = lookup(pid);
  return proc && proc.status !== 'exited' ? proc.name : undefined;
}

/** The actor path of a pid as text, for logs. */
export function pidToString(pid: Pid<never> | Pid<unknown>): string {
  return pathOf(pid);
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

/** What actually travels through the nact mailbox. */
export type Envelope<M> =
  | { readonly kind: 'init' }
  | { readonly kind: 'msg'; readonly msg: M }
  | { readonly kind: 'timeout'; readonly ref: TimerRef; readonly msg: M }
  | { readonly kind: 'shutdown'; readonly reason: ExitReason }
  | { readonly kind: 'get_state'; readonly from: From<unknown> };

type Status = 'starting' | 'running' | 'exiting' | 'exited';

const processes = new WeakMap<object, Process<unknown, unknown>>();
let incarnation = 0;

/** Node's timers take at most 2^31-1 ms; a longer call timeout (or Infinity, OTP's `infinity`)
 *  waits for ever, as OTP's `infinity` does: the monitor still ends it if the process dies. */
const MAX_TIMER_MS = 2_147_483_647;

/** Something told when a process exits: a monitor, or a call waiting for its reply. */
interface Watcher {
  down(reason: ExitReason): void;
}

/** A `monitor/2`: `onDown` once, unless cancelled first. */
class Monitor implements Watcher {
  owner: Process<unknown, unknown> | undefined;
  readonly #onDown: (reason: ExitReason) => void;

  constructor(onDown: (reason: ExitReason) => void) {
    this.#onDown = onDown;
  }

  down(reason: ExitReason): void {
    this.owner = undefined;
    this.#onDown(reason);
  }

  cancel(): boolean {
    const owner = this.owner;
    this.owner = undefined;
    return owner?.unwatch(this) ?? false;
  }
}

/**
 * One synchronous request in flight: the caller's `From` (the reply slot), its monitor on the
 * callee and its timeout, in one object, since a call is made for every HTTP request. Whichever of
 * reply, exit or timeout comes first settles the call; the others find it settled and do nothing.
 */
class PendingCall<R> implements Watcher {
  #owner: Process<unknown, unknown> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resolve: ((value: R) => void) | undefined;
  #reject!: (err: OtpError) => void;
  readonly #pid: Pid<unknown>;
  readonly #what: 'reply' | 'state';

  constructor(owner: Process<unknown, unknown>, pid: Pid<unknown>, what: 'reply' | 'state') {
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
    this.#reject(new OtpError('ERR_OTP_EXIT', `process ${pathOf(this.#pid)} exited during call: ${describe(reason)}`, reason));
  }

  timedOut(ms: number): void {
    this.#timer = undefined;
    if (!this.#done()) return;
    this.#reject(new OtpError('ERR_OTP_TIMEOUT', `no ${this.#what} from ${pathOf(this.#pid)} within ${ms} ms`));
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

/** `gen:call`: monitor, send, wait for the reply, the exit or the timeout, whichever comes first. */
function request<M, R>(pid: Pid<M>, make: (from: From<R>) => Envelope<M>, timeoutMs: number, what: 'reply' | 'state'): Promise<R> {
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') {
    return Promise.reject(new OtpError('ERR_OTP_NOPROC', `no process ${pathOf(pid)}`));
  }
  const pending = new PendingCall<R>(proc, pid as Pid<unknown>, what);
  proc.watch(pending);
  return new Promise<R>((resolve, reject) => {
    pending.wait(timeoutMs, resolve, reject);
    dispatch(pid, make(pending as unknown as From<R>));
  });
}

function lookup(pid: Ref<unknown>): Process<unknown, unknown> | undefined {
  return processes.get(pid);
}

/** The actor's behaviour, shared by every process: its state is the Process itself. */
function receiveEnvelope<S, M>(proc: Process<S, M>, env: Envelope<M>): Process<S, M> | Promise<Process<S, M>> {
  const r = proc.receive(env);
  return r === undefined ? proc : r.then(() => proc);
}

function onActorCrash(_msg: unknown, err: unknown, ctx: CrashContext): symbol | Promise<symbol> {
  const proc = lookup((ctx as unknown as { self: Ref<unknown> }).self);
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
    const pid = this.self;
    return this.#timers.start(ms, (ref) => dispatch(pid, { kind: 'timeout', ref, msg }));
  }

  cancelTimer(ref: TimerRef): boolean {
    return this.#timers.cancel(ref);
  }

  isTimerLive(ref: TimerRef): boolean {
    return this.#timers.isLive(ref);
  }
}

// nact names allow only RFC1738 characters; the counter makes every incarnation's path unique,
// so a stale Pid can never reach a restarted child. The registered name is not part of it: a
// session's name holds its sid (a credential, kept out of paths and logs), and nact keeps an
// actor's name in five places.
function actorName(label: string): string {
  return `${label.replace(/[^a-z0-9\-$_.+!*'(),]/gi, '_')}.${++incarnation}`;
}

class Process<S, M> {
  status: Status = 'starting';
  exitReason: ExitReason | undefined;
  /** Monitors and calls in flight, told of the exit. */
  #watchers: Set<Watcher> | undefined;
  /** Processes spawned under this one's actor: nact stops their actors with ours, so we must
   *  also end them as processes (OTP's link from parent to child). */
  children: Set<Process<unknown, unknown>> | undefined;
  #parentProc: Process<unknown, unknown> | undefined;
  readonly #core: ProcessCore<S, M>;
  readonly #opts: StartOptions;
  readonly #timers: TimerTable;
  #state: S | undefined;
  #ctx!: ProcessContext<M>;
  #pid!: Pid<M>;
  #parent!: ParentRef;
  #started: ((r: StartResult<Pid<M>>) => void) | undefined;

  #container: ParentRef | undefined;

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

  watch(w: Watcher): void {
    (this.#watchers ??= new Set()).add(w);
  }

  unwatch(w: Watcher): boolean {
    return this.#watchers?.delete(w) ?? false;
  }

  get name(): string | undefined {
    return this.#opts.name;
  }

  constructor(core: ProcessCore<S, M>, opts: StartOptions) {
    this.#core = core;
    this.#opts = opts;
    this.#timers = new TimerTable(opts.clock ?? systemClock);
  }

  bind(pid: Pid<M>, parent: ParentRef): void {
    this.#pid = pid;
    this.#parent = parent;
    const parentProc = lookup(parent);
    if (parentProc) {
      this.#parentProc = parentProc;
      (parentProc.children ??= new Set()).add(this as Process<unknown, unknown>);
    }
    processes.set(pid, this as Process<unknown, unknown>);
    this.#ctx = new ProcessCtx(pid, this.#opts.clock ?? systemClock, this.#opts.logger ?? nullLogger, this.#timers);
  }

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
    switch (env.kind) {
      case 'init':
        return this.#init();
      case 'timeout':
        // The timer was cancelled after it fired: the flush OTP's cancel_timer does.
        if (!this.#timers.consume(env.ref)) return undefined;
        return this.#handle(env.msg);
      case 'msg':
        return this.#handle(env.msg);
      case 'shutdown':
        return this.status === 'running' ? this.exit(env.reason, true) : undefined;
      case 'get_state':
        if (this.status === 'running') reply(env.from, this.#state);
        return undefined;
    }
  }

  async #init(): Promise<undefined> {
    const outcome = await this.#core.init(this.#ctx);
    if (this.status !== 'starting') return undefined; // killed while init ran
    if ('ok' in outcome) {
      this.#state = outcome.ok;
      this.status = 'running';
      this.#ack({ ok: this.#pid });
    } else if ('stop' in outcome) {
      this.#fail(outcome.stop);
    } else {
      this.#fail('normal', { ignore: true });
    }
    return undefined;
  }

  #handle(msg: M): undefined | Promise<undefined> {
    if (this.status !== 'running') return undefined;
    const step = this.#core.handle(this.#state as S, msg, this.#ctx);
    return step instanceof Promise ? step.then((s) => this.#step(s)) : this.#step(step);
  }

  #step(step: Step<S>): undefined | Promise<undefined> {
    if (this.status !== 'running') return undefined; // killed while the handler awaited
    if ('next' in step) {
      this.#state = step.next;
      return undefined;
    }
    this.#state = step.state;
    return this.exit(step.stop, true);
  }

  /** nact's onCrash: a handler threw or rejected. */
  async crashed(err: unknown, ctx: CrashContext): Promise<symbol> {
    const reason = exitReasonOf(err);
    if (this.status === 'starting') {
      this.#fail(reason);
    } else if (this.status === 'running') {
      this.#ctx.logger.error({ pid: pathOf(this.#pid), reason: describe(reason) }, `${this.#core.label} crashed`);
      await this.exit(reason, true);
    }
    return stopDecision(ctx);
  }

  /** Leave: terminate (unless killed), stop the actor, then tell the link and the monitors. */
  async exit(reason: ExitReason, runTerminate: boolean): Promise<undefined> {
    if (this.status === 'exiting' || this.status === 'exited') return undefined;
    this.status = 'exiting';
    this.#timers.cancelAll();
    if (runTerminate) {
      try {
        await this.#core.terminate(reason, this.#state as S, this.#ctx);
      } catch (err) {
        this.#ctx.logger.error({ pid: pathOf(this.#pid), reason: describe(err) }, `${this.#core.label} terminate threw`);
      }
      if (this.status !== 'exiting') return undefined; // killed while terminate ran: kill already notified
    }
    this.#finish(reason);
    return undefined;
  }

  kill(): void {
    if (this.status === 'exited') return;
    if (this.status === 'starting') {
      this.#fail('killed');
      return;
    }
    this.status = 'exiting';
    this.#timers.cancelAll();
    this.#finish('killed');
  }

  /** Our actor has stopped, taking its child actors with it: end those processes too, so their
   *  links and monitors hear of it (reason `killed`: none of them ran terminate). */
  #orphanChildren(): void {
    this.#parentProc?.children?.delete(this as Process<unknown, unknown>);
    const children = this.children;
    this.children = undefined;
    if (children) for (const child of children) child.kill();
  }

  #finish(reason: ExitReason): void {
    this.status = 'exited';
    this.exitReason = reason;
    if (this.#opts.name !== undefined) unregister(this.#parent, this.#opts.name, this.#pid);
    stopActor(this.#pid);
    this.#orphanChildren();
    const notify = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        this.#ctx.logger.error({ pid: pathOf(this.#pid), reason: describe(err) }, 'exit listener threw');
      }
    };
    if (this.#opts.onExit) {
      const onExit = this.#opts.onExit;
      notify(() => onExit(this.#pid, reason));
    }
    const watchers = this.#watchers;
    this.#watchers = undefined;
    if (watchers) for (const w of watchers) notify(() => w.down(reason));
    if (!isNormalExit(reason) && reason !== 'killed') {
      this.#ctx.logger.debug({ pid: pathOf(this.#pid), reason: describe(reason) }, `${this.#core.label} exited`);
    }
  }

  /** Init did not succeed: the start call gets the reason; no terminate, no exit signal. */
  #fail(reason: ExitReason, result?: StartResult<Pid<M>>): void {
    this.status = 'exited';
    this.exitReason = reason;
    this.#timers.cancelAll();
    if (this.#opts.name !== undefined) unregister(this.#parent, this.#opts.name, this.#pid);
    stopActor(this.#pid);
    this.#orphanChildren();
    const watchers = this.#watchers;
    this.#watchers = undefined;
    if (watchers) for (const w of watchers) w.down(reason);
    this.#ack(result ?? { error: reason });
  }

  #ack(result: StartResult<Pid<M>>): void {
    const started = this.#started;
    this.#started = undefined;
    started?.(result);
  }
}
