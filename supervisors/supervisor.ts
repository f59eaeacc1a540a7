/**
 * supervisor on nact: OTP's supervisor behaviour, built the way OTP builds it — as a gen_server.
 * The public functions only send a call to the supervisor process; starting, stopping and
 * restarting children, and the restart intensity, all run inside it, one message at a time. A
 * child's exit reaches the supervisor as an `EXIT` info message (its link's `onExit`), so a
 * restart, and the new child's init, run inside the supervisor's handler, as in OTP.
 *
 * - Children start in order and stop in reverse order; a child that fails to start makes the
 *   supervisor's start fail with `{ shutdown: { failed_to_start_child, reason } }`.
 * - Restart types (permanent, transient, temporary) decide as OTP's `do_restart` (child_spec.ts).
 * - Strategies: one_for_one, one_for_all, rest_for_one, simple_one_for_one.
 * - More than `intensity` restarts within `period` seconds: the supervisor stops all its children
 *   (reverse order, each with its shutdown) and exits with reason `shutdown`; its parent sees that.
 * - A restart whose start fails is retried through the mailbox (OTP's `try_again_restart`), so
 *   other requests, a shutdown among them, are served in between; each retry counts.
 *
 * Every incarnation of a child has a new Pid: messages sent to the old Pid are dropped, calls to
 * it reject (ERR_OTP_NOPROC / ERR_OTP_EXIT). A registered name moves to the new incarnation.
 *
 * Exports, in OTP's order: types, defaults, the API, then the gen_server callbacks and helpers.
 */
import type { Clock } from '../lib/otp/clock.js';
import { describe, isNormalExit, type ExitReason } from '../lib/otp/errors.js';
import * as genServer from '../lib/otp/gen_server.js';
import type { GenServer } from '../lib/otp/gen_server.js';
import type { Logger } from '../lib/otp/logger.js';
import type { ParentRef } from '../lib/otp/nact.js';
import * as proc from '../lib/otp/proc_lib.js';
import type { Link, Pid, Shutdown, StartOptions } from '../lib/otp/proc_lib.js';
import {
  checkChildSpec, checkChildSpecs, isReportedExit, restartDecision,
  type ChildRecordSpec, type ChildSpec, type ChildSpecError, type ChildType,
} from './child_spec.js';
import { RestartIntensity } from './restart_intensity.js';

export {
  DEFAULT_RESTART, DEFAULT_CHILD_TYPE, DEFAULT_WORKER_SHUTDOWN, DEFAULT_SUPERVISOR_SHUTDOWN,
  checkChildSpecs, restartDecision,
} from './child_spec.js';
export type { ChildSpec, ChildRecordSpec, ChildSpecError, ChildType, RestartType, RestartDecision } from './child_spec.js';

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** OTP's restart strategies. */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one';

/** OTP's sup_flags: strategy, and at most `intensity` restarts within `period` seconds. */
export interface SupFlags {
  readonly strategy?: Strategy;
  readonly intensity?: number;
  readonly period?: number;
}

/** OTP's default strategy. */
export const DEFAULT_STRATEGY: Strategy = 'one_for_one';
/** OTP's default maximum restart intensity: 1 restart ... */
export const DEFAULT_INTENSITY = 1;
/** ... within 5 seconds. */
export const DEFAULT_PERIOD = 5;
/**
 * The timeout the API functions pass to their calls: 2^31-1 ms, which proc_lib treats as OTP's
 * `infinity` (no timer is armed; the call waits for ever), since a supervisor busy restarting a
 * subtree is not dead. A dead supervisor still rejects at once (ERR_OTP_NOPROC / ERR_OTP_EXIT).
 */
export const SUPERVISOR_CALL_TIMEOUT = 2_147_483_647;

declare const extraArgs: unique symbol;
/**
 * A running supervisor. `Extra` is what `startChild` takes for a simple_one_for_one supervisor
 * (the extra arguments of its child spec's `start`).
 */
export type SupRef<Extra extends unknown[] = unknown[]> =
  genServer.ServerRef<SupCall, SupReply, never, SupInfo> & { readonly [extraArgs]?: Extra };

/** Why the supervisor flags were rejected (`{ supervisor_data: ... }`). */
export type FlagsError =
  | { readonly invalid_type: unknown }
  | { readonly invalid_strategy: unknown }
  | { readonly invalid_intensity: unknown }
  | { readonly invalid_period: unknown };

/** A child's start function returned an error, returned something else, or threw. */
export interface ChildStartError {
  readonly failed_to_start_child: string;
  readonly reason: unknown;
}

