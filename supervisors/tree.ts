/**
 * A supervision tree as people read it: built from `whichChildren` (nothing but the public API),
 * every node named by its child id under its supervisor's path (`comet_sup/connection_sup/worker`),
 * never by its process (`gen_server.12`). Restarts show by comparing two snapshots: a node whose
 * process changed was restarted. `npm run crash-test` and `npm run crash-demo` print these.
 *
 * Pids stay in the nodes (for comparing incarnations and for callers), never in the rendered text.
 */
import { isAlive, pidToString, type Pid } from '../lib/otp/proc_lib.js';
import type { ChildType } from './child_spec.js';
import { getChildspec, whichChildren, type SupRef } from './supervisor.js';

/** What a node is doing: OTP's child pid, `restarting`, `undefined` (not running); `stopped`: a supervisor that has exited. */
export type TreeNodeStatus = 'running' | 'restarting' | 'undefined' | 'stopped';

/** One child (or the root supervisor) of a supervision tree. */
export interface TreeNode {
  /** The child id; a dynamic child (simple_one_for_one, no id in OTP) shows its spec's id. */
  readonly id: string;
  /** Ids from the root down: `comet_sup/connection_sup/worker`. */
  readonly path: string;
  readonly type: ChildType;
  readonly status: TreeNodeStatus;
  /** The running process (for comparing snapshots); `undefined` unless `status` is `running`. */
  readonly pid: Pid<never> | undefined;
  /** The registered name, when the process has one. */
  readonly name?: string;
  /** A dynamic child of a simple_one_for_one supervisor. */
  readonly dynamic?: true;
  /** A supervisor's children, in start order (dynamic ones in no particular order). */
  readonly children?: readonly TreeNode[];
}

/**
 * Snapshot the tree under `sup`, nested supervisors expanded. `rootId` names the root (default:
 * its registered name, else `'supervisor'`). A supervisor that is not running is a `stopped` leaf.
 * @example
 * const before = await supervisionTree(cometSup, 'comet_sup');
 * // ... a crash ...
 * console.log(renderTree(await supervisionTree(cometSup, 'comet_sup'), before).join('\n'));
 */
export async function supervisionTree(sup: SupRef | undefined, rootId?: string): Promise<TreeNode> {
  const id = rootId ?? 'supervisor';
  if (!sup || !isAlive(sup)) return { id, path: id, type: 'supervisor', status: 'stopped', pid: undefined };
  return expand(sup, id, id);
}

async function expand(sup: SupRef, id: string, path: string): Promise<TreeNode> {
  let rows: Awaited<ReturnType<typeof whichChildren>>;
  try {
    rows = await whichChildren(sup);
  } catch {
    // It exited between the parent's listing and ours.
    return { id, path, type: 'supervisor', status: 'stopped', pid: undefined };
  }
  // whichChildren lists static children most recently started first, as OTP; print start order.
  const ordered = rows.some((r) => r.id !== undefined) ? [...rows].reverse() : rows;
  const dynamicId = ordered.some((r) => r.id === undefined) ? await dynamicSpecId(sup, ordered) : 'child';
  const children: TreeNode[] = [];
  for (const row of ordered) {
    const cid = row.id ?? dynamicId;
    const cpath = `${path}/${cid}`;
    const pid = typeof row.pid === 'object' ? row.pid : undefined;
    const base = {
      id: cid, path: cpath, type: row.type, pid,
      status: pid ? 'running' as const : row.pid === 'restarting' ? 'restarting' as const : 'undefined' as const,
      ...(row.name === undefined ? {} : { name: row.name }),
      ...(row.id === undefined ? { dynamic: true as const } : {}),
    };
    if (row.type === 'supervisor' && pid) {
      const sub = await expand(pid as SupRef, cid, cpath);
      children.push({ ...base, status: sub.status, ...(sub.children ? { children: sub.children } : {}) });
    } else {
      children.push(base);
    }
  }
  return { id, path, type: 'supervisor', status: 'running', pid: sup as unknown as Pid<never>, children };
}

