/**
 * `npm run bench:per-request`: what the comet-fsm echo server spends per HTTP request, the figure
 * each speed change is judged by (docs/benchmarks.md, "How each change was measured"). It does not
 * depend on how fast the load generator happens to drive the server, as a throughput ratio does.
 *
 * The echo server runs in this process (bin/echo.ts's config, admin routes and `session.push`
 * hook); the bench's load workers (bench/loadgen) drive it with the cases of bench/cases.ts, run
 * by the same code as `npm run bench` (`measureCase`). Over each case's measured window (after its
 * warm-up) it reads:
 *
 * - CPU µs per HTTP request: `process.cpuUsage()` (every thread: GC helpers included), and the
 *   system (kernel) part of it;
 * - GC µs per request: `PerformanceObserver('gc')` durations;
 * - socket writes per request: calls of `net.Socket`'s `_writev` and `_write` (one `writev` or
 *   `write` syscall each, unless the kernel takes a partial write);
 * - sleeps per request: voluntary context switches of the server (getrusage, every thread) and
 *   of the load workers' main threads (/proc/PID/status): each is a wake-up someone paid for;
 * - with `--alloc`, in a round of its own: bytes allocated per request, from V8's sampling heap
 *   profiler with the objects scavenges and mark-compacts collected included.
 *
 * One fresh process per round and case (this script again, with `--in-process`), rounds of the
 * cases interleaved; the table shows medians and the spread ((max - min) / median). A fresh
 * process, not only a fresh server: a round run after others inherits their heap, and its GC
 * figures with it (echo-200's GC per request was 1.2 µs in a first round and 9.6–10.9 in the two
 * after it, in one process). The allocation round is a process of its own too. The case's
 * orchestration (an admin request per broadcast, one IPC message per broadcast or echo run) runs
 * in the server's process too: a few µs per broadcast of 2,000 deliveries, nothing per echo
 * request.
 *
 *   npm run bench:per-request -- [--cases echo-200,fanout-closed-2k] [--rounds 3]
 *     [--warmup 2800] [--duration 2500] [--alloc] [--json] [--server-core 1 --load-core 0]
 *
 * `--in-process` runs the rounds in this process instead (what each child does, with `--rounds 1`
 * and one case; `--alloc-only` for the allocation round alone).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { spawnTracked } from './children.js';
import { parseArgs } from 'node:util';
import { adminRoutes } from '../bin/admin.js';
import { loadConfig } from '../bin/server_config.js';
import { createCometServer, type CometServer } from '../lib/index.js';
import { FULL_CASES, measureCase, type CaseSpec } from './cases.js';
import { median } from './report.js';
import { Rig, type CaseMeters } from './rig.js';
import { pinProcess } from './proc.js';
import { HOST, serverEnv } from './server-proc.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The cases this meter knows: the shapes of `npm run bench`'s echo and closed fan-out. */
export const PER_REQUEST_CASES = ['echo-20', 'echo-200', 'fanout-closed-2k'] as const;

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: 'echo-200,fanout-closed-2k' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2800' },
    duration: { type: 'string', default: '2500' },
    alloc: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'server-core': { type: 'string' },
    'load-core': { type: 'string' },
    'in-process': { type: 'boolean', default: false },
    'alloc-only': { type: 'boolean', default: false },
  },
});
const inProcess = values['in-process'];
const int = (s: string, name: string, min: number, max: number): number => {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
};
const rounds = int(values.rounds, 'rounds', 1, 50);
const warmupMs = int(values.warmup, 'warmup', 0, 60_000);
const durationMs = int(values.duration, 'duration', 200, 60_000);
// As `npm run bench` pins them: this process (the server) alone on one core, the load on another.
const serverCore = values['server-core'] === undefined ? null : int(values['server-core'], 'server-core', 0, 1023);
const loadCore = values['load-core'] === undefined ? null : int(values['load-core'], 'load-core', 0, 1023);
// Only the process that runs the server: the orchestrator waits on its children.
if (inProcess && serverCore !== null && !pinProcess(process.pid, serverCore)) throw new Error(`could not pin this process to core ${serverCore} (taskset)`);

/** The named case of the full suite with this meter's warm-up and window. */
const caseNamed = (name: string): CaseSpec => {
  const c = FULL_CASES.find((x) => x.name === name);
  if (c === undefined || !(PER_REQUEST_CASES as readonly string[]).includes(name)) {
    throw new Error(`unknown case ${name}: one of ${PER_REQUEST_CASES.join(', ')}`);
  }
  switch (c.kind) {
    case 'echo':
      return { ...c, warmupMs, durationMs };
    case 'fanout-closed':
      // 20 broadcasts of 2,000 deliveries warm it up about as long as the echo's warm-up.
      return { ...c, durationMs };
    default:
      return c;
  }
};
const cases = values.cases.split(',').map((s) => caseNamed(s.trim()));

