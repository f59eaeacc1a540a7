// Unit tests of CometClient against an in-memory v1 server behind an injected fetch.
import t from 'tap';
import {
  CometClient,
  CometClientError,
  backoffDelay,
  type CloseEvent,
  type CometClientOptions,
  type CometClientState,
  type MessageEvent,
  type OpenEvent,
} from '../lib/client/index.js';
import { FakeComet, until, type Body } from './fixtures/fake-comet.js';

/** The part of a tap test `mk` needs. */
type Test = { teardown(fn: () => unknown): void };

function mk(tt: Test, fake: FakeComet, options: CometClientOptions = {}) {
  const client = new CometClient('http://fake/comet', {
    fetch: fake.fetch,
    retryBaseMs: 1,
    retryCapMs: 8,
    random: () => 0.5,
    pollMarginMs: 200,
    healthyAfterMs: 50,
    ...options,
  });
  tt.teardown(() => client.close());
  const seen = {
    messages: [] as MessageEvent[],
    opens: [] as OpenEvent[],
    closes: [] as CloseEvent[],
    errors: [] as CometClientError[],
    states: [] as CometClientState[],
  };
  client.on('message', (m) => seen.messages.push(m));
  client.on('open', (o) => seen.opens.push(o));
  client.on('close', (c) => seen.closes.push(c));
  client.on('error', (e) => seen.errors.push(e));
  client.on('state', (s) => seen.states.push(s.state));
  return { client, seen };
}

/** Attaches a handler at once (a rejection seen late is an unhandled rejection); resolves to the error. */
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(
  () => new Error('expected a rejection'),
  (e: unknown) => e,
);

const isMsgReq = (b: Body): boolean => Array.isArray(b.messages);

void t.test('connect opens a session, polls, and delivers pushed packets in order', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  t.equal(client.state, 'idle');
  const sid = await client.connect();
  t.equal(client.sid, sid);
  t.equal(client.state, 'open');
  t.same(seen.opens, [{ sid, wait: fake.wait, inactivity: fake.inactivity, previousSid: null }]);
  await until(() => fake.sessions.get(sid)?.held !== undefined, 2000, 'held poll');
  fake.push(sid, 'a');
  fake.push(sid, { b: 2 });
  await until(() => seen.messages.length === 2, 2000, 'two messages');
  fake.push(sid, 'c');
  await until(() => seen.messages.length === 3, 2000, 'third message');
  t.same(
    seen.messages.map((m) => [m.seq, m.data]),
    [[1, 'a'], [2, { b: 2 }], [3, 'c']],
  );
  t.ok(seen.messages.every((m) => m.sid === sid));
});

void t.test('every request takes the next rid and carries the current ack', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.push(sid, 1);
  await until(() => seen.messages.length === 1);
  await client.send('x');
  fake.push(sid, 2);
  await until(() => seen.messages.length === 2);
  await until(() => fake.requests(sid).length >= 4);
  const reqs = fake.requests(sid);
  t.same(
    reqs.map((b) => b.rid),
    reqs.map((_b, i) => i + 1),
    'rids 1, 2, 3, ... across both connections',
  );
  const acks = reqs.map((b) => b.ack as number);
  t.equal(acks[0], 0, 'first request acks nothing');
  t.ok(acks.every((a, i) => i === 0 || a >= (acks[i - 1] ?? 0)), 'ack never goes back');
  t.equal(acks.at(-1), 2, 'latest request acks the highest seq received');
});

