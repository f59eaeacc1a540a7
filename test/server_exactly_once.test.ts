// Nothing lost, nothing twice, over real HTTP: responses that die in flight, sockets that die
// while held (request_gone), requests that overtake each other on the two connections.
import type { ServerResponse } from 'node:http';
import t from 'tap';
import { WireClient, fsmHandled, packetsOf, startHttp, startServer, waitFor } from './fixtures/http.js';

/** Make this response die on the wire after the server wrote it: the socket closes instead. */
function loseOnWrite(res: ServerResponse): void {
  res.end = ((): ServerResponse => {
    res.socket?.destroy();
    return res;
  }) as ServerResponse['end'];
}

/** A request that is expected to fail because its socket dies; resolves to the error. */
function dies(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (err: unknown) => err);
}

void t.test('a response lost in flight after it was written: the next poll with the old ack gets the packet again', async (t) => {
  // wait well under the fixture's request timeout: a server that forgot the packet answers the
  // next poll with [] after wait, and the assertion below says so.
  const { comet, seen } = await startServer(t, { wait: 3000 }, { noListen: true });
  let loseNext = false;
  const { url } = await startHttp(t, (req, res) => {
    if (loseNext) {
      loseNext = false;
      loseOnWrite(res);
    }
    comet.handler(req, res);
  });
  const c = await WireClient.open(url);
  loseNext = true;
  const held = dies(c.request());
  await fsmHandled(seen, c.sid, 'request');
  t.equal(await comet.handlePacket(c.sid, 'precious'), 1);
  t.ok(await held, 'the held poll died with the packet in it');
  t.equal(c.ack, 0, 'the client never saw it');
  const again = await c.request({ ack: 0 });
  t.same(packetsOf(again), [{ seq: 1, data: 'precious' }], 'sent again, same seq, same data');
  t.same(c.data, ['precious'], 'exactly once');
});

void t.test('dropHeldPoll while a packet is on its way, then a poll with the old ack: exactly once after dedupe', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 3000 });
  const c = await WireClient.open(url);
  const rounds = 24;
  for (let i = 0; i < rounds; i++) {
    const oldAck = c.ack;
    const held = dies(c.request());
    await fsmHandled(seen, c.sid, 'request', i * 2 + 1);
    const data = { round: i };
    // Three ways to lose the held poll: before the FSM sees the packet, after it answered with
    // it, and before the packet exists at all (a plain request_gone).
    switch (i % 3) {
      case 0: {
        const sent = comet.handlePacket(c.sid, data);
        t.equal(comet.dropHeldPoll(c.sid), 1);
        await sent;
        break;
      }
      case 1:
        await comet.handlePacket(c.sid, data);
        comet.dropHeldPoll(c.sid);
        break;
      case 2:
        t.equal(comet.dropHeldPoll(c.sid), 1);
        await fsmHandled(seen, c.sid, 'request_gone', Math.floor(i / 3) + 1);
        await comet.handlePacket(c.sid, data);
        break;
    }
    await held;
    const r = await c.request({ ack: oldAck });
    t.equal(r.status, 200, `round ${i}: the next poll is answered`);
    t.ok(packetsOf(r).some((p) => p.seq === i + 1), `round ${i}: the packet comes with the poll after the drop`);
  }
  const want = Array.from({ length: rounds }, (_, i) => ({ round: i }));
  t.same(c.data, want, 'every packet exactly once, in order');
  t.same(c.seqs, Array.from({ length: rounds }, (_, i) => i + 1), 'seqs 1..n, none skipped');
  t.ok(c.wire.length >= rounds, 'at least once on the wire');
  for (let s = 1; s <= rounds; s++) t.ok(c.wire.some((p) => p.seq === s), `seq ${s} was on the wire`);
});

void t.test('a socket that dies while held -> request_gone: nothing lost, the next poll gets the packet', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 30_000, inactivity: 5000 });
  const c = await WireClient.open(url);
  const ac = new AbortController();
  const held = dies(c.request({ signal: ac.signal }));
  await fsmHandled(seen, c.sid, 'request');
  t.equal(comet.heldCount(), 1);
  ac.abort();
  await held;
  await fsmHandled(seen, c.sid, 'request_gone');
  await waitFor(() => comet.heldCount() === 0, 'the handler to let the dead request go');
  t.equal(await comet.handlePacket(c.sid, 'after'), 1);
  const r = await c.request();
  t.same(r.body, { rid: 2, packets: [{ seq: 1, data: 'after' }] }, 'answered at once with the packet');
  t.same(c.data, ['after']);
});

void t.test('request_gone restarts the dietimer: a client that vanished while held ends after inactivity, not after wait', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 30_000, inactivity: 300 });
  const c = await WireClient.open(url);
  const ac = new AbortController();
  const held = dies(c.request({ signal: ac.signal }));
  await fsmHandled(seen, c.sid, 'request');
  ac.abort();
  await held;
  await waitFor(() => seen.ends.length === 1, 'the session to end by inactivity (long before wait)', 8000);
  t.same(seen.ends, [{ sid: c.sid, reason: 'inactivity' }]);
  t.same(comet.sessions(), []);
});

void t.test('rid 2 sent before rid 1 (two connections): messages reach onMessage in rid order', async (t) => {
  const { url, seen } = await startServer(t, { wait: 300 });
  const c = await WireClient.open(url);
  const second = c.request({ rid: 2, messages: ['second-a', 'second-b'] });
  await fsmHandled(seen, c.sid, 'request');
  t.same(seen.messages, [], 'rid 2 waits for rid 1');
  const first = c.request({ rid: 1, messages: ['first'] });
  t.equal((await second).status, 200);
  t.equal((await first).status, 200);
  t.same(seen.messages.map((m) => m.data), ['first', 'second-a', 'second-b']);

  // A retransmission of either is answered and not delivered again.
  t.equal((await c.request({ rid: 2, messages: ['second-a', 'second-b'] })).status, 200);
  t.equal((await c.request({ rid: 1, messages: ['first'] })).status, 200);
  t.equal(seen.messages.length, 3);
});

void t.test('three requests arriving 3, 2, 1: delivered 1, 2, 3', async (t) => {
  const { url, seen } = await startServer(t, { wait: 300 });
  const c = await WireClient.open(url);
  const r3 = c.request({ rid: 3, messages: [3] });
  await fsmHandled(seen, c.sid, 'request', 1);
  const r2 = c.request({ rid: 2, messages: [2] });
  await fsmHandled(seen, c.sid, 'request', 2);
  t.same(seen.messages, []);
  const r1 = c.request({ rid: 1, messages: [1] });
  await Promise.all([r1, r2, r3]);
  t.same(seen.messages.map((m) => m.data), [1, 2, 3]);
});

void t.test('concurrent requests in random order: every message once, in rid order', async (t) => {
  const { url, seen } = await startServer(t, { wait: 200, maxConnectionsPerSession: 6 }); // six at once: above the default 4
  const c = await WireClient.open(url);
  let rid = 0;
  for (let round = 0; round < 10; round++) {
    const batch = Array.from({ length: 6 }, () => ++rid);
    batch.sort(() => Math.random() - 0.5);
    const rs = await Promise.all(batch.map((r) => c.request({ rid: r, messages: [`m${r}`] })));
    for (const r of rs) t.equal(r.status, 200);
  }
  t.same(seen.messages.map((m) => m.data), Array.from({ length: rid }, (_, i) => `m${i + 1}`));
});
