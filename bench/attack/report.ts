/**
 * One case's result, judged against issue 11's targets, as a Markdown table row or a JSON object.
 */
import type { Outcome } from './case.js';
import type { VictimStats } from './victim-handle.js';

/** Victim p50 must stay under this (ms). */
export const VICTIM_P50_TARGET_MS = 50;
/** The log written during the attack must stay under this (bytes). */
export const LOG_TARGET_BYTES = 2 ** 20;

/** pass, fail, or cannot be judged (the server has no byte budget yet). */
export type Verdict = 'pass' | 'fail' | 'unknown';

/** Everything measured in one case. */
export interface AttackResult {
  readonly type: 'attack';
  readonly case: string;
  readonly row: number;
  readonly time: string;
  /** How the attack phase ended: 'done', 'deadline', or how the server ended. */
  readonly ended: string;
  readonly attackSeconds: number;
  readonly server: { readonly alive: boolean; readonly exit: string | null };
  readonly rss: { readonly idleMiB: number; readonly peakMiB: number; readonly limitMiB: number | null };
  readonly log: { readonly bytes: number; readonly lines: number; readonly sids: number };
  readonly victim: { readonly before: VictimStats; readonly during: VictimStats };
  readonly outcome: Outcome | { readonly error: string };
  readonly targets: { readonly alive: Verdict; readonly rss: Verdict; readonly victim: Verdict; readonly log: Verdict; readonly own: Verdict | null };
}

const verdict = (ok: boolean): Verdict => (ok ? 'pass' : 'fail');

/** Judge the four targets (and the case's own goal). */
export const judge = (r: Omit<AttackResult, 'targets'>): AttackResult['targets'] => {
  const v = r.victim.during;
  const own = 'error' in r.outcome ? 'fail' : r.outcome.ownPass === null ? null : verdict(r.outcome.ownPass);
  return {
    alive: verdict(r.server.alive),
    rss: r.rss.limitMiB === null ? 'unknown' : verdict(r.server.exit === null && r.rss.peakMiB < r.rss.limitMiB),
    victim: verdict(v.ok > 0 && v.p50 < VICTIM_P50_TARGET_MS && v.failed === 0),
    log: verdict(r.log.bytes < LOG_TARGET_BYTES),
    own,
  };
};

const MARK: Record<Verdict, string> = { pass: 'pass', fail: '**FAIL**', unknown: '?' };
const ms = (x: number): string => (Number.isNaN(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const mb = (bytes: number): string => (bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);

/** The header of the table `row` prints lines of. */
export const TABLE_HEAD = [
  '| # | case | server alive | RSS idle → peak (MiB) | RSS target | log written | victim p50 / p99 ms (before) | victim failed | own goal | what happened |',
  '|---|---|---|---|---|---|---|---|---|---|',
].join('\n');

/** One Markdown table row. */
export const row = (r: AttackResult): string => {
  const t = r.targets;
  const v = r.victim.during;
  const b = r.victim.before;
  const alive = r.server.alive ? MARK.pass : `${MARK.fail}: ${r.server.exit ?? 'not answering'}`;
  const rss = `${r.rss.idleMiB.toFixed(0)} → ${r.rss.peakMiB.toFixed(0)}`;
  const limit = r.rss.limitMiB === null ? '? (no budget)' : `${MARK[t.rss]} (< ${r.rss.limitMiB.toFixed(0)})`;
  const log = `${MARK[t.log]}: ${mb(r.log.bytes)}, ${r.log.lines} lines${r.log.sids > 0 ? `, ${r.log.sids} full sids` : ''}`;
  const victim = `${MARK[t.victim]}: ${ms(v.p50)} / ${ms(v.p99)} (${ms(b.p50)} / ${ms(b.p99)})`;
  const failed = v.failed === 0 ? `0 of ${v.ok}` : `${v.failed} of ${v.ok + v.failed}: ${Object.entries(v.failures).map(([k, n]) => `${k} x${n}`).join(', ')}`;
  const own = t.own === null ? '–' : MARK[t.own];
  const what = 'error' in r.outcome ? `error: ${r.outcome.error}` : r.outcome.summary;
  const ended = r.ended === 'done' || r.ended === 'deadline' ? '' : ` (stopped: ${r.ended})`;
  return `| ${r.row} | ${r.case} | ${alive} | ${rss} | ${limit} | ${log} | ${victim} | ${failed} | ${own} | ${what}${ended} (${r.attackSeconds.toFixed(0)} s) |`;
};