/** Why `startSupervisor` / `startLink` failed. */
export type SupStartError =
  | { readonly supervisor_data: FlagsError }
  | { readonly start_spec: ChildSpecError }
  /** simple_one_for_one needs exactly one child spec; holds what was given. */
  | { readonly bad_start_spec: readonly unknown[] }
  /** A child failed to start; the children started before it were stopped in reverse order. */
  | { readonly shutdown: ChildStartError }
  /** `opts.name` is registered to another process. */
  | { readonly already_started: Pid<never> }
  /** The parent is not running (OtpError `ERR_OTP_NOPROC`). */
  | Error;

/** What `startSupervisor` / `startLink` resolve to. */
export type SupStartResult<Extra extends unknown[] = unknown[]> = { readonly ok: SupRef<Extra> } | { readonly error: SupStartError };

/** `startChild` errors, as OTP's `startchild_err()`. */
export type StartChildError =
  | { readonly already_started: Pid<never> }
  | { readonly already_present: string }
  | ChildSpecError
  | ChildStartError
  /** A spec given to a simple_one_for_one supervisor, which takes extra arguments instead. */
  | 'simple_one_for_one';

/**
 * `{ ok: pid }`, `{ ignore: true }` when the child's init returned ignore (OTP's `{ok, undefined}`:
 * here the same value proc_lib's start uses, so the result is a `StartResult`), or `{ error }`.
 */
export type StartChildResult = { readonly ok: Pid<never> } | { readonly ignore: true } | { readonly error: StartChildError };
export type TerminateChildResult = 'ok' | { readonly error: 'not_found' | 'simple_one_for_one' };
export type RestartChildResult =
  | { readonly ok: Pid<never> }
  | { readonly ignore: true }
  | { readonly error: 'running' | 'restarting' | 'not_found' | 'simple_one_for_one' | ChildStartError };
export type DeleteChildResult = 'ok' | { readonly error: 'running' | 'restarting' | 'not_found' | 'simple_one_for_one' };
export type GetChildspecResult = { readonly ok: ChildRecordSpec } | { readonly error: 'not_found' };

/** One row of `whichChildren`, as OTP's `{Id, Child, Type, Modules}` plus the registered name. */
export interface ChildInfo {
  /** The spec's id; `undefined` for the dynamic children of a simple_one_for_one supervisor. */
  readonly id: string | undefined;
  /** The running Pid, `'restarting'` while a failed restart waits for its retry, or `undefined`. */
  readonly pid: Pid<never> | 'restarting' | undefined;
  readonly type: ChildType;
  /** `registeredName(pid)`, when the child is running under a registered name. */
  readonly name?: string;
}

/** OTP's count_children: specs, running children, and children of each type. */
export interface ChildCounts {
  readonly specs: number;
  readonly active: number;
  readonly supervisors: number;
  readonly workers: number;
}

/** What the supervisor did about an event, in its reports. */
export type SupervisorAction = 'restart' | 'keep' | 'remove' | 'retry' | 'abort' | 'shutdown' | 'stopped';

/**
 * What a supervisor reports through its logger (OTP's supervisor report): `child_terminated`
 * (a child exited on its own), `start_error`, `shutdown_error` (a child stopped by the supervisor
 * exited with an unexpected reason, e.g. `killed` after its shutdown time) and `shutdown`
 * (`reached_max_restart_intensity`: the supervisor gives up).
 */
export interface SupervisorReport {
  readonly supervisor: string;
  readonly errorContext: 'child_terminated' | 'start_error' | 'shutdown_error' | 'shutdown';
  readonly strategy: Strategy;
  readonly child: string | undefined;
  readonly pid: string | undefined;
  readonly reason: string;
  readonly action: SupervisorAction;
}

/** The requests the supervisor process serves (internal; use the API functions). */
export type SupCall =
  | { readonly tag: 'start_child'; readonly arg: unknown }
  | { readonly tag: 'terminate_child'; readonly target: string | Pid<never> }
  | { readonly tag: 'restart_child'; readonly id: string }
  | { readonly tag: 'delete_child'; readonly id: string }
  | { readonly tag: 'get_childspec'; readonly target: string | Pid<never> }
  | { readonly tag: 'which_children' }
  | { readonly tag: 'count_children' };

/** The replies, one type per request (internal). */
export type SupReply =
  | StartChildResult | TerminateChildResult | RestartChildResult | DeleteChildResult
  | GetChildspecResult | readonly ChildInfo[] | ChildCounts;

/** The info messages the supervisor handles (internal): its children's exits and its retries. */
export type SupInfo =
  | { readonly tag: 'EXIT'; readonly pid: Pid<never>; readonly reason: ExitReason }
  | { readonly tag: 'try_again_restart'; readonly target: RestartTarget };

