/**
 * What one case run holds while it measures: the server under test, its load workers, an admin
 * client, CPU meters. Released (every process killed by PID) in the case's `finally`.
 */
import { AdminClient, type ServerStats } from './loadgen/admin-client.js';
import { LogHistogram } from './loadgen/histogram.js';
import { broadcastData, monotonicUs } from './loadgen/messages.js';
import { CpuMeter, rssKiB } from './proc.js';
import { median } from './report.js';
import { HOST, stopServer, type RunningServer } from './server-proc.js';
import { spawnWorker, type WorkerHandle } from './worker-proc.js';

/** One client process holds about 9,000 sockets before it slows down. */
export const MAX_SESSIONS_PER_WORKER = 9_000;
/** Session setups in flight per worker while opening. */
export const SETUP_CONCURRENCY = 256;

/** Where processes go and which loopback source addresses the workers use. */
export interface CaseContext {
  readonly serverCore: number | null;
  readonly loadCore: number | null;
  readonly workerScript: string;
  /** Different for every server start, so no run meets the previous one's TIME_WAIT sockets. */
  readonly addressSeed: number;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** RSS (KiB): the median of `n` samples `gapMs` apart, so one GC in flight does not decide it. */
export const sampleRss = async (pid: number, n: number, gapMs: number): Promise<number> => {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) await sleep(gapMs);
    const r = rssKiB(pid);
    if (r !== null) xs.push(r);
  }
  return median(xs);
};

/** Poll stats until `held` polls are held or `timeoutMs` passed; the last stats seen. */
export const waitHeld = async (admin: AdminClient, held: number, timeoutMs: number): Promise<ServerStats> => {
  const end = performance.now() + timeoutMs;
  let s = await admin.stats();
  while (s.held < held && performance.now() < end) {
    await sleep(50);
    s = await admin.stats();
  }
  return s;
};

export const ms = (us: number): number => us / 1000;

/** What a case starts when its measured window opens and stops when it closes, writing its figures. */
export interface CaseMeters {
  start(): void;
  stop(f: Record<string, number>): void;
}

/**
 * Server, load and machine CPU over one measured window. `other_cpu_pct` is what processes that
 * are not ours took meanwhile (other jobs on a shared machine): a run where it is high is noise.
 */
export class Meters implements CaseMeters {
  readonly #server: CpuMeter;
  // The orchestrator sends the broadcasts: it is part of the load.
  readonly #load: CpuMeter;
  readonly #machine = new CpuMeter(null);

  constructor(serverPid: number, loadPids: readonly number[]) {
    this.#server = new CpuMeter([serverPid]);
    this.#load = new CpuMeter(loadPids);
  }

  start(): void {
    this.#server.start();
    this.#load.start();
    this.#machine.start();
  }

  stop(f: Record<string, number>): void {
    f.server_cpu_pct = this.#server.stop();
    f.loadgen_cpu_pct = this.#load.stop();
    f.other_cpu_pct = Math.max(0, this.#machine.stop() - f.server_cpu_pct - f.loadgen_cpu_pct);
  }
}

/** Everything one case run holds, released in `finally`. */
export class Rig {
  readonly workers: WorkerHandle[] = [];
  /** Why the first session setup that failed failed ('' when none did). */
  firstError = '';
  readonly admin: AdminClient;
  readonly #gotCounts = new Map<number, number>();
  readonly #gotWaiters = new Map<number, () => void>();
  #senders = 0;

  constructor(
    readonly server: RunningServer,
    readonly ctx: CaseContext,
  ) {
    this.admin = new AdminClient({ host: HOST, port: server.port });
  }

  /** Spawn enough workers for `total` sessions, each with its own loopback source address. */
  async spawn(total: number): Promise<void> {
    const n = Math.max(1, Math.ceil(total / MAX_SESSIONS_PER_WORKER));
    for (let w = 0; w < n; w++) {
      const worker = await spawnWorker(this.ctx.workerScript, this.ctx.loadCore);
      this.workers.push(worker);
      worker.send({
        type: 'init',
        protocol: this.server.spec.protocol,
        host: HOST,
        port: this.server.port,
        path: this.server.spec.path,
        localAddress: `127.${(this.ctx.addressSeed % 250) + 1}.${w}.1`,
      });
    }
  }

  /** Open `total` sessions over the workers (spawned first if need be); each answers `opened`. */
  async open(total: number): Promise<{ ok: number; failed: number; firstError: string }> {
    if (this.workers.length === 0) await this.spawn(total);
    const n = this.workers.length;
    const shares = this.workers.map((_, w) => Math.floor(total / n) + (w < total % n ? 1 : 0));
    this.workers.forEach((w, i) => w.send({ type: 'open', count: shares[i] ?? 0, concurrency: SETUP_CONCURRENCY }));
    const opened = await Promise.all(this.workers.map((w) => w.next('opened', 60_000 + total * 5)));
    // Workers with no session never report a broadcast complete; only the others count.
    this.#senders = opened.filter((o) => o.ok > 0).length;
    this.firstError = opened.map((o) => o.firstError).find((e) => e !== '') ?? '';
    return {
      ok: opened.reduce((a, o) => a + o.ok, 0),
      failed: opened.reduce((a, o) => a + o.failed, 0),
      firstError: opened.map((o) => o.firstError).find((e) => e !== '') ?? '',
    };
  }

  /** Arm fan-out counting in every worker. */
  fanout(): void {
    for (const w of this.workers) {
      w.send({ type: 'fanout' });
      w.onGot = (n) => {
        const c = (this.#gotCounts.get(n) ?? 0) + 1;
        this.#gotCounts.set(n, c);
        if (c >= this.#senders) this.#gotWaiters.get(n)?.();
      };
    }
  }

  /** True once every live session has broadcast `n`; false after `timeoutMs`. */
  waitGot(n: number, timeoutMs: number): Promise<boolean> {
    if ((this.#gotCounts.get(n) ?? 0) >= this.#senders) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#gotWaiters.delete(n);
        resolve(false);
      }, timeoutMs);
      this.#gotWaiters.set(n, () => {
        clearTimeout(timer);
        this.#gotWaiters.delete(n);
        resolve(true);
      });
    });
  }

  /** Broadcast number `n`, stamped now. */
  broadcast(n: number): Promise<void> {
    return this.admin.broadcast(broadcastData(n, monotonicUs()));
  }

  async reset(): Promise<void> {
    for (const w of this.workers) w.send({ type: 'reset' });
    await Promise.all(this.workers.map((w) => w.next('reset', 10_000)));
  }

  /** Merged worker reports. */
  async report(): Promise<{ deliveries: number; requests: number; errors: number; alive: number; hist: LogHistogram }> {
    for (const w of this.workers) w.send({ type: 'report' });
    const rs = await Promise.all(this.workers.map((w) => w.next('report', 10_000)));
    const hist = new LogHistogram();
    for (const r of rs) hist.merge(r.hist);
    const sum = (k: 'deliveries' | 'requests' | 'errors' | 'alive'): number => rs.reduce((a, r) => a + r[k], 0);
    return { deliveries: sum('deliveries'), requests: sum('requests'), errors: sum('errors'), alive: sum('alive'), hist };
  }

  /** CPU meters of the server, the load (workers + orchestrator) and the whole machine. */
  meters(): CaseMeters {
    return new Meters(this.server.pid, [process.pid, ...this.workers.map((w) => w.pid)]);
  }

  async release(): Promise<void> {
    this.admin.close();
    await stopServer(this.server);
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

