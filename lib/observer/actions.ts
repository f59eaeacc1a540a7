/**
 * Fault injection from the observer, with the OTP layer's own exits:
 *
 * - `kill`: `exit(Pid, kill)`, proc_lib's `kill`: no terminate, reason `killed`;
 * - `error`: an exit with an Error as reason (terminate runs: every process here traps exits);
 * - `shutdown`: an exit with reason `shutdown`, as a supervisor stops a child.
 *
 * `suspend` / `resume` are `sys:suspend` / `sys:resume`: a suspended process handles only system
 * messages (and a supervisor's shutdown, or a kill); what else it is sent waits, in order.
 *
 * The supervisor sees each exit as its child's and does what its restart type says. A crash storm
 * crashes one child `intensity + 1` times, each time once its restart is seen, so the supervisor's
 * window fills and it gives up: the escalation goes up the tree from there.
 */
import { isAlive, kill, shutdown, type Pid } from '../otp/proc_lib.js';
import { getChildspec, whichChildren, type SupRef } from '../../supervisors/supervisor.js';
import { findProcess, processView } from './introspect.js';
import * as sys from '../otp/sys.js';
import type { CrashReason } from './page/protocol.js';

/** How long a crash may wait for the process's terminate before it is killed (a child's default shutdown). */
export const CRASH_SHUTDOWN_MS = 5000;
/** How long a storm waits for each restart before it stops. */
export const STORM_RESTART_WAIT_MS = 2000;
/** The most crashes one storm makes, whatever the intensity. */
export const MAX_STORM_CRASHES = 100;

/** Exit `pid` with `reason`; resolves once it has exited. */
export function crash(pid: Pid<never>, reason: CrashReason): Promise<void> {
  switch (reason) {
    case 'kill':
      kill(pid);
      return Promise.resolve();
    case 'error':
      return shutdown(pid, new Error('crashed from the observer'), CRASH_SHUTDOWN_MS);
    case 'shutdown':
      return shutdown(pid, 'shutdown', CRASH_SHUTDOWN_MS);
  }
}

/** `sys:suspend` or `sys:resume` of `pid`. */
export function suspendOrResume(pid: Pid<never>, op: 'suspend' | 'resume'): Promise<void> {
  return op === 'suspend' ? sys.suspend(pid) : sys.resume(pid);
}

/** What a storm will do, decided before it starts (so the request can be refused at once). */
export type StormPlan =
  | { readonly ok: true; readonly supervisor: SupRef; readonly child: string; readonly crashes: number }
  | { readonly ok: false; readonly code: 'observer_unknown_target' | 'observer_storm_impossible'; readonly message: string };

/**
 * Plan a storm on the supervisor at `path`: its first running child that is not temporary (a
 * temporary child is never restarted, so crashing it fills no window), `intensity + 1` times.
 */
export async function planStorm(top: SupRef | undefined, rootId: string, path: string): Promise<StormPlan> {
  const found = await findProcess(top, rootId, path);
  if (!found) return { ok: false, code: 'observer_unknown_target', message: 'no such supervisor running' };
  const sup = found.pid as unknown as SupRef;
  const view = await processView(sup);
  const flags = view?.flags;
  if (!flags) return { ok: false, code: 'observer_unknown_target', message: 'not a supervisor' };
  if (view.suspended) return { ok: false, code: 'observer_storm_impossible', message: 'the supervisor is suspended: resume it first' };
  if (flags.dynamic) return { ok: false, code: 'observer_storm_impossible', message: 'a simple_one_for_one supervisor: crash its parent\'s children instead' };
  const rows = [...(await whichChildren(sup))].reverse();
  for (const row of rows) {
    if (row.id === undefined || typeof row.pid !== 'object') continue;
    const spec = await getChildspec(sup, row.id);
    if ('ok' in spec && spec.ok.restart !== 'temporary') {
      return { ok: true, supervisor: sup, child: row.id, crashes: Math.min(flags.intensity + 1, MAX_STORM_CRASHES) };
    }
  }
  return { ok: false, code: 'observer_storm_impossible', message: 'no running child that would be restarted' };
}

/** Run a planned storm: crash, wait for the restart, again. Resolves with the crashes made. */
export async function runStorm(plan: Extract<StormPlan, { ok: true }>, sleep: (ms: number) => Promise<void>): Promise<number> {
  let made = 0;
  let last: Pid<never> | undefined;
  for (let i = 0; i < plan.crashes; i++) {
    const pid = await waitForChild(plan.supervisor, plan.child, last, sleep);
    if (!pid) break;
    last = pid;
    kill(pid);
    made++;
  }
  return made;
}

async function waitForChild(sup: SupRef, id: string, not: Pid<never> | undefined, sleep: (ms: number) => Promise<void>): Promise<Pid<never> | undefined> {
  for (let waited = 0; waited <= STORM_RESTART_WAIT_MS; waited += 10) {
    if (!isAlive(sup)) return undefined;
    let rows;
    try {
      rows = await whichChildren(sup);
    } catch {
      return undefined;
    }
    const pid = rows.find((r) => r.id === id)?.pid;
    if (typeof pid === 'object' && pid !== not) return pid;
    await sleep(10);
  }
  return undefined;
}
