// Byte budgets and bounded responses, over real HTTP against createCometServer on 127.0.0.1:0: a
// session's budget (messages buffered ahead of a missing rid, unacked packets, responses its
// sockets have not read), the server's budget across sessions, and responses cut at
// maxResponseBytes, with packets too large for one refused when pushed. Every refusal is typed
// (503 overloaded to a request, CometError to the application) and nothing accepted is lost.
import net from 'node:net';
import t from 'tap';
import { isCometError, type Sid } from '../lib/index.js';
import { WireClient, fields, packetsOf, post, type Reply } from './fixtures/http.js';
import { assertStillServes, expectError, startProbedServer } from './fixtures/raw_socket.js';

const KIB = 1024;
const MIB = 1024 * KIB;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e);
}

void t.test('session budget: messages buffered ahead of a missing rid are refused with 503 once over it, and nothing refused is lost', async (t) => {
  // 16 KiB messages, a 64 KiB session: rid 1 goes missing, rids 2.. are buffered as text until
  // the budget is spent; the rest get 503 with nothing taken.
  const { url, seen } = await startProbedServer(t, { maxSessionBytes: 64 * KIB, wait: 200 });
  const c = await WireClient.open(url);
  const msg = (rid: number): string => `${rid}:${'x'.repeat(16 * KIB)}`;
  const ahead: Reply[] = [];
  for (let rid = 2; rid <= 9; rid++) ahead.push(await c.request({ rid, messages: [msg(rid)] }));
  const statuses = ahead.map((r) => r.status);
  const accepted = statuses.filter((s) => s === 200).length;
  t.ok(accepted >= 2 && accepted <= 4, `a few buffered (${accepted} of 8: 64 KiB holds three 16 KiB texts)`);
  t.same(statuses, [...statuses.slice(0, accepted).map(() => 200), ...statuses.slice(accepted).map(() => 503)], 'then every one refused');
  for (const r of ahead.filter((x) => x.status === 503)) expectError(t, r, 503, 'overloaded', 'over the session budget');
  t.equal(seen.messages.length, 0, 'nothing delivered while rid 1 is missing');

  // A poll ahead of the gap is never refused: polls take nothing and drain the queue.
  t.equal((await c.request({ rid: 10 })).status, 200, 'a poll still passes');

  // Rid 1 arrives: the buffered ones are delivered; the refused ones, sent again, are taken now.
  t.equal((await c.request({ rid: 1, messages: [msg(1)] })).status, 200);
  for (let rid = 2 + accepted; rid <= 9; rid++) t.equal((await c.request({ rid, messages: [msg(rid)] })).status, 200, `rid ${rid} again`);
  t.same(seen.messages.map((m) => String(m.data).split(':')[0]), ['1', '2', '3', '4', '5', '6', '7', '8', '9'], 'every message once, in rid order');
  await assertStillServes(t, url, 'a session over its budget');
});

/** The messages `big-…` are answered in place with a 10 KiB packet, as an echo would. */
const BIG = 'y'.repeat(10 * KIB);
const answerBig = {
  onMessage(_sid: Sid, data: unknown, session: { push(d: unknown): unknown }) {
    if (typeof data === 'string' && data.startsWith('big-')) session.push(BIG);
  },
};