void t.test('send resolves when accepted; queued messages are batched one request at a time', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  const sid = await client.connect();
  await Promise.all([client.send('a'), client.send('b'), client.send('c')]);
  t.same(fake.calls.filter(isMsgReq).map((b) => b.messages), [['a', 'b', 'c']], 'sent in the same tick: one request');

  let open!: () => void;
  fake.fault(isMsgReq, { kind: 'gate', gate: new Promise<void>((r) => (open = r)) });
  const d = client.send('d');
  await until(() => fake.calls.filter(isMsgReq).length === 2, 2000, 'the request carrying d');
  const later = [client.send('e'), client.send('f')];
  let dDone = false;
  void d.then(() => (dDone = true));
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(dDone, 'd is not settled before the server has its request');
  t.equal(fake.calls.filter(isMsgReq).length, 2, 'one request at a time: e and f wait');
  open();
  await Promise.all([d, ...later]);
  t.same(
    fake.calls.filter(isMsgReq).map((b) => b.messages),
    [['a', 'b', 'c'], ['d'], ['e', 'f']],
    'what queued meanwhile goes in the next request',
  );
  t.same(fake.delivered.map((x) => x.data), ['a', 'b', 'c', 'd', 'e', 'f']);
  t.ok(fake.delivered.every((x) => x.sid === sid));
});

void t.test('sends queued before connect() go out once the session is open', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  const sent = client.send('early');
  await client.connect();
  await sent;
  t.same(fake.delivered.map((d) => d.data), ['early']);
});

void t.test('a response lost in flight: same rid again, delivered exactly once', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  await client.connect();
  fake.fault(isMsgReq, { kind: 'lose_response' });
  await client.send('once');
  t.same(fake.delivered.map((d) => d.data), ['once'], 'the application saw it once');
  const carrying = fake.calls.filter(isMsgReq);
  t.equal(carrying.length, 2, 'sent twice');
  t.equal(carrying[0]?.rid, carrying[1]?.rid, 'with the same rid');
  t.same(carrying[0]?.messages, carrying[1]?.messages);
  t.ok(seen.errors.some((e) => e.code === 'network'), 'the failure was reported as an error event');
});

void t.test('5xx and refused connections are retried with the same rid', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  await client.connect();
  fake.fault(isMsgReq, { kind: 'status', status: 503, body: { error: 'overloaded', message: 'full' } });
  fake.fault(isMsgReq, { kind: 'refuse' });
  fake.fault(isMsgReq, { kind: 'status', status: 502, body: '<html>bad gateway</html>' });
  await client.send('m');
  const rids = fake.calls.filter(isMsgReq).map((b) => b.rid);
  t.equal(rids.length, 4);
  t.equal(new Set(rids).size, 1, 'one rid for all four attempts');
  t.same(fake.delivered.map((d) => d.data), ['m']);
  const http = seen.errors.find((e) => e.code === 'http_status');
  t.equal(http?.status, 503);
  t.equal(http?.serverCode, 'overloaded');
});

/** Timers that record every delay asked for and run those in `instant` at once (a 2 s sleep in 0). */
function recordingTimers(instant: (ms: number) => boolean): { timers: CometClientOptions['timers']; asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    timers: {
      setTimeout: (cb, ms) => {
        asked.push(ms);
        return setTimeout(cb, instant(ms) ? 0 : ms);
      },
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    },
  };
}

void t.test('a 503 is retried after a capped exponential backoff, same rid, until accepted', async (t) => {
  const fake = new FakeComet();
  const { timers, asked } = recordingTimers(() => false);
  const { client } = mk(t, fake, { timers, retryBaseMs: 40, retryCapMs: 100, random: () => 0, healthyAfterMs: 7777 });
  await client.connect();
  for (let i = 0; i < 4; i++) fake.fault(isMsgReq, { kind: 'status', status: 503, body: { error: 'overloaded', message: 'queue full' } });
  await client.send('m');
  // Equal jitter with random 0: half of min(cap, base * 2^(n-1)): 20, 40, 50, 50.
  const sleeps = asked.filter((ms) => [20, 40, 50].includes(ms));
  t.same(sleeps, [20, 40, 50, 50], 'each retry waits longer, up to the cap');
  t.equal(new Set(fake.calls.filter(isMsgReq).map((b) => b.rid)).size, 1, 'every attempt with the same rid');
  t.same(fake.delivered.map((d) => d.data), ['m'], 'delivered once');
});

