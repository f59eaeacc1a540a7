/**
 * Reading the supervision tree for the observer, as Erlang's observer does: `which_children` for a
 * supervisor's children, `get_childspec` for their restart types, and `sys:get_status` of each
 * supervisor for its flags (its state record) and of each process for whether it is suspended. A simple_one_for_one supervisor's children (thousands of sessions) are
 * never listed here: `count_children` says how many, and the session table shows them.
 *
 * The one place that knows a supervisor's state record: `processView`.
 */
import { actorPath, isAlive, type Pid } from '../otp/proc_lib.js';
import * as sys from '../otp/sys.js';
import {
  countChildren, getChildspec, whichChildren, type ChildInfo, type SupRef,
} from '../../supervisors/supervisor.js';
import type { History } from './history.js';
import type { NodeView } from './page/protocol.js';

/** How long a look at a busy supervisor may take before the tree shows it without its flags. */
export const INTROSPECT_TIMEOUT_MS = 1000;

export interface SupFlagsView {
  readonly strategy: string;
  readonly intensity: number;
  readonly period: number;
  /** simple_one_for_one: its one spec's id and restart type. */
  readonly dynamic?: { readonly id: string; readonly restart: string };
}

/**
 * A process as the page shows it: the last part of its actor path (`gen_fsm.1234`), unique per
 * incarnation. Not `pidToString`: that prints a registered name, and a session's holds its sid.
 */
export function shortPid(pid: Pid<never> | Pid<unknown>): string {
  const s = actorPath(pid);
  return s.slice(s.lastIndexOf('/') + 1);
}

/** What `sys:get_status` says of a process: suspended or not, and a supervisor's flags. */
export interface ProcessView {
  readonly suspended: boolean;
  /** Present when the process is a supervisor whose state could be read. */
  readonly flags?: SupFlagsView;
}

/**
 * A process's status (`sys:get_status`, answered even while it is suspended), and, for a
 * supervisor, its flags from its state record (as Erlang's observer reads them): strategy,
 * intensity, period. Undefined if it does not answer in time (or has exited).
 */
export async function processView(pid: Pid<never> | Pid<unknown>): Promise<ProcessView | undefined> {
  let status: sys.ProcessStatus;
  try {
    status = await sys.getStatus(pid, INTROSPECT_TIMEOUT_MS);
  } catch {
    return undefined;
  }
  const suspended = status.status === 'suspended';
  const s = status.state;
  if (typeof s !== 'object' || s === null) return { suspended };
  const st = s as { strategy?: unknown; intensity?: { intensity?: unknown; period?: unknown }; dynSpec?: { id?: unknown; restart?: unknown } };
  const intensity = st.intensity?.intensity;
  const period = st.intensity?.period;
  if (typeof st.strategy !== 'string' || typeof intensity !== 'number' || typeof period !== 'number') return { suspended };
  const dyn = st.dynSpec;
  return {
    suspended,
    flags: {
      strategy: st.strategy, intensity, period,
      ...(dyn && typeof dyn.id === 'string' && typeof dyn.restart === 'string' ? { dynamic: { id: dyn.id, restart: dyn.restart } } : {}),
    },
  };
}

/** A supervisor's flags (see {@link processView}). */
export async function supervisorFlags(sup: SupRef): Promise<SupFlagsView | undefined> {
  return (await processView(sup))?.flags;
}

/** Reads trees, remembering child specs' restart types (they never change for an id). */
export class TreeReader {
  readonly #history: History;
  readonly #restartTypes = new Map<string, string>();

  constructor(history: History) {
    this.#history = history;
  }

  /** The tree under `top`, its root named `rootId`. */
  async read(top: SupRef | undefined, rootId: string): Promise<NodeView> {
    if (!top || !isAlive(top)) return { id: rootId, path: rootId, type: 'supervisor', status: 'stopped', restarts: 0 };
    return this.#supervisor(top, rootId, rootId, undefined);
  }

