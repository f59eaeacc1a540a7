/**
 * A read-only view of one connection FSM, read straight from its data record (kept in the session
 * table): what `sys:get_state` would show, without a message to the process. The FSM's state is
 * what its transitions compute from the data (`settle` in connection.ts): a held request is
 * `have_request`, pending packets without one `have_packet`, neither `waiting`.
 *
 * Nothing here writes, and nothing here runs unless someone looks (the observer, once a tick).
 */
import type { ConnectionData, ConnectionState } from './connection.js';

/** What the observer shows of one session. */
export interface SessionInfo {
  readonly state: ConnectionState;
  /** Packets queued and not yet acknowledged. */
  readonly queued: number;
  /** When the held request was held (clock ms), if one is held. */
  readonly heldSince: number | undefined;
  /** Client messages delivered to the application. */
  readonly messagesIn: number;
  /** Packets accepted into the queue since the session began (its last seq). */
  readonly packetsOut: number;
}

/** The state the FSM is in, from its data (as its own transitions decide it). */
export function connectionState(d: ConnectionData): ConnectionState {
  if (d.held) return 'have_request';
  return d.outbox.hasPending ? 'have_packet' : 'waiting';
}

/** One session's view. */
export function sessionInfo(d: ConnectionData): SessionInfo {
  return {
    state: connectionState(d),
    queued: d.outbox.size,
    heldSince: d.held?.since,
    messagesIn: d.messagesIn,
    packetsOut: d.outbox.lastSeq,
  };
}

/** The bytes of the queued packets as they go on the wire (JSON): computed on demand, for the few
 *  sessions on screen. */
export function queuedBytes(d: ConnectionData): number {
  if (!d.outbox.hasPending) return 0;
  return Buffer.byteLength(JSON.stringify(d.outbox.pending()));
}
