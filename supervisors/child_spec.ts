/**
 * Child specifications: the types a supervisor is given, OTP's defaults, the validation that turns
 * a spec into a record with every field set (OTP's `check_childspec`), and the restart decision
 * (OTP's `do_restart` clauses over restart type x exit reason).
 *
 * Validation failures are values, as in OTP (`{invalid_restart_type, X}`), not thrown errors: a
 * JavaScript caller can hand us anything, and the caller matches on the key.
 */
import { isNormalExit, type ExitReason } from '../lib/otp/errors.js';
import type { Link, Pid, Shutdown, StartResult } from '../lib/otp/proc_lib.js';

/** When a terminated child is restarted: always, only after an abnormal exit, or never. */
export type RestartType = 'permanent' | 'transient' | 'temporary';
/** A worker, or a supervisor (whose default shutdown is `'infinity'`, to give its subtree time). */
export type ChildType = 'worker' | 'supervisor';

/**
 * When a supervisor stops itself because significant children exited (OTP's `auto_shutdown` flag):
 * never; when any significant child exits without being restarted; when all of them have.
 */
export type AutoShutdown = 'never' | 'any_significant' | 'all_significant';

/** OTP's default restart type. */
export const DEFAULT_RESTART: RestartType = 'permanent';
/** OTP's default child type. */
export const DEFAULT_CHILD_TYPE: ChildType = 'worker';
/** How long a worker gets to run `terminate` before it is killed (ms), as OTP's default 5000. */
export const DEFAULT_WORKER_SHUTDOWN: Shutdown = 5000;
/** A child supervisor waits for its whole subtree, as OTP's default `infinity`. */
export const DEFAULT_SUPERVISOR_SHUTDOWN: Shutdown = 'infinity';

/**
 * What a child's start function resolves to, as OTP's `{ok, Pid} | {ok, Pid, Info} | ignore |
 * {error, Reason}`: whatever `startLink` returns, or `{ ok: pid, info }` to hand `info` back to the caller
 * of `startChild`/`restartChild` (the supervisor itself ignores it, as OTP's does).
 * @example
 * start: async (link) => {
 *   const r = await genServer.startLink(link, cache, undefined);
 *   return 'ok' in r ? { ok: r.ok, info: { warmedUp: true } } : r;
 * }
 */
export type ChildStartReturn = StartResult<Pid<never>> | { readonly ok: Pid<never>; readonly info: unknown };

/**
 * What a supervisor needs to start, stop and restart one child (OTP's child_spec map).
 * `start` must start the process linked to `link` and resolve once its init has run, as every
 * `startLink` in this layer does; it may add an `info` (`ChildStartReturn`). For `simple_one_for_one`, `start` also receives the extra
 * arguments given to `startChild`.
 * @example
 * const spec: ChildSpec = {
 *   id: 'session_ids',
 *   start: (link) => genServer.startLink(link, sessionIds, undefined, { name: 'session_ids' }),
 *   restart: 'permanent',
 *   shutdown: 2000,
 * };
 */
export interface ChildSpec<Extra extends unknown[] = []> {
  readonly id: string;
  readonly start: (link: Link, ...extra: Extra) => Promise<ChildStartReturn>;
  readonly restart?: RestartType;
  /** OTP's `significant`: its exit (not restarted) counts for the supervisor's `auto_shutdown`. Default false. */
  readonly significant?: boolean;
  readonly shutdown?: Shutdown;
  readonly type?: ChildType;
}

/** A validated spec with every default applied (what `getChildspec` returns). */
export interface ChildRecordSpec<Extra extends unknown[] = unknown[]> {
  readonly id: string;
  readonly start: (link: Link, ...extra: Extra) => Promise<ChildStartReturn>;
  readonly restart: RestartType;
  readonly significant: boolean;
  readonly shutdown: Shutdown;
  readonly type: ChildType;
}

/**
 * Why a child spec was rejected, with OTP's names so ported matches work: `invalid_mfa` is a `start`
 * that is not a function (OTP's `{M,F,A}`), and a repeated id is `duplicate_child_name` (OTP's name
 * "for backwards compatibility"). `invalid_id` is ours: OTP takes any term as id, here a string.
 */
export type ChildSpecError =
  | { readonly invalid_child_spec: unknown }
  | 'missing_id'
  | 'missing_start'
  | { readonly invalid_id: unknown }
  | { readonly invalid_mfa: unknown }
  | { readonly invalid_restart_type: unknown }
  | { readonly invalid_significant: unknown }
  /** `significant: true` where it cannot be: under `auto_shutdown: 'never'`, or for a permanent child. */
  | { readonly bad_combination: { readonly auto_shutdown: 'never'; readonly significant: true } | { readonly restart: 'permanent'; readonly significant: true } }
  | { readonly invalid_shutdown: unknown }
  | { readonly invalid_child_type: unknown }
  | { readonly duplicate_child_name: string };

