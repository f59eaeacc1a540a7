/**
 * What the observer says, as JSON: the packets its feed pushes to the page (over a comet session),
 * the messages the page sends back, and the snapshot `GET <observer>/api/tree` answers (the
 * `comet-fsm tree` command reads it). Types only, and shared: the server side (lib/observer) and the
 * page script (lib/observer/page/observer.ts, bundled for the browser) import this file and nothing
 * else from each other.
 */

/** The connection FSM's three states, as in the post. */
export type FsmState = 'waiting' | 'have_request' | 'have_packet';
export const FSM_STATES: readonly FsmState[] = ['waiting', 'have_request', 'have_packet'];

/** A tree node's status: OTP's child pid, `restarting`, `undefined` (not running), `stopped` (a
 *  supervisor that exited), or `suspended` (`sys:suspend`: it runs only system messages). */
export type NodeStatus = 'running' | 'suspended' | 'restarting' | 'undefined' | 'stopped';

/** A supervisor's flags and its restarts inside the current intensity window. */
export interface SupervisorView {
  readonly strategy: string;
  readonly intensity: number;
  /** Seconds. */
  readonly period: number;
  /** Restarts this supervisor made within the last `period` seconds: more than `intensity` and it gives up. */
  readonly restartsInWindow: number;
}

/** One node of the supervision tree. */
export interface NodeView {
  readonly id: string;
  /** Ids from the root down, `comet_sup/session_ids`: the page's `data-node`. */
  readonly path: string;
  readonly type: 'worker' | 'supervisor';
  readonly status: NodeStatus;
  /** The process, short (`gen_server.12`): changes on every restart. */
  readonly pid?: string;
  /** The registered name, when it is not a session's (a session's name holds its sid). */
  readonly name?: string;
  /** The child spec's restart type; absent for the root. */
  readonly restart?: string;
  /** Times its supervisor restarted it since the server started. */
  readonly restarts: number;
  readonly supervisor?: SupervisorView;
  /** A simple_one_for_one supervisor's children are summarised, never listed: how many run. */
  readonly dynamic?: { readonly count: number };
  readonly children?: readonly NodeView[];
}

/** How many sessions are in each state, and the totals the metrics also show. */
export interface Counts {
  readonly sessions: number;
  readonly waiting: number;
  readonly have_request: number;
  readonly have_packet: number;
  /** Requests held by the HTTP side right now. */
  readonly held: number;
  /** Packets queued and not acknowledged, all sessions. */
  readonly queued: number;
  /** Client messages delivered to the application, all sessions, since the server started. */
  readonly messagesIn: number;
  /** Packets accepted into session queues, all sessions, since the server started. */
  readonly packetsOut: number;
}

/** One session on screen. Never its sid: `tag` is its log tag (`sidTag`, a one-way hash), `key` its process. */
export interface SessionRow {
  /** The FSM's process (`gen_fsm.1234`): what an action names. */
  readonly key: string;
  readonly tag: string;
  readonly state: FsmState;
  readonly queued: number;
  readonly queuedBytes: number;
  /** Whole seconds the held poll has waited; null when none is held. */
  readonly heldSeconds: number | null;
  readonly messagesIn: number;
  readonly packetsOut: number;
}

/** What happened to a process, newest first on the page. */
export type HistoryKind = 'exit' | 'restart' | 'start_error' | 'shutdown' | 'shutdown_error' | 'action';

export interface HistoryEntry {
  /** Increasing: the page asks for nothing it has, the feed sends only what is newer. */
  readonly id: number;
  /** Wall-clock time, ms since the epoch. */
  readonly at: number;
  readonly kind: HistoryKind;
  /** The process it is about, by path (`comet_sup/session_ids`). */
  readonly path: string;
  /** The exit reason, described (at most 200 characters). */
  readonly reason?: string;
  /** What the supervisor did: `restart`, `keep`, `remove`, `retry`, `shutdown`…; for `action`, what was asked. */
  readonly action?: string;
  /** For `action`: who asked (the address), and how they were let in. */
  readonly who?: string;
}

/**
 * A cluster node's lease, as the node serving the observer knows it: `alive` (it holds its lease),
 * `lapsed` (its lease ran out, or it withdrew it on a graceful stop: it is out of the cluster, its
 * sids answer 404), `fenced` (a previous life of this node, declared dead while it ran: it ended
 * its sessions and went on under a new id).
 */
