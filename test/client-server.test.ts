// CometClient against the real comet server on loopback, through a fetch that can lose
// responses, cut requests, hold answers back, or take the network down.
import t from 'tap';
import {
  CometClient,
  type CloseEvent,
  type CometClientOptions,
  type CometClientState,
  type MessageEvent,
  type OpenEvent,
} from '../lib/client/index.js';
import { startComet } from './fixtures/comet-server.js';
import { deferred, FlakyFetch, type Body } from './fixtures/flaky-fetch.js';
import { until } from './fixtures/fake-comet.js';

type Teardown = { teardown(fn: () => unknown): void };

function mk(tt: Teardown, url: string, options: CometClientOptions = {}) {
  const flaky = new FlakyFetch();
  const client = new CometClient(url, {
    fetch: flaky.fetch,
    retryBaseMs: 10,
    retryCapMs: 100,
    healthyAfterMs: 200,
    pollMarginMs: 1000,
    ...options,
  });
  tt.teardown(() => client.close());
  const seen = {
    messages: [] as MessageEvent[],
    opens: [] as OpenEvent[],
    closes: [] as CloseEvent[],
    states: [] as CometClientState[],
  };
  client.on('message', (m) => seen.messages.push(m));
  client.on('open', (o) => seen.opens.push(o));
  client.on('close', (c) => seen.closes.push(c));
  client.on('state', (s) => seen.states.push(s.state));
  return { client, flaky, seen };
}

const carries = (data: unknown) => (b: Body): boolean =>
  Array.isArray(b.messages) && (b.messages as unknown[]).some((m) => m === data);
const isPoll = (b: Body): boolean => typeof b.rid === 'number' && b.type === undefined && b.messages === undefined;

void t.test('lost answers and cut sends: the application sees every message exactly once, in order', async (t) => {
  const sawM2 = deferred();
  const server = await startComet(t, {
    onMessage(_sid, data) {
      if (data === 'm2') sawM2.resolve();
    },
  });
  const { client, flaky } = mk(t, server.url);
  const sid = await client.connect();
  flaky.fault(carries('m1'), { kind: 'lose_response' });
  flaky.fault(carries('m2'), { kind: 'cut', when: sawM2.promise });
  await client.send('m1');
  await client.send('m2');
  // Then bursts of three (the first goes alone, the other two queue behind it and share the
  // next request), losing the answer to every third request that carries messages.
  flaky.loseEvery(3, (b) => Array.isArray(b.messages));
  const burst: string[] = [];
  for (let round = 0; round < 20; round++) {
    const wave = [0, 1, 2].map((i) => `b${round}.${i}`);
    burst.push(...wave);
    await Promise.all(wave.map((m) => client.send(m)));
  }

  t.same(
    server.seen.messages.map((m) => m.data),
    ['m1', 'm2', ...burst],
    'each message reached the application once, in send order',
  );
  t.ok(server.seen.messages.every((m) => m.sid === sid));
  const retried = flaky.log.filter((e) => e.fault === 'lose_response' || e.fault === 'cut');
  t.ok(retried.length >= 10, `requests were lost or cut (${retried.length})`);
  for (const lost of retried) {
    const again = flaky.log.filter((e) => e.body.rid === lost.body.rid && e.body.sid === lost.body.sid && e !== lost);
    t.ok(again.length > 0, `rid ${String(lost.body.rid)} was sent again`);
    t.ok(again.every((e) => JSON.stringify(e.body.messages) === JSON.stringify(lost.body.messages)), 'with the same messages');
  }
});

void t.test('a send retried for long does not push the poll loop out of the rid window', async (t) => {
  const server = await startComet(t, { wait: 200 });
  const { client, flaky } = mk(t, server.url, { retryBaseMs: 20, retryCapMs: 20 });
  await client.connect();
  // The same request's answer is lost 20 times: meanwhile polls come back every wait (200 ms)
  // and would take rids 16+ past the send's, which the server would refuse as bad_rid.
  for (let i = 0; i < 20; i++) flaky.fault(carries('stubborn'), { kind: 'lose_response' });
  const extra = setInterval(() => void server.comet.broadcast('tick').catch(() => {}), 10);
  t.teardown(() => clearInterval(extra));
  await client.send('stubborn');
  clearInterval(extra);
  t.same(server.seen.messages.map((m) => m.data), ['stubborn'], 'delivered once');
  t.notOk(flaky.log.some((e) => e.status === 400), 'no request was refused');
  t.equal(client.state, 'open');
});

