// Backpressure instead of a drop, end to end: the runnable echo server (bin/echo.ts, its own
// onMessage: `session.push(data)` in place) and CometClient over real HTTP on loopback. A message
// the server answered 200 for reaches onMessage exactly once, and its echo is never dropped: while
// a session's queue is full, requests bringing messages get 503 before any is taken, and the
// client sends them again. The README's promise, "every message comes back", under a burst.
import t, { type Test } from 'tap';
import { CometClient, type MessageEvent } from '../lib/client/index.js';
import { bundleBin, spawnServer } from './fixtures/soak_process.js';

/** Send `n` messages in one burst, and wait until `n` echoes came back (or `timeoutMs`). */
async function burst(t: Test, args: readonly string[], n: number, size: number): Promise<{ echoes: unknown[]; refused: number }> {
  const echo = await bundleBin(t, 'echo');
  const server = await spawnServer(t, echo, args, { LOG_LEVEL: 'warn' });
  const base = `http://127.0.0.1:${server.port}`;
  const client = new CometClient(`${base}/comet`, { retryBaseMs: 5, retryCapMs: 50 });
  t.teardown(() => client.close());
  const echoes: unknown[] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => { done = resolve; });
  client.on('message', (m: MessageEvent) => {
    echoes.push(m.data);
    if (echoes.length === n) done();
  });
  await client.connect();
  const pad = 'x'.repeat(size);
  const sends = Array.from({ length: n }, (_, i) => client.send(`${i}${pad}`));
  const settled = await Promise.allSettled(sends);
  t.equal(settled.filter((s) => s.status === 'fulfilled').length, n, `all ${n} sends resolved: the server accepted each`);
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 20_000).unref());
  await Promise.race([all, timeout]);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const refused = Number(/comet_http_requests_total\{status="503"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  return { echoes: echoes.map((e) => (typeof e === 'string' ? Number.parseInt(e, 10) : e)), refused };
}

const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

void t.test('3,000 send() in a burst to the echo server (default options): 3,000 echoes, each once, in order', async (t) => {
  const { echoes } = await burst(t, [], 3000, 0);
  t.equal(echoes.length, 3000, 'every message came back');
  t.same(echoes, upTo(3000), 'each once, in order');
});

void t.test('the same burst against a queue of 20 and a 64 KiB session: requests wait with 503, still 3,000 echoes in order', async (t) => {
  const { echoes, refused } = await burst(t, ['--max-queue', '20', '--max-session-bytes', '65536'], 3000, 200);
  t.ok(refused > 0, `the server pushed back (${refused} x 503 overloaded)`);
  t.equal(echoes.length, 3000, 'every message came back');
  t.same(echoes, upTo(3000), 'each once, in order');
});