void t.test('429 with Retry-After: the client waits that long, then sends the same setup again', async (t) => {
  const fake = new FakeComet();
  const { timers, asked } = recordingTimers((ms) => ms >= 1000 && ms !== 10_000);
  const { client, seen } = mk(t, fake, { timers, retryBaseMs: 1, retryCapMs: 8 });
  fake.fault((b) => b.type === 'setup', { kind: 'status', status: 429, body: { error: 'rate_limited', message: 'slow down' }, headers: { 'retry-after': '2' } });
  fake.fault((b) => b.type === 'setup', {
    kind: 'status', status: 429, body: { error: 'too_many_sessions', message: 'too many' },
    headers: { 'retry-after': new Date(Date.now() + 3000).toUTCString() },
  });
  fake.fault((b) => b.type === 'setup', { kind: 'status', status: 429, body: { error: 'rate_limited', message: 'x' }, headers: { 'retry-after': '86400' } });
  const sid = await client.connect();
  t.ok(fake.sessions.has(sid), 'then the setup succeeds');
  t.ok(asked.includes(2000), 'Retry-After: 2 -> a 2,000 ms wait, not the 1 ms backoff');
  t.ok(asked.some((ms) => ms > 1000 && ms <= 3000 && ms !== 2000), 'an HTTP-date Retry-After -> the time until then');
  t.ok(asked.includes(60_000), 'a day is cut to MAX_RETRY_AFTER_MS');
  const limited = seen.errors.filter((e) => e.code === 'http_status' && e.status === 429);
  t.same(limited.map((e) => e.serverCode), ['rate_limited', 'too_many_sessions', 'rate_limited'], 'each refusal reported as an error event, with its code');
});

void t.test('a failed setup is retried', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  fake.fault((b) => b.type === 'setup', { kind: 'refuse' });
  const sid = await client.connect();
  t.ok(fake.sessions.has(sid));
  t.equal(fake.calls.filter((b) => b.type === 'setup').length, 2);
});

void t.test('duplicate seqs are dropped, a gap is not acked past', async (t) => {
  const fake = new FakeComet();
  fake.replayAcked = true;
  const { client, seen } = mk(t, fake);
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.push(sid, 'one');
  await until(() => seen.messages.length === 1);
  fake.push(sid, 'two'); // the answer re-sends seq 1 as well
  await until(() => seen.messages.length >= 2);
  fake.push(sid, 'three');
  await until(() => seen.messages.length >= 3);
  t.same(
    seen.messages.map((m) => m.seq),
    [1, 2, 3],
    'each seq delivered once',
  );
  fake.replayAcked = false;
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.pushRaw(sid, [{ seq: 5, data: 'after a gap' }]);
  await until(() => fake.requests(sid).some((b) => b.ack === 3 && (b.rid as number) > 6));
  t.equal(seen.messages.length, 3, 'seq 5 without seq 4 is not delivered');
  t.ok(fake.requests(sid).every((b) => (b.ack as number) <= 3), 'never acked past the gap');
});

void t.test('a poll is never held longer than wait + margin', async (t) => {
  const fake = new FakeComet();
  fake.wait = 50;
  const { client, seen } = mk(t, fake, { pollMarginMs: 50 });
  const sid = await client.connect();
  fake.fault((b) => b.rid === 1, { kind: 'hang' });
  await until(() => fake.requests(sid).filter((b) => b.rid === 1).length === 2, 3000, 'rid 1 re-sent');
  t.ok(seen.errors.some((e) => e.code === 'timeout'), 'a timeout error was reported');
});

void t.test('404 unknown_session without reconnect: closed with expired, pending sends rejected', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.fault(isMsgReq, { kind: 'hang' });
  const sent = failure(client.send('lost'));
  await until(() => fake.calls.some(isMsgReq));
  fake.expire(sid);
  const closed = await new Promise<CloseEvent>((resolve) => client.once('close', resolve));
  t.same(closed, { reason: 'expired', sid, willReconnect: false, serverQueueLost: true });
  t.equal(client.state, 'closed');
  t.equal(client.sid, null);
  t.match(await sent, { code: 'expired' });
  await t.rejects(client.send('after'), { code: 'closed' });
  t.ok(seen.errors.some((e) => e.code === 'unknown_session'));
});

