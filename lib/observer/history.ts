/**
 * The observer's memory of exits and restarts, from the supervisors' own reports: the logger every
 * supervisor of the tree writes to is wrapped (as the metrics wrap it to count restarts), so what
 * the page shows is what the supervisors decided, in their words. Bounded: the newest
 * `HISTORY_LIMIT` entries, each reason cut to `MAX_REASON_CHARS`.
 *
 * A `restart` entry is written when the new incarnation is seen running (the report comes before
 * the restart; a restart that fails reports `start_error` instead).
 */
import type { Clock } from '../otp/clock.js';
import type { Logger } from '../otp/logger.js';
import type { SupervisorReport } from '../../supervisors/supervisor.js';
import type { HistoryEntry, HistoryKind } from './page/protocol.js';

/** Entries kept, newest first. */
export const HISTORY_LIMIT = 200;
/** A reason longer than this is cut (the supervisor's `describe` already stops at about 200). */
export const MAX_REASON_CHARS = 200;
/** Restart times kept per supervisor for its window count: more than any sane intensity. */
export const MAX_WINDOW_RESTARTS = 1000;

type Report = Pick<SupervisorReport, 'supervisor' | 'errorContext' | 'childPath' | 'reason' | 'action'>;

function isReport(o: unknown): o is Report {
  if (typeof o !== 'object' || o === null) return false;
  const r = o as Partial<Record<keyof Report, unknown>>;
  return typeof r.supervisor === 'string' && typeof r.errorContext === 'string' && typeof r.action === 'string';
}

export class History {
  readonly #entries: HistoryEntry[] = [];
  #nextId = 1;
  /** Restarts by child path, since the server started. */
  readonly #restarts = new Map<string, number>();
  /** Restart times (clock ms) by supervisor path, for the window count. */
  readonly #windows = new Map<string, number[]>();
  /** Restarts reported and not yet seen done: child path -> the process last seen there. */
  readonly #pending = new Map<string, string | undefined>();
  /** The process (actor path, unique per incarnation) last seen at each path. */
  readonly #lastSeen = new Map<string, string>();
  readonly #clock: Clock;
  readonly #now: () => number;

  constructor(clock: Clock, wallClock: () => number = Date.now) {
    this.#clock = clock;
    this.#now = wallClock;
  }

  /** Wrap `logger` so the supervisors' reports are recorded here too. */
  watch(logger: Logger): Logger {
    return {
      ...logger,
      debug: (o, m) => logger.debug(o, m),
      info: (o, m) => logger.info(o, m),
      warn: (o, m) => logger.warn(o, m),
      error: (obj, msg) => {
        if (isReport(obj)) this.#report(obj);
        logger.error(obj, msg);
      },
    };
  }

  #report(r: Report): void {
    const path = r.childPath ?? r.supervisor;
    switch (r.errorContext) {
      case 'child_terminated':
        this.add({ kind: 'exit', path, reason: r.reason, action: r.action });
        if (r.action === 'restart') {
          this.#restarts.set(path, (this.#restarts.get(path) ?? 0) + 1);
          const w = this.#windows.get(r.supervisor) ?? [];
          w.push(this.#clock.now());
          if (w.length > MAX_WINDOW_RESTARTS) w.splice(0, w.length - MAX_WINDOW_RESTARTS);
          this.#windows.set(r.supervisor, w);
          // The report names the process as it prints (maybe its registered name, the same for
          // every incarnation); what tells the new one is the incarnation the tree last showed.
          this.#pending.set(path, this.#lastSeen.get(path));
        }
        return;
      case 'start_error':
        this.add({ kind: 'start_error', path, reason: r.reason, action: r.action });
        return;
      case 'shutdown':
        // The supervisor gave up: its window starts again with its next incarnation.
        this.#windows.delete(r.supervisor);
        this.add({ kind: 'shutdown', path: r.supervisor, reason: r.reason, action: r.action });
        return;
      case 'shutdown_error':
        this.add({ kind: 'shutdown_error', path, reason: r.reason, action: r.action });
        return;
    }
  }

  /** The tree shows `path` running as `pid` (its actor path): a pending restart is done. */
  seen(path: string, pid: string | undefined): void {
    if (pid !== undefined && !this.#pending.has(path)) this.#lastSeen.set(path, pid);
    if (!this.#pending.has(path)) return;
    const old = this.#pending.get(path);
    if (pid === undefined || pid === old) return;
    this.#pending.delete(path);
    this.#lastSeen.set(path, pid);
    this.add({ kind: 'restart', path, action: 'running again' });
  }

  /** Record an entry; returns it. */
  add(e: { kind: HistoryKind; path: string; reason?: string; action?: string; who?: string }): HistoryEntry {
    const entry: HistoryEntry = {
      id: this.#nextId++, at: this.#now(), kind: e.kind, path: e.path,
      ...(e.reason === undefined ? {} : { reason: e.reason.length > MAX_REASON_CHARS ? `${e.reason.slice(0, MAX_REASON_CHARS)}…` : e.reason }),
      ...(e.action === undefined ? {} : { action: e.action }),
      ...(e.who === undefined ? {} : { who: e.who }),
    };
    this.#entries.push(entry);
    if (this.#entries.length > HISTORY_LIMIT) this.#entries.splice(0, this.#entries.length - HISTORY_LIMIT);
    return entry;
  }

  /** Entries newer than `afterId`, newest first. */
  since(afterId: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i];
      if (e === undefined || e.id <= afterId) break;
      out.push(e);
    }
    return out;
  }

  /** The newest id (0 before any). */
  get lastId(): number {
    return this.#nextId - 1;
  }

  /** How often `path` was restarted by its supervisor. */
  restarts(path: string): number {
    return this.#restarts.get(path) ?? 0;
  }

  /** Restarts `supervisor` made within the last `periodSeconds`. */
  restartsInWindow(supervisor: string, periodSeconds: number): number {
    const w = this.#windows.get(supervisor);
    if (!w) return 0;
    const threshold = this.#clock.now() - periodSeconds * 1000;
    while (w.length > 0 && (w[0] ?? 0) < threshold) w.shift();
    return w.length;
  }
}
