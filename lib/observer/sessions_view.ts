/**
 * The connection FSMs as the observer shows them: counts by state over every session (one pass
 * over the session table's data records, no message to any FSM), and one page of rows, found in
 * start order or by sid tag. Runs once per tick while an observer is open, never otherwise.
 */
import type { Clock } from '../otp/clock.js';
import { whereis } from '../otp/registry.js';
import type { ParentRef } from '../otp/nact.js';
import type { Pid } from '../otp/proc_lib.js';
import { connectionName, type ConnectionData } from '../comet/connection.js';
import type { Sid } from '../comet/ids.js';
import { SID_TAG_LENGTH, sidTag } from '../comet/sid_tag.js';
import { connectionState, queuedBytes } from '../comet/session_info.js';
import type { SessionTable } from '../comet/sessions.js';
import type { ConnectionStats } from '../comet/stats.js';
import { shortPid } from './introspect.js';
import type { Counts, SessionRow } from './page/protocol.js';

/** Sessions on one page. */
export const OBSERVER_PAGE_SIZE = 20;
// A session is shown and searched by its log tag (sidTag: a one-way hash of the sid), never by
// characters of the sid itself: a prefix search on sids would be an oracle for guessing them.
export { sidTag };

export interface SessionSources {
  readonly system: ParentRef;
  readonly sessions: SessionTable;
  readonly held: () => number;
  readonly stats: ConnectionStats;
  readonly clock: Clock;
}

/** Counts by state, one pass over the table. */
export function countSessions(src: SessionSources): Counts {
  let waiting = 0;
  let haveRequest = 0;
  let havePacket = 0;
  for (const [, d] of src.sessions.rows()) {
    if (d === undefined) continue;
    switch (connectionState(d)) {
      case 'waiting': waiting++; break;
      case 'have_request': haveRequest++; break;
      case 'have_packet': havePacket++; break;
    }
  }
  return {
    sessions: src.sessions.size, waiting, have_request: haveRequest, have_packet: havePacket,
    held: src.held(), queued: src.stats.queued, messagesIn: src.stats.messagesIn, packetsOut: src.stats.packetsOut,
  };
}

/** One page of sessions: `query` (a sid tag, or its start) filters; `page` counts from 0. */
export interface SessionPage {
  readonly total: number;
  readonly page: number;
  readonly rows: SessionRow[];
  /** Row key -> sid, for the actions on what is shown. */
  readonly sids: Map<string, Sid>;
}

export function sessionPage(src: SessionSources, page: number, query: string, bytesCache: WeakMap<ConnectionData, [number, number, number]>): SessionPage {
  const q = query.trim().slice(0, SID_TAG_LENGTH);
  const from = page * OBSERVER_PAGE_SIZE;
  const rows: SessionRow[] = [];
  const sids = new Map<string, Sid>();
  let total = 0;
  const now = src.clock.now();
  for (const [sid, d] of src.sessions.rows()) {
    if (d === undefined) continue;
    if (q !== '' && !d.tag.startsWith(q)) continue;
    total++;
    if (total <= from || rows.length >= OBSERVER_PAGE_SIZE) continue;
    const pid = whereis(src.system, connectionName(sid)) as Pid<never> | undefined;
    if (pid === undefined) continue;
    const key = shortPid(pid);
    sids.set(key, sid);
    rows.push({
      key, tag: d.tag, state: connectionState(d),
      queued: d.outbox.size, queuedBytes: cachedBytes(d, bytesCache),
      heldSeconds: d.held ? Math.floor((now - d.held.since) / 1000) : null,
      messagesIn: d.messagesIn, packetsOut: d.outbox.lastSeq,
    });
  }
  return { total, page, rows, sids };
}

/** The queue's bytes change only when a packet is queued or acked: recomputed only then. */
function cachedBytes(d: ConnectionData, cache: WeakMap<ConnectionData, [number, number, number]>): number {
  const c = cache.get(d);
  if (c && c[0] === d.outbox.lastSeq && c[1] === d.outbox.lastAcked) return c[2];
  const bytes = queuedBytes(d);
  cache.set(d, [d.outbox.lastSeq, d.outbox.lastAcked, bytes]);
  return bytes;
}