export type LeaseState = 'alive' | 'lapsed' | 'fenced';
export const LEASE_STATES: readonly LeaseState[] = ['alive', 'lapsed', 'fenced'];

/** One node of the cluster. What only the node itself knows is null on the others' rows. */
export interface ClusterNodeRow {
  /** The node id (`<name>~<creation>`): the page's `data-cluster-node`. */
  readonly node: string;
  /** Whether it is the node serving this observer. */
  readonly self: boolean;
  /** `data-lease`. */
  readonly lease: LeaseState;
  /** Wall-clock ms of the last renewal of its lease this node saw: for this node its own last
   *  renewal, for another the last renewal of this node's that found its lease. null: none yet. */
  readonly seenAt: number | null;
  /** Wall-clock ms its lease runs out unless renewed: this node's own only. */
  readonly expiresAt: number | null;
  /** Its link to Redis: this node's own only. */
  readonly redis: 'up' | 'down' | null;
  /** Its live sessions, and the calls it forwarded to other nodes and served for them: this node's own only. */
  readonly sessions: number | null;
  readonly forwarded: number | null;
  readonly served: number | null;
}

/** The cluster as one node knows it: `GET <observer>/api/tree`'s `cluster`. */
export interface ClusterView {
  /** This node's id. */
  readonly node: string;
  readonly leaseMs: number;
  /** This node's link to Redis. */
  readonly redis: 'up' | 'down';
  /** Wall-clock ms when it was read. */
  readonly at: number;
  readonly nodes: readonly ClusterNodeRow[];
}

/** Packets the feed pushes. Each carries only what changed since the last one this page got. */
export type FeedPacket =
  | { readonly type: 'hello'; readonly actions: boolean; readonly suspend: boolean; readonly pageSize: number; readonly tickMs: number }
  | { readonly type: 'tree'; readonly tree: NodeView }
  | { readonly type: 'counts'; readonly counts: Counts }
  | {
    readonly type: 'sessions';
    readonly total: number;
    readonly page: number;
    readonly query: string;
    /** The keys on screen, in order (present when the set or its order changed). */
    readonly order?: readonly string[];
    readonly upsert: readonly SessionRow[];
    readonly remove: readonly string[];
  }
  | { readonly type: 'history'; readonly entries: readonly HistoryEntry[] }
  | {
    /** Only on a cluster node, and only when something changed: the rows that changed and the
     *  nodes that left the list (by id). */
    readonly type: 'cluster';
    readonly node: string;
    readonly leaseMs: number;
    readonly redis: 'up' | 'down';
    readonly upsert: readonly ClusterNodeRow[];
    readonly remove: readonly string[];
    /** The first cluster packet of a feed (or of one started over): `upsert` is every row. */
    readonly full?: true;
  };

/** What the page sends: which sessions to show. */
export type FeedRequest = { readonly type: 'view'; readonly page: number; readonly query: string };

/** `GET <observer>/api/tree`. */
export interface TreeSnapshot {
  readonly tree: NodeView;
  readonly counts: Counts;
  /** On a cluster node only: every node it knows of and its lease. */
  readonly cluster?: ClusterView;
}

/** The reasons a crash can carry. */
export type CrashReason = 'kill' | 'error' | 'shutdown';
export const CRASH_REASONS: readonly CrashReason[] = ['kill', 'error', 'shutdown'];

/** Observer error codes (HTTP status and body `{"error", "message"}`); docs/errors.md lists them. */
export type ObserverErrorCode =
  | 'observer_bad_request'
  | 'observer_forbidden_origin'
  | 'observer_actions_disabled'
  | 'observer_unknown_target'
  | 'observer_storm_impossible';

export const OBSERVER_HTTP_STATUS: Readonly<Record<ObserverErrorCode, number>> = {
  observer_bad_request: 400,
  observer_forbidden_origin: 403,
  observer_actions_disabled: 403,
  observer_unknown_target: 404,
  observer_storm_impossible: 409,
};

export const OBSERVER_ERROR_CODES: readonly ObserverErrorCode[] = Object.keys(OBSERVER_HTTP_STATUS) as ObserverErrorCode[];
