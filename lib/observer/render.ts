/**
 * The observer's tree as text (what `comet-fsm tree URL` prints): the tree printer's layout
 * (supervisors/tree.ts: two spaces a level, children in start order), plus what the observer knows
 * besides, on each line: strategy and intensity, restart type, restarts, and the sessions by state.
 */
import type { NodeView, TreeSnapshot } from './page/protocol.js';

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
  return lines;
}

function walk(n: NodeView, depth: number, visit: (n: NodeView, depth: number) => void): void {
  visit(n, depth);
  for (const c of n.children ?? []) walk(c, depth + 1, visit);
}