void t.test('a seq that arrives twice is delivered once, and the ack moves forward', async (t) => {
  const server = await startComet(t);
  const { client, flaky, seen } = mk(t, server.url);
  const sid = await client.connect();
  await until(() => server.comet.heldCount() > 0, 3000, 'the poll to be held');
  // Hold back the poll's answer carrying seq 1; a send meanwhile still acks 0, so the server
  // puts seq 1 on the send's answer too.
  const gate = deferred();
  flaky.faultResponse((b, r) => isPoll(b) && ((r as { packets?: unknown[] }).packets?.length ?? 0) > 0, { kind: 'gate', gate: gate.promise });
  await server.comet.handlePacket(sid, 'p1');
  await until(() => flaky.log.some((e) => e.fault === 'gate'), 3000, 'the gated answer');
  await client.send('nudge');
  await until(() => seen.messages.length === 1, 3000, 'seq 1 via the send');
  gate.resolve();
  await until(() => flaky.packetsOnTheWire().filter((p) => p.seq === 1).length >= 2, 3000, 'seq 1 twice on the wire');
  await server.comet.handlePacket(sid, 'p2');
  await until(() => seen.messages.length === 2, 3000, 'seq 2');
  t.same(
    seen.messages.map((m) => [m.seq, m.data]),
    [[1, 'p1'], [2, 'p2']],
    'seq 1 came twice and was delivered once',
  );

  await until(() => flaky.log.some((e) => e.body.ack === 2), 3000, 'a request acking 2');
  await server.comet.handlePacket(sid, 'p3');
  await until(() => seen.messages.length === 3, 3000, 'seq 3');
  const acks = flaky.log.filter((e) => typeof e.body.ack === 'number').map((e) => e.body.ack as number);
  t.ok(acks.every((a, i) => i === 0 || a >= (acks[i - 1] ?? 0)), 'the ack never goes back');
  const carrying3 = flaky.log.find((e) => ((e.response as { packets?: { seq: number }[] }).packets ?? []).some((p) => p.seq === 3));
  t.same(
    ((carrying3?.response as { packets: { seq: number }[] }).packets).map((p) => p.seq),
    [3],
    'once acked, seqs 1 and 2 are not sent again',
  );
});

void t.test('the server ends the session: expired, then a new session carries the unsent message', async (t) => {
  const server = await startComet(t, { wait: 1000, inactivity: 300 });
  const { client, flaky, seen } = mk(t, server.url, { reconnect: true });
  const first = await client.connect();
  await until(() => server.comet.heldCount() > 0, 3000, 'the poll to be held');
  flaky.down = true;
  server.comet.dropHeldPoll(first);
  await server.comet.handlePacket(first, 'queued for the old session');
  const sent = client.send('during the outage');
  await until(() => server.seen.ends.some((e) => e.sid === first), 5000, 'the old session to end');
  t.same(server.seen.ends, [{ sid: first, reason: 'inactivity' }]);
  t.ok(seen.states.includes('reconnecting'), 'the client showed it was reconnecting');
  flaky.down = false;
  await sent;

  t.same(seen.closes, [{ reason: 'expired', sid: first, willReconnect: true, serverQueueLost: true }]);
  t.equal(seen.opens.length, 2);
  const second = seen.opens[1]?.sid;
  t.not(second, first);
  t.equal(seen.opens[1]?.previousSid, first, 'the application is told which session was lost');
  t.same(server.seen.messages, [{ sid: second, data: 'during the outage' }], 'sent once, on the new session');
  t.same(seen.messages, [], 'the old session’s queue is gone, as the close event said');
  t.equal(client.state, 'open');
  await server.comet.handlePacket(second!, 'fresh');
  await until(() => seen.messages.length === 1);
  t.equal(seen.messages[0]?.data, 'fresh');
});

void t.test('the poll loop survives a server restart on the same port', async (t) => {
  const before = await startComet(t);
  const { client, seen } = mk(t, before.url, { reconnect: true });
  const first = await client.connect();
  await until(() => before.comet.heldCount() > 0, 3000, 'the poll to be held');
  await before.comet.close();
  t.same(before.seen.ends, [{ sid: first, reason: 'shutdown' }]);
  await until(() => seen.states.includes('reconnecting'), 3000, 'reconnecting');

  const after = await startComet(t, {}, before.port);
  await until(() => seen.opens.length === 2, 10_000, 'a session on the new server');
  const second = seen.opens[1]?.sid;
  t.same(after.seen.sessions, [second], 'the new server has the client’s new session');
  t.equal(seen.opens[1]?.previousSid, first);
  await client.send('after the restart');
  t.same(after.seen.messages, [{ sid: second, data: 'after the restart' }]);
  await after.comet.handlePacket(second!, 'pushed');
  await until(() => seen.messages.some((m) => m.data === 'pushed'), 3000, 'a pushed packet');
  t.equal(client.state, 'open');
});

void t.test('the deepest message the client lets through is one the server accepts', async (t) => {
  const server = await startComet(t);
  const { client } = mk(t, server.url);
  await client.connect();
  const nest = (n: number): unknown => (n === 0 ? 'leaf' : [nest(n - 1)]);
  await client.send(nest(62));
  t.same(server.seen.messages.map((m) => m.data), [nest(62)]);
  await t.rejects(client.send(nest(63)), { code: 'bad_message' });
  t.equal(client.state, 'open', 'the session lives on');
});

void t.test('close() terminates the session on the server', async (t) => {
  const server = await startComet(t);
  const { client, seen } = mk(t, server.url);
  const sid = await client.connect();
  await until(() => server.comet.heldCount() > 0, 3000, 'the poll to be held');
  await client.send('bye');
  await client.close();
  t.same(server.seen.ends, [{ sid, reason: 'terminate' }]);
  t.same(server.comet.sessions(), []);
  t.equal(server.comet.heldCount(), 0, 'no poll left held');
  t.same(seen.closes, [{ reason: 'closed', sid, willReconnect: false, serverQueueLost: false }]);
});
