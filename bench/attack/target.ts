/**
 * The server under attack: a child process started with default options and LOG_LEVEL=info, its
 * stdout and stderr counted in bytes (never printed), its RSS sampled from /proc, its death noticed.
 */
import type { ChildProcess } from 'node:child_process';
import { killChild, spawnTracked } from '../children.js';
import { rssKiB } from '../proc.js';
import { RawConn, get } from './raw.js';

/** Loopback only: the server binds here, the victim connects from here. */
export const HOST = '127.0.0.1';
/** How long a server may take to print its "listening" line (ms). */
export const START_TIMEOUT_MS = 20_000;
/** How often the RSS is read (ms). */
export const RSS_SAMPLE_MS = 100;
/** A full sid (uuid v4) in a log line: the session's only credential. */
const SID_IN_LOG = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;

/** How to start one target. */
export interface TargetSpec {
  /** The script (absolute path) and its arguments; `--port` is added. */
  readonly argv: readonly string[];
  /** `--max-old-space-size` of the target (MiB), so that an OOM case dies at a known size. */
  readonly heapMiB: number;
  /** Kill the target (by PID) when its RSS passes this (MiB): the machine is shared. */
  readonly rssCapMiB: number;
}

/** Bytes and lines a stream carried since the last `mark`. */
class Counter {
  bytes = 0;
  lines = 0;
  sids = 0;
  #tail = '';

  add(chunk: Buffer): void {
    this.bytes += chunk.length;
    let n = 0;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) n++;
    this.lines += n;
    // The tail of the previous chunk joins this one, so a sid cut in two is still found once.
    // 35 characters cannot hold a whole sid (36), so none is counted twice.
    const text = this.#tail + chunk.toString('latin1');
    this.sids += (text.match(SID_IN_LOG) ?? []).length;
    this.#tail = text.slice(-35);
  }

  mark(): void {
    this.bytes = 0;
    this.lines = 0;
    this.sids = 0;
  }
}

/** A running target. */
export class Target {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly #out = new Counter();
  readonly #err = new Counter();
  #errTail = '';
  #peakKiB = 0;
  #sampler: NodeJS.Timeout | null = null;
  #exit: string | null = null;
  #cappedAt: number | null = null;
  readonly #onExit: ((why: string) => void)[] = [];

  constructor(child: ChildProcess, port: number, rssCapMiB: number) {
    this.child = child;
    this.pid = child.pid ?? -1;
    this.port = port;
    child.stdout?.on('data', (c: Buffer) => this.#out.add(c));
    child.stderr?.on('data', (c: Buffer) => {
      this.#err.add(c);
      // Kept only to name the cause of a death (heap OOM); never printed.
      this.#errTail = (this.#errTail + c.toString('utf8')).slice(-4096);
    });
    child.once('exit', (code, signal) => {
      this.#stopSampling();
      this.#exit = this.#cappedAt !== null ? `killed at the RSS cap (${rssCapMiB} MiB)` : /heap out of memory/i.test(this.#errTail) ? 'died: JavaScript heap out of memory' : `exited (${code ?? signal ?? '?'})`;
      for (const f of this.#onExit.splice(0)) f(this.#exit);
    });
    this.#sampler = setInterval(() => {
      const kib = rssKiB(this.pid);
      if (kib === null) return;
      if (kib > this.#peakKiB) this.#peakKiB = kib;
      if (kib > rssCapMiB * 1024 && this.#cappedAt === null) {
        this.#cappedAt = kib;
        void killChild(child);
      }
    }, RSS_SAMPLE_MS);
  }

  /** Resident set now (KiB), or null once gone. */
  rssKiB(): number | null {
    return rssKiB(this.pid);
  }

  /** The largest RSS sampled since the last `markPeak` (KiB). */
  get peakKiB(): number {
    return this.#peakKiB;
  }

  markPeak(): void {
    this.#peakKiB = this.rssKiB() ?? 0;
  }

  /** Start counting log output from now. */
  markLog(): void {
    this.#out.mark();
    this.#err.mark();
  }

  /** stdout + stderr bytes since `markLog`. */
  get logBytes(): number {
    return this.#out.bytes + this.#err.bytes;
  }

  get logLines(): number {
    return this.#out.lines + this.#err.lines;
  }

  /** Full sids written to the log since `markLog`. */
  get sids(): number {
    return this.#out.sids + this.#err.sids;
  }

  /** Null while running; why it stopped otherwise. */
  get exited(): string | null {
    return this.#exit;
  }

  /** Run `f` once the process has exited (at once if it has). */
  onExit(f: (why: string) => void): void {
    if (this.#exit !== null) f(this.#exit);
    else this.#onExit.push(f);
  }

  /** Still running, and `/healthz` answers 200 within `timeoutMs`. */
  async healthy(timeoutMs: number): Promise<boolean> {
    if (this.#exit !== null) return false;
    const c = new RawConn(HOST, this.port, HOST);
    try {
      return (await c.request(get('/healthz'), timeoutMs)).status === 200;
    } catch {
      return false;
    } finally {
      c.destroy();
    }
  }

  async stop(): Promise<void> {
    this.#stopSampling();
    await killChild(this.child);
  }

  #stopSampling(): void {
    if (this.#sampler !== null) clearInterval(this.#sampler);
    this.#sampler = null;
  }
}

/** The environment of a target: ours without any COMET_* setting (default options), logs at info. */
const targetEnv = (port: number): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMET_')) env[k] = v;
  return { ...env, PORT: String(port), HOST, LOG_LEVEL: 'info' };
};

/** Start `spec` on `port` and resolve once it printed its "listening" line. */
export const startTarget = (spec: TargetSpec, port: number): Promise<Target> => {
  const [script, ...args] = spec.argv;
  if (script === undefined) return Promise.reject(new Error('empty target command'));
  const child = spawnTracked(process.execPath, [`--max-old-space-size=${spec.heapMiB}`, script, ...args, '--port', String(port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: targetEnv(port),
  });
  const target = new Target(child, port, spec.rssCapMiB);
  return new Promise((resolve, reject) => {
    let out = '';
    let settled = false;
    const done = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      if (err === null) resolve(target);
      else void target.stop().then(() => reject(err));
    };
    const onData = (c: Buffer): void => {
      out = (out + c.toString('utf8')).slice(-8192);
      if (out.includes('"listening":true')) done(null);
    };
    const timer = setTimeout(() => done(new Error(`${script}: no "listening" line within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.stdout?.on('data', onData);
    target.onExit((why) => done(new Error(`${script} ${why} before listening`)));
  });
};