void t.test('session budget: unacked packets; handlePacket rejects with overloaded, a request with messages gets 503 before it is taken, acking recovers', async (t) => {
  const { url, comet, seen } = await startProbedServer(t, { maxSessionBytes: 64 * KIB, wait: 200, ...answerBig });
  const c = await WireClient.open(url);
  const other = await WireClient.open(url);
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => comet.handlePacket(c.sid, BIG)));
  const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
  t.equal(ok, 6, 'six 10 KiB packets fit in 64 KiB');
  t.ok(outcomes.every((o) => o.status === 'fulfilled' || (isCometError(o.reason) && o.reason.code === 'overloaded')), 'the others: CometError overloaded');

  // Not full yet: a message is taken, and what onMessage pushes for it in place goes over.
  const first = await c.request({ ack: null, messages: ['big-1'] });
  t.equal(first.status, 200, 'under the budget: taken');
  t.equal(packetsOf(first).length, 6, 'answered with the oldest packets that fit in a response');
  // Now over: a request bringing a message is refused before it is taken.
  const rid = c.nextRid();
  expectError(t, await c.request({ rid, ack: null, messages: ['big-2'] }), 503, 'overloaded', 'a message while the session is over its budget');
  t.same(seen.messages.map((m) => m.data), ['big-1'], 'big-2 was not taken');
  t.match(await rejection(comet.handlePacket(c.sid, 'x')), { code: 'overloaded' }, 'handlePacket too, even for one byte');
  t.equal(await comet.handlePacket(other.sid, 'fine'), 1, 'another session is not affected');

  // The same rid again, acking what arrived: taken now, once.
  const again = await c.request({ rid, messages: ['big-2'] });
  t.equal(again.status, 200, 'acked: the same rid is taken');
  t.same(seen.messages.map((m) => m.data), ['big-1', 'big-2'], 'each message once, in order');
  t.equal(c.seqs.length, 7, 'it is answered with what is pending (the answer to big-1) at once');
  await c.request();
  t.same(c.seqs, [1, 2, 3, 4, 5, 6, 7, 8], 'the answer to big-2 comes next: none lost');
  t.ok(await comet.handlePacket(c.sid, 'x') > 8, 'and handlePacket is accepted again');
});

void t.test('server budget: all sessions together; over it every session refuses new data, polls still drain, acks recover', async (t) => {
  const { url, comet, seen } = await startProbedServer(t, { maxSessionBytes: 64 * KIB, maxServerBytes: 96 * KIB, wait: 200, ...answerBig });
  const a = await WireClient.open(url);
  const b = await WireClient.open(url);
  const pushAll = async (sid: Sid, n: number): Promise<number> => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const err = await rejection(comet.handlePacket(sid, BIG));
      if (err === undefined) ok++;
      else if (!isCometError(err) || err.code !== 'overloaded') throw new Error('unexpected refusal', { cause: err });
    }
    return ok;
  };
  t.equal(await pushAll(a.sid, 5), 5, 'a: 50 KiB, within its own 64 KiB');
  t.equal(await pushAll(b.sid, 5), 4, 'b: only what is left of the server\'s 96 KiB, though its own budget has room');
  const fresh = await WireClient.open(url);
  t.match(await rejection(comet.handlePacket(fresh.sid, BIG)), { code: 'overloaded' }, 'an empty session is refused what the server has no room for');
  t.equal((await fresh.request({ messages: ['big-1'] })).status, 200, 'a message is still taken: the server is not at its budget yet');
  t.equal(fresh.data.length, 1, 'its answer pushed in place went over');
  expectError(t, await fresh.request({ ack: null, messages: ['big-2'] }), 503, 'overloaded', 'now a request bringing a message is refused');
  const rid = a.nextRid();
  expectError(t, await a.request({ rid, ack: null, messages: ['big-3'] }), 503, 'overloaded', 'in every session');
  t.same(seen.messages.map((m) => m.data), ['big-1'], 'neither was taken');

  // A poll drains even while the server is full; a's ack makes room for everyone.
  t.equal(packetsOf(await a.request({ ack: null })).length, 5, 'a poll is served while the server is full');
  t.equal((await a.request({ rid, messages: ['big-3'] })).status, 200, 'a, acking, is taken');
  t.equal(await comet.handlePacket(fresh.sid, BIG), 2, 'room again once a acked');
  await assertStillServes(t, url, 'a full server');
});

void t.test('bounded responses: each carries the oldest packets up to maxResponseBytes, the rest come next; none lost or reordered', async (t) => {
  const LIMIT = 8 * KIB;
  const { url, comet } = await startProbedServer(t, { maxResponseBytes: LIMIT, maxSessionBytes: 256 * KIB, wait: 200 });
  const c = await WireClient.open(url);
  const sent: string[] = [];
  for (let i = 0; i < 40; i++) {
    const d = `${i}:${'p'.repeat(1500)}`;
    sent.push(d);
    await comet.handlePacket(c.sid, d);
  }
  const sizes: number[] = [];
  for (let round = 0; round < 20 && c.data.length < 40; round++) {
    const r = await c.request();
    t.equal(r.status, 200);
    sizes.push(Buffer.byteLength(r.text));
  }
  t.same(c.data, sent, 'every packet once, in seq order');
  t.ok(sizes.every((s) => s <= LIMIT), `no response over ${LIMIT} bytes (${sizes.join(', ')})`);
  t.ok(sizes.length >= 8, `spread over ${sizes.length} responses`);
  // Unacked, the next response starts again at the oldest: the same window, never the whole queue.
  await c.request();
  for (let i = 0; i < 5; i++) await comet.handlePacket(c.sid, `again ${i}:${'q'.repeat(3000)}`);
  const first = await c.request({ ack: null });
  const second = await c.request({ ack: null });
  t.same(packetsOf(second).map((p) => p.seq), packetsOf(first).map((p) => p.seq), 'not acked: the same oldest packets again');
  t.ok(packetsOf(first).length < 5, 'and not the whole queue');
});

