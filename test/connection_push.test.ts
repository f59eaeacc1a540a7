// onMessage's SessionContext: a push from inside the hook goes into the session's outbox in the
// same event (no second message to the FSM), and only while the hook runs.
import t from 'tap';
import { ERR_SESSION_CONTEXT_STALE, type SessionContext } from '../lib/comet/connection.js';
import { isCometError } from '../lib/comet/errors.js';
import { startConnection } from './fixtures/connection.js';
import { recordingLogger } from './fixtures/otp.js';

void t.test('echo in place: the request carrying the message is answered with the echo; the older poll with nothing', async (t) => {
  const h = await startConnection({ onMessage: (data, session) => { session.push(data); } });
  t.teardown(() => h.stop());
  const poll = h.request(1);
  t.equal((await h.state()).name, 'have_request');
  const send = h.request(2, { messages: ['hi'] });
  // The raw loop's order: the poll is settled (older answered, this one held) before the
  // application sees the message, so the echo goes out once, on the request held now.
  t.same(await poll, { kind: 'packets', rid: 1, packets: [] });
  t.same(await send, { kind: 'packets', rid: 2, packets: [{ seq: 1, data: 'hi' }] });
  t.same(h.messages, ['hi']);
  t.match(await h.state(), { name: 'have_packet', held: false, pending: 1 });
  // Acked by the next poll, which is then held.
  const next = h.request(3, { ack: 1 });
  t.match(await h.state(), { name: 'have_request', held: true, pending: 0 });
  await h.packet('later');
  t.same(await next, { kind: 'packets', rid: 3, packets: [{ seq: 2, data: 'later' }] });
});

void t.test('push returns the seq; several pushes for one message keep their order', async (t) => {
  const seqs: number[] = [];
  const h = await startConnection({
    onMessage: (data, session) => {
      seqs.push(session.push(`${String(data)}-a`), session.push(`${String(data)}-b`));
    },
  });
  t.teardown(() => h.stop());
  const r = await h.request(1, { messages: ['m'] });
  t.same(seqs, [1, 2]);
  t.same(r, { kind: 'packets', rid: 1, packets: [{ seq: 1, data: 'm-a' }, { seq: 2, data: 'm-b' }] });
});

void t.test('push after the hook returned (after an await) throws ERR_COMET_SESSION_CONTEXT_STALE and pushes nothing', async (t) => {
  const logger = recordingLogger();
  let late: unknown;
  const h = await startConnection({
    logger,
    async onMessage(data, session) {
      await Promise.resolve();
      try {
        session.push(data);
      } catch (err) {
        late = err;
        throw err;
      }
    },
  });
  t.teardown(() => h.stop());
  void h.request(1, { messages: ['x'] }); // held: nothing was pushed
  for (let i = 0; i < 50 && late === undefined; i++) await new Promise((r) => setImmediate(r));
  t.match(late, { code: ERR_SESSION_CONTEXT_STALE, message: /only valid while onMessage runs/ });
  t.ok(isCometError(late), 'isCometError recognises it, as every code on docs/errors.md');
  t.match(late, { name: 'CometError', status: undefined }, 'a library code: no HTTP status');
  t.match(await h.state(), { name: 'have_request', pending: 0 });
  t.ok(logger.entries.some((e) => e.level === 'error' && e.msg === 'application hook failed'), 'the failure is logged as a hook failure');
});

void t.test('push refuses what it cannot send (bad_request, ERR_COMET_PACKET_TOO_LARGE); a full queue refuses the next message before onMessage sees it', async (t) => {
  const errors: unknown[] = [];
  const h = await startConnection({
    maxQueue: 1,
    maxResponseBytes: 1024,
    onMessage: (data, session) => {
      try {
        session.push(data === 'bigint' ? 1n : data);
      } catch (err) {
        errors.push(err);
      }
    },
  });
  t.teardown(() => h.stop());
  const held = h.request(1, { messages: ['bigint', 'x'.repeat(2000)] });
  t.match(await h.state(), { name: 'have_request', pending: 0 }, 'nothing queued: the request stays held');
  t.match(errors, [{ code: 'bad_request' }, { code: 'ERR_COMET_PACKET_TOO_LARGE' }], 'a 2,000-byte packet is over maxResponseBytes 1,024');
  const first = await h.request(2, { messages: ['one'] });
  t.same(await held, { kind: 'packets', rid: 1, packets: [] });
  t.same(first, { kind: 'packets', rid: 2, packets: [{ seq: 1, data: 'one' }] });
  // Not acked: the queue (1) is full, so a request with messages is refused before they are taken.
  t.match(await h.request(3, { messages: ['two'] }), { kind: 'error', code: 'overloaded' });
  t.equal(errors.length, 2, 'onMessage never ran for it: nothing to refuse');
  t.notOk(h.messages.includes('two'), 'its message was not taken');
  t.match(await h.state(), { pending: 1 });
  // The client acks and sends the same rid again: taken now, once.
  t.same(await h.request(3, { ack: 1, messages: ['two'] }), { kind: 'packets', rid: 3, packets: [{ seq: 2, data: 'two' }] });
  t.same(h.messages.filter((m) => m === 'two'), ['two']);
});

void t.test('in place, push is never refused for a full queue: what one accepted request pushes is all queued', async (t) => {
  const h = await startConnection({
    maxQueue: 2,
    onMessage: (data, session) => {
      for (let i = 0; i < 3; i++) session.push(`${String(data)}.${i}`);
    },
  });
  t.teardown(() => h.stop());
  const r = await h.request(1, { messages: ['a', 'b'] });
  t.same(r, {
    kind: 'packets', rid: 1,
    packets: ['a.0', 'a.1', 'a.2', 'b.0', 'b.1', 'b.2'].map((data, i) => ({ seq: i + 1, data })),
  }, 'six packets past a bound of two, none lost');
  t.match(await h.request(2, { messages: ['c'] }), { kind: 'error', code: 'overloaded' }, 'over the bound: the next message waits');
  t.match(await h.packet('from outside'), { ok: false, code: 'overloaded' }, 'and handlePacket is refused');
  t.same(await h.request(2, { ack: 6, messages: ['c'] }), {
    kind: 'packets', rid: 2, packets: [{ seq: 7, data: 'c.0' }, { seq: 8, data: 'c.1' }, { seq: 9, data: 'c.2' }],
  }, 'acked: the same rid is taken');
  t.same(h.messages, ['a', 'b', 'c'], 'each message once, in order');
});

void t.test('messages delivered as the session ends cannot push: unknown_session', async (t) => {
  const errors: unknown[] = [];
  const seen: SessionContext[] = [];
  const h = await startConnection({
    onMessage: (_data, session) => {
      seen.push(session);
      try {
        session.push('too late');
      } catch (err) {
        errors.push(err);
      }
    },
  });
  // rid 2 arrives before rid 1: its message waits in the inbox; the session ends without rid 1.
  const held = h.request(2, { messages: ['buffered'] });
  t.match(await h.state(), { name: 'have_request' });
  t.same(h.messages, [], 'nothing delivered while rid 1 is missing');
  await h.stop();
  t.same(await held, { kind: 'packets', rid: 2, packets: [] });
  t.same(h.messages, ['buffered'], 'the buffered message still reaches the application');
  t.match(errors, [{ code: 'unknown_session' }]);
  t.equal(seen[0]?.sid, h.sid);
});