void t.test('404 with reconnect: a new session, told the old queue is lost, unsent messages re-sent', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake, { reconnect: true });
  const first = await client.connect();
  await until(() => fake.sessions.get(first)?.held !== undefined);
  fake.expire(first);
  fake.fault((b) => b.type === 'setup', { kind: 'refuse' }); // the new setup needs a retry too
  const sent = client.send('carry over');
  await sent;
  t.equal(seen.closes.length, 1);
  t.same(seen.closes[0], { reason: 'expired', sid: first, willReconnect: true, serverQueueLost: true });
  t.equal(seen.opens.length, 2);
  const second = seen.opens[1]?.sid;
  t.not(second, first);
  t.equal(seen.opens[1]?.previousSid, first, 'open says which session it replaces');
  t.same(fake.delivered, [{ sid: second, data: 'carry over' }]);
  t.equal(client.state, 'open');
  t.ok(seen.states.includes('reconnecting'));
  const rids = fake.requests(second).map((b) => b.rid);
  t.equal(rids[0], 1, 'the new session starts again at rid 1');
  fake.push(second!, 'fresh');
  await until(() => seen.messages.length === 1);
  t.equal(seen.messages[0]?.seq, 1, 'seqs restart too');
});

void t.test('close() sends terminate with the next rid, delivers its packets, then closes', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.fault((b) => b.type === 'terminate', { kind: 'status', status: 200, body: { rid: 0, packets: [{ seq: 1, data: 'last' }] } });
  await client.close();
  const terminate = fake.calls.find((b) => b.type === 'terminate');
  t.ok(terminate);
  t.equal(terminate?.sid, sid);
  t.equal(terminate?.rid, Math.max(...fake.requests(sid).map((b) => b.rid as number)) + 1);
  t.same(seen.messages.map((m) => m.data), ['last'], 'packets on the terminate answer are delivered');
  t.same(seen.closes, [{ reason: 'closed', sid, willReconnect: false, serverQueueLost: false }]);
  t.equal(client.state, 'closed');
  await client.close(); // idempotent
  t.equal(seen.closes.length, 1);
  await t.rejects(client.send('x'), { code: 'closed' });
});

void t.test('close() ends the real fake session and rejects unsent messages', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  const sid = await client.connect();
  fake.fault(isMsgReq, { kind: 'refuse' });
  fake.fault(isMsgReq, { kind: 'refuse' });
  fake.fault(isMsgReq, { kind: 'refuse' });
  const a = failure(client.send('a'));
  const b = failure(client.send('b'));
  const closing = client.close();
  t.match(await b, { code: 'closed' });
  t.match(await a, { code: 'closed' });
  await closing;
  t.notOk(fake.sessions.has(sid), 'the server saw the terminate');
});

void t.test('close() during the first setup rejects connect()', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake, { retryBaseMs: 1000, retryCapMs: 1000 });
  fake.fault((b) => b.type === 'setup', { kind: 'refuse' });
  const connecting = failure(client.connect());
  await until(() => fake.calls.length === 1);
  await client.close();
  t.match(await connecting, { code: 'closed' });
  t.equal(client.state, 'closed');
});

void t.test('a closed client can connect again', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  const a = await client.connect();
  await t.rejects(client.connect(), { code: 'invalid_state' });
  await client.close();
  const b = await client.connect();
  t.not(a, b);
  await client.send('again');
  t.same(fake.delivered, [{ sid: b, data: 'again' }]);
});

void t.test('maxRetries: gives up with unreachable and rejects pending sends', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake, { maxRetries: 2 });
  const sid = await client.connect();
  for (let i = 0; i < 3; i++) fake.fault(isMsgReq, { kind: 'refuse' });
  await t.rejects(client.send('x'), { code: 'unreachable' });
  t.equal(fake.calls.filter(isMsgReq).length, 3, 'one try and two retries');
  t.equal(seen.closes.at(-1)?.reason, 'unreachable');
  t.equal(seen.closes.at(-1)?.sid, sid);
  t.equal(client.state, 'closed');
});

