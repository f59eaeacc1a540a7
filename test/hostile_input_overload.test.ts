// Overload from one client, over real HTTP against createCometServer on 127.0.0.1:0: thousands of
// setups against a small maxSessions (503 overloaded beyond it, and setups work again once
// sessions end), and a session whose client never acks against a small maxQueue (503 to its
// requests once its queue is full and sent and unacked, a typed CometError to handlePacket
// callers, never a silent drop; acking recovers it). server_errors.test.ts has the one-line
// version of each; these push harder and count every outcome.
import t from 'tap';
import { isCometError, type Sid } from '../lib/index.js';
import { ManualClock } from '../lib/otp/clock.js';
import { MANY_CLIENTS_ON_LOOPBACK, WireClient, fields, packetsOf, post, waitFor, type Reply } from './fixtures/http.js';
import { assertNoLeak, assertStillServes, expectError, startProbedServer } from './fixtures/raw_socket.js';

/** Run `n` jobs, `width` at a time. */
async function pool<T>(n: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await job(i);
    }
  }));
  return out;
}

/** Tally replies by "status code" ("200", "503 overloaded"), and check none leaks. */
function tally(t: Parameters<typeof assertNoLeak>[0], replies: readonly Reply[], what: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const leaks = new Set<string>();
  for (const r of replies) {
    const code = fields(r)['error'];
    const key = typeof code === 'string' ? `${r.status} ${code}` : String(r.status);
    counts[key] = (counts[key] ?? 0) + 1;
    if (r.status !== 200) leaks.add(r.text);
  }
  for (const text of leaks) assertNoLeak(t, text, what);
  return counts;
}

const sidOf = (r: Reply): Sid => fields(r)['sid'] as Sid;

void t.test('2,000 setups from one client against maxSessions 100: 100 sessions, 1,900 x 503 overloaded; ended sessions free their slots', async (t) => {
  const clock = new ManualClock();
  const started = await startProbedServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, maxSessions: 100, inactivity: 1000, clock });
  const { url, comet } = started;

  const burst = await pool(2000, 24, () => post(url, { type: 'setup' }));
  t.same(tally(t, burst, 'setup over the limit'), { '200': 100, '503 overloaded': 1900 }, 'exactly maxSessions setups succeed, even 24 at a time');
  expectError(t, burst.find((r) => r.status === 503) ?? burst[0] as Reply, 503, 'overloaded', 'a refused setup');
  const live = burst.filter((r) => r.status === 200).map(sidOf);
  t.equal(new Set(live).size, 100, '100 distinct sids');
  t.same([...comet.sessions()].sort(), [...live].sort(), 'the server holds exactly those sessions');

  // A refused setup leaves nothing behind: the live sessions all still work.
  await pool(100, 20, async (i) => {
    const sid = live[i] as Sid;
    await comet.handlePacket(sid, `to ${i}`);
    const r = await post(url, { sid, rid: 1, ack: 0 });
    if (JSON.stringify(packetsOf(r)) !== JSON.stringify([{ seq: 1, data: `to ${i}` }])) t.fail(`session ${i}: ${r.text}`);
  });
  t.pass('every live session is served');

  // Ending sessions by terminate frees exactly that many slots.
  await pool(30, 10, (i) => post(url, { type: 'terminate', sid: live[i], rid: 2, ack: 1 }));
  await waitFor(() => comet.sessions().length === 70, 'the terminated sessions to end');
  const again = await pool(200, 16, () => post(url, { type: 'setup' }));
  t.same(tally(t, again, 'setup after terminates'), { '200': 30, '503 overloaded': 170 }, 'after 30 terminates, 30 setups succeed');

  // Ending sessions by inactivity frees them all (the clock is manual: no sleeping).
  clock.advance(1000);
  await waitFor(() => comet.sessions().length === 0, 'every session to end by inactivity');
  t.ok(started.seen.ends.filter((e) => e.reason === 'inactivity').length === 100, 'the other 100 ended by inactivity');
  const after = await pool(300, 16, () => post(url, { type: 'setup' }));
  t.same(tally(t, after, 'setup after inactivity'), { '200': 100, '503 overloaded': 200 }, 'all 100 slots are usable again');
  await pool(100, 20, (i) => post(url, { type: 'terminate', sid: sidOf(after.filter((r) => r.status === 200)[i] as Reply), rid: 1 }));
  await waitFor(() => comet.sessions().length === 0, 'the sessions to end');
  await assertStillServes(t, url, '2,600 setups');
});