/** OTP lists dynamic children without an id; their spec's id names them here. */
async function dynamicSpecId(sup: SupRef, rows: Awaited<ReturnType<typeof whichChildren>>): Promise<string> {
  const running = rows.find((r) => typeof r.pid === 'object')?.pid;
  if (typeof running !== 'object') return 'child';
  try {
    const spec = await getChildspec(sup, running);
    return 'ok' in spec ? spec.ok.id : 'child';
  } catch {
    return 'child';
  }
}

/** What changed between two snapshots, as paths: a node whose process changed was restarted. */
export interface TreeDiff {
  readonly restarted: readonly string[];
  readonly kept: readonly string[];
  /** New nodes: a child added since. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * Compare two snapshots. Nodes are matched by path (a dynamic child with a registered name by its
 * name too). Unnamed dynamic children share their path and OTP gives them no id, so under one
 * supervisor one that is gone and one that appeared read as one restart.
 */
export function diffTrees(before: TreeNode, after: TreeNode): TreeDiff {
  const c = compare(before, after);
  const pick = (mark: Mark): string[] => [...c.marks].filter(([, m]) => m === mark).map(([n]) => n.path);
  return { restarted: pick('restarted'), kept: pick('kept'), added: pick('new'), removed: c.removed.map((n) => n.path) };
}

/**
 * The tree as text lines, children indented under their supervisor. With `before`, each node that
 * changed since is marked `<- restarted` or `<- new`.
 * @example
 * renderTree(tree);
 * // comet_sup (supervisor)
 * //   session_ids  running
 * //   connection_sup (supervisor)  running
 * //     connection  running
 */
export function renderTree(tree: TreeNode, before?: TreeNode): string[] {
  const marks = before ? compare(before, tree).marks : new Map<TreeNode, Mark>();
  const lines: string[] = [];
  const walk = (node: TreeNode, depth: number): void => {
    const kind = node.type === 'supervisor' ? ' (supervisor)' : '';
    const name = node.name !== undefined && node.name !== node.id ? ` as ${node.name}` : '';
    const status = depth === 0 && node.status === 'running' ? '' : `  ${node.status}`;
    const mark = marks.get(node);
    lines.push(`${'  '.repeat(depth)}${node.id}${kind}${name}${status}${mark === 'restarted' || mark === 'new' ? `  <- ${mark}` : ''}`);
    for (const c of node.children ?? []) walk(c, depth + 1);
  };
  walk(tree, 0);
  return lines;
}

type Mark = 'restarted' | 'kept' | 'new';

function compare(before: TreeNode, after: TreeNode): { marks: Map<TreeNode, Mark>; removed: TreeNode[] } {
  const b = index(before);
  const a = index(after);
  const marks = new Map<TreeNode, Mark>();
  const added: TreeNode[] = [];
  for (const [k, node] of a) {
    if (node.status === 'stopped') continue; // gone, not restarted
    const old = b.get(k);
    if (old === undefined) added.push(node);
    else marks.set(node, incarnation(old) === incarnation(node) ? 'kept' : 'restarted');
  }
  const removed = [...b].filter(([k]) => !a.has(k)).map(([, node]) => node);
  for (const node of added) {
    const i = isUnnamedDynamic(node) ? removed.findIndex((r) => isUnnamedDynamic(r) && r.path === node.path) : -1;
    if (i >= 0) removed.splice(i, 1);
    marks.set(node, i >= 0 ? 'restarted' : 'new');
  }
  return { marks, removed };
}

function isUnnamedDynamic(node: TreeNode): boolean {
  return node.dynamic === true && node.name === undefined;
}

function index(tree: TreeNode): Map<string, TreeNode> {
  const out = new Map<string, TreeNode>();
  const walk = (node: TreeNode): void => {
    out.set(key(node), node);
    for (const c of node.children ?? []) walk(c);
  };
  walk(tree);
  return out;
}

function key(node: TreeNode): string {
  if (!node.dynamic) return node.path;
  if (node.name !== undefined) return `${node.path}#${node.name}`;
  return `${node.path}#${node.pid ? pidToString(node.pid) : node.status}`;
}

/** Which process a node is: compared, never printed. */
function incarnation(node: TreeNode): string {
  return node.pid ? pidToString(node.pid) : node.status;
}