void t.test('a 400 from the server is fatal: close with error, code protocol', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  await client.connect();
  fake.fault(isMsgReq, { kind: 'status', status: 400, body: { error: 'bad_rid', message: 'rid out of window' } });
  const err = await client.send('x').catch((e: unknown) => e);
  t.type(err, CometClientError);
  t.match(err, { code: 'protocol', status: 400, serverCode: 'bad_rid' });
  t.equal(seen.closes.at(-1)?.reason, 'error');
  t.equal(seen.closes.at(-1)?.error, err);
});

void t.test('a wrong URL (404 without unknown_session) rejects connect', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  fake.fault(() => true, { kind: 'status', status: 404, body: 'Not Found' });
  await t.rejects(client.connect(), { code: 'protocol', status: 404 });
  t.equal(client.state, 'closed');
});

void t.test('too large: refused before sending, or by a 413 (the rid is then re-sent empty)', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake, { maxBodyBytes: 1024 });
  const sid = await client.connect();
  await t.rejects(client.send('x'.repeat(2000)), { code: 'too_large' });
  await t.rejects(client.send(undefined), { code: 'bad_message' });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  await t.rejects(client.send(cyclic), { code: 'bad_message' });
  fake.fault(isMsgReq, { kind: 'status', status: 413, body: { error: 'too_large', message: 'limit' } });
  await t.rejects(client.send('refused'), { code: 'too_large', status: 413 });
  await client.send('next');
  t.same(fake.delivered.map((d) => d.data), ['next']);
  const reqs = fake.requests(sid);
  const refused = reqs.find((b) => Array.isArray(b.messages) && (b.messages as unknown[])[0] === 'refused');
  t.ok(
    reqs.some((b) => b.rid === refused?.rid && b.messages === undefined),
    'the refused rid is sent again without messages so no later request waits for it',
  );
});

void t.test('batches are cut to fit maxBodyBytes', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake, { maxBodyBytes: 1024 });
  await client.connect();
  const big = 'y'.repeat(600);
  fake.fault(isMsgReq, { kind: 'lose_response' }); // keep the first in flight while others queue
  await Promise.all([client.send('first'), client.send(big), client.send(big), client.send('z')]);
  t.same(
    fake.delivered.map((d) => (d.data === big ? 'big' : d.data)),
    ['first', 'big', 'big', 'z'],
  );
  for (const b of fake.calls.filter(isMsgReq)) {
    t.ok(JSON.stringify(b).length <= 1024, 'each body within the limit');
  }
});

void t.test('state: reconnecting while requests fail, open again once the server answers', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake, { retryBaseMs: 20, retryCapMs: 20 });
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.fault(() => true, { kind: 'refuse' });
  fake.fault(() => true, { kind: 'refuse' });
  fake.push(sid, 'wake'); // the held poll returns; the next poll is refused twice
  await until(() => seen.states.includes('reconnecting'));
  await until(() => client.state === 'open', 3000, 'open again');
  t.same(seen.states.slice(0, 3), ['connecting', 'open', 'reconnecting']);
});

