/**
 * `npm run bench:cluster [-- --quick]`: what scale-out costs and what it buys, side by side in one
 * run, against a local redis-server (Debian's package):
 *
 * 1. latency: one session on node A; echo round trips (a request carrying one message, answered at
 *    once with its echo) sent alternately to A (local) and to B (forwarded over Redis to A and
 *    back), p50 and p99 of each;
 * 2. forwarded echo: FORWARD_SESSIONS sessions on node A, each sending its echo requests to node B
 *    in a closed loop (every one forwarded over Redis to A and back): round trips/s, and the bytes
 *    B's scavenges promote (its `--trace-gc-nvp` lines, median): what a node that forwards keeps
 *    alive per call;
 * 3. echo round trips/s and fan-out deliveries/s with 1 process (no Redis) against 2 workers
 *    (`bin/cluster.js --app echo --workers 2`, node:cluster on one port).
 *
 * The load generator runs on the same machine: on 2 cores, 2 workers plus the load generator plus
 * Redis share 2 cores, so the second row shows the cost of the cluster more than its gain (see
 * docs/benchmarks.md). Prints a markdown table; never fails on a figure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpConn, type HttpResponse } from './loadgen/http-conn.js';

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(here, '..', 'bin');
const quick = process.argv.includes('--quick');
const LATENCY_ROUNDS = quick ? 300 : 3000;
const ECHO_SESSIONS = 100;
const ECHO_SECONDS = quick ? 2 : 8;
const FANOUT_SESSIONS = quick ? 100 : 400;
const FANOUT_BROADCASTS = quick ? 10 : 50;
const FORWARD_SESSIONS = 50;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const children: ChildProcess[] = [];
function stopAll(): void {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
}
process.on('exit', stopAll);

async function startRedis(): Promise<string> {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    throw new Error('redis-server not found (apt-get install -y redis-server)');
  }
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.push(p);
  await sleep(300);
  return `redis://127.0.0.1:${port}`;
}

interface StartedNode {
  readonly proc: ChildProcess;
  readonly port: number;
  /** Bytes each scavenge promoted, when started with `--trace-gc-nvp`. */
  readonly promoted: number[];
}

