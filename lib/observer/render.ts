/**
 * The observer's tree as text (what `comet-fsm tree URL` prints): the tree printer's layout
 * (supervisors/tree.ts: two spaces a level, children in start order), plus what the observer knows
 * besides, on each line: strategy and intensity, restart type, restarts, and the sessions by state;
 * on a cluster node, each node of the cluster and its lease.
 */
import type { ClusterView, NodeView, TreeSnapshot } from './page/protocol.js';

/**
 * Lines for a snapshot. With `before`, a node restarted since is marked `<- restarted`.
 * @example
 * renderSnapshot(snapshot);
 * // comet_sup (supervisor one_for_one, intensity 1 in 5 s: 0 in window)  running
 * //   session_ids  running  permanent  restarts 0
 * //   ...
 */
export function renderSnapshot(snap: TreeSnapshot, before?: TreeSnapshot): string[] {
  const old = new Map<string, number>();
  if (before) walk(before.tree, 0, (n) => old.set(n.path, n.restarts));
  const lines: string[] = [];
  walk(snap.tree, 0, (n, depth) => {
    const parts = [`${'  '.repeat(depth)}${n.id}`];
    if (n.supervisor) {
      const s = n.supervisor;
      parts[0] += ` (supervisor ${s.strategy}, intensity ${s.intensity} in ${s.period} s: ${s.restartsInWindow} in window)`;
    } else if (n.type === 'supervisor') {
      parts[0] += ' (supervisor)';
    }
    if (n.dynamic) parts.push(`x${n.dynamic.count}`);
    parts.push(n.status);
    if (n.restart) parts.push(n.restart);
    parts.push(`restarts ${n.restarts}`);
    const was = old.get(n.path);
    if (was !== undefined && n.restarts > was) parts.push('<- restarted');
    lines.push(parts.join('  '));
  });
  const c = snap.counts;
  lines.push(`sessions ${c.sessions}: waiting ${c.waiting}, have_request ${c.have_request}, have_packet ${c.have_packet}; held polls ${c.held}, packets queued ${c.queued}`);
  if (snap.cluster) lines.push(...renderCluster(snap.cluster));
  return lines;
}

/**
 * The cluster section: one line per node, this one first, times relative to when it was read.
 * @example
 * // cluster: 2 nodes alive, lease 10 s, Redis up
 * //   web-1~Qx3v_9aB  this node  alive  renewed 1.2 s ago, expires in 8.8 s  sessions 2  forwarded 5  served 3
 * //   web-2~Tb0d_1xZ  alive  seen 1.2 s ago
 */
export function renderCluster(v: ClusterView): string[] {
  const alive = v.nodes.filter((n) => n.lease === 'alive').length;
  const lines = [`cluster: ${alive} node${alive === 1 ? '' : 's'} alive, lease ${seconds(v.leaseMs)}, Redis ${v.redis}`];
  for (const n of v.nodes) {
    const parts = [`  ${n.node}`];
    if (n.self) parts.push('this node');
    parts.push(n.lease);
    const seen = n.seenAt === null ? undefined : `${seconds(v.at - n.seenAt)} ago`;
    if (n.self) {
      parts.push(seen === undefined ? 'not renewed yet' : `renewed ${seen}${n.expiresAt === null ? '' : `, expires in ${seconds(Math.max(0, n.expiresAt - v.at))}`}`);
      parts.push(`sessions ${n.sessions ?? '?'}`, `forwarded ${n.forwarded ?? '?'}`, `served ${n.served ?? '?'}`);
    } else if (seen !== undefined) {
      parts.push(`${n.lease === 'alive' ? 'seen' : 'last seen'} ${seen}`);
    }
    lines.push(parts.join('  '));
  }
  return lines;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function walk(n: NodeView, depth: number, visit: (n: NodeView, depth: number) => void): void {
  visit(n, depth);
  for (const c of n.children ?? []) walk(c, depth + 1, visit);
}