void t.test('a packet too large for one response is refused when pushed (ERR_COMET_PACKET_TOO_LARGE), never queued: the session goes on', async (t) => {
  const LIMIT = 4 * KIB;
  const pushErrors: unknown[] = [];
  const { url, comet } = await startProbedServer(t, {
    maxResponseBytes: LIMIT,
    wait: 200,
    onMessage(_sid, data, session) {
      try {
        if (data === 'big') for (let i = 0; i < 4; i++) session.push('b'.repeat(LIMIT));
        else session.push(data);
      } catch (err) {
        pushErrors.push(err);
      }
    },
  });
  const c = await WireClient.open(url);
  const tooLarge = { code: 'ERR_COMET_PACKET_TOO_LARGE', name: 'CometError' };
  t.match(await rejection(comet.handlePacket(c.sid, 'h'.repeat(LIMIT))), tooLarge, 'handlePacket');
  t.match(await rejection(comet.broadcast('h'.repeat(LIMIT))), tooLarge, 'broadcast');
  t.equal(await comet.handlePacket(c.sid, 'h'.repeat(LIMIT - 200)), 1, 'just under the limit is taken');
  const r = await c.request({ messages: ['big', 'small'] });
  t.equal(r.status, 200);
  await c.request();
  t.match(pushErrors, [tooLarge], 'session.push in onMessage: the first oversize push throws, the hook stops there');
  t.same(c.data.map((d) => (String(d).startsWith('h') ? 'h…' : d)), ['h…', 'small'], 'the session still answers, with what was taken');
  t.ok(Buffer.byteLength(r.text) <= LIMIT || packetsOf(r).length === 1, 'within the limit');
});

void t.test('unflushed responses count: sockets that never read cannot pile up copies of a big queue', async (t) => {
  // A 12 MiB queue and responses of up to 8 MiB, to sockets that never read: beyond the kernel's
  // buffers the responses stay in this process. Each is counted in the session's budget until
  // it is flushed or its socket closes; once that is spent, more requests get 503.
  const { url, comet, port } = await startProbedServer(t, { maxSessionBytes: 32 * MIB, maxResponseBytes: 8 * MIB, wait: 2000 });
  const c = await WireClient.open(url);
  for (let i = 0; i < 12; i++) await comet.handlePacket(c.sid, `${i}:${'u'.repeat(MIB - 100)}`);
  const body = JSON.stringify({ sid: c.sid, rid: c.nextRid(), ack: 0 });
  const sockets: net.Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const statuses: string[] = [];
  for (let i = 0; i < 12; i++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    const head = await new Promise<string>((resolve) => {
      let got = '';
      s.once('data', (chunk: Buffer) => {
        got += chunk.toString('latin1', 0, 64);
        s.pause(); // read the status line, then nothing more
        resolve(got);
      });
      s.write(`POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    statuses.push(head.split('\r\n')[0] ?? '');
  }
  const ok = statuses.filter((s) => s.includes(' 200 ')).length;
  t.ok(ok >= 2 && ok <= 4, `only a few unread copies are written (${ok} of 12): ${statuses.join(' | ')}`);
  t.ok(statuses.slice(ok).every((s) => s.includes(' 503 ')), 'then 503 overloaded');
  // The sockets close: their bytes come back, and the session is served again.
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const after = await post(url, { sid: c.sid, rid: c.nextRid(), ack: 0 });
  t.equal(after.status, 200, 'once they closed, a reading client is served');
  t.equal(packetsOf(after).length, 8, 'with the oldest 8 MiB');
  t.equal(fields(after)['rid'], c.nextRid() - 1);
});
