/**
 * Start one server under test as its own process (pinned to a core when `taskset` exists), wait
 * for its "listening" line, and kill it by PID.
 */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { killChild, spawnTracked } from './children.js';
import { BenchError } from './loadgen/errors.js';
import type { Protocol } from './loadgen/messages.js';

/** The three servers a run compares. */
export type ServerName = 'raw' | 'engine.io' | 'comet-fsm';

/** How to start one server and speak to it. */
export interface ServerSpec {
  readonly name: ServerName;
  /** Command and arguments; `--port N` is appended. */
  readonly argv: readonly string[];
  readonly protocol: Protocol;
  readonly path: string;
}

/** A server process that printed its "listening" line. */
export interface RunningServer {
  readonly spec: ServerSpec;
  readonly pid: number;
  readonly port: number;
  /** null when the server runs inside this process (bench/per-request.ts): nothing to kill. */
  readonly child: ChildProcess | null;
}

/** How long a server may take to print "listening" (ms). */
export const START_TIMEOUT_MS = 20_000;
/** Loopback only, as every bench process. */
export const HOST = '127.0.0.1';

/** A port nobody listens on right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });

/** The port in a "listening" line, when it says one. */
const portOf = (line: string): number | null => {
  try {
    const v: unknown = JSON.parse(line);
    const p = typeof v === 'object' && v !== null ? (v as { port?: unknown }).port : undefined;
    return typeof p === 'number' ? p : null;
  } catch {
    return null;
  }
};

/**
 * Start `spec` on `port`, pinned to `core` when given, and resolve once it prints a line holding
 * "listening". Its stdout is drained after that (a server that logs each request must never block
 * on a full pipe); the tail of its stderr goes into the error when it fails to start.
 */
export const startServer = (spec: ServerSpec, port: number, core: number | null): Promise<RunningServer> => {
  const [cmd, ...args] = spec.argv;
  if (cmd === undefined) return Promise.reject(new BenchError('BENCH_SERVER_START', `${spec.name}: empty command`));
  const full = [...args, '--port', String(port)];
  // stdin is a pipe we never write: our own servers exit when it closes, i.e. when we die.
  const stdio: StdioOptions = ['pipe', 'pipe', 'pipe'];
  const options = { stdio, env: serverEnv(port) };
  const child =
    core === null ? spawnTracked(cmd, full, options) : spawnTracked('taskset', ['-c', String(core), cmd, ...full], options);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let done = false;
    const finish = (e: BenchError | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e === null && child.pid !== undefined) {
        resolve({ spec, pid: child.pid, port, child });
      } else {
        void killChild(child);
        reject(e ?? new BenchError('BENCH_SERVER_START', `${spec.name}: no pid`));
      }
    };
    const timer = setTimeout(
      () => finish(new BenchError('BENCH_SERVER_START', `${spec.name}: no "listening" line in ${START_TIMEOUT_MS} ms; stderr: ${err.slice(-2000)}`)),
      START_TIMEOUT_MS,
    );
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (done) return;
      out += chunk;
      for (const line of out.split('\n')) {
        if (!line.includes('listening')) continue;
        const said = portOf(line);
        if (said === null || said === port) return finish(null);
      }
      out = out.slice(-4096);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      err = (err + chunk).slice(-4096);
    });
    child.once('error', (e) => finish(new BenchError('BENCH_SERVER_START', `${spec.name}: ${e.message}`)));
    child.once('exit', (code, sig) =>
      finish(new BenchError('BENCH_SERVER_START', `${spec.name} exited (${code ?? sig ?? '?'}) before listening; stderr: ${err.slice(-2000)}`)),
    );
  });
};

/** The environment every server gets: the port, loopback, and room for the 19,000-session case. */
export const serverEnv = (port: number): NodeJS.ProcessEnv => ({
  ...process.env,
  PORT: String(port),
  HOST,
  // The idle case holds 19,000 sessions; a default session cap below that would turn it into 503s.
  COMET_MAX_SESSIONS: process.env.COMET_MAX_SESSIONS ?? '100000',
  // Every load worker is one client address (127.0.0.1) opening thousands of sessions.
  COMET_MAX_SESSIONS_PER_CLIENT: process.env.COMET_MAX_SESSIONS_PER_CLIENT ?? '0',
  COMET_SETUP_RATE_PER_CLIENT: process.env.COMET_SETUP_RATE_PER_CLIENT ?? '0',
});

/** Kill a server by PID and wait for it to exit. */
export const stopServer = (s: RunningServer): Promise<void> => (s.child === null ? Promise.resolve() : killChild(s.child));
