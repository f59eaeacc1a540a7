/**
 * `npm run bench [-- --quick] [-- --runs N --cases a,b --servers raw,engine.io,comet-fsm
 *  --comet-cmd "node dist/bin/echo.js" --no-pin]`
 *
 * For every case, for every run, each server in turn (rotated per run, so that none always goes
 * first) as a fresh process pinned to core 1; load workers and this orchestrator on core 0.
 * Writes bench/results/<timestamp>.jsonl (one line per case run) and <timestamp>.md (medians and
 * ratios to raw). Exits 1 only when a server did not answer, never because of a speed figure.
 * Before each case run it waits (bounded by --quiet-wait seconds) for other jobs to leave the
 * machine quiet, and records how much CPU others took during the run (`other_cpu_pct`).
 */
import { existsSync, mkdirSync, appendFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FULL_CASES, QUICK_CASES, runCase, type CaseSpec } from './cases.js';
import { EIO_PATH } from './loadgen/eio-client.js';
import { V1_PATH } from './loadgen/v1-client.js';
import { argvWithFlags, parseArgs, QUIET_BUSY_PCT, type Args, type FlagSetting } from './args.js';
import { CpuMeter, hasTaskset, pinProcess } from './proc.js';
import { markdownReport, type RunRecord } from './report.js';
import { sleep } from './rig.js';
import type { ServerName, ServerSpec } from './server-proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

/** `node x.js` with `node` as this very binary and relative scripts from the project root. */
const commandArgv = (cmd: string): string[] =>
  cmd
    .split(/\s+/)
    .filter((s) => s !== '')
    .map((s, i) => (i === 0 && s === 'node' ? process.execPath : /\.[cm]?js$/.test(s) && !isAbsolute(s) ? join(root, s) : s));

const specs = (args: Args, say: (s: string) => void): ServerSpec[] => {
  const all: Record<ServerName, ServerSpec> = {
    raw: { name: 'raw', argv: [process.execPath, join(here, 'serve-raw.js')], protocol: 'v1', path: V1_PATH },
    'engine.io': { name: 'engine.io', argv: [process.execPath, join(here, 'serve-engineio.js')], protocol: 'eio', path: EIO_PATH },
    'comet-fsm': { name: 'comet-fsm', argv: commandArgv(args.cometCmd), protocol: 'v1', path: V1_PATH },
  };
  const out: ServerSpec[] = [];
  for (const name of args.servers) {
    const spec = all[name];
    const missing = spec.argv.filter((s) => /\.[cm]?js$/.test(s) && !existsSync(s));
    if (missing.length > 0) {
      say(`SKIP ${name}: ${missing.join(', ')} does not exist${name === 'comet-fsm' ? ' (build it, or pass --comet-cmd)' : ''}`);
      continue;
    }
    out.push(spec);
  }
  // Ratios need raw, and the table reads best with raw first.
  return out.sort((x, y) => (x.name === 'raw' ? -1 : y.name === 'raw' ? 1 : 0));
};

/**
 * Wait (at most `maxMs`) until the machine is quiet: other jobs on a shared machine move every
 * figure. Between case runs none of our processes live, so what it measures is someone else.
 * Resolves with the last busy figure (percent of one core).
 */
const withFlags = (spec: ServerSpec, flags: readonly string[]): ServerSpec => ({ ...spec, argv: argvWithFlags(spec.argv, flags, process.execPath) });

const quietGate = async (maxMs: number): Promise<number> => {
  const end = performance.now() + maxMs;
  for (;;) {
    const m = new CpuMeter(null);
    m.start();
    await sleep(500);
    const busy = m.stop();
    if (busy < QUIET_BUSY_PCT || performance.now() >= end) return busy;
    await sleep(1_000);
  }
};

