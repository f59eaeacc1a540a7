/**
 * Results: one JSON line per case run, and the Markdown table of medians where every figure also
 * appears as a ratio to raw from the same run (runs minutes apart wander up to ~40%; servers
 * measured back to back agree far better, so ratios are the figure to trust).
 */
import type { FlagSetting } from './args.js';
import type { CaseKind } from './cases.js';
import type { ServerName } from './server-proc.js';

/** One line of bench/results/<timestamp>.jsonl. */
export interface RunRecord {
  readonly type: 'result';
  readonly time: string;
  readonly case: string;
  readonly kind: CaseKind;
  readonly run: number;
  readonly server: ServerName;
  /** The V8 flags every server of this run had; absent in files from before the setting existed. */
  readonly flags?: FlagSetting;
  readonly answered: boolean;
  readonly error?: string;
  readonly note?: string;
  readonly figures: Record<string, number>;
}

/** A figure the table shows. */
export interface FigureDef {
  readonly key: string;
  readonly label: string;
  /** False for figures that describe the run, not the server (no ratio to raw is shown). */
  readonly ratio?: false;
}

/** The figures each kind of case reports, in table order. */
export const FIGURES: Record<CaseKind, readonly FigureDef[]> = {
  idle: [
    { key: 'rss_per_session_kib', label: 'RSS per held poll (KiB)' },
    { key: 'establish_s', label: 'time to establish (s)' },
    { key: 'errors', label: 'errors' },
    { key: 'other_cpu_pct', label: "others' CPU during the run (%)", ratio: false },
  ],
  'fanout-closed': [
    { key: 'deliveries_per_s', label: 'deliveries/s' },
    { key: 'p50_ms', label: 'latency p50 (ms)' },
    { key: 'p99_ms', label: 'latency p99 (ms)' },
    { key: 'server_cpu_pct', label: 'server CPU (% of a core)' },
    { key: 'loadgen_cpu_pct', label: 'load generator CPU (%)' },
    { key: 'errors', label: 'errors' },
    { key: 'other_cpu_pct', label: "others' CPU during the run (%)", ratio: false },
  ],
  'fanout-open': [
    { key: 'p50_ms', label: 'latency p50 (ms)' },
    { key: 'p99_ms', label: 'latency p99 (ms)' },
    { key: 'missing', label: 'deliveries missing' },
    { key: 'server_cpu_pct', label: 'server CPU (% of a core)' },
    { key: 'loadgen_cpu_pct', label: 'load generator CPU (%)' },
    { key: 'errors', label: 'errors' },
    { key: 'other_cpu_pct', label: "others' CPU during the run (%)", ratio: false },
  ],
  echo: [
    { key: 'round_trips_per_s', label: 'round trips/s' },
    { key: 'p50_ms', label: 'latency p50 (ms)' },
    { key: 'p99_ms', label: 'latency p99 (ms)' },
    { key: 'requests_per_rt', label: 'HTTP requests per round trip' },
    { key: 'server_cpu_pct', label: 'server CPU (% of a core)' },
    { key: 'loadgen_cpu_pct', label: 'load generator CPU (%)' },
    { key: 'errors', label: 'errors' },
    { key: 'other_cpu_pct', label: "others' CPU during the run (%)", ratio: false },
  ],
};