void t.test('backoff is capped exponential with jitter, through the injected timers and random', async (t) => {
  t.equal(backoffDelay(1, { baseMs: 100, capMs: 1000 }, () => 0), 50);
  t.equal(backoffDelay(1, { baseMs: 100, capMs: 1000 }, () => 0.999999) < 100, true);
  t.equal(backoffDelay(3, { baseMs: 100, capMs: 1000 }, () => 0), 200);
  t.equal(backoffDelay(10, { baseMs: 100, capMs: 1000 }, () => 1), 1000);
  t.equal(backoffDelay(5000, { baseMs: 100, capMs: 1000 }, () => 0), 500, 'no overflow after a long outage');

  const fake = new FakeComet();
  const delays: number[] = [];
  const timers = {
    setTimeout: (fn: () => void, ms: number) => {
      if (ms < 1000) delays.push(ms); // retry sleeps; request deadlines are longer
      return setTimeout(fn, 0);
    },
    clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };
  const { client } = mk(t, fake, { timers, random: () => 0, retryBaseMs: 10, retryCapMs: 40, requestTimeoutMs: 5000, pollMarginMs: 5000, healthyAfterMs: 5000 });
  for (let i = 0; i < 5; i++) fake.fault((b) => b.type === 'setup', { kind: 'refuse' });
  await client.connect();
  t.same(delays, [5, 10, 20, 20, 20], 'half of 10, 20, 40, 40, 40 with random() = 0');
});

void t.test('a throwing listener does not stop the client', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  client.on('message', () => {
    throw new Error('app bug');
  });
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.push(sid, 1);
  await until(() => seen.messages.length === 1);
  fake.push(sid, 2);
  await until(() => seen.messages.length === 2);
  const e = seen.errors.find((x) => x.code === 'listener_error');
  t.ok(e);
  t.match((e?.cause as Error).message, 'app bug');
});

void t.test('once() and off()', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  let onceCount = 0;
  let offCount = 0;
  client.once('message', () => onceCount++);
  const listener = (): void => {
    offCount++;
  };
  client.on('message', listener);
  client.off('message', listener);
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.push(sid, 1);
  fake.push(sid, 2);
  await until(() => fake.requests(sid).some((b) => b.ack === 2));
  t.equal(onceCount, 1);
  t.equal(offCount, 0);
});

void t.test('messages nested deeper than the server accepts are refused before sending', async (t) => {
  const fake = new FakeComet();
  const { client } = mk(t, fake);
  await client.connect();
  const nest = (n: number): unknown => (n === 0 ? 'leaf' : [nest(n - 1)]);
  await client.send(nest(62));
  await t.rejects(client.send(nest(63)), { code: 'bad_message' });
  await client.send({ text: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\\' });
  t.equal(fake.delivered.length, 2, 'brackets inside strings do not count');
  t.equal(client.state, 'open');
});

void t.test('the terminate carries the ack', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  const sid = await client.connect();
  await until(() => fake.sessions.get(sid)?.held !== undefined);
  fake.push(sid, 'x');
  await until(() => seen.messages.length === 1);
  await client.close();
  t.equal(fake.calls.find((b) => b.type === 'terminate')?.ack, 1);
});

void t.test('a mangled 2xx is retried with the same rid; a setup without timeouts gets the defaults', async (t) => {
  const fake = new FakeComet();
  const { client, seen } = mk(t, fake);
  fake.fault((b) => b.type === 'setup', { kind: 'status', status: 200, body: { sid: '' } });
  fake.fault((b) => b.type === 'setup', { kind: 'status', status: 200, body: { sid: 'from-a-proxy' } });
  await client.connect();
  t.same(seen.opens[0], { sid: 'from-a-proxy', wait: 60_000, inactivity: 45_000, previousSid: null }, 'wire defaults');
  t.ok(seen.errors.some((e) => e.code === 'bad_response' && e.status === 200));

  const fake2 = new FakeComet();
  const { client: c2, seen: seen2 } = mk(t, fake2);
  await c2.connect();
  const bad = [{ packets: 'nope' }, { packets: [{ seq: 0, data: 1 }] }, ['not', 'an', 'object'], '<html>proxy</html>'];
  for (const body of bad) fake2.fault(isMsgReq, { kind: 'status', status: 200, body });
  await c2.send('through');
  const rids = fake2.calls.filter(isMsgReq).map((b) => b.rid);
  t.equal(rids.length, bad.length + 1);
  t.equal(new Set(rids).size, 1, 'every retry with the same rid');
  t.equal(seen2.errors.filter((e) => e.code === 'bad_response').length, bad.length);
  t.same(fake2.delivered.map((d) => d.data), ['through']);
});
