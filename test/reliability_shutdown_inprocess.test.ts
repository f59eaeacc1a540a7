// Graceful shutdown in-process: close() with thousands of held polls answers every one with what
// it has and ends every session with reason 'shutdown'; and it leaves nothing running, so an
// embedder's process ends by itself (the runnable servers exit explicitly, which would hide a
// timer left behind).
import t from 'tap';
import type { SessionEndReason, Sid } from '../lib/index.js';
import { checkAnswered, fleet } from './fixtures/soak_fleet.js';
import { MANY_CLIENTS_ON_LOOPBACK, startServer, waitFor } from './fixtures/http.js';
import { bundle, spawnNode } from './fixtures/soak_process.js';

void t.test('in-process close() with 2000 held polls: every poll answered, every session ends with reason shutdown', async (t) => {
  const ends = new Map<Sid, SessionEndReason>();
  const { comet, port } = await startServer(t, {
    ...MANY_CLIENTS_ON_LOOPBACK, wait: 60_000, inactivity: 60_000,
    onSessionEnd: (sid, reason) => {
      ends.set(sid, reason);
    },
  });
  const clients = fleet(t, port);
  const sids = await clients.setups(2000);
  const polls = clients.polls(sids);
  await waitFor(() => comet.heldCount() === sids.length, 'every poll held', 15_000);

  const started = performance.now();
  await comet.close();
  const tookMs = Math.round(performance.now() - started);
  t.comment(`close() with ${sids.length} held polls took ${tookMs} ms`);
  checkAnswered(t, await Promise.all(polls));
  t.equal(ends.size, sids.length, 'every session ended');
  t.same([...new Set(ends.values())], ['shutdown'], 'with reason shutdown');
  t.same(comet.sessions(), []);
  const after = await clients.postFresh({ type: 'setup' });
  t.equal(after.kind, 'error', `the port is closed: ${JSON.stringify(after)}`);
});

// The library as an embedder uses it, in a process of its own that never calls process.exit:
// after close() it must end by itself. A timer left behind (an FSM's dietimer restarted while
// terminate answered its held poll) would keep it alive for `inactivity` (60 s here).
const EMBEDDER = `
import http from 'node:http';
import { createCometServer } from './index.mjs';
const post = (port, body) => new Promise((resolve, reject) => {
  const payload = JSON.stringify(body);
  const req = http.request({ host: '127.0.0.1', port, path: '/comet', method: 'POST', agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
    let text = '';
    res.on('data', (c) => { text += c; });
    res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
  });
  req.on('error', reject);
  req.end(payload);
});
let crash;
const comet = await createCometServer({ wait: 60000, inactivity: 60000, maxSessionsPerClient: 0, setupRatePerClient: 0, fault: (sid) => sid === crash });
const { port } = await comet.listen(0, '127.0.0.1');
const sids = [];
for (let i = 0; i < 20; i++) sids.push((await post(port, { type: 'setup' })).body.sid);
const polls = sids.map((sid) => post(port, { sid, rid: 1, ack: 0 }));
while (comet.heldCount() < sids.length) await new Promise((r) => setTimeout(r, 5));
crash = sids[0];
await comet.handlePacket(crash, 'boom').catch(() => {});
await comet.close();
const statuses = (await Promise.all(polls)).map((r) => r.status);
console.log(JSON.stringify({ closed: true, statuses }));
`;

void t.test('an embedder\'s process ends by itself after close(), crashed session included: nothing left running', async (t) => {
  const out = await bundle(t, ['lib/index.ts'], { 'embedder.mjs': EMBEDDER });
  const dir = out['index']?.replace(/index\.mjs$/, '');
  const child = spawnNode(t, `${dir}embedder.mjs`, []);
  const guard = setTimeout(() => child.child.kill('SIGKILL'), 15_000);
  const exit = await child.exited;
  clearTimeout(guard);
  const closedAt = child.lines.findIndex((l) => l.includes('"closed":true'));
  t.ok(closedAt >= 0, `close() returned: ${child.stderr()}`);
  t.same((child.logs()[0] as { statuses?: unknown } | undefined)?.statuses, Array(20).fill(200), 'every held poll answered, the crashed one too');
  t.equal(exit.signal, null, 'ended by itself, not by the 15 s guard');
  t.equal(exit.code, 0);
});