/** Median of the finite values; NaN when none. */
export const median = (xs: readonly number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const m = s.length >> 1;
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

/** (max - min) / median in percent: how far the runs of one figure wander. */
export const spreadPct = (xs: readonly number[]): number => {
  const s = xs.filter(Number.isFinite);
  const m = median(s);
  return s.length < 2 || m === 0 ? NaN : ((Math.max(...s) - Math.min(...s)) / Math.abs(m)) * 100;
};

const fmt = (x: number): string => {
  if (!Number.isFinite(x)) return '–';
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toLocaleString('en-US') : a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
};

/** Runs in which other processes took less than this (percent of one core) count as quiet. */
export const QUIET_RUN_PCT = 25;

/** Only the case runs during which the machine was otherwise quiet. */
export const quietRuns = (records: readonly RunRecord[]): RunRecord[] =>
  records.filter((r) => (r.figures.other_cpu_pct ?? 0) < QUIET_RUN_PCT);

/** Options of {@link markdownTable}. */
export interface TableOptions {
  /** Show how many runs each median and ratio rests on (for tables of a subset of runs). */
  readonly counts?: boolean;
}

/**
 * The table of medians: one row per case and figure, a column per server, each non-raw figure
 * followed by the median of its per-run ratios to raw (only runs where both have the figure).
 */
export const markdownTable = (
  records: readonly RunRecord[],
  servers: readonly ServerName[],
  options: TableOptions = {},
): string => {
  const others = servers.filter((s) => s !== 'raw');
  const head = ['case', 'figure', ...servers.flatMap((s) => (s === 'raw' ? ['raw'] : [s, '×raw'])), 'spread'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  const n = (xs: readonly number[]): string => (options.counts === true ? ` (${xs.filter(Number.isFinite).length})` : '');
  const cases = [...new Set(records.map((r) => r.case))];
  for (const name of cases) {
    const rs = records.filter((r) => r.case === name);
    const kind = rs[0]?.kind;
    if (kind === undefined) continue;
    const runs = [...new Set(rs.map((r) => r.run))];
    const value = (server: ServerName, run: number, key: string): number =>
      rs.find((r) => r.server === server && r.run === run && r.answered)?.figures[key] ?? NaN;
    for (const fig of FIGURES[kind]) {
      const cells: string[] = [name, fig.label];
      const spreads: number[] = [];
      for (const s of servers) {
        const xs = runs.map((run) => value(s, run, fig.key));
        spreads.push(spreadPct(xs));
        cells.push(`${fmt(median(xs))}${n(xs)}`);
        if (s === 'raw') continue;
        if (fig.ratio === false) {
          cells.push('');
          continue;
        }
        const ratios = runs.map((run) => {
          const base = value('raw', run, fig.key);
          return base === 0 ? NaN : value(s, run, fig.key) / base;
        });
        const r = median(ratios);
        cells.push(Number.isFinite(r) ? `${r.toFixed(2)}×${n(ratios)}` : '–');
      }
      // How far others' CPU wanders says nothing about the servers: no spread for such rows.
      const spread = fig.ratio === false ? NaN : Math.max(...spreads.filter(Number.isFinite));
      cells.push(Number.isFinite(spread) ? `${spread.toFixed(0)}%` : '–');
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  if (others.length === 0) lines.push('', '(raw only: no ratios)');
  return lines.join('\n');
};

/** How a flag setting is titled in the report. */
export const flagTitle = (f: FlagSetting, tuned: readonly string[]): string =>
  f === 'default' ? "Node's default flags" : `every server with \`${tuned.join(' ')}\``;

/**
 * The Markdown summary of one bench run: per flag setting, the table over every run, and when
 * other jobs took CPU during some runs, a second table over the quiet runs only.
 */
export const markdownReport = (records: readonly RunRecord[], servers: readonly ServerName[], tuned: readonly string[]): string => {
  const settings = [...new Set(records.map((r) => r.flags ?? 'default'))];
  if (settings.length <= 1) return settingReport(records, servers);
  return settings
    .map((f) => [`### ${flagTitle(f, tuned)}`, '', settingReport(records.filter((r) => (r.flags ?? 'default') === f), servers)].join('\n'))
    .join('\n\n');
};

const settingReport = (records: readonly RunRecord[], servers: readonly ServerName[]): string => {
  const out = [markdownTable(records, servers)];
  const quiet = quietRuns(records);
  if (quiet.length < records.length) {
    out.push(
      '',
      `Quiet runs only (others took < ${QUIET_RUN_PCT}% of a core during the run; ${quiet.length} of ${records.length} case runs). ` +
        'In parentheses: how many runs each median rests on; a ratio needs raw and the server quiet in the same run.',
      '',
      quiet.length === 0 ? '(none)' : markdownTable(quiet, servers, { counts: true }),
    );
  }
  return out.join('\n');
};