// Counters every round reads as deltas.
let requests = 0;
let gcMs = 0;
let writevCalls = 0;
let writeCalls = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
{
  // Counted on the prototype, so every socket of the process (the server's, and the admin client's
  // one request per broadcast) is seen; wrapping keeps the method's presence, which Writable checks.
  const proto = Socket.prototype as unknown as Record<'_writev' | '_write', (this: Socket, ...a: unknown[]) => unknown>;
  const writev = proto._writev;
  const write = proto._write;
  proto._writev = function (this: Socket, ...a: unknown[]) {
    writevCalls++;
    return writev.apply(this, a);
  };
  proto._write = function (this: Socket, ...a: unknown[]) {
    writeCalls++;
    return write.apply(this, a);
  };
}

/** The echo server of bin/echo.ts, in this process, on a free loopback port. */
const startEcho = async (): Promise<CometServer> => {
  const env = { ...serverEnv(0), LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' };
  const config = loadConfig(['--port', '0'], env, 0);
  const comet = await createCometServer({
    ...config.options,
    onMessage(_sid, data, session) {
      session.push(data);
    },
  });
  await comet.listen(0, HOST);
  const server = comet.httpServer;
  if (!server) throw new Error('listen did not create a server');
  const routes = adminRoutes({ broadcast: true });
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    if (!routes(comet, req, res)) comet.handler(req, res);
  });
  return comet;
};

/** Per-request figures over a case's measured window; with `profile`, bytes allocated too. */
class PerRequestMeters implements CaseMeters {
  #req = 0;
  #gc = 0;
  #writev = 0;
  #write = 0;
  #cpu: NodeJS.CpuUsage = process.cpuUsage();
  #switches = 0;
  #loadWakeups = 0;
  #t0 = 0;
  readonly #loadPids: () => readonly number[];
  readonly #profile: Session | null;
  #profiling: Promise<unknown> = Promise.resolve();
  /** Resolves once the allocation profile of the window was read (bytes), or at once without one. */
  allocated: Promise<number> = Promise.resolve(NaN);

  constructor(profile: Session | null, loadPids: () => readonly number[]) {
    this.#profile = profile;
    this.#loadPids = loadPids;
  }