/** Start `node [nodeFlags] file args` and resolve with the port of its first "listening"/"cluster" line. */
function startNode(file: string, args: string[], nodeFlags: string[] = []): Promise<StartedNode> {
  // One client address (127.0.0.1) opens every session, as the bench's load workers do: the
  // per-client limits (100 sessions, 20 setups a second) would answer most setups 429.
  const env = { ...process.env, LOG_LEVEL: 'error', COMET_MAX_SESSIONS_PER_CLIENT: '0', COMET_SETUP_RATE_PER_CLIENT: '0' };
  const proc = spawn(process.execPath, [...nodeFlags, join(bin, file), ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  children.push(proc);
  const promoted: number[] = [];
  return new Promise((res, rej) => {
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on('line', (l) => {
      const gc = / gc=s .* promoted=(\d+)/.exec(l);
      if (gc) promoted.push(Number(gc[1]));
      const m = /"(?:listening|cluster)":true.*"url":"http:\/\/127\.0\.0\.1:(\d+)\//.exec(l);
      if (m) res({ proc, port: Number(m[1]), promoted });
    });
    proc.once('exit', (code) => rej(new Error(`${file} exited ${String(code)}`)));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
}

function post(conn: HttpConn, port: number, path: string, body: string): Promise<HttpResponse> {
  const raw = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return new Promise((res, rej) => conn.request(raw, (err, r) => (err ? rej(err) : res(r as HttpResponse))));
}

interface Reply {
  readonly sid?: string;
  readonly packets?: { seq: number; data: unknown }[];
}

/** A session: setup, then requests with one message (echoed in the answer) or plain polls. */
class Session {
  sid = '';
  rid = 0;
  ack = 0;
  constructor(readonly conn: HttpConn, readonly port: number) {}
  async setup(): Promise<void> {
    const r = await post(this.conn, this.port, '/comet', '{"type":"setup"}');
    const sid = r.status === 200 ? (JSON.parse(r.body) as Reply).sid : undefined;
    if (sid === undefined) throw new Error(`setup: status ${r.status}: ${r.body}`);
    this.sid = sid;
  }
  /** One request on `conn` (default its own); returns the packets and acks them next time. */
  async request(messages: unknown[], conn = this.conn, port = this.port): Promise<number> {
    const r = await post(conn, port, '/comet', JSON.stringify({ sid: this.sid, rid: ++this.rid, ack: this.ack, messages }));
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body}`);
    const packets = (JSON.parse(r.body) as Reply).packets ?? [];
    const fresh = packets.filter((p) => p.seq > this.ack).length;
    for (const p of packets) this.ack = Math.max(this.ack, p.seq);
    return fresh;
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
};

async function latency(redis: string): Promise<{ local: number[]; forwarded: number[] }> {
  const a = await startNode('echo.js', ['--port', '0', '--redis', redis, '--node-id', 'a']);
  const b = await startNode('echo.js', ['--port', '0', '--redis', redis, '--node-id', 'b']);
  await sleep(500);
  const toA = new HttpConn({ host: '127.0.0.1', port: a.port });
  const toB = new HttpConn({ host: '127.0.0.1', port: b.port });
  const s = new Session(toA, a.port);
  await s.setup();
  const local: number[] = [];
  const forwarded: number[] = [];
  for (let i = 0; i < LATENCY_ROUNDS * 2 + 200; i++) {
    const viaB = i % 2 === 1;
    const t0 = performance.now();
    const got = await s.request([i], viaB ? toB : toA, viaB ? b.port : a.port);
    const ms = performance.now() - t0;
    if (got !== 1) throw new Error(`expected the echo, got ${got} packets`);
    if (i >= 200) (viaB ? forwarded : local).push(ms); // the first 200 warm up
  }
  toA.destroy();
  toB.destroy();
  await Promise.all([stop(a.proc), stop(b.proc)]);
  return { local, forwarded };
}

/** FORWARD_SESSIONS sessions on A, each echoing through B for ECHO_SECONDS: round trips/s, and
 *  the median of what B's scavenges promoted meanwhile (bytes). */
async function forwardedRate(redis: string): Promise<{ rate: number; promoted: number }> {
  const a = await startNode('echo.js', ['--port', '0', '--redis', redis, '--node-id', 'a']);
  const b = await startNode('echo.js', ['--port', '0', '--redis', redis, '--node-id', 'b'], ['--trace-gc-nvp']);
  await sleep(500);
  const sessions: Session[] = [];
  for (let i = 0; i < FORWARD_SESSIONS; i++) {
    const s = new Session(new HttpConn({ host: '127.0.0.1', port: a.port }), a.port);
    await s.setup();
    sessions.push(s);
  }
  const toB = sessions.map(() => new HttpConn({ host: '127.0.0.1', port: b.port }));
  const from = b.promoted.length;
  const rate = await closedLoop(sessions, (s, i) => s.request([i], toB[i], b.port));
  const promoted = pct(b.promoted.slice(from), 0.5);
  for (const c of [...toB, ...sessions.map((s) => s.conn)]) c.destroy();
  await Promise.all([stop(a.proc), stop(b.proc)]);
  return { rate, promoted };
}

/** Closed-loop echo round trips for ECHO_SECONDS; returns round trips/s. */
async function echoRate(port: number): Promise<number> {
  const sessions = Array.from({ length: ECHO_SESSIONS }, () => new Session(new HttpConn({ host: '127.0.0.1', port }), port));
  await Promise.all(sessions.map((s) => s.setup()));
  const rate = await closedLoop(sessions, (s, i) => s.request([i]));
  for (const s of sessions) s.conn.destroy();
  return rate;
}

/** Every session sends `echo` (which resolves to the fresh packets it brought back) again as soon
 *  as it is answered, for ECHO_SECONDS; round trips/s that brought an echo. */
async function closedLoop(sessions: readonly Session[], echo: (s: Session, i: number) => Promise<number>): Promise<number> {
  let n = 0;
  let running = true;
  const t0 = performance.now();
  const loops = sessions.map(async (s, i) => {
    while (running) {
      // Awaited first: `n += await x` would read n before the await and lose the others' counts.
      const fresh = await echo(s, i);
      if (fresh > 0) n++;
    }
  });
  await sleep(ECHO_SECONDS * 1000);
  running = false;
  await Promise.all(loops);
  return n / ((performance.now() - t0) / 1000);
}

/** FANOUT_SESSIONS held polls, FANOUT_BROADCASTS broadcasts to one node; returns deliveries/s. */
async function fanoutRate(port: number): Promise<number> {
  const sessions = Array.from({ length: FANOUT_SESSIONS }, () => new Session(new HttpConn({ host: '127.0.0.1', port }), port));
  await Promise.all(sessions.map((s) => s.setup()));
  const total = FANOUT_SESSIONS * FANOUT_BROADCASTS;
  let got = 0;
  let running = true;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => { done = r; });
  const polls = sessions.map(async (s) => {
    while (running) {
      // Destroying the connections at the end fails the polls still held: that is the end, not an error.
      const n = await s.request([]).catch(() => 0);
      got += n;
      if (got >= total) done();
    }
  });
  await sleep(1500); // every poll held (and, on a cluster, every node subscribed)
  const admin = new HttpConn({ host: '127.0.0.1', port });
  const t0 = performance.now();
  for (let i = 0; i < FANOUT_BROADCASTS; i++) await post(admin, port, '/admin/broadcast', JSON.stringify({ data: i }));
  await Promise.race([all, sleep(60_000)]);
  const rate = got / ((performance.now() - t0) / 1000);
  running = false;
  admin.destroy();
  for (const s of sessions) s.conn.destroy();
  await Promise.race([Promise.all(polls), sleep(3000)]);
  return rate;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const started = Date.now();
  console.error('latency: local vs forwarded ...');
  const lat = await latency(redis);
  console.error('forwarded echo ...');
  const fwd = await forwardedRate(redis);
  const rows: string[] = [];
  for (const mode of ['1 process', '2 workers'] as const) {
    const node = mode === '1 process'
      ? await startNode('echo.js', ['--port', '0', '--wait', '2000'])
      : await startNode('cluster.js', ['--app', 'echo', '--workers', '2', '--port', '0']);
    await sleep(mode === '2 workers' ? 1500 : 200);
    console.error(`${mode}: echo ...`);
    const echo = await echoRate(node.port);
    console.error(`${mode}: fan-out ...`);
    const fan = await fanoutRate(node.port);
    rows.push(`| ${mode} | ${echo.toFixed(0)} | ${fan.toFixed(0)} |`);
    await stop(node.proc);
  }
  const f = (x: number): string => x.toFixed(2);
  console.log(`\n### npm run bench:cluster${quick ? ' -- --quick' : ''} (${new Date().toISOString().slice(11, 16)} UTC, ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  console.log(`| request, ${lat.local.length} each | p50 ms | p99 ms |\n|---|---|---|`);
  console.log(`| local (to the owner) | ${f(pct(lat.local, 0.5))} | ${f(pct(lat.local, 0.99))} |`);
  console.log(`| forwarded (to another node, over Redis) | ${f(pct(lat.forwarded, 0.5))} | ${f(pct(lat.forwarded, 0.99))} |`);
  console.log(`| added by the hop | ${f(pct(lat.forwarded, 0.5) - pct(lat.local, 0.5))} | ${f(pct(lat.forwarded, 0.99) - pct(lat.local, 0.99))} |\n`);
  console.log(`| forwarded echo (${FORWARD_SESSIONS} sessions on node a, requests to node b, ${ECHO_SECONDS} s) | round trips/s | b: bytes promoted per scavenge (median) |\n|---|---|---|`);
  console.log(`| 2 nodes, one Redis | ${fwd.rate.toFixed(0)} | ${fwd.promoted.toFixed(0)} |\n`);
  console.log(`| server | echo round trips/s (${ECHO_SESSIONS} sessions, ${ECHO_SECONDS} s) | fan-out deliveries/s (${FANOUT_SESSIONS} sessions x ${FANOUT_BROADCASTS} broadcasts) |\n|---|---|---|`);
  for (const r of rows) console.log(r);
  stopAll();
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  stopAll();
  process.exit(1);
});
