/**
 * The cluster as the node serving the observer knows it: itself, the nodes its lease renewals
 * found alive, the ones it saw alive and that have lapsed since, and its own fenced lives. All of
 * it from `Cluster.members()` (lib/cluster/cluster.ts), which reads what this node's liveness
 * already tracks: nothing is asked of another node, so another node's sessions and counts are not
 * known here (null on its row). Read only when a page is open or `/api/tree` is asked.
 */
import type { ClusterMembers } from '../cluster/cluster.js';
import type { ClusterNodeRow, ClusterView } from './page/protocol.js';

/** How many lapsed nodes stay listed (the most recently seen); older ones leave the list. */
export const CLUSTER_LAPSED_SHOWN = 16;

/** What the observer reads a cluster node through (`Cluster` is one). */
export interface ClusterSource {
  members(): ClusterMembers;
}

export class ClusterNodes {
  readonly #source: ClusterSource;
  readonly #sessions: () => number;
  /** Every other node seen alive, with the wall-clock ms it was last seen; kept once it lapses. */
  readonly #seen = new Map<string, number | null>();
  /** The last renewal converted to wall-clock ms, per raw clock value: a row changes when a
   *  renewal happens, not at every read (the monotonic clock and Date.now drift apart by ms). */
  #renewed: { raw: number; wall: number | null } = { raw: Number.NaN, wall: null };

  constructor(source: ClusterSource, sessions: () => number) {
    this.#source = source;
    this.#sessions = sessions;
  }

  read(): ClusterView {
    const m = this.#source.members();
    const at = Date.now();
    if (m.renewedAt !== this.#renewed.raw) {
      this.#renewed = { raw: m.renewedAt, wall: Number.isFinite(m.renewedAt) ? Math.round(at - (m.now - m.renewedAt)) : null };
    }
    const renewed = this.#renewed.wall;
    const nodes: ClusterNodeRow[] = [{
      node: m.node, self: true, lease: 'alive', seenAt: renewed, expiresAt: renewed === null ? null : renewed + m.leaseMs,
      redis: m.redis, sessions: this.#sessions(), forwarded: m.forwarded, served: m.served,
    }];
    const alive = new Set<string>(m.peers);
    // A peer in the view had its lease at this node's last renewal (or is kept through a grace
    // period after a Redis reconnection, when it was last seen before).
    for (const peer of m.peers) this.#seen.set(peer, renewed ?? this.#seen.get(peer) ?? null);
    this.#forgetOldLapsed(alive);
    for (const [node, seenAt] of this.#seen) {
      if (node !== m.node) nodes.push(otherNode(node, alive.has(node) ? 'alive' : 'lapsed', seenAt));
    }
    for (const node of m.fencedLives) nodes.push(otherNode(node, 'fenced', null));
    return { node: m.node, leaseMs: m.leaseMs, redis: m.redis, at, nodes };
  }

  #forgetOldLapsed(alive: ReadonlySet<string>): void {
    const lapsed = [...this.#seen].filter(([n]) => !alive.has(n));
    if (lapsed.length <= CLUSTER_LAPSED_SHOWN) return;
    lapsed.sort((a, b) => (a[1] ?? 0) - (b[1] ?? 0));
    for (const [n] of lapsed.slice(0, lapsed.length - CLUSTER_LAPSED_SHOWN)) this.#seen.delete(n);
  }
}

/** Another node's row (or a previous life's): what only that node knows is null here. */
function otherNode(node: string, lease: ClusterNodeRow['lease'], seenAt: number | null): ClusterNodeRow {
  return { node, self: false, lease, seenAt, expiresAt: null, redis: null, sessions: null, forwarded: null, served: null };
}
