// Graceful shutdown with thousands of held polls: SIGTERM and SIGINT on the runnable servers
// (echo and the chat demo, each as its own process) stop accepting, answer every held poll with
// what it has, and exit 0 within the 5 s deadline (run_server exits 1 if the deadline passes).
// The in-process side (reasons, nothing left running) is reliability_shutdown_inprocess.test.ts.
import t, { type Test } from 'tap';
import { checkAnswered, fleet, gauge } from './fixtures/soak_fleet.js';
import { bundleBin, spawnServer } from './fixtures/soak_process.js';

const SHUTDOWN_DEADLINE_MS = 5000;

/** Poll `GET /metrics` until `comet_polls_held` reaches `n`. */
async function heldReaches(port: number, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const held = gauge(text, 'comet_polls_held');
    if (held === n) return;
    if (Date.now() > deadline) throw new Error(`only ${String(held)} of ${n} polls held`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function signalUnderLoad(t: Test, bin: 'echo' | 'demo', signal: 'SIGTERM' | 'SIGINT', sessions: number): Promise<void> {
  const file = await bundleBin(t, bin);
  const server = await spawnServer(t, file, ['--wait', '60000', '--inactivity', '60000', '--max-sessions', String(sessions + 10), '--max-sessions-per-client', '0', '--setup-rate-per-client', '0']);
  const clients = fleet(t, server.port);
  const sids = await clients.setups(sessions);
  const polls = clients.polls(sids);
  await heldReaches(server.port, sessions);

  const sent = performance.now();
  server.child.kill(signal);
  // Once the first held poll is answered, shutdown is under way: a new client must be turned away.
  await Promise.race(polls);
  const late = await clients.postFresh({ type: 'setup' });
  const replies = await Promise.all(polls);
  const exit = await server.exited;
  const tookMs = Math.round(exit.at - sent);
  t.comment(`${bin}, ${signal}, ${sessions} held polls: exited ${String(exit.code)} after ${tookMs} ms`);

  t.ok(late.kind === 'error' || (late.status === 503 && (late.body as { error?: unknown }).error === 'shutting_down'),
    `a new client during shutdown is refused: ${JSON.stringify(late)}`);
  checkAnswered(t, replies);
  t.equal(exit.code, 0, 'exit code 0 (the 5 s deadline would have made it 1)');
  t.ok(tookMs < SHUTDOWN_DEADLINE_MS, `within ${SHUTDOWN_DEADLINE_MS} ms (took ${tookMs} ms)`);
  const logs = server.logs();
  t.ok(logs.some((l) => l['signal'] === signal && /shutting down/.test(l.msg ?? '')), `the ${signal} is logged`);
  t.notOk(logs.some((l) => (l.level ?? 0) >= 50), 'no error logged');
  t.equal(server.stderr(), '', 'nothing on stderr');
}

void t.test('echo server, SIGTERM, 3000 held polls', (t) => signalUnderLoad(t, 'echo', 'SIGTERM', 3000));
void t.test('echo server, SIGINT, 1000 held polls', (t) => signalUnderLoad(t, 'echo', 'SIGINT', 1000));
void t.test('chat demo, SIGTERM, 1000 held polls', (t) => signalUnderLoad(t, 'demo', 'SIGTERM', 1000));