  start(): void {
    this.#req = requests;
    this.#gc = gcMs;
    this.#writev = writevCalls;
    this.#write = writeCalls;
    this.#t0 = performance.now();
    this.#switches = process.resourceUsage().voluntaryContextSwitches;
    this.#loadWakeups = sleepsOf(this.#loadPids());
    this.#cpu = process.cpuUsage();
    if (this.#profile !== null) {
      this.#profiling = this.#profile.post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
  }

  stop(f: Record<string, number>): void {
    const cpu = process.cpuUsage(this.#cpu);
    const n = Math.max(1, requests - this.#req);
    f.requests = requests - this.#req;
    f.requests_per_s = (requests - this.#req) / ((performance.now() - this.#t0) / 1000);
    f.cpu_us_per_req = (cpu.user + cpu.system) / n;
    f.sys_us_per_req = cpu.system / n;
    // How often the server, and the load workers, went to sleep waiting (each sleep is a wake-up
    // later, which the side that wakes it pays for in its write or its epoll_wait).
    f.server_sleeps_per_req = (process.resourceUsage().voluntaryContextSwitches - this.#switches) / n;
    f.load_sleeps_per_req = (sleepsOf(this.#loadPids()) - this.#loadWakeups) / n;
    f.gc_us_per_req = ((gcMs - this.#gc) * 1000) / n;
    f.writev_per_req = (writevCalls - this.#writev) / n;
    f.write_per_req = (writeCalls - this.#write) / n;
    const profile = this.#profile;
    if (profile !== null) {
      this.allocated = this.#profiling
        .then(() => profile.post('HeapProfiler.stopSampling'))
        .then(({ profile: p }) => {
          let bytes = 0;
          const walk = (node: typeof p.head): void => {
            bytes += node.selfSize;
            for (const c of node.children) walk(c);
          };
          walk(p.head);
          return bytes / n;
        });
    }
  }
}

/** Voluntary context switches (sleeps) of these processes, all their threads. */
const sleepsOf = (pids: readonly number[]): number => {
  let n = 0;
  for (const pid of pids) {
    try {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      n += Number(m?.[1] ?? 0);
    } catch {
      // Gone: counts nothing.
    }
  }
  return n;
};

/** A Rig on the in-process server whose case meters are the per-request ones. */
class PerRequestRig extends Rig {
  readonly meter: PerRequestMeters;
  constructor(port: number, seed: number, profile: Session | null) {
    super(
      { spec: { name: 'comet-fsm', argv: [], protocol: 'v1', path: '/comet' }, pid: process.pid, port, child: null },
      { serverCore, loadCore, workerScript: join(here, 'loadgen', 'worker.js'), addressSeed: seed },
    );
    this.meter = new PerRequestMeters(profile, () => this.workers.map((w) => w.pid));
  }

  override meters(): CaseMeters {
    return this.meter;
  }
}

/** The figures of one case in one round (a fresh server). */
const round = async (c: CaseSpec, seed: number, profile: Session | null): Promise<Record<string, number>> => {
  const comet = await startEcho();
  const addr = comet.httpServer?.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  const rig = new PerRequestRig(port, seed, profile);
  const f: Record<string, number> = {};
  try {
    await measureCase(rig, c, f);
    if (profile !== null) f.bytes_per_req = await rig.meter.allocated;
    if (f.errors !== 0) process.stderr.write(`${c.name}: ${f.errors} errors\n`);
  } finally {
    await rig.release();
    await comet.close();
  }
  return f;
};

const FIGURES = [
  ['cpu_us_per_req', 'CPU µs / request'],
  ['sys_us_per_req', 'of which system (kernel) µs'],
  ['gc_us_per_req', 'GC µs / request'],
  ['writev_per_req', 'writev / request'],
  ['write_per_req', 'write / request'],
  ['server_sleeps_per_req', 'server sleeps / request'],
  ['load_sleeps_per_req', 'load worker sleeps / request'],
  ['bytes_per_req', 'bytes allocated / request'],
  ['requests_per_s', 'requests/s (load-dependent)'],
] as const;

const fmt = (x: number): string => (Number.isNaN(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(2));

type Figures = Record<string, number>;

/** One round of one case in a fresh process: this script with `--in-process`; its figures. */
const roundInChild = (c: CaseSpec, allocOnly: boolean): Promise<Figures> => new Promise((resolve, reject) => {
  const args = [
    ...process.execArgv, fileURLToPath(import.meta.url), '--in-process', '--json', '--rounds', '1', '--cases', c.name,
    '--warmup', values.warmup, '--duration', values.duration,
    ...(allocOnly ? ['--alloc-only'] : []),
    ...(serverCore === null ? [] : ['--server-core', String(serverCore)]),
    ...(loadCore === null ? [] : ['--load-core', String(loadCore)]),
  ];
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.once('error', reject);
  child.once('exit', (code, signal) => {
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (code !== 0 || line === undefined) {
      reject(new Error(`round of ${c.name} exited with ${signal ?? String(code)}${line === undefined ? ', no figures' : ''}`));
      return;
    }
    const { case: _name, round: _round, ...f } = JSON.parse(line) as Figures & { case: string; round: unknown };
    resolve(f);
  });
});

const report = (c: CaseSpec, round: number | 'alloc', f: Figures): void => {
  if (values.json) process.stdout.write(`${JSON.stringify({ case: c.name, round, ...f })}\n`);
  else if (round !== 'alloc') process.stderr.write(`${c.name} round ${round}: ${fmt(f.cpu_us_per_req ?? NaN)} CPU µs, ${fmt(f.gc_us_per_req ?? NaN)} GC µs, ${fmt(f.writev_per_req ?? NaN)} writev per request\n`);
};

/** Every round of every case in a process of its own, then the table. */
const orchestrate = async (): Promise<void> => {
  const results = new Map<string, Figures[]>();
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const f = await roundInChild(c, false);
      results.set(c.name, [...(results.get(c.name) ?? []), f]);
      report(c, r + 1, f);
    }
  }
  if (values.alloc) {
    for (const c of cases) {
      const f = await roundInChild(c, true);
      for (const x of results.get(c.name) ?? []) x.bytes_per_req = f.bytes_per_req ?? NaN;
      report(c, 'alloc', f);
    }
  }
  if (!values.json) printTable(results);
};

const main = async (): Promise<void> => {
  const results = new Map<string, Record<string, number>[]>();
  let seed = Math.floor(Math.random() * 200);
  for (let r = 0; r < (values['alloc-only'] ? 0 : rounds); r++) {
    for (const c of cases) {
      const f = await round(c, seed++, null);
      results.set(c.name, [...(results.get(c.name) ?? []), f]);
      report(c, r + 1, f);
    }
  }
  if (values.alloc || values['alloc-only']) {
    // Sampling costs CPU: its own round, whose CPU figures are not kept.
    const session = new Session();
    session.connect();
    try {
      for (const c of cases) {
        const f = await round(c, seed++, session);
        const list = results.get(c.name) ?? [];
        for (const x of list) x.bytes_per_req = f.bytes_per_req ?? NaN;
        report(c, 'alloc', { bytes_per_req: f.bytes_per_req ?? NaN });
      }
    } finally {
      session.disconnect();
    }
  }
  if (!values.json) printTable(results);
};

function printTable(results: ReadonlyMap<string, Figures[]>): void {
  const lines = [`| case | figure | median | spread | rounds |`, `|---|---|---|---|---|`];
  for (const [name, fs] of results) {
    for (const [key, label] of FIGURES) {
      const xs = fs.map((f) => f[key] ?? NaN).filter((x) => !Number.isNaN(x));
      if (xs.length === 0) continue;
      const m = median(xs);
      const spread = xs.length > 1 ? `${(((Math.max(...xs) - Math.min(...xs)) / m) * 100).toFixed(0)}%` : '–';
      lines.push(`| ${name} | ${label} | ${fmt(m)} | ${spread} | ${xs.map(fmt).join(', ')} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await (inProcess ? main() : orchestrate());
// Workers are killed and the servers closed; anything left (a keep-alive timer) must not hold us.
process.exit(0);
