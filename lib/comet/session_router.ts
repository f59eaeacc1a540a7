/**
 * The one place that answers "send this event to the FSM of session S (and await its reply)".
 * The HTTP handler and the application API never look a session up themselves, so a later
 * distributed router (any node serves any request and forwards the event to the node that owns
 * the FSM, as Erlang's location-transparent pids allow) replaces this file and nothing else.
 */
import { isOtpError } from '../otp/errors.js';
import * as genFsm from '../otp/gen_fsm.js';
import type { FsmRef } from '../otp/gen_fsm.js';
import type { ParentRef } from '../otp/nact.js';
import type { From } from '../otp/proc_lib.js';
import { whereis } from '../otp/registry.js';
import { connectionName, type ConnectionEvent } from './connection.js';
import { CometError } from './errors.js';
import type { Sid } from './ids.js';
import { sessionTableOf, type SessionTable } from './sessions.js';

/** What waits for {@link SessionRouter.callWith}: told once, of the reply or of the error. */
export interface SessionCallWaiter<R> {
  resolved(value: R): void;
  rejected(err: unknown): void;
}

export interface SessionRouter {
  /**
   * Send the event built by `make(from)` to the session's FSM and await its reply. Rejects with a
   * CometError `unknown_session` when there is no such session, or the moment it ends before
   * replying (a monitor, never a timeout); with an OtpError `ERR_OTP_TIMEOUT` after `timeoutMs`.
   */
  call<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number): Promise<R>;
  /**
   * {@link call} with a waiter instead of a promise, for the HTTP request path (a held poll then
   * keeps one object alive, not a chain of promises). The waiter is told once, synchronously
   * (`unknown_session` for a sid with no session before this returns, the reply from inside the
   * FSM's handler): pass what `rejected` gets through {@link sessionError}, and defer any I/O.
   * Optional: the API falls back to `call` for a router without it.
   */
  callWith?<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number, waiter: SessionCallWaiter<R>): void;
  /** Send an event without waiting; false if there is no such session. */
  cast(sid: Sid, event: ConnectionEvent): boolean;
}

/** What a call's error means to its caller: a session that ended before it could answer is a
 *  session that does not exist (a CometError `unknown_session`); anything else as it is. */
export function sessionError(err: unknown): unknown {
  if (isOtpError(err) && (err.code === 'ERR_OTP_NOPROC' || err.code === 'ERR_OTP_EXIT')) return unknown(err);
  return err;
}

/**
 * Route to the FSMs of this process's actor system: found by sid in the session table of the
 * comet tree running in `system` (one lookup, nothing built per request), else by their
 * registered names (a system whose tree was started without a table attached).
 */
export function localRouter(system: ParentRef): SessionRouter {
  // Looked up until found (a router may be made before its tree starts), then kept.
  let table: SessionTable | undefined;
  const find = (sid: Sid): FsmRef<ConnectionEvent> | undefined => {
    table ??= sessionTableOf(system);
    return table !== undefined ? table.fsmOf(sid) : whereis(system, connectionName(sid)) as FsmRef<ConnectionEvent> | undefined;
  };
  return {
    call<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number): Promise<R> {
      const fsm = find(sid);
      if (!fsm) return Promise.reject(unknown());
      return genFsm.syncSendEvent(fsm, make, timeoutMs).catch(gone);
    },
    callWith<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number, waiter: SessionCallWaiter<R>): void {
      const fsm = find(sid);
      if (!fsm) waiter.rejected(unknown());
      else genFsm.syncSendEventWith(fsm, make, timeoutMs, waiter);
    },
    cast(sid, event) {
      const fsm = find(sid);
      if (!fsm) return false;
      genFsm.sendEvent(fsm, event);
      return true;
    },
  };
}

/** A session that ended before it could answer is, to the caller, a session that does not exist. */
function gone(err: unknown): never {
  throw sessionError(err);
}

function unknown(cause?: unknown): CometError {
  // The sid is the only credential: never echo it back in an error.
  return new CometError('unknown_session', 'no such session', cause === undefined ? undefined : { cause });
}