void t.test('a client that never acks: its queue fills, handlePacket rejects with CometError overloaded, its requests get 503, nothing is dropped', async (t) => {
  const MAX = 5;
  const { url, comet, seen } = await startProbedServer(t, { maxQueue: MAX, wait: 300 });
  const mute = await WireClient.open(url);
  const healthy = await WireClient.open(url);

  // 50 pushes at once into a queue of 5: exactly 5 accepted, 45 rejected, every one accounted for.
  const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => comet.handlePacket(mute.sid, `m${i}`)));
  const accepted = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const rejected = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
  t.same(accepted.sort((a, b) => a - b), [1, 2, 3, 4, 5], 'seqs 1..5 accepted');
  t.equal(rejected.length, 45, 'the other 45 rejected, not dropped');
  t.ok(rejected.every((e) => isCometError(e) && e.code === 'overloaded' && e.status === 503), 'each with CometError code overloaded, status 503');
  const acceptedData = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [`m${i}`] : []));

  // Full but not yet sent: the client is not at fault yet, its poll gets the packets.
  const first = await mute.request({ ack: null });
  t.same(packetsOf(first).map((p) => p.data), acceptedData, 'full, never sent: answered with all five');
  // Full, sent and unacked: polls get the same packets again (the client may have lost the answer
  // and cannot ack what it never got); a request bringing a message gets 503, nothing taken.
  t.same(packetsOf(await mute.request({ ack: null })).map((p) => p.data), acceptedData, 'a poll without ack: the packets again');
  t.same(packetsOf(await mute.request({ ack: 0 })).map((p) => p.data), acceptedData, 'a poll acking nothing new: the same');
  const withMessage = mute.nextRid();
  expectError(t, await mute.request({ rid: withMessage, ack: null, messages: ['hello while full'] }), 503, 'overloaded', 'a request with a message');

  // Meanwhile another session on the same server is not affected at all.
  await comet.handlePacket(healthy.sid, 'for the healthy one');
  t.same(packetsOf(await healthy.request()).map((p) => p.data), ['for the healthy one'], 'another session is served');
  t.equal(await comet.handlePacket(healthy.sid, 'more'), 2, 'and its queue takes packets');
  await expectRejected(t, comet.handlePacket(mute.sid, 'still full'), 'handlePacket while still full');
  // broadcast does not wait for answers: it counts the sessions it was sent to, and the full
  // queue's refusal is logged (never queued past maxQueue, never silent).
  const refusals = (): number => seen.logs.filter((l) => l.level === 'warn' && /queue full/.test(l.msg ?? '')).length;
  const before = refusals();
  t.equal(await comet.broadcast('to all'), 2, 'broadcast resolves to the number of sessions it was sent to');
  await waitFor(() => refusals() === before + 1, 'the full queue\'s refusal to be logged');
  t.same(packetsOf(await healthy.request()).map((p) => p.data), ['more', 'to all'], 'the healthy session got the broadcast');

  // The client acks: the queue drains, packets are accepted again, in seq order, none lost.
  const resent = await mute.request({ rid: withMessage, ack: 5, messages: ['hello while full'] });
  t.equal(resent.status, 200, 'the same rid again, now acking, is served');
  const helloes = seen.messages.filter((m) => m.sid === mute.sid && m.data === 'hello while full');
  t.equal(helloes.length, 1, 'the message of the 503 request was delivered exactly once (the resend is a retransmission)');
  t.equal(await comet.handlePacket(mute.sid, 'after ack'), 6, 'the next packet gets seq 6');
  t.same(packetsOf(await mute.request()).map((p) => [p.seq, p.data]), [[6, 'after ack']], 'and arrives');
  t.same(mute.seqs, [1, 2, 3, 4, 5, 6], 'the client got every accepted packet, once, in order');
  t.notOk(mute.data.includes('to all'), 'and not the broadcast its full queue refused');
  t.same(comet.sessions().includes(mute.sid), true, 'the session was never ended for it');
  t.equal(seen.ends.length, 0, 'no session ended');
  await assertStillServes(t, url, 'a full queue');
});

async function expectRejected(t: Parameters<typeof assertNoLeak>[0], p: Promise<unknown>, what: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  t.ok(isCometError(err) && err.code === 'overloaded', `${what}: rejects with CometError overloaded`);
}

void t.test('a never-acking client under a steady stream: every push is either delivered or rejected to its caller', async (t) => {
  const MAX = 8;
  const { url, comet } = await startProbedServer(t, { maxQueue: MAX, wait: 200 });
  const c = await WireClient.open(url);
  const delivered: string[] = [];
  const refused: string[] = [];
  // 200 pushes; after every 10, the client polls: first without acking (stalls), then acking.
  for (let i = 0; i < 200; i++) {
    const data = `s${i}`;
    await comet.handlePacket(c.sid, data).then(() => delivered.push(data), (e: unknown) => {
      if (!isCometError(e) || e.code !== 'overloaded') throw e;
      refused.push(data);
    });
    if (i % 10 === 9) {
      const stall = await c.request({ ack: i < 100 ? null : c.ack });
      if (stall.status !== 200 && !(stall.status === 503 && fields(stall)['error'] === 'overloaded')) t.fail(`unexpected ${stall.status} ${stall.text}`);
    }
  }
  const last = await c.request({ ack: c.ack });
  t.equal(last.status, 200);
  t.ok(refused.length > 0, `${refused.length} pushes were refused while the client did not ack`);
  t.equal(delivered.length + refused.length, 200, 'every push accounted for');
  t.same(c.data, delivered, 'the client received exactly the accepted pushes, in order, once each');
});
