/**
 * Command-line flags of `npm run bench` (dist/bench/run.js).
 */
import type { ServerName } from './server-proc.js';

/** The comet-fsm server's command unless `--comet-cmd` says otherwise. */
export const DEFAULT_COMET_CMD = 'node dist/bin/echo.js';
/** Runs per case (medians need at least 3). */
export const DEFAULT_RUNS = 3;
/** Machine CPU (percent of one core) below which it counts as quiet before a case run. */
export const QUIET_BUSY_PCT = 20;
/** How long to wait for a quiet machine before each case run (ms); `--quiet-wait S` changes it. */
export const DEFAULT_QUIET_WAIT_MS = 30_000;
/** The same for `--quick`, which must stay well under a minute. */
export const QUICK_QUIET_WAIT_MS = 0;

/**
 * The V8 flags of the "tuned" setting: a young generation large enough that what a request
 * allocated is not copied by a scavenge before it dies (see docs/benchmarks.md). Each case runs
 * every server with Node's defaults and again with these, the same for all three.
 */
export const TUNED_V8_FLAGS: readonly string[] = ['--max-semi-space-size=64', '--min-semi-space-size=64'];

/** A setting of V8 flags every server of a run gets alike. */
export type FlagSetting = 'default' | 'tuned';
const FLAG_SETTINGS: readonly FlagSetting[] = ['default', 'tuned'];

/** The core each server runs alone on. */
export const DEFAULT_SERVER_CORE = 1;
/** The core of the load workers and this orchestrator. */
export const DEFAULT_LOAD_CORE = 0;

/** What the flags ask for. */
export interface Args {
  quick: boolean;
  runs: number;
  cases: string[] | null;
  servers: ServerName[];
  cometCmd: string;
  pin: boolean;
  serverCore: number | null;
  loadCore: number | null;
  quietWaitMs: number;
  /** The flag settings to run, in order: both unless `--flags default` (or `--quick`). */
  flags: FlagSetting[];
  /** What `tuned` means: {@link TUNED_V8_FLAGS} unless `--tuned-flags "..."`. */
  tunedFlags: string[];
}

const SERVER_NAMES: readonly ServerName[] = ['raw', 'engine.io', 'comet-fsm'];

const serverName = (v: string): ServerName => {
  const n = SERVER_NAMES.find((s) => s === v);
  if (n === undefined) throw new Error(`unknown server ${v} (${SERVER_NAMES.join(', ')})`);
  return n;
};

const flagSetting = (v: string): FlagSetting => {
  const f = FLAG_SETTINGS.find((s) => s === v);
  if (f === undefined) throw new Error(`unknown flag setting ${v} (${FLAG_SETTINGS.join(', ')})`);
  return f;
};

const core = (v: string): number | null => {
  if (v === 'none') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`bad core ${v} (a number, or none)`);
  return n;
};

/** Parse the flags after `npm run bench --`; throws on an unknown flag or a bad value. */
export const parseArgs = (argv: readonly string[]): Args => {
  const a: Args = { quick: false, runs: NaN, cases: null, servers: [...SERVER_NAMES], cometCmd: DEFAULT_COMET_CMD, pin: true, serverCore: DEFAULT_SERVER_CORE, loadCore: DEFAULT_LOAD_CORE, quietWaitMs: NaN, flags: [], tunedFlags: [...TUNED_V8_FLAGS] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--quick') a.quick = true;
    else if (k === '--runs') a.runs = Number(v());
    else if (k === '--cases') a.cases = v().split(',');
    else if (k === '--servers') a.servers = v().split(',').map(serverName);
    else if (k === '--comet-cmd') a.cometCmd = v();
    else if (k === '--no-pin') a.pin = false;
    else if (k === '--server-core') a.serverCore = core(v());
    else if (k === '--load-core') a.loadCore = core(v());
    else if (k === '--quiet-wait') a.quietWaitMs = Number(v()) * 1000;
    else if (k === '--flags') a.flags = [...new Set(v().split(',').map(flagSetting))];
    else if (k === '--tuned-flags') a.tunedFlags = v().split(/\s+/).filter((f) => f !== '');
    else throw new Error(`unknown argument ${k ?? ''}`);
  }
  if (Number.isNaN(a.runs)) a.runs = a.quick ? 1 : DEFAULT_RUNS;
  if (!Number.isInteger(a.runs) || a.runs < 1 || a.runs > 50) throw new Error('--runs: 1..50');
  if (a.flags.length === 0) a.flags = a.quick ? ['default'] : [...FLAG_SETTINGS];
  if (a.tunedFlags.some((f) => !f.startsWith('--'))) throw new Error('--tuned-flags: node options, each starting with --');
  if (Number.isNaN(a.quietWaitMs)) a.quietWaitMs = a.quick ? QUICK_QUIET_WAIT_MS : DEFAULT_QUIET_WAIT_MS;
  if (!(a.quietWaitMs >= 0 && a.quietWaitMs <= 600_000)) throw new Error('--quiet-wait: 0..600 seconds');
  return a;
};


/**
 * A server's command with V8 flags right after the node binary `node`; a command that does not
 * start with it (a wrapper script) is left as it is, and the report's setting says so in its title.
 */
export const argvWithFlags = (argv: readonly string[], flags: readonly string[], node: string): string[] =>
  flags.length === 0 || argv[0] !== node ? [...argv] : [node, ...flags, ...argv.slice(1)];