  async #supervisor(sup: SupRef, id: string, path: string, restart: string | undefined): Promise<NodeView> {
    const base = {
      id, path, type: 'supervisor' as const, pid: shortPid(sup),
      restarts: this.#history.restarts(path),
      ...(restart === undefined ? {} : { restart }),
    };
    const view = await processView(sup);
    const flags = view?.flags;
    if (!isAlive(sup)) return { ...base, status: 'stopped' };
    // A suspended supervisor answers only system messages: asking for its children would wait.
    if (view?.suspended) return { ...base, status: 'suspended', ...(flags ? { supervisor: this.#window(path, flags) } : {}) };
    const supervisor = flags ? this.#window(path, flags) : undefined;
    if (flags?.dynamic) {
      let count: number;
      try {
        count = (await countChildren(sup)).active;
      } catch {
        return { ...base, status: 'stopped' };
      }
      const cpath = `${path}/${flags.dynamic.id}`;
      const child: NodeView = {
        id: flags.dynamic.id, path: cpath, type: 'worker', status: count > 0 ? 'running' : 'undefined',
        restart: flags.dynamic.restart, restarts: this.#history.restarts(cpath), dynamic: { count },
      };
      return { ...base, status: 'running', ...(supervisor ? { supervisor } : {}), children: [child] };
    }
    let rows: readonly ChildInfo[];
    try {
      rows = await whichChildren(sup);
    } catch {
      return { ...base, status: 'stopped' };
    }
    const children: NodeView[] = [];
    // OTP lists static children most recently started first; show start order.
    for (const row of [...rows].reverse()) {
      const cid = row.id ?? 'child';
      const cpath = `${path}/${cid}`;
      const pid = typeof row.pid === 'object' ? row.pid : undefined;
      this.#history.seen(cpath, pid ? actorPath(pid) : undefined);
      const rtype = await this.#restartType(sup, cpath, cid);
      if (row.type === 'supervisor' && pid) {
        children.push(await this.#supervisor(pid as SupRef, cid, cpath, rtype));
        continue;
      }
      const suspended = pid !== undefined && (await processView(pid))?.suspended === true;
      children.push({
        id: cid, path: cpath, type: row.type,
        status: suspended ? 'suspended' : pid ? 'running' : row.pid === 'restarting' ? 'restarting' : 'undefined',
        restarts: this.#history.restarts(cpath),
        ...(pid ? { pid: shortPid(pid) } : {}),
        ...(row.name !== undefined && row.name !== cid ? { name: row.name } : {}),
        ...(rtype === undefined ? {} : { restart: rtype }),
      });
    }
    return { ...base, status: 'running', ...(supervisor ? { supervisor } : {}), children };
  }

  #window(path: string, f: SupFlagsView): { strategy: string; intensity: number; period: number; restartsInWindow: number } {
    return { strategy: f.strategy, intensity: f.intensity, period: f.period, restartsInWindow: this.#history.restartsInWindow(path, f.period) };
  }

  async #restartType(sup: SupRef, path: string, id: string): Promise<string | undefined> {
    const known = this.#restartTypes.get(path);
    if (known !== undefined) return known;
    try {
      const r = await getChildspec(sup, id);
      if (!('ok' in r)) return undefined;
      this.#restartTypes.set(path, r.ok.restart);
      return r.ok.restart;
    } catch {
      return undefined;
    }
  }
}

/** The process at `path` (`comet_sup/session_ids`) under `top`, found through `whichChildren`. */
export async function findProcess(top: SupRef | undefined, rootId: string, path: string): Promise<{ pid: Pid<never>; sup: SupRef | undefined } | undefined> {
  if (!top || !isAlive(top)) return undefined;
  const parts = path.split('/');
  if (parts[0] !== rootId) return undefined;
  let sup: SupRef = top;
  let parent: SupRef | undefined;
  for (const id of parts.slice(1)) {
    if ((await processView(sup))?.suspended !== false) return undefined;
    const rows = await whichChildren(sup);
    const row = rows.find((r) => r.id === id);
    if (!row || typeof row.pid !== 'object') return undefined;
    parent = sup;
    sup = row.pid as SupRef;
  }
  return { pid: sup as unknown as Pid<never>, sup: parent };
}
