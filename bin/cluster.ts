#!/usr/bin/env node
/**
 * `npm run cluster -- --workers N`: the chat demo as a cluster on one machine, for a newcomer to see
 * scale-out work. It starts a local redis-server (Debian's package; persistence off, on a free
 * loopback port, stopped with the cluster) and N node processes of the demo under `node:cluster`,
 * sharing one port: node:cluster hands each new connection to a worker in turn, so consecutive
 * requests of one browser land on different nodes, and any node serves any request.
 *
 * Flags: --workers N (default 2), --port N (default 8080), --lease MS (default 10000), --app
 * demo|echo (default demo; the echo server for benchmarks). SIGINT or SIGTERM stops the workers
 * gracefully, then Redis.
 */
import cluster from 'node:cluster';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Workers when `--workers` is not given. */
export const DEFAULT_WORKERS = 2;
const REDIS_START_TIMEOUT_MS = 5000;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function intFlag(raw: string | undefined, name: string, dflt: number, min: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(500, () => sock.destroy());
    sock.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      sock.end();
    });
    sock.on('error', () => resolve(false));
    sock.on('close', () => resolve(false));
    sock.write('PING\r\n');
  });
}

async function startRedis(): Promise<{ proc: ChildProcess; url: string }> {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    fail('redis-server not found. npm run cluster starts a local Redis: install Debian\'s package first\n'
      + '  (apt-get update && apt-get install -y redis-server), or run the nodes yourself with --redis URL.');
  }
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + REDIS_START_TIMEOUT_MS;
  while (!(await redisAnswers(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) fail(`redis-server did not start on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url: `redis://127.0.0.1:${port}` };
}

if (cluster.isPrimary) {
  const { values } = parseArgs({
    options: { workers: { type: 'string' }, port: { type: 'string' }, lease: { type: 'string' }, app: { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write('npm run cluster -- [--workers N] [--port N] [--lease MS] [--app demo|echo]\n');
    process.exit(0);
  }
  const app = values.app ?? 'demo';
  if (app !== 'demo' && app !== 'echo') fail(`--app must be demo or echo, got ${JSON.stringify(app)}`);
  const workers = intFlag(values.workers, 'workers', DEFAULT_WORKERS, 1);
  const port = intFlag(values.port, 'port', 8080, 0);
  const lease = intFlag(values.lease, 'lease', 10_000, 200);
  const redis = await startRedis();
  let stopping = false;
  cluster.setupPrimary({ exec: fileURLToPath(new URL(`./${app}.js`, import.meta.url)), args: [] });
  const fork = (i: number): void => {
    const w = cluster.fork({ PORT: String(port), COMET_REDIS_URL: redis.url, COMET_NODE_ID: `worker-${i}`, COMET_LEASE_MS: String(lease) });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`worker-${i} exited (${String(code ?? signal)}); starting it again (a new node id)\n`);
      fork(i);
    });
  };
  for (let i = 1; i <= workers; i++) fork(i);
  let listening = 0;
  cluster.on('listening', (_w, address) => {
    if (++listening === workers) {
      process.stdout.write(`${JSON.stringify({ cluster: true, workers, redis: redis.url, url: `http://127.0.0.1:${address.port}/` })}\n`);
    }
  });
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const exits = Object.values(cluster.workers ?? {}).map((w) => new Promise<void>((resolve) => {
      if (!w || w.isDead()) return resolve();
      w.once('exit', () => resolve());
      w.process.kill('SIGTERM');
    }));
    void Promise.all(exits).then(() => {
      if (redis.proc.pid !== undefined) process.kill(redis.proc.pid, 'SIGTERM');
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
