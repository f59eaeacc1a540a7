// The connection FSM, state x event, driven directly with a manual clock (no HTTP).
import t from 'tap';
import { INACTIVITY, WAIT, startConnection, type Harness } from './fixtures/connection.js';

type StateName = 'waiting' | 'have_request' | 'have_packet';

/** Bring a fresh FSM into `state`; returns the held request's promise for have_request. */
async function enter(state: StateName): Promise<{ h: Harness; held?: Promise<unknown> }> {
  const h = await startConnection();
  t.teardown(() => h.stop());
  switch (state) {
    case 'waiting':
      return { h };
    case 'have_request': {
      const held = h.request(1, { token: 1 });
      t.equal((await h.state()).name, 'have_request');
      return { h, held };
    }
    case 'have_packet':
      await h.packet('p1');
      return { h };
  }
}

void t.test('waiting', async (t) => {
  void t.test('request -> held (have_request); the dietimer no longer counts', async (t) => {
    const { h } = await enter('waiting');
    void h.request(1);
    t.match(await h.state(), { name: 'have_request', held: true });
  });
  void t.test('packet -> have_packet, seq 1', async (t) => {
    const { h } = await enter('waiting');
    t.same(await h.packet('x'), { ok: true, seq: 1 });
    t.match(await h.state(), { name: 'have_packet', pending: 1, dietimer: true });
  });
  void t.test('request_gone / wait_timeout for nothing held -> ignored', async (t) => {
    const { h } = await enter('waiting');
    h.gone(12345);
    t.match(await h.state(), { name: 'waiting' });
  });
  void t.test('dietimer -> session ends with reason inactivity', async (t) => {
    const { h } = await enter('waiting');
    h.clock.advance(INACTIVITY - 1);
    t.ok(h.alive());
    await h.state();
    h.clock.advance(1);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    t.notOk(h.alive());
    t.same(h.ended, ['inactivity']);
  });
  void t.test('terminate -> 200 with nothing, session ends (terminate)', async (t) => {
    const { h } = await enter('waiting');
    t.same(await h.terminate(1), { kind: 'packets', rid: 1, packets: [] });
    await new Promise((r) => setImmediate(r));
    t.notOk(h.alive());
    t.same(h.ended, ['terminate']);
  });
});

void t.test('have_request', async (t) => {
  void t.test('packet -> held request answered with it -> have_packet', async (t) => {
    const { h, held } = await enter('have_request');
    await h.packet('hello');
    t.same(await held, { kind: 'packets', rid: 1, packets: [{ seq: 1, data: 'hello' }] });
    t.match(await h.state(), { name: 'have_packet', held: false, dietimer: true, pending: 1 });
  });
  void t.test('second request -> older answered at once with [], newer held', async (t) => {
    const { h, held } = await enter('have_request');
    const second = h.request(2);
    t.same(await held, { kind: 'packets', rid: 1, packets: [] });
    t.match(await h.state(), { name: 'have_request', held: true });
    await h.packet('p');
    t.same(await second, { kind: 'packets', rid: 2, packets: [{ seq: 1, data: 'p' }] });
  });
  void t.test('wait_timeout -> answered with [] -> waiting, dietimer runs', async (t) => {
    const { h, held } = await enter('have_request');
    h.clock.advance(WAIT);
    t.same(await held, { kind: 'packets', rid: 1, packets: [] });
    t.match(await h.state(), { name: 'waiting', held: false, dietimer: true });
  });
  void t.test('request_gone for the held token -> nothing sent, nothing lost -> waiting', async (t) => {
    const { h, held } = await enter('have_request');
    h.gone(1);
    t.same(await held, { kind: 'gone' });
    t.match(await h.state(), { name: 'waiting', held: false, dietimer: true });
    await h.packet('kept');
    t.same(await h.request(2), { kind: 'packets', rid: 2, packets: [{ seq: 1, data: 'kept' }] });
  });
  void t.test('request_gone for another token -> ignored, still held', async (t) => {
    const { h } = await enter('have_request');
    h.gone(999);
    t.match(await h.state(), { name: 'have_request', held: true });
  });
  void t.test('dietimer cannot end a session while a request is held; it counts from the answer', async (t) => {
    const { h } = await enter('have_request');
    // A new poll every WAIT - 1 ms: a request is always held, for longer than INACTIVITY in all
    // (the dietimer armed at start fires meanwhile, and must lapse).
    let rid = 2;
    for (let held = 0; held <= INACTIVITY; held += WAIT - 1) {
      h.clock.advance(WAIT - 1);
      void h.request(rid++);
      await h.state();
    }
    t.ok(h.alive(), 'held for longer than inactivity: alive');
    h.clock.advance(WAIT);
    t.match(await h.state(), { name: 'waiting', held: false }, 'the last poll answered empty after wait');
    h.clock.advance(INACTIVITY - 1);
    await h.state();
    t.ok(h.alive(), 'one ms before inactivity from the answer: alive');
    h.clock.advance(1);
    for (let i = 0; i < 20 && h.alive(); i++) await new Promise((r) => setImmediate(r));
    t.notOk(h.alive(), 'inactivity after the answer: ended');
    t.same(h.ended, ['inactivity']);
  });
  void t.test('terminate -> held answered, terminate answered, session ends', async (t) => {
    const { h, held } = await enter('have_request');
    const term = await h.terminate(2);
    t.same(await held, { kind: 'packets', rid: 1, packets: [] });
    t.same(term, { kind: 'packets', rid: 2, packets: [] });
    await new Promise((r) => setImmediate(r));
    t.notOk(h.alive());
  });
});