/** The result of validating one spec or a list of specs. */
export type Checked<T> = { readonly ok: T } | { readonly error: ChildSpecError };

/**
 * Validate one spec and apply OTP's defaults (OTP's `check_childspec`), in OTP's order. With the
 * supervisor's `autoShutdown`, `significant: true` is checked against it (as OTP does at start and
 * in `start_child`); without it (`checkChildSpecs` called alone), only against the restart type.
 */
// `spec` is `unknown`: JavaScript callers (and `startChild`) may pass anything, and a bad value is a result.
export function checkChildSpec<Extra extends unknown[]>(spec: unknown, autoShutdown?: AutoShutdown): Checked<ChildRecordSpec<Extra>> {
  if (!isMap(spec)) return { error: { invalid_child_spec: spec } };
  const s = spec as Partial<Record<keyof ChildSpec, unknown>>;
  if (s.id === undefined) return { error: 'missing_id' };
  if (s.start === undefined) return { error: 'missing_start' };
  if (typeof s.id !== 'string') return { error: { invalid_id: s.id } };
  if (typeof s.start !== 'function') return { error: { invalid_mfa: s.start } };
  const restart = s.restart ?? DEFAULT_RESTART;
  if (restart !== 'permanent' && restart !== 'transient' && restart !== 'temporary') return { error: { invalid_restart_type: restart } };
  const significant = s.significant ?? false;
  if (significant === true && autoShutdown === 'never') return { error: { bad_combination: { auto_shutdown: 'never', significant: true } } };
  if (significant === true && restart === 'permanent') return { error: { bad_combination: { restart: 'permanent', significant: true } } };
  if (typeof significant !== 'boolean') return { error: { invalid_significant: significant } };
  const type = s.type ?? DEFAULT_CHILD_TYPE;
  if (type !== 'worker' && type !== 'supervisor') return { error: { invalid_child_type: type } };
  const shutdown = s.shutdown ?? (type === 'worker' ? DEFAULT_WORKER_SHUTDOWN : DEFAULT_SUPERVISOR_SHUTDOWN);
  if (!isShutdown(shutdown)) return { error: { invalid_shutdown: shutdown } };
  return { ok: { id: s.id, start: s.start as ChildRecordSpec<Extra>['start'], restart, significant, shutdown, type } };
}

/**
 * Validate a list of specs: each one, then that ids are unique (OTP's `check_childspecs`).
 * @example
 * checkChildSpecs([a, a]); // { error: { duplicate_child_name: 'a' } }
 */
export function checkChildSpecs<Extra extends unknown[]>(
  specs: readonly ChildSpec<Extra>[] | readonly unknown[], autoShutdown?: AutoShutdown,
): Checked<ChildRecordSpec<Extra>[]> {
  const seen = new Set<string>();
  const out: ChildRecordSpec<Extra>[] = [];
  for (const spec of specs) {
    const r = checkChildSpec<Extra>(spec, autoShutdown);
    if ('error' in r) return r;
    if (seen.has(r.ok.id)) return { error: { duplicate_child_name: r.ok.id } };
    seen.add(r.ok.id);
    out.push(r.ok);
  }
  return { ok: out };
}

/**
 * OTP's `is_map/1` for what a JavaScript caller may hand us: a plain object (an object literal or
 * `Object.create(null)`). An array (an Erlang tuple or list), a Date, a Map or a class instance is not.
 */
export function isMap(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto: unknown = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function isShutdown(x: unknown): x is Shutdown {
  return x === 'infinity' || x === 'brutal_kill' || (typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

/**
 * What a supervisor does when a child exits on its own, before strategy and intensity apply:
 * - `'restart'`: permanent always; transient after an abnormal exit;
 * - `'keep'`: transient after `normal`, `shutdown` or `{ shutdown: _ }`: not restarted, spec kept;
 * - `'remove'`: temporary, whatever the reason: not restarted, spec deleted.
 *
 * `'killed'` is abnormal, as in OTP.
 */
export type RestartDecision = 'restart' | 'keep' | 'remove';

/** OTP's `do_restart` clauses: one decision per (restart type, exit reason). */
export function restartDecision(restart: RestartType, reason: ExitReason): RestartDecision {
  switch (restart) {
    case 'permanent':
      return 'restart';
    case 'transient':
      return isNormalExit(reason) ? 'keep' : 'restart';
    case 'temporary':
      return 'remove';
  }
}

/** OTP reports a child's exit for a permanent child always, for the others only when abnormal. */
export function isReportedExit(restart: RestartType, reason: ExitReason): boolean {
  return restart === 'permanent' || !isNormalExit(reason);
}
