/**
 * The process: one nact actor per incarnation, its mailbox loop, and its exits.
 *
 * - the init handshake's process side (`proc_lib:init_ack`): the starter's promise settles once
 *   init has run;
 * - one way out for every exit, whatever its cause (a failed init, a `{ stop }` result, a thrown
 *   error or rejected promise, a shutdown, a kill): `terminate` if due, then the link and the
 *   monitors, each told on its own so that one listener's throw cannot silence the others nor
 *   leave the starter waiting;
 * - the watchers an exit tells: monitors (`erlang:monitor/2`) and calls in flight (gen.ts).
 *
 * The public functions are in proc_lib.ts, calls in gen.ts; nact itself is only reached through
 * nact.ts.
 */
import { systemClock, type Clock } from './clock.js';
import { OtpError, describe, exitReasonOf, isNormalExit, type ExitReason } from './errors.js';
import type { From } from './gen.js';
import { nullLogger, type Logger } from './logger.js';
import {
  crashedActor, dispatch, pathOf, spawnActor, stopActor, stopDecision,
  type CrashContext, type ParentRef, type Ref,
} from './nact.js';
import { unregister } from './registry.js';
import { TimerTable, type TimerRef } from './timers.js';

declare const pidBrand: unique symbol;

/** A process id: the reference of one incarnation. A restarted child has a new Pid. */
export type Pid<M> = Ref<Envelope<M>> & { readonly [pidBrand]: (msg: M) => void };

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

/** What actually travels through the nact mailbox. */
export type Envelope<M> =
  | { readonly kind: 'init' }
  | { readonly kind: 'msg'; readonly msg: M }
  | { readonly kind: 'timeout'; readonly ref: TimerRef; readonly msg: M }
  | { readonly kind: 'shutdown'; readonly reason: ExitReason }
  | { readonly kind: 'get_state'; readonly from: From<unknown> };

/** Something told when a process exits: a monitor, or a call waiting for its reply. */
export interface Watcher {
  down(reason: ExitReason): void;
}

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

/** A `monitor/2`: `onDown` once, unless cancelled first. */
export class Monitor implements Watcher {
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
    const pid = this.self;
    return this.#timers.start(ms, (ref) => dispatch(pid, { kind: 'timeout', ref, msg }));
  }

  cancelTimer(ref: TimerRef): number | false {
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
      pid = spawnActor<Process<S, M>, Envelope<M>>(parent, actorName(core.label), receiveEnvelope, {
        initialState: proc,
        onCrash: onActorCrash,
      }) as Pid<M>;
    } catch (err) {
      return new OtpError('ERR_OTP_NOPROC', `cannot spawn under a parent that is not running: ${describe(err)}`, err);
    }
    proc.#bind(pid, parent);
    return proc;
  }

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

  private constructor(core: ProcessCore<S, M>, opts: StartOptions) {
    this.#core = core;
    this.#opts = opts;
    this.#timers = new TimerTable(opts.clock ?? systemClock);
  }

  get pid(): Pid<M> {
    return this.#pid;
  }

  get name(): string | undefined {
    return this.#opts.name;
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

  watch(w: Watcher): void {
    (this.#watchers ??= new Set()).add(w);
  }

  unwatch(w: Watcher): boolean {
    return this.#watchers?.delete(w) ?? false;
  }

  #bind(pid: Pid<M>, parent: ParentRef): void {
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
        // gen:reply/2, without importing gen.ts (it builds on this module).
        if (this.status === 'running') (env.from as unknown as ReplySlot<unknown>).settle(this.#state);
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
      this.#exited(outcome.stop);
    } else {
      this.#exited('normal', { ignore: true });
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
      this.#exited(reason); // init threw: no terminate (there is no state to give it)
    } else if (this.status === 'running') {
      this.#ctx.logger.error({ pid: pathOf(this.#pid), reason: describe(reason) }, `${this.#core.label} crashed`);
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
        this.#ctx.logger.error({ pid: pathOf(this.#pid), reason: describe(err) }, `${this.#core.label} terminate threw`);
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
   * actor, then tell the link and the monitors, each guarded, then the starter if init had not
   * answered yet. A listener that throws is logged; it neither stops the others being told nor
   * keeps `start` from settling (it used to, for a monitor set during a failing init).
   */
  #exited(reason: ExitReason, startResult?: StartResult<Pid<M>>): void {
    const starting = this.#started !== undefined;
    this.status = 'exited';
    this.exitReason = reason;
    try {
      this.#timers.cancelAll();
      if (this.#opts.name !== undefined) unregister(this.#parent, this.#opts.name, this.#pid);
      stopActor(this.#pid);
      this.#orphanChildren();
      // A failed init sends its starter no exit signal: the start result carries the reason (as
      // OTP's start_link, which consumes the EXIT that init_fail causes).
      const onExit = this.#opts.onExit;
      if (onExit && !starting) this.#tell(() => onExit(this.#pid, reason));
      const watchers = this.#watchers;
      this.#watchers = undefined;
      if (watchers) for (const w of watchers) this.#tell(() => w.down(reason));
      if (!starting && !isNormalExit(reason) && reason !== 'killed') {
        this.#ctx.logger.debug({ pid: pathOf(this.#pid), reason: describe(reason) }, `${this.#core.label} exited`);
      }
    } finally {
      if (starting) this.#ack(startResult ?? { error: reason });
    }
  }

  #tell(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#ctx.logger.error({ pid: pathOf(this.#pid), reason: describe(err) }, 'exit listener threw');
    }
  }

  #ack(result: StartResult<Pid<M>>): void {
    const started = this.#started;
    this.#started = undefined;
    started?.(result);
  }
}