void t.test('have_packet', async (t) => {
  void t.test('request -> answered at once with pending packets, stays have_packet until acked', async (t) => {
    const { h } = await enter('have_packet');
    t.same(await h.request(1), { kind: 'packets', rid: 1, packets: [{ seq: 1, data: 'p1' }] });
    t.match(await h.state(), { name: 'have_packet', pending: 1 });
  });
  void t.test('request acking everything -> held (have_request)', async (t) => {
    const { h } = await enter('have_packet');
    void h.request(1, { ack: 1 });
    t.match(await h.state(), { name: 'have_request', pending: 0 });
  });
  void t.test('packet -> queued behind', async (t) => {
    const { h } = await enter('have_packet');
    t.same(await h.packet('p2'), { ok: true, seq: 2 });
    t.match(await h.state(), { name: 'have_packet', pending: 2 });
  });
  void t.test('dietimer -> session ends (inactivity)', async (t) => {
    const { h } = await enter('have_packet');
    h.clock.advance(INACTIVITY);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    t.notOk(h.alive());
    t.same(h.ended, ['inactivity']);
  });
  void t.test('request_gone / stale wait_timeout -> ignored', async (t) => {
    const { h } = await enter('have_packet');
    h.gone(1);
    t.match(await h.state(), { name: 'have_packet', pending: 1 });
  });
  void t.test('terminate -> 200 with the pending packets', async (t) => {
    const { h } = await enter('have_packet');
    t.same(await h.terminate(1), { kind: 'packets', rid: 1, packets: [{ seq: 1, data: 'p1' }] });
  });
});

void t.test('stale-timer race: the wait timer fired while a packet was being handled', async (t) => {
  // The held request's wait timeout lands in the mailbox behind a packet; the packet answers the
  // request (cancelling the timer). The queued timeout must not answer the next held request.
  const { h, held } = await enter('have_request');
  const pushed = h.packet('first');         // queued first
  h.clock.advance(WAIT);                      // timeout queued behind it
  await pushed;
  t.same(await held, { kind: 'packets', rid: 1, packets: [{ seq: 1, data: 'first' }] });
  const next = h.request(2, { ack: 1 });      // held again
  t.match(await h.state(), { name: 'have_request', held: true });
  let answered = false;
  void next.then(() => { answered = true; });
  await h.state();
  t.notOk(answered, 'the stale timeout did not answer the new held request');
});

void t.test('lost response: a packet answered on a socket that died is sent again until acked', async (t) => {
  const { h, held } = await enter('have_request');
  await h.packet('precious');
  t.same(await held, { kind: 'packets', rid: 1, packets: [{ seq: 1, data: 'precious' }] });
  // The response never reached the client: it polls again with its old ack (0).
  t.same(await h.request(2, { ack: 0 }), { kind: 'packets', rid: 2, packets: [{ seq: 1, data: 'precious' }] });
  // Now it has it and acks: nothing is resent, the poll is held.
  void h.request(3, { ack: 1 });
  t.match(await h.state(), { name: 'have_request', pending: 0 });
});

void t.test('messages reach the application in rid order, exactly once', async (t) => {
  const { h } = await enter('waiting');
  void h.request(2, { messages: ['b'] });   // arrives first, took the other connection
  await h.state();
  t.same(h.messages, [], 'rid 2 waits for rid 1');
  void h.request(1, { messages: ['a'] });
  await h.state();
  t.same(h.messages, ['a', 'b']);
  void h.request(2, { messages: ['b'] });   // retransmission
  await h.state();
  t.same(h.messages, ['a', 'b'], 'a retransmitted rid is not delivered again');
});

void t.test('bad rid: more than 16 away', async (t) => {
  const { h } = await enter('waiting');
  t.match(await h.request(17), { kind: 'error', code: 'bad_rid' });
  void h.request(16);
  t.match(await h.state(), { name: 'have_request' });
});

void t.test('queue limit: a client that never acks gets overloaded, handlePacket gets a typed refusal', async (t) => {
  const h = await startConnection({ maxQueue: 2 });
  t.teardown(() => h.stop());
  t.same(await h.packet('a'), { ok: true, seq: 1 });
  t.same(await h.packet('b'), { ok: true, seq: 2 });
  t.same(await h.packet('c'), { ok: false, code: 'overloaded' });
  t.match(await h.request(1), { kind: 'packets', packets: [{ seq: 1 }, { seq: 2 }] }, 'first sent anyway');
  t.match(await h.request(2, { ack: 0 }), { kind: 'error', code: 'overloaded' }, 'sent, full, and still not acked');
  void h.request(3, { ack: 2 });
  t.match(await h.state(), { name: 'have_request', pending: 0 }, 'once it acks, it is served again');
});

void t.test('a crash in a state function ends the session with reason crash and answers the held request', async (t) => {
  let armed = false;
  const h = await startConnection({ fault: (ev) => armed && ev === 'packet' });
  t.teardown(() => h.stop());
  const held = h.request(1);
  await h.state();
  armed = true;
  await t.rejects(h.packet('boom'), { code: 'ERR_OTP_EXIT' });
  t.same(await held, { kind: 'packets', rid: 1, packets: [] });
  t.same(h.ended, ['crash']);
  t.notOk(h.alive());
});