/** A child waiting for a retried restart: a static child by id, a dynamic one by its token. */
export type RestartTarget = { readonly id: string } | { readonly token: DynRestarting };
/** A dynamic child whose restart failed (OTP's `{restarting, OldPid}` key). */
export interface DynRestarting {
  readonly oldPid: Pid<never> | undefined;
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * Start a supervisor under `parent` (the actor system, or any actor), start its children in
 * order, and resolve once they all run. Pass `opts.onExit` to hear when the supervisor exits
 * (e.g. `'shutdown'` after its restart intensity was exceeded), `opts.logger` for its reports,
 * `opts.clock` for intensity windows and shutdown timers.
 * @example
 * const r = await startSupervisor(system, { strategy: 'one_for_one', intensity: 3, period: 5 }, [
 *   { id: 'session_ids', start: (link) => genServer.startLink(link, sessionIds, undefined) },
 * ], { name: 'comet_sup', onExit: (_pid, reason) => console.error('tree stopped:', reason) });
 * if ('error' in r) throw new Error(`supervisor failed to start: ${JSON.stringify(r.error)}`);
 */
export function startSupervisor<Extra extends unknown[] = []>(
  parent: ParentRef, flags: SupFlags, specs: readonly ChildSpec<Extra>[], opts: StartOptions = {},
): Promise<SupStartResult<Extra>> {
  const args = prepare(flags, specs);
  if ('error' in args) return Promise.resolve(args);
  return genServer.start(parent, supervisor, args.ok, opts).then(asSupStart<Extra>);
}

/**
 * Start a supervisor as the child of another supervisor (`supervisor:start_link/2`); use it in a
 * child spec of type `'supervisor'`.
 * @example
 * const sessionsSpec: ChildSpec = {
 *   id: 'sessions_sup', type: 'supervisor',
 *   start: (link) => startLink(link, { strategy: 'simple_one_for_one' }, [sessionSpec]),
 * };
 */
export function startLink<Extra extends unknown[] = []>(
  link: Link, flags: SupFlags, specs: readonly ChildSpec<Extra>[], opts: StartOptions = {},
): Promise<SupStartResult<Extra>> {
  const args = prepare(flags, specs);
  if ('error' in args) return Promise.resolve(args);
  return genServer.startLink(link, supervisor, args.ok, opts).then(asSupStart<Extra>);
}

/**
 * Add a child: a child spec for one_for_one, one_for_all and rest_for_one; the extra arguments
 * of the one spec for simple_one_for_one (`start(link, ...extra)`).
 * @example
 * await startChild(sessionsSup, [sid]); // { ok: pid }
 */
export function startChild<Extra extends unknown[]>(sup: SupRef<Extra>, extra: Extra): Promise<StartChildResult>;
export function startChild(sup: SupRef, spec: ChildSpec): Promise<StartChildResult>;
export function startChild(sup: SupRef, arg: unknown): Promise<StartChildResult> {
  return request(sup, { tag: 'start_child', arg });
}

/**
 * Stop a child (with its shutdown) and keep its spec, unless it is temporary. For
 * simple_one_for_one, pass the child's Pid; an id gives `{ error: 'simple_one_for_one' }`.
 */
export function terminateChild(sup: SupRef, idOrPid: string | Pid<never>): Promise<TerminateChildResult> {
  return request(sup, { tag: 'terminate_child', target: idOrPid });
}

/** Start again a child that was terminated (its spec kept). Does not count toward intensity. */
export function restartChild(sup: SupRef, id: string): Promise<RestartChildResult> {
  return request(sup, { tag: 'restart_child', id });
}

/** Forget the spec of a child that is not running. */
export function deleteChild(sup: SupRef, id: string): Promise<DeleteChildResult> {
  return request(sup, { tag: 'delete_child', id });
}

/** The spec of a child, every default filled in. */
export function getChildspec(sup: SupRef, idOrPid: string | Pid<never>): Promise<GetChildspecResult> {
  return request(sup, { tag: 'get_childspec', target: idOrPid });
}

/** Every child, most recently started first, as OTP lists them. */
export function whichChildren(sup: SupRef): Promise<readonly ChildInfo[]> {
  return request(sup, { tag: 'which_children' });
}

/** Counts of specs, running children, supervisors and workers. */
export function countChildren(sup: SupRef): Promise<ChildCounts> {
  return request(sup, { tag: 'count_children' });
}

/**
 * Stop a supervisor: it stops its children in reverse start order (each runs its terminate),
 * then exits with `reason`. Resolves once it has.
 */
export function stop(sup: SupRef, reason: ExitReason = 'shutdown', timeout: Shutdown = 'infinity'): Promise<void> {
  return genServer.stop(sup, reason, timeout);
}

function request<R extends SupReply>(sup: SupRef, req: SupCall): Promise<R> {
  // The reply type follows the request's tag; the handler below keeps that pairing.
  return genServer.call(sup, req, SUPERVISOR_CALL_TIMEOUT) as Promise<R>;
}

function asSupStart<Extra extends unknown[]>(r: proc.StartResult<SupRef>): SupStartResult<Extra> {
  // The supervisor's init never returns ignore; its errors are the SupStartError values.
  if ('ok' in r) return { ok: r.ok as SupRef<Extra> };
  return { error: 'error' in r ? (r.error as SupStartError) : new Error('supervisor init ignored') };
}

// ---------------------------------------------------------------------------------------------
// gen_server callbacks
// ---------------------------------------------------------------------------------------------

interface SupArgs {
  readonly strategy: Strategy;
  readonly intensity: number;
  readonly period: number;
  readonly specs: readonly ChildRecordSpec[];
}

interface StaticChild {
  readonly spec: ChildRecordSpec;
  pid: Pid<never> | undefined;
  /** A restart failed and a retry is queued (OTP's `{restarting, Pid}`). */
  restarting: boolean;
}

interface SupState {
  readonly strategy: Strategy;
  readonly intensity: RestartIntensity;
  readonly self: SupRef;
  readonly link: Link;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Static children: ids in start order, records by id, and ids by running Pid. */
  ids: string[];
  readonly children: Map<string, StaticChild>;
  readonly byPid: Map<Pid<never>, string>;
  /** simple_one_for_one: the spec, running children (Pid -> extra args), failed restarts. */
  readonly dynSpec: ChildRecordSpec | undefined;
  readonly dynamics: Map<Pid<never>, readonly unknown[]>;
  readonly dynRestarting: Map<DynRestarting, readonly unknown[]>;
}

const supervisor: GenServer<SupArgs, SupState, SupCall, SupReply, never, SupInfo> = {
  async init(args, ctx) {
    const self = ctx.self as SupRef;
    const state: SupState = {
      strategy: args.strategy,
      intensity: new RestartIntensity(args.intensity, args.period, ctx.clock),
      self,
      // Every child is linked to the supervisor: its exit arrives as an EXIT info message.
      link: { parent: proc.childContainer(self), onExit: (pid, reason) => genServer.info(self, { tag: 'EXIT', pid, reason }) },
      logger: ctx.logger,
      clock: ctx.clock,
      ids: [],
      children: new Map(),
      byPid: new Map(),
      dynSpec: args.strategy === 'simple_one_for_one' ? args.specs[0] : undefined,
      dynamics: new Map(),
      dynRestarting: new Map(),
    };
    if (state.dynSpec) return { ok: state };
    for (const spec of args.specs) {
      state.ids.push(spec.id);
      state.children.set(spec.id, { spec, pid: undefined, restarting: false });
    }
    const failed = await startChildren(state, state.ids, 'abort');
    if (failed) {
      await terminateChildren(state, state.ids);
      return { stop: { shutdown: failed } };
    }
    return { ok: state };
  },

  async handleCall(req, _from, state) {
    switch (req.tag) {
      case 'start_child':
        return { reply: await handleStartChild(state, req.arg), state };
      case 'terminate_child':
        return { reply: await handleTerminateChild(state, req.target), state };
      case 'restart_child':
        return { reply: await handleRestartChild(state, req.id), state };
      case 'delete_child':
        return { reply: handleDeleteChild(state, req.id), state };
      case 'get_childspec':
        return { reply: handleGetChildspec(state, req.target), state };
      case 'which_children':
        return { reply: whichChildrenOf(state), state };
      case 'count_children':
        return { reply: countChildrenOf(state), state };
    }
  },

  async handleInfo(msg, state) {
    switch (msg.tag) {
      case 'EXIT': {
        const target = findByPid(state, msg.pid);
        // Not ours any more: a child we stopped ourselves, or an older incarnation.
        if (!target) return { noreply: true, state };
        return afterRestart(await childExited(state, target, msg.reason), state);
      }
      case 'try_again_restart': {
        const target = stillRestarting(state, msg.target);
        // terminate_child or delete_child ran in between: nothing left to retry.
        if (!target) return { noreply: true, state };
        return afterRestart(await restart(state, target), state);
      }
    }
  },

  async terminate(_reason, state) {
    if (state.dynSpec) await terminateDynamicChildren(state, state.dynSpec);
    else await terminateChildren(state, state.ids);
  },
};

function afterRestart(verdict: 'ok' | 'shutdown', state: SupState): genServer.NoReplyResult<SupState> {
  return verdict === 'ok' ? { noreply: true, state } : { stop: 'shutdown', state };
}

// ---------------------------------------------------------------------------------------------
// Start: flags and specs, children
// ---------------------------------------------------------------------------------------------

function prepare<Extra extends unknown[]>(flags: SupFlags, specs: readonly ChildSpec<Extra>[]): { readonly ok: SupArgs } | { readonly error: SupStartError } {
  const f = checkFlags(flags);
  if ('error' in f) return { error: { supervisor_data: f.error } };
  if (!Array.isArray(specs)) return { error: { start_spec: { invalid_child_spec: specs } } };
  if (f.ok.strategy === 'simple_one_for_one' && specs.length !== 1) return { error: { bad_start_spec: specs } };
  const checked = checkChildSpecs<Extra>(specs);
  if ('error' in checked) return { error: { start_spec: checked.error } };
  // Extra arguments are only ever applied to the simple_one_for_one spec, as startChild typed them.
  return { ok: { ...f.ok, specs: checked.ok as unknown as readonly ChildRecordSpec[] } };
}

function checkFlags(flags: unknown): { readonly ok: Omit<SupArgs, 'specs'> } | { readonly error: FlagsError } {
  if (typeof flags !== 'object' || flags === null) return { error: { invalid_type: flags } };
  const f = flags as Record<keyof SupFlags, unknown>;
  const strategy = f.strategy ?? DEFAULT_STRATEGY;
  const intensity = f.intensity ?? DEFAULT_INTENSITY;
  const period = f.period ?? DEFAULT_PERIOD;
  if (strategy !== 'one_for_one' && strategy !== 'one_for_all' && strategy !== 'rest_for_one' && strategy !== 'simple_one_for_one') {
    return { error: { invalid_strategy: strategy } };
  }
  if (!Number.isInteger(intensity) || (intensity as number) < 0) return { error: { invalid_intensity: intensity } };
  if (!Number.isInteger(period) || (period as number) <= 0) return { error: { invalid_period: period } };
  return { ok: { strategy, intensity: intensity as number, period: period as number } };
}

type Started = { readonly ok: Pid<never> } | { readonly ignore: true } | { readonly error: unknown };

/** Run a start function; whatever goes wrong (error result, bad value, throw) is `{ error }`. */
async function startProcess(state: SupState, spec: ChildRecordSpec, extra: readonly unknown[]): Promise<Started> {
  try {
    const r: unknown = await spec.start(state.link, ...extra);
    if (typeof r === 'object' && r !== null) {
      if ('ok' in r && typeof r.ok === 'object' && r.ok !== null) return { ok: r.ok as Pid<never> };
      if ('ignore' in r && r.ignore === true) return { ignore: true };
      if ('error' in r) return { error: r.error };
    }
    return { error: { bad_return_value: r } };
  } catch (err) {
    return { error: err };
  }
}

/**
 * Start the given static children in order (OTP's `start_children`). Returns the first failure:
 * the failed child and those after it are left not running.
 */
async function startChildren(state: SupState, ids: readonly string[], onError: 'abort' | 'retry'): Promise<ChildStartError | undefined> {
  for (const id of [...ids]) {
    const child = state.children.get(id);
    if (!child) continue;
    const r = await startProcess(state, child.spec, []);
    if ('ok' in r) {
      setPid(state, child, r.ok);
      progress(state, child.spec, r.ok);
    } else if ('ignore' in r) {
      if (child.spec.restart === 'temporary') removeChild(state, id);
    } else {
      report(state, 'start_error', child.spec.id, undefined, r.error, onError);
      return { failed_to_start_child: id, reason: r.error };
    }
  }
  return undefined;
}

async function handleStartChild(state: SupState, arg: unknown): Promise<StartChildResult> {
  if (state.dynSpec) {
    if (!Array.isArray(arg)) return { error: 'simple_one_for_one' };
    const spec = state.dynSpec;
    const r = await startProcess(state, spec, arg);
    if ('ok' in r) {
      // Temporary children are never restarted: their arguments are not worth keeping.
      state.dynamics.set(r.ok, spec.restart === 'temporary' ? NO_ARGS : [...(arg as unknown[])]);
      return { ok: r.ok };
    }
    if ('ignore' in r) return r;
    return { error: startError(spec.id, r.error) };
  }
  const checked = checkChildSpec(arg);
  if ('error' in checked) return { error: checked.error };
  const spec: ChildRecordSpec = checked.ok;
  const existing = state.children.get(spec.id);
  if (existing) return { error: existing.pid ? { already_started: existing.pid } : { already_present: spec.id } };
  const r = await startProcess(state, spec, []);
  if ('error' in r) return { error: startError(spec.id, r.error) };
  if ('ignore' in r && spec.restart === 'temporary') return r;
  const child: StaticChild = { spec, pid: undefined, restarting: false };
  state.ids.push(spec.id);
  state.children.set(spec.id, child);
  if ('ok' in r) {
    setPid(state, child, r.ok);
    progress(state, spec, r.ok);
    return { ok: r.ok };
  }
  return { ignore: true };
}

function startError(id: string, reason: unknown): StartChildError {
  // A name clash is passed through as OTP does, so callers can find the running process.
  if (typeof reason === 'object' && reason !== null && 'already_started' in reason) return reason as { already_started: Pid<never> };
  return { failed_to_start_child: id, reason };
}

const NO_ARGS: readonly unknown[] = Object.freeze([]);

// ---------------------------------------------------------------------------------------------
// Child management requests
// ---------------------------------------------------------------------------------------------

async function handleTerminateChild(state: SupState, target: string | Pid<never>): Promise<TerminateChildResult> {
  if (state.dynSpec) {
    if (typeof target === 'string') return { error: 'simple_one_for_one' };
    const spec = state.dynSpec;
    if (state.dynamics.has(target)) {
      state.dynamics.delete(target);
      await stopChild(state, spec, target);
      return 'ok';
    }
    for (const token of state.dynRestarting.keys()) {
      if (token.oldPid === target) {
        state.dynRestarting.delete(token);
        return 'ok';
      }
    }
    // A dead process is as good as terminated; a live one that is not ours is not found.
    return proc.isAlive(target) ? { error: 'not_found' } : 'ok';
  }
  if (typeof target !== 'string') return { error: 'not_found' };
  const child = state.children.get(target);
  if (!child) return { error: 'not_found' };
  if (child.pid) await stopChild(state, child.spec, child.pid);
  delChild(state, child);
  return 'ok';
}

async function handleRestartChild(state: SupState, id: string): Promise<RestartChildResult> {
  if (state.dynSpec) return { error: 'simple_one_for_one' };
  const child = state.children.get(id);
  if (!child) return { error: 'not_found' };
  if (child.restarting) return { error: 'restarting' };
  if (child.pid) return { error: 'running' };
  const r = await startProcess(state, child.spec, []);
  if ('ok' in r) {
    setPid(state, child, r.ok);
    progress(state, child.spec, r.ok);
    return { ok: r.ok };
  }
  if ('ignore' in r) return r;
  return { error: { failed_to_start_child: id, reason: r.error } };
}

function handleDeleteChild(state: SupState, id: string): DeleteChildResult {
  if (state.dynSpec) return { error: 'simple_one_for_one' };
  const child = state.children.get(id);
  if (!child) return { error: 'not_found' };
  if (child.restarting) return { error: 'restarting' };
  if (child.pid) return { error: 'running' };
  removeChild(state, id);
  return 'ok';
}

function handleGetChildspec(state: SupState, target: string | Pid<never>): GetChildspecResult {
  const spec = state.dynSpec;
  if (spec) {
    const found = typeof target === 'string' ? target === spec.id : state.dynamics.has(target);
    return found ? { ok: spec } : { error: 'not_found' };
  }
  const child = typeof target === 'string' ? state.children.get(target) : undefined;
  return child ? { ok: child.spec } : { error: 'not_found' };
}

function whichChildrenOf(state: SupState): readonly ChildInfo[] {
  const rows: ChildInfo[] = [];
  const spec = state.dynSpec;
  if (spec) {
    for (const pid of state.dynamics.keys()) rows.push(info(undefined, pid, spec.type));
    for (let n = state.dynRestarting.size; n > 0; n--) rows.push({ id: undefined, pid: 'restarting', type: spec.type });
    return rows;
  }
  for (let i = state.ids.length - 1; i >= 0; i--) {
    const child = state.children.get(state.ids[i] as string) as StaticChild;
    rows.push(child.restarting
      ? { id: child.spec.id, pid: 'restarting', type: child.spec.type }
      : info(child.spec.id, child.pid, child.spec.type));
  }
  return rows;
}

function info(id: string | undefined, pid: Pid<never> | undefined, type: ChildType): ChildInfo {
  const name = pid ? proc.registeredName(pid) : undefined;
  return name === undefined ? { id, pid, type } : { id, pid, type, name };
}

function countChildrenOf(state: SupState): ChildCounts {
  const spec = state.dynSpec;
  if (spec) {
    const all = state.dynamics.size + state.dynRestarting.size;
    return {
      specs: 1,
      active: state.dynamics.size,
      supervisors: spec.type === 'supervisor' ? all : 0,
      workers: spec.type === 'worker' ? all : 0,
    };
  }
  let active = 0;
  let supervisors = 0;
  for (const child of state.children.values()) {
    if (child.pid && proc.isAlive(child.pid)) active++;
    if (child.spec.type === 'supervisor') supervisors++;
  }
  return { specs: state.children.size, active, supervisors, workers: state.children.size - supervisors };
}

// ---------------------------------------------------------------------------------------------
// Restart: a child has exited
// ---------------------------------------------------------------------------------------------

/** A child the supervisor knows by Pid: static (by id) or dynamic (with its extra arguments). */
type Found =
  | { readonly kind: 'static'; readonly child: StaticChild }
  | {
    readonly kind: 'dynamic';
    readonly spec: ChildRecordSpec;
    readonly pid: Pid<never> | undefined;
    readonly token: DynRestarting | undefined;
    readonly args: readonly unknown[];
  };

function findByPid(state: SupState, pid: Pid<never>): Found | undefined {
  if (state.dynSpec) {
    const args = state.dynamics.get(pid);
    return args === undefined ? undefined : { kind: 'dynamic', spec: state.dynSpec, pid, token: undefined, args };
  }
  const id = state.byPid.get(pid);
  const child = id === undefined ? undefined : state.children.get(id);
  return child?.pid === pid ? { kind: 'static', child } : undefined;
}

function stillRestarting(state: SupState, target: RestartTarget): Found | undefined {
  if ('id' in target) {
    const child = state.children.get(target.id);
    return child?.restarting ? { kind: 'static', child } : undefined;
  }
  const args = state.dynRestarting.get(target.token);
  if (args === undefined || !state.dynSpec) return undefined;
  return { kind: 'dynamic', spec: state.dynSpec, pid: undefined, token: target.token, args };
}

/** OTP's `do_restart`: the restart type and the exit reason decide; then strategy and intensity. */
async function childExited(state: SupState, found: Found, reason: ExitReason): Promise<'ok' | 'shutdown'> {
  const spec = found.kind === 'static' ? found.child.spec : found.spec;
  const pid = found.kind === 'static' ? found.child.pid : found.pid;
  const decision = restartDecision(spec.restart, reason);
  if (isReportedExit(spec.restart, reason)) report(state, 'child_terminated', spec.id, pid, reason, decision);
  if (decision === 'restart') return restart(state, found);
  forget(state, found);
  return 'ok';
}

/** Count the restart; past the intensity give up, else restart as the strategy says. */
async function restart(state: SupState, found: Found): Promise<'ok' | 'shutdown'> {
  if (state.intensity.add() === 'terminate') {
    const spec = found.kind === 'static' ? found.child.spec : found.spec;
    report(state, 'shutdown', spec.id, found.kind === 'static' ? found.child.pid : found.pid, 'reached_max_restart_intensity', 'shutdown');
    forget(state, found);
    return 'shutdown';
  }
  if (found.kind === 'dynamic') {
    await restartDynamic(state, found);
    return 'ok';
  }
  const child = found.child;
  switch (state.strategy) {
    case 'one_for_one':
    case 'simple_one_for_one':
      await restartOne(state, child);
      return 'ok';
    case 'rest_for_one':
      await restartMultiple(state, child, state.ids.slice(state.ids.indexOf(child.spec.id)));
      return 'ok';
    case 'one_for_all':
      await restartMultiple(state, child, state.ids);
      return 'ok';
  }
}

async function restartOne(state: SupState, child: StaticChild): Promise<void> {
  clearPid(state, child);
  const r = await startProcess(state, child.spec, []);
  if ('ok' in r) {
    setPid(state, child, r.ok);
    progress(state, child.spec, r.ok);
  } else if ('error' in r) {
    child.restarting = true;
    report(state, 'start_error', child.spec.id, undefined, r.error, 'retry');
    tryAgain(state, { id: child.spec.id });
  }
}

/**
 * one_for_all and rest_for_one: stop the others of the group in reverse start order (temporary
 * ones are dropped, never restarted), then start the group in start order. If one fails, it is
 * marked restarting and retried through the mailbox; the retry restarts the group again.
 */
async function restartMultiple(state: SupState, child: StaticChild, group: readonly string[]): Promise<void> {
  clearPid(state, child);
  await terminateChildren(state, group);
  const failed = await startChildren(state, group, 'retry');
  if (failed) {
    const f = state.children.get(failed.failed_to_start_child);
    if (f) f.restarting = true;
    tryAgain(state, { id: failed.failed_to_start_child });
  }
}

async function restartDynamic(state: SupState, found: Extract<Found, { kind: 'dynamic' }>): Promise<void> {
  if (found.token) state.dynRestarting.delete(found.token);
  if (found.pid) state.dynamics.delete(found.pid);
  const r = await startProcess(state, found.spec, found.args);
  if ('ok' in r) {
    state.dynamics.set(r.ok, found.args);
  } else if ('error' in r) {
    const token: DynRestarting = found.token ?? { oldPid: found.pid };
    state.dynRestarting.set(token, found.args);
    report(state, 'start_error', found.spec.id, undefined, r.error, 'retry');
    tryAgain(state, { token });
  }
}

function tryAgain(state: SupState, target: RestartTarget): void {
  // Through the mailbox, not a loop: a shutdown or terminate_child queued meanwhile is served first.
  genServer.info(state.self, { tag: 'try_again_restart', target });
}

// ---------------------------------------------------------------------------------------------
// Stopping children
// ---------------------------------------------------------------------------------------------

/**
 * Stop the given static children in reverse start order, each with its own shutdown (OTP's
 * `terminate_children`): each one's terminate has run (or it was killed) before the next is asked.
 */
async function terminateChildren(state: SupState, ids: readonly string[]): Promise<void> {
  for (const id of [...ids].reverse()) {
    const child = state.children.get(id);
    if (!child) continue;
    const pid = child.pid;
    if (pid) await stopChild(state, child.spec, pid);
    if (child.spec.restart === 'temporary') removeChild(state, id);
    else clearPid(state, child);
  }
}

/** simple_one_for_one: ask every child at once and wait for all, as OTP does. */
async function terminateDynamicChildren(state: SupState, spec: ChildRecordSpec): Promise<void> {
  const pids = [...state.dynamics.keys()];
  state.dynamics.clear();
  state.dynRestarting.clear();
  await Promise.all(pids.map((pid) => stopChild(state, spec, pid)));
}

/**
 * Stop one child and wait until it is gone (OTP's `shutdown/1`): `shutdown` as the reason, killed
 * after `spec.shutdown` ms. An exit with another reason is reported as a shutdown_error.
 */
async function stopChild(state: SupState, spec: ChildRecordSpec, pid: Pid<never>): Promise<void> {
  const down = new Promise<ExitReason>((resolve) => proc.monitor(pid, resolve));
  await proc.shutdown(pid, 'shutdown', spec.shutdown, state.clock);
  const reason = await down;
  const expected = spec.shutdown === 'brutal_kill'
    ? reason === 'killed'
    : reason === 'shutdown';
  // A non-permanent child may beat us to it with a normal exit, which OTP accepts too.
  const fine = expected || reason === 'noproc' || (spec.restart !== 'permanent' && isNormalExit(reason));
  if (!fine) report(state, 'shutdown_error', spec.id, pid, reason, 'stopped');
}

// ---------------------------------------------------------------------------------------------
// Children table
// ---------------------------------------------------------------------------------------------

function setPid(state: SupState, child: StaticChild, pid: Pid<never>): void {
  if (child.pid) state.byPid.delete(child.pid);
  child.pid = pid;
  child.restarting = false;
  state.byPid.set(pid, child.spec.id);
}

function clearPid(state: SupState, child: StaticChild): void {
  if (child.pid) state.byPid.delete(child.pid);
  child.pid = undefined;
  child.restarting = false;
}

/** OTP's `del_child`: a temporary child is forgotten, the others keep their spec, not running. */
function delChild(state: SupState, child: StaticChild): void {
  if (child.spec.restart === 'temporary') removeChild(state, child.spec.id);
  else clearPid(state, child);
}

function removeChild(state: SupState, id: string): void {
  const child = state.children.get(id);
  if (child?.pid) state.byPid.delete(child.pid);
  state.children.delete(id);
  state.ids = state.ids.filter((x) => x !== id);
}

function forget(state: SupState, found: Found): void {
  if (found.kind === 'static') {
    delChild(state, found.child);
    return;
  }
  if (found.pid) state.dynamics.delete(found.pid);
  if (found.token) state.dynRestarting.delete(found.token);
}

// ---------------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------------

function supName(state: SupState): string {
  return proc.registeredName(state.self) ?? proc.pidToString(state.self);
}

function report(
  state: SupState, errorContext: SupervisorReport['errorContext'], child: string | undefined,
  pid: Pid<never> | undefined, reason: unknown, action: SupervisorAction,
): void {
  const r: SupervisorReport = {
    supervisor: supName(state),
    errorContext,
    strategy: state.strategy,
    child,
    pid: pid ? proc.pidToString(pid) : undefined,
    reason: describe(reason),
    action,
  };
  state.logger.error(r, `supervisor report: ${errorContext}`);
}

function progress(state: SupState, spec: ChildRecordSpec, pid: Pid<never>): void {
  const started = { id: spec.id, pid: proc.pidToString(pid), restart: spec.restart, shutdown: spec.shutdown, type: spec.type };
  // OTP's progress reports sit below the default log level: one per session setup would flood it.
  state.logger.debug({ supervisor: supName(state), started }, 'supervisor progress: started');
}
