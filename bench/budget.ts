/**
 * What the byte budgets hold against the attack of issue 11's first row, and what an idle session
 * costs besides: `npm run bench:budget -- [sessions]` (default 300; `node --expose-gc dist/bench/budget.js`).
 *
 * 1. Idle: 2,000 sessions set up in process; live heap per session after a full GC.
 * 2. Attack: in each of `sessions` sessions, rid 1 goes missing and rids 2..16 each bring a 64 KiB
 *    body of nested empty arrays (`[[]],[[]],…`, which parses into about 20 times its size). The
 *    inbox keeps them as text, counted in the session's and the server's budget; past them, 503.
 *    Prints the answers by status, the heap and RSS growth, and the bytes the budget counted.
 *
 * Loopback only, one process, stops by itself. Figures go in docs/reliability.md with this command.
 */
import http from 'node:http';
import { createCometServer } from '../lib/index.js';

const sessions = Number(process.argv[2] ?? 300);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function post(port: number, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/comet', method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

const MIB = 1024 * 1024;
// A short wait: each session's last request ahead of the gap is held until it times out.
const comet = await createCometServer({ wait: 200, inactivity: 600_000 });
const { port } = await comet.listen(0, '127.0.0.1');

// 1. Idle sessions.
const before = heap();
const IDLE = 2000;
for (let i = 0; i < IDLE; i++) await comet.api.handleSetup();
const idle = (heap() - before) / IDLE;
console.log(`idle: ${IDLE} sessions, live heap ${(idle / 1024).toFixed(1)} KiB per session (no poll held)`);

// 2. The attack.
const rssBefore = process.memoryUsage().rss;
const heapBefore = heap();
const counts = new Map<string, number>();
const nested = '[[]],'.repeat(13_000).slice(0, -1);
const started = Date.now();
for (let s = 0; s < sessions; s++) {
  const setup = await post(port, '{"type":"setup"}');
  const sid = (JSON.parse(setup.text) as { sid: string }).sid;
  // Concurrently, as two connections and a hostile client would: 15 rids, all within 16 of 0.
  await Promise.all(Array.from({ length: 15 }, async (_, k) => {
    const body = `{"sid":"${sid}","rid":${k + 2},"messages":[${nested}]}`;
    const r = await post(port, body);
    const key = r.status === 200 ? '200' : `${r.status} ${(JSON.parse(r.text) as { error?: string }).error ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }));
}
const body = `{"sid":"x","rid":2,"messages":[${nested}]}`;
const heapAfter = heap();
const rssAfter = process.memoryUsage().rss;
console.log(`attack: ${sessions} sessions x 15 rids ahead of a missing rid 1, each a ${(Buffer.byteLength(body) / 1024).toFixed(0)} KiB body of nested arrays, ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`  answers: ${[...counts].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
console.log(`  heap +${((heapAfter - heapBefore) / MIB).toFixed(1)} MiB, RSS +${((rssAfter - rssBefore) / MIB).toFixed(1)} MiB (budget: maxServerBytes 256 MiB)`);
agent.destroy();
await comet.close();
