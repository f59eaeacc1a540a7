/**
 * sys: the system messages every behaviour process answers, as OTP's `sys` module: read or replace
 * its state, its status (name, behaviour, state, parent), suspend and resume it, trace what it
 * handles, and its statistics. Each is a request handled in mailbox order (after what was sent
 * before), answered even while the process is suspended, and each rejects as a call does:
 * `ERR_OTP_NOPROC` if the process is not running, `ERR_OTP_EXIT` if it exits first,
 * `ERR_OTP_TIMEOUT` after `timeoutMs`.
 *
 * The process side is in process.ts; these functions only send the request.
 */
import { request } from './gen.js';
import { getState as procGetState } from './proc_lib.js';
import type { Pid, ProcessStatistics, ProcessStatus, SystemReply, SystemRequest, TraceEvent, TraceHook } from './proc_lib.js';

export type { ProcessStatistics, ProcessStatus, TraceEvent, TraceHook } from './proc_lib.js';

/** OTP's sys functions wait 5000 ms by default. */
export const DEFAULT_SYS_TIMEOUT = 5000;

type AnyPid = Pid<never> | Pid<unknown>;

function system<T>(pid: AnyPid, req: SystemRequest, timeoutMs: number): Promise<T> {
  return request<unknown, SystemReply>(pid as Pid<unknown>, (from) => ({ kind: 'system', req, from }), timeoutMs, 'system reply')
    .then((r) => {
      if ('error' in r) throw r.error;
      return r.ok as T;
    });
}

/**
 * `sys:get_state/2`: the state (for a gen_fsm, `{ state, data }`), after everything sent before.
 * @example
 * const n = await sys.getState(counter);
 */
export function getState(pid: AnyPid, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<unknown> {
  return procGetState(pid, timeoutMs);
}

/**
 * `sys:replace_state/3`: replace the state with `fn(state)`, inside the process, between two
 * messages; resolves with the new state. If `fn` throws, the state is left as it was and the
 * promise rejects with what it threw (OTP's `callback_failed`). For a gen_fsm the state is
 * `{ state, data }`, and the state name must be one of its states.
 * @example
 * await sys.replaceState(counter, (n: number) => n + 100);
 */
export function replaceState<S>(pid: AnyPid, fn: (state: S) => S, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<S> {
  return system<S>(pid, { op: 'replace_state', fn: fn as (state: unknown) => unknown }, timeoutMs);
}

/**
 * `sys:get_status/2`, as a record: what the pid prints as, its registered name, its behaviour,
 * running or suspended, its parent (the supervisor, for a child), its state, whether it traps
 * exits, its links and its statistics. What a supervision-tree view reads.
 * @example
 * const { name, behaviour, parent, state } = await sys.getStatus(pid);
 */
export function getStatus(pid: AnyPid, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<ProcessStatus> {
  return system<ProcessStatus>(pid, { op: 'get_status' }, timeoutMs);
}

/**
 * `sys:suspend/2`: from now on the process handles only system messages (and a supervisor's
 * shutdown, or a kill); calls, casts, events, timer messages and trapped exits wait, in order,
 * until `resume`. A call to a suspended process waits, and times out like every other call.
 */
export function suspend(pid: AnyPid, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<void> {
  return system<void>(pid, { op: 'suspend' }, timeoutMs);
}

/** `sys:resume/2`: handle what waited, in arrival order, then the mailbox as before. */
export function resume(pid: AnyPid, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<void> {
  return system<void>(pid, { op: 'resume' }, timeoutMs);
}

/**
 * `sys:trace/2`: `hook` sees every message the process handles (`in`), its state after each
 * handler (`state`) and its exit (`exit`), inside the process, in order; `false` turns it off.
 * Off by default, and then it costs a message nothing.
 * @example
 * await sys.trace(pid, (ev) => console.log(procLib.pidToString(pid), ev));
 */
export function trace(pid: AnyPid, hook: TraceHook | false, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<void> {
  return system<void>(pid, { op: 'trace', hook: hook === false ? undefined : hook }, timeoutMs);
}

/**
 * `sys:statistics(Name, get)`: start time and current time on the process's clock, messages taken
 * in, and reductions (here: messages its behaviour handled). Always counted: two integers.
 */
export function statistics(pid: AnyPid, timeoutMs = DEFAULT_SYS_TIMEOUT): Promise<ProcessStatistics> {
  return system<ProcessStatistics>(pid, { op: 'statistics' }, timeoutMs);
}

/** A hook that records every event, for tests and debugging. */
export function recorder(): TraceHook & { readonly events: TraceEvent[] } {
  const events: TraceEvent[] = [];
  const hook = (event: TraceEvent): void => {
    events.push(event);
  };
  return Object.assign(hook, { events });
}
