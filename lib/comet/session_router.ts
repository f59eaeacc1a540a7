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

export interface SessionRouter {
  /**
   * Send the event built by `make(from)` to the session's FSM and await its reply. Rejects with a
   * CometError `unknown_session` when there is no such session, or the moment it ends before
   * replying (a monitor, never a timeout); with an OtpError `ERR_OTP_TIMEOUT` after `timeoutMs`.
   */
  call<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number): Promise<R>;
  /** Send an event without waiting; false if there is no such session. */
  cast(sid: Sid, event: ConnectionEvent): boolean;
}

/** Route to FSMs registered in this process's actor system. */
export function localRouter(system: ParentRef): SessionRouter {
  const find = (sid: Sid): FsmRef<ConnectionEvent> | undefined =>
    whereis(system, connectionName(sid)) as FsmRef<ConnectionEvent> | undefined;
  return {
    call<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number): Promise<R> {
      const fsm = find(sid);
      if (!fsm) return Promise.reject(unknown());
      return genFsm.syncSendEvent(fsm, make, timeoutMs).catch(gone);
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
  if (isOtpError(err) && (err.code === 'ERR_OTP_NOPROC' || err.code === 'ERR_OTP_EXIT')) throw unknown(err);
  throw err;
}

function unknown(cause?: unknown): CometError {
  // The sid is the only credential: never echo it back in an error.
  return new CometError('unknown_session', 'no such session', cause === undefined ? undefined : { cause });
}
