/**
 * The comet supervision tree:
 *
 *   comet_sup (one_for_one)
 *   ├── session_ids      gen_server, permanent: unique, unpredictable session ids
 *   └── connection_sup   simple_one_for_one, children temporary
 *       └── session:<sid>  one connection gen_fsm per session
 *
 * Connections are temporary: a crashed session ends, and its client sets up again (restarting it
 * would bring back an FSM with none of the session's packets, which is worse than an honest 404).
 * Children stop in reverse order, so on shutdown every connection's terminate answers its held
 * poll before the session-id server goes.
 */
import * as genFsm from '../otp/gen_fsm.js';
import type { Clock } from '../otp/clock.js';
import type { ExitReason } from '../otp/errors.js';
import type { Logger } from '../otp/logger.js';
import type { ParentRef } from '../otp/nact.js';
import { monitor, type Pid, type StartResult } from '../otp/proc_lib.js';
import { whereis } from '../otp/registry.js';
import { connection, connectionLabel, connectionName, sessionEnded, type ConnectionConfig, type ConnectionData } from './connection.js';
import { asSid, type Sid } from './ids.js';
import * as sessionIds from './session_ids.js';
import { attachSessionTable, type SessionTable } from './sessions.js';
import * as supervisor from '../../supervisors/supervisor.js';

export const COMET_SUP_NAME = 'comet_sup';
export const CONNECTION_SUP_NAME = 'comet_connection_sup';

export interface CometSupOptions {
  /** What every connection FSM is started with; its start and end callbacks are this tree's. */
  readonly connection: Omit<ConnectionConfig, 'onStarted' | 'onEnded'>;
  /** The live-session table the connections enter in `init` and leave in `terminate` (or, killed,
   *  when this tree sees them exit). */
  readonly sessions: SessionTable;
  /** Restart intensity of comet_sup (OTP's default: 1 restart in 5 s). */
  readonly intensity?: number;
  readonly period?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Told when the whole tree exits (a restart-intensity breach reaches the top). */
  readonly onExit: (reason: ExitReason) => void;
  /** Injected id source for the session-id server (tests). */
  readonly generateSid?: () => string;
}

/** Start the tree under `system`. */
export function startCometSup(system: ParentRef, opts: CometSupOptions): Promise<StartResult<supervisor.SupRef>> {
  attachSessionTable(system, opts.sessions);
  const config: ConnectionConfig = {
    ...opts.connection,
    onStarted: (sid, fsm, data) => {
      opts.sessions.started(sid, data);
      // A connection's terminate gives back what its session holds; one killed (`exit(Pid, kill)`,
      // or stopped past its shutdown time) runs none, so the tree watches each one and gives it
      // back on its exit (a DOWN after terminate finds it given back already, and does nothing).
      // One shared callback with the data as its argument: no closure per session.
      monitor(fsm, connectionDown, data);
    },
    // A session that ended frees its id (in practice none is ever handed out again).
    onEnded: (sid) => {
      opts.sessions.ended(sid);
      const ids = sessionIdServer(system);
      if (ids) sessionIds.release(ids, sid);
    },
  };
  const connectionSpec: supervisor.ChildSpec<[Sid]> = {
    id: 'connection',
    start: (link, sid) => genFsm.startLink(link, connection, { sid, config }, {
      // Registered under its sid, as in the post; printed (logs, reports, errors) by its tag only.
      name: connectionName(sid), label: connectionLabel(sid), logger: opts.logger, ...(opts.clock ? { clock: opts.clock } : {}),
    }),
    restart: 'temporary',
    shutdown: 5000,
    type: 'worker',
  };
  const specs: supervisor.ChildSpec[] = [
    {
      id: 'session_ids',
      start: (link) => sessionIds.startLink(link, {
        liveSids: () => liveSids(system),
        ...(opts.generateSid ? { generate: opts.generateSid } : {}),
      }, { logger: opts.logger }),
      restart: 'permanent',
      shutdown: 5000,
      type: 'worker',
    },
    {
      id: 'connection_sup',
      start: (link) => supervisor.startLink(link, { strategy: 'simple_one_for_one' }, [connectionSpec], {
        name: CONNECTION_SUP_NAME, logger: opts.logger, ...(opts.clock ? { clock: opts.clock } : {}),
      }),
      restart: 'permanent',
      shutdown: 'infinity',
      type: 'supervisor',
    },
  ];
  return supervisor.startSupervisor(system, {
    strategy: 'one_for_one',
    intensity: opts.intensity ?? supervisor.DEFAULT_INTENSITY,
    period: opts.period ?? supervisor.DEFAULT_PERIOD,
  }, specs, {
    name: COMET_SUP_NAME, logger: opts.logger, onExit: (_pid, reason) => opts.onExit(reason),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
}

/** A connection's DOWN: what its session holds goes back (nothing if its terminate did that). */
function connectionDown(reason: ExitReason, data: ConnectionData): void {
  sessionEnded(data, reason);
}

/** Start one connection FSM for `sid` under the connection supervisor. */
export async function startConnection(system: ParentRef, sid: Sid): Promise<StartResult<Pid<never>>> {
  const sup = whereis(system, CONNECTION_SUP_NAME) as supervisor.SupRef | undefined;
  if (!sup) return { error: 'noproc' };
  return supervisor.startChild(sup, [sid]);
}

/** The session-id server, if it is running (it may be restarting). */
export function sessionIdServer(system: ParentRef): sessionIds.SessionIdsRef | undefined {
  return whereis(system, sessionIds.SESSION_IDS_NAME) as sessionIds.SessionIdsRef | undefined;
}

/** The sids of the live connections: what a restarted session-id server rebuilds its set from. */
async function liveSids(system: ParentRef): Promise<Sid[]> {
  const sup = whereis(system, CONNECTION_SUP_NAME) as supervisor.SupRef | undefined;
  if (!sup) return [];
  const children = await supervisor.whichChildren(sup);
  const prefix = connectionName(asSid(''));
  return children.flatMap((c) => (c.name?.startsWith(prefix) ? [asSid(c.name.slice(prefix.length))] : []));
}
