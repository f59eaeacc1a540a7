/**
 * Command-line flags of `npm run attack -- NAME|all|--list [flags]` (dist/bench/attack/run.js).
 */

/** The attack phase of each case, at most (s). */
export const DEFAULT_DURATION_S = 60;
/** The target's `--max-old-space-size` (MiB): an OOM case dies at a known size, not at the machine's. */
export const DEFAULT_HEAP_MIB = 1536;
/** The target is killed (by PID) when its RSS passes this (MiB): the machine is shared. */
export const DEFAULT_RSS_CAP_MIB = 2048;
/**
 * What one session costs beyond the server budget (KiB): the comet-fsm "RSS per held poll" of the
 * idle-19k case in docs/benchmarks.md (17.9 KiB), rounded up.
 */
export const DEFAULT_SESSION_KIB = 18;
/** Victim clients on 127.0.0.1. */
export const DEFAULT_VICTIMS = 2;

/** What the flags ask for. */
export interface AttackArgs {
  readonly list: boolean;
  readonly json: boolean;
  /** Also append each result as one JSON line to this file. */
  readonly jsonl: string | null;
  /** Case names, or every case for `all`. */
  readonly names: readonly string[];
  readonly durationS: number;
  /** The case's main count (sessions, packets, connections, messages); null: its default. */
  readonly count: number | null;
  /** The server's byte budget (MiB) once it has one; null: unknown, and the RSS target cannot be judged. */
  readonly budgetMiB: number | null;
  readonly sessionKiB: number;
  readonly heapMiB: number;
  readonly rssCapMiB: number;
  readonly victims: number;
  /** Extra flags for the target server (`--server-args "--max-sessions-per-client 100"`). */
  readonly serverArgs: readonly string[];
}

export const USAGE = `usage: npm run attack -- NAME [NAME...] | all | --list  [flags]
  --duration S       the attack phase of each case, at most (default ${DEFAULT_DURATION_S})
  --count N          the case's main count (sessions, packets, connections, messages; --list shows defaults)
  --budget MIB       the server's byte budget, for the RSS target (default unknown: not judged)
  --session-kib K    per-session overhead allowed beyond the budget (default ${DEFAULT_SESSION_KIB})
  --heap MIB         the target's --max-old-space-size (default ${DEFAULT_HEAP_MIB})
  --rss-cap MIB      kill the target past this RSS (default ${DEFAULT_RSS_CAP_MIB})
  --victims N        victim clients on 127.0.0.1 (default ${DEFAULT_VICTIMS})
  --server-args "…"  extra flags for the target server
  --json             one JSON object per case instead of a table row
  --jsonl FILE       also append each result to FILE as one JSON line`;

const positive = (flag: string, v: string, max: number): number => {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0 && n <= max)) throw new Error(`${flag}: a number in (0, ${max}], got ${v}`);
  return n;
};

/** Parse argv; throws on an unknown flag or a bad value. */
export const parseAttackArgs = (argv: readonly string[]): AttackArgs => {
  let list = false;
  let json = false;
  let jsonl: string | null = null;
  const names: string[] = [];
  let durationS = DEFAULT_DURATION_S;
  let count: number | null = null;
  let budgetMiB: number | null = null;
  let sessionKiB = DEFAULT_SESSION_KIB;
  let heapMiB = DEFAULT_HEAP_MIB;
  let rssCapMiB = DEFAULT_RSS_CAP_MIB;
  let victims = DEFAULT_VICTIMS;
  let serverArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i] ?? '';
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--list') list = true;
    else if (k === '--json') json = true;
    else if (k === '--jsonl') jsonl = v();
    else if (k === '--duration') durationS = positive(k, v(), 600);
    else if (k === '--count') count = Math.round(positive(k, v(), 1_000_000));
    else if (k === '--budget') budgetMiB = positive(k, v(), 1 << 20);
    else if (k === '--session-kib') sessionKiB = positive(k, v(), 1 << 20);
    else if (k === '--heap') heapMiB = Math.round(positive(k, v(), 1 << 16));
    else if (k === '--rss-cap') rssCapMiB = positive(k, v(), 1 << 16);
    else if (k === '--victims') victims = Math.round(positive(k, v(), 32));
    else if (k === '--server-args') serverArgs = v().split(/\s+/).filter((s) => s !== '');
    else if (k.startsWith('--')) throw new Error(`unknown flag ${k}`);
    else names.push(...k.split(',').filter((s) => s !== ''));
  }
  if (!list && names.length === 0) throw new Error('name a case, or all, or --list');
  return { list, json, jsonl, names, durationS, count, budgetMiB, sessionKiB, heapMiB, rssCapMiB, victims, serverArgs };
};