const compact = (f: Record<string, number>): string =>
  Object.entries(f)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`)
    .join(' ');

const main = async (): Promise<number> => {
  const args = parseArgs(process.argv.slice(2));
  const say = (s: string): void => console.log(s);
  const workerScript = join(here, 'loadgen', 'worker.js');
  if (!existsSync(workerScript)) throw new Error(`${workerScript} missing: run \`npm run build\` first`);

  const taskset = args.pin && hasTaskset() && cpus().length >= 2;
  const serverCore = taskset ? args.serverCore : null;
  const loadCore = taskset ? args.loadCore : null;
  if (loadCore !== null) pinProcess(process.pid, loadCore);
  const where = (c: number | null): string => (c === null ? 'unpinned' : `on core ${c}`);
  const pinning = taskset
    ? `servers ${where(serverCore)}, load (workers + orchestrator) ${where(loadCore)} (taskset)`
    : `UNPINNED: ${!args.pin ? '--no-pin' : cpus().length < 2 ? 'fewer than 2 cores' : 'taskset (util-linux) not found'}`;
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`;
  say(`bench: ${machine}; ${pinning}`);

  const servers = specs(args, say);
  if (!servers.some((s) => s.name === 'raw')) say('no raw server: figures have no ratio to raw');
  const chosen: readonly CaseSpec[] = args.quick ? QUICK_CASES : FULL_CASES;
  const cases = args.cases === null ? chosen : chosen.filter((c) => args.cases?.includes(c.name));
  if (cases.length === 0) throw new Error(`no case matches --cases (${chosen.map((c) => c.name).join(', ')})`);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const jsonl = join(dir, `${stamp}.jsonl`);
  appendFileSync(
    jsonl,
    JSON.stringify({ type: 'meta', time: new Date().toISOString(), machine, pinning, argv: process.argv.slice(2), runs: args.runs, servers: servers.map((s) => s.name), flags: args.flags, tunedFlags: args.tunedFlags }) + '\n',
  );

  const records: RunRecord[] = [];
  const t0 = performance.now();
  let seed = 0;
  const flagsOf = (f: FlagSetting): readonly string[] => (f === 'default' ? [] : args.tunedFlags);
  for (const c of cases) {
    for (let run = 1; run <= args.runs; run++) {
      const order = servers.map((_, i) => servers[(i + run - 1) % servers.length] as ServerSpec);
      // Both settings inside one run, back to back, so that the machine's drift favours neither.
      const legs = args.flags.flatMap((flags) => order.map((plain) => ({ flags, spec: withFlags(plain, flagsOf(flags)) })));
      for (const { flags, spec } of legs) {
        const tag = args.flags.length > 1 ? ` [${flags}]` : '';
        const busy = await quietGate(args.quietWaitMs);
        if (busy >= QUIET_BUSY_PCT) say(`note: the machine is busy (${busy.toFixed(0)}% of a core in use by others) before ${spec.name} on ${c.name}`);
        const r = await runCase(c, spec, {
          serverCore,
          loadCore,
          workerScript,
          addressSeed: seed++,
        });
        const rec: RunRecord = {
          type: 'result',
          time: new Date().toISOString(),
          case: c.name,
          kind: c.kind,
          run,
          server: spec.name,
          flags,
          answered: r.answered,
          ...(r.error === undefined ? {} : { error: r.error }),
          ...(r.note === undefined ? {} : { note: r.note }),
          figures: { ...r.figures, busy_before_pct: busy },
        };
        records.push(rec);
        appendFileSync(jsonl, JSON.stringify(rec) + '\n');
        say(`[${c.name} ${run}/${args.runs}]${tag} ${spec.name}: ${r.answered ? 'ok' : `FAILED: ${r.error ?? '?'}`} ${compact(r.figures)}${r.note === undefined ? '' : ` (${r.note})`}`);
      }
    }
  }

  const minutes = ((performance.now() - t0) / 60_000).toFixed(1);
  const table = markdownReport(records, servers.map((s) => s.name), args.tunedFlags);
  const md = [
    `# comet-fsm benchmarks, ${new Date().toISOString()}`,
    '',
    `Command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` (${minutes} min)`,
    `Machine: ${machine}; ${pinning}.`,
    `Medians over ${args.runs} run(s); ×raw = median of the per-run ratios to raw; spread = (max − min) / median across runs, worst server.`,
    '',
    table,
    '',
  ].join('\n');
  writeFileSync(join(dir, `${stamp}.md`), md);
  say('');
  say(md);
  say(`results: ${jsonl}`);
  const failed = records.filter((r) => !r.answered);
  if (failed.length > 0) {
    say(`FAILED: ${failed.map((r) => `${r.server} on ${r.case} run ${r.run} (${r.flags ?? 'default'} flags)`).join('; ')}`);
    return 1;
  }
  return 0;
};

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
