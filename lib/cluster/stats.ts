/**
 * What a cluster node counts, read by `/admin/stats` and, at scrape time, by Prometheus
 * (`comet_cluster_*`): the same numbers, one source.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { counterFromStat } from '../comet/metrics.js';

/** Why a forwarded call failed without an answer from its owner. */
export type ForwardFailure = 'redis_down' | 'not_listening' | 'no_answer' | 'node_down' | 'bus_lost';

export interface ClusterStats {
  /** Calls (requests, terminates, packets) this node forwarded to their owner. */
  forwarded: number;
  /** Calls from other nodes this node served for its own sessions. */
  served: number;
  /** Requests for sids of a node known dead (or unknown), answered 404 at once. */
  deadOwner: number;
  readonly failures: Record<ForwardFailure, number>;
  /** Messages on the bus that were not ours (dropped). */
  dropped: number;
}

export function newClusterStats(): ClusterStats {
  return {
    forwarded: 0, served: 0, deadOwner: 0, dropped: 0,
    failures: { redis_down: 0, not_listening: 0, no_answer: 0, node_down: 0, bus_lost: 0 },
  };
}

export interface ClusterGauges {
  readonly redisUp: () => boolean;
  readonly nodes: () => number;
  readonly fenced: () => number;
  readonly renewFailures: () => number;
}

/** Register the cluster's metrics in `registry`, read from `stats` and `g` at scrape time. */
export function registerClusterMetrics(registry: Registry, stats: ClusterStats, g: ClusterGauges): void {
  const registers = [registry];
  const counter = (name: string, help: string, read: () => number): void => counterFromStat(registers, name, help, read);
  counter('comet_cluster_forwarded_total', 'Calls forwarded to the node owning the session', () => stats.forwarded);
  counter('comet_cluster_served_total', 'Calls from other nodes served for this node\'s sessions', () => stats.served);
  counter('comet_cluster_dead_owner_total', 'Requests for sids of a dead or unknown node (404 at once)', () => stats.deadOwner);
  counter('comet_cluster_fenced_total', 'Times this node found itself declared dead and ended its sessions', g.fenced);
  counter('comet_cluster_lease_renewal_failures_total', 'Lease renewals that failed (Redis unreachable or slow)', g.renewFailures);
  const seen: Partial<Record<ForwardFailure, number>> = {};
  new Counter({
    name: 'comet_cluster_forward_failures_total', help: 'Forwarded calls answered 503/404 without the owner\'s answer, by reason',
    labelNames: ['reason'], registers,
    collect() {
      for (const [reason, n] of Object.entries(stats.failures) as [ForwardFailure, number][]) {
        const before = seen[reason] ?? 0;
        if (n > before) this.inc({ reason }, n - before);
        seen[reason] = n;
      }
    },
  });
  new Gauge({ name: 'comet_cluster_redis_up', help: '1 while this node reaches Redis', registers, collect() { this.set(g.redisUp() ? 1 : 0); } });
  new Gauge({ name: 'comet_cluster_nodes', help: 'Nodes this node believes alive, itself included', registers, collect() { this.set(g.nodes()); } });
}
