/**
 * The orchestrator's handle on load worker processes (bench/loadgen/worker.ts): spawn them pinned
 * to the load core, talk over IPC with a timeout on every wait, kill them by PID.
 */
import type { ChildProcess } from 'node:child_process';
import { killChild, spawnTracked } from './children.js';
import { BenchError } from './loadgen/errors.js';
import type { FromWorker, ToWorker } from './loadgen/messages.js';

type Msg<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

/** One worker process. */
export class WorkerHandle {
  readonly child: ChildProcess;
  readonly pid: number;
  #queue: FromWorker[] = [];
  #waiters: { type: FromWorker['type']; resolve: (m: FromWorker) => void }[] = [];
  /** Called for each `got` (fan-out), outside the wait queue: there are many. */
  onGot: (n: number) => void = () => undefined;

  constructor(child: ChildProcess) {
    this.child = child;
    this.pid = child.pid ?? -1;
    child.on('message', (raw: unknown) => {
      const m = raw as FromWorker;
      if (m.type === 'got') return this.onGot(m.n);
      const i = this.#waiters.findIndex((w) => w.type === m.type);
      const w = i < 0 ? undefined : this.#waiters.splice(i, 1)[0];
      if (w === undefined) this.#queue.push(m);
      else w.resolve(m);
    });
  }

  send(m: ToWorker): void {
    this.child.send(m);
  }

  /** The next message of `type`, or BENCH_TIMEOUT after `timeoutMs`. */
  next<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Msg<T>> {
    const i = this.#queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0] as Msg<T>);
    return new Promise((resolve, reject) => {
      const waiter = { type, resolve: (m: FromWorker) => (clearTimeout(timer), resolve(m as Msg<T>)) };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new BenchError('BENCH_TIMEOUT', `worker ${this.pid}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
      this.child.once('exit', () => {
        clearTimeout(timer);
        reject(new BenchError('BENCH_TIMEOUT', `worker ${this.pid} exited while we waited for '${type}'`));
      });
    });
  }

  stop(): Promise<void> {
    return killChild(this.child);
  }
}

/** Spawn one worker running `script`, pinned to `core` when given; resolves once it is up. */
export const spawnWorker = (script: string, core: number | null): Promise<WorkerHandle> => {
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc'] as const;
  const child =
    core === null
      ? spawnTracked(process.execPath, [script], { stdio: [...stdio] })
      : spawnTracked('taskset', ['-c', String(core), process.execPath, script], { stdio: [...stdio] });
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve(new WorkerHandle(child)));
    child.once('error', (e) => reject(new BenchError('BENCH_SERVER_START', `load worker: ${e.message}`)));
  });
};
