/**
 * proc_lib: the public functions every OTP behaviour process shares.
 *
 * - start with an init handshake (`proc_lib:start_link` + `init_ack`): `start` resolves once the
 *   process's init has run, with `{ ok: pid }`, `{ error: reason }` or `{ ignore: true }`;
 * - the starter's link (`onExit`, what a supervisor passes in), links between any two processes
 *   (`link`, `unlink`), exit signals (`exit`) and monitors (`monitor`/`demonitor`);
 * - `call` and `reply` (from gen.ts);
 * - `shutdown(pid, reason, timeout)` and `kill(pid)`, as a supervisor uses them.
 *
 * The process itself, its mailbox and its one way out (terminate, then the link and the monitors)
 * are in process.ts; calls, with their reply slot, monitor and timeout, in gen.ts. Every name is
 * still exported from here.
 *
 * A supervisor's `shutdown` is a message handled in mailbox order, and `terminate` runs for it,
 * whether the process traps exits or not (OTP calls terminate on shutdown only for trapping
 * processes). Exit signals from `exit` and from links follow Erlang's rules (process.ts).
 */
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import type { ExitReason } from './errors.js';
import { request } from './gen.js';
import { dispatch, pathOf, type ParentRef } from './nact.js';
import {
  Process, Monitor, exitSignal, linkPids, lookup, printPid, unlinkPids,
  type Link, type Pid, type ProcessCore, type StartOptions, type StartResult,
} from './process.js';
import { register } from './registry.js';

export type { CallWaiter, From } from './gen.js';
export { call, callWith, reply } from './gen.js';
export type {
  Envelope, ExitMessage, InitOutcome, Link, Pid, ProcessContext, ProcessCore, ProcessStatistics, ProcessStatus,
  StartOptions, StartResult, Step, SystemReply, SystemRequest, TraceEvent, TraceHook,
} from './process.js';

/** A monitor, as returned by `monitor`; pass it to `demonitor`. */
export type MonitorRef = { readonly __monitor: unique symbol };

/** How long a supervisor waits for a child to run terminate: ms, `'infinity'`, or `'brutal_kill'`. */
export type Shutdown = number | 'infinity' | 'brutal_kill';

/**
 * Spawn a process under `parent` and run its init. Resolves once init has run.
 * @example
 * const r = await start(system, core, { name: 'session_ids' });
 * if ('ok' in r) cast(r.ok, msg);
 */
export async function start<S, M>(parent: ParentRef, core: ProcessCore<S, M>, opts: StartOptions = {}): Promise<StartResult<Pid<M>>> {
  const proc = Process.spawn(parent, core, opts);
  if (!(proc instanceof Process)) return { error: proc };
  if (opts.name !== undefined) {
    const holder = register(parent, opts.name, proc.pid);
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
  return start(link.parent, core, { name: opts.name, clock: opts.clock, logger: opts.logger, label: opts.label, onExit: link.onExit });
}

/** Put a message in the process's mailbox. Sending to a dead process is a no-op, as in Erlang. */
export function send<M>(pid: Pid<M>, msg: M): void {
  dispatch(pid, { kind: 'msg', msg });
}

/**
 * Watch a process: `onDown(reason, arg)` runs once when it exits (`'noproc'` at once,
 * asynchronously, if it is not running), unless `demonitor` is called first. Pass a shared
 * `onDown` and what it needs as `arg` to watch many processes without a closure each (a comet
 * tree watches every session).
 */
export function monitor(pid: Pid<never> | Pid<unknown>, onDown: (reason: ExitReason) => void): MonitorRef;
export function monitor<A>(pid: Pid<never> | Pid<unknown>, onDown: (reason: ExitReason, arg: A) => void, arg: A): MonitorRef;
export function monitor<A>(pid: Pid<never> | Pid<unknown>, onDown: (reason: ExitReason, arg: A) => void, arg?: A): MonitorRef {
  const watcher = new Monitor<A>(onDown, arg as A);
  const proc = lookup(pid);
  if (!proc || proc.status === 'exited') {
    // As erlang:monitor/2 on a dead process: the old exit reason is not kept, the DOWN says noproc.
    queueMicrotask(() => onDown('noproc', arg as A));
    return watcher as unknown as MonitorRef;
  }
  watcher.owner = proc;
  proc.watch(watcher);
  return watcher as unknown as MonitorRef;
}

/** Stop watching. Returns false if the monitor had already fired or been removed. */
export function demonitor(mref: MonitorRef): boolean {
  return (mref as unknown as Monitor<unknown>).cancel();
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

/**
 * What a pid prints as, in logs and reports: its registered name while it runs under one, else
 * the `label` it was started with, else `<0.N.0>`, N its incarnation (never reused: a restarted
 * child prints differently). `String(pid)` and `JSON.stringify` print the same.
 */
export function pidToString(pid: Pid<never> | Pid<unknown>): string {
  return printPid(pid);
}

/** The nact actor path of a pid (`system://…/children/gen_server.12`): where it lives in the actor tree. */
export function actorPath(pid: Pid<never> | Pid<unknown>): string {
  return pathOf(pid);
}

/**
 * `link/1`, called by process `self` on `pid` (from a callback, `ctx.link(pid)` says the same):
 * when either exits, the other gets an exit signal with its reason. Nothing if `pid` is `self` or
 * already linked. If `pid` is not running: `self` gets `{'EXIT', pid, 'noproc'}` when it traps
 * exits, else this throws an `OtpError` `ERR_OTP_NOPROC` (the caller's `noproc` error).
 * @example
 * link(worker, sibling);   // sibling crashes with reason R: worker exits with R (no terminate)
 */
export function link(self: Pid<never> | Pid<unknown>, pid: Pid<never> | Pid<unknown>): void {
  linkPids(self, pid);
}

/** `unlink/1`, called by `self` on `pid`: no exit signal passes between them any more. */
export function unlink(self: Pid<never> | Pid<unknown>, pid: Pid<never> | Pid<unknown>): void {
  unlinkPids(self, pid);
}

/**
 * `exit/2`: send `pid` an exit signal. `'kill'` ends it whatever it does (reason `killed`, no
 * terminate); to a process that traps exits any other reason arrives as `{'EXIT', from, reason}`;
 * otherwise `'normal'` is ignored and any other reason ends it at once, with no terminate. `from`
 * is the sender the EXIT message names (`ctx.exit` passes self); a dead `pid` is a no-op.
 * @example
 * exit(pid, 'kill');            // as kill(pid)
 * exit(pid, { shutdown: 'x' }); // a non-trapping pid exits with that reason
 */
export function exit(pid: Pid<never> | Pid<unknown>, reason: ExitReason, from?: Pid<never> | Pid<unknown>): void {
  exitSignal(pid, reason, from);
}
