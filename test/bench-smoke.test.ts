// The benchmark's own pieces, driven over real HTTP on loopback: the raw v1 server and the v1 load
// client must agree on the wire contract, or every figure `npm run bench` prints is wrong.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { createEngineIoServer } from '../bench/engineio-server.js';
import { AdminClient, type ServerStats } from '../bench/loadgen/admin-client.js';
import { EIO_PATH, EioSession } from '../bench/loadgen/eio-client.js';
import { HttpConn, frameResponse, type HttpResponse } from '../bench/loadgen/http-conn.js';
import { LogHistogram } from '../bench/loadgen/histogram.js';
import type { LoadSession, SessionCounters } from '../bench/loadgen/session.js';
import { V1_PATH, V1Session } from '../bench/loadgen/v1-client.js';
import { createRawServer } from '../bench/raw-server.js';

const HOST = '127.0.0.1';

/** Resolve once `cond()` holds; reject after `ms` (a bound, not a speed assertion). */
const until = async (cond: () => boolean, ms = 5_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Stats once `pred` holds, or the last stats seen after `ms`: the poll and the stats request race. */
const statsWhen = async (admin: AdminClient, pred: (s: ServerStats) => boolean, ms = 5_000): Promise<ServerStats> => {
  const end = Date.now() + ms;
  for (;;) {
    const s = await admin.stats();
    if (pred(s) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 5));
  }
};

const openSession = (s: LoadSession): Promise<void> =>
  new Promise((resolve, reject) => s.open((err) => (err === null ? resolve() : reject(err))));

const post = (port: number, path: string, body: string): Promise<HttpResponse> =>
  new Promise((resolve, reject) => {
    const conn = new HttpConn({ host: HOST, port });
    conn.request(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      (err, res) => {
        conn.destroy();
        if (err !== null || res === null) reject(err ?? new Error('no response'));
        else resolve(res);
      },
    );
  });

const startRaw = async (t: Test, options: Parameters<typeof createRawServer>[0] = {}): Promise<number> => {
  const raw = createRawServer(options);
  const port = await raw.listen(0, HOST);
  t.teardown(() => raw.close());
  return port;
};

void t.test('raw server + v1 client: setup, held poll, echo, broadcast, stats', async (t) => {
  const port = await startRaw(t);
  const counters: SessionCounters = { requests: 0, errors: 0 };
  const got: string[] = [];
  const s = new V1Session({ target: { host: HOST, port }, path: V1_PATH, counters, onData: (d) => got.push(d) });
  t.teardown(() => s.close());
  await openSession(s);
  t.ok(s.alive, 'session is alive after setup');

  const admin = new AdminClient({ host: HOST, port });
  t.teardown(() => admin.close());
  t.same(await statsWhen(admin, (st) => st.held === 1), { sessions: 1, held: 1 }, 'the first poll is held');

  s.send('hello');
  await until(() => got.length === 1);
  t.same(got, ['hello'], 'the message comes back as one packet');

  await admin.broadcast('to-all');
  await until(() => got.length === 2);
  t.same(got, ['hello', 'to-all'], 'a broadcast reaches the session once');
  t.equal(counters.errors, 0, 'no request failed');
});

void t.test('raw server: a held poll is answered empty after the wait, and re-sent packets are dropped', async (t) => {
  const port = await startRaw(t, { wait: 30, sweepMs: 10 });
  const counters: SessionCounters = { requests: 0, errors: 0 };
  const got: string[] = [];
  const s = new V1Session({ target: { host: HOST, port }, path: V1_PATH, counters, onData: (d) => got.push(d) });
  t.teardown(() => s.close());
  await openSession(s);
  await until(() => counters.requests >= 5);
  t.same(got, [], 'empty answers deliver nothing');
  s.send('a');
  s.send('b'); // queued behind the first send: goes out as one request with two messages
  await until(() => got.length === 2);
  await until(() => counters.requests >= 12);
  t.same(got, ['a', 'b'], 'each packet once, in order, though unacked packets are sent again');
  t.equal(counters.errors, 0);
});

void t.test('raw server: errors, terminate and inactivity', async (t) => {
  const port = await startRaw(t, { inactivity: 30, sweepMs: 10 });
  t.equal((await post(port, V1_PATH, 'not json')).status, 400, 'bad JSON is 400');
  t.match((await post(port, V1_PATH, '{"sid":"nope","rid":1}')).body, /unknown_session/, 'unknown sid');
  t.equal((await post(port, '/admin/broadcast', '{}')).status, 400, 'broadcast without data is 400');
  t.equal((await post(port, '/elsewhere', '{}')).status, 404, 'other paths are 404');

  const setup = JSON.parse((await post(port, V1_PATH, '{"type":"setup"}')).body) as { sid: string };
  await post(port, '/admin/broadcast', '{"data":{"x":1}}');
  await post(port, '/admin/broadcast', '{"data":{"x":2}}');
  const acked = await post(port, V1_PATH, JSON.stringify({ sid: setup.sid, rid: 1, ack: 1 }));
  t.same(JSON.parse(acked.body), { rid: 1, packets: [{ seq: 2, data: { x: 2 } }] }, 'packets up to ack are forgotten');
  const term = await post(port, V1_PATH, JSON.stringify({ type: 'terminate', sid: setup.sid, rid: 2 }));
  t.same(JSON.parse(term.body), { rid: 2, packets: [{ seq: 2, data: { x: 2 } }] }, 'terminate returns unacked packets');
  t.equal((await post(port, V1_PATH, JSON.stringify({ sid: setup.sid, rid: 3 }))).status, 404, 'then the sid is gone');

  const idle = JSON.parse((await post(port, V1_PATH, '{"type":"setup"}')).body) as { sid: string };
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await post(port, V1_PATH, JSON.stringify({ sid: idle.sid, rid: 1 }))).status, 404, 'inactivity ends a session');
});

void t.test('v1 client: reconnects after Connection: close, and a 404 ends the session', async (t) => {
  let polls = 0;
  const fake = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (polls++ === 0) {
        res.writeHead(200, { 'Content-Type': 'application/json', Connection: 'close' });
        res.end('{"sid":"s1","wait":60000,"inactivity":45000}');
      } else {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end('{"error":"unknown_session","message":"gone"}');
      }
    });
  });
  await new Promise<void>((r) => fake.listen(0, HOST, r));
  t.teardown(() => new Promise<void>((r) => fake.close(() => r())));
  const port = (fake.address() as AddressInfo).port;
  const counters: SessionCounters = { requests: 0, errors: 0 };
  const s = new V1Session({ target: { host: HOST, port }, path: V1_PATH, counters, onData: () => undefined });
  t.teardown(() => s.close());
  await openSession(s);
  await until(() => !s.alive);
  t.equal(polls, 2, 'the poll after a closed connection went out on a new one, and none after the 404');
  t.equal(counters.errors, 1, 'the 404 counts as one error');
});

void t.test('v1 and engine.io clients: a refused setup is an error, not a session', async (t) => {
  const fake = createServer((req, res) => {
    req.resume();
    res.writeHead(503, { 'Content-Type': 'application/json' });
    res.end('{"error":"overloaded","message":"full"}');
  });
  await new Promise<void>((r) => fake.listen(0, HOST, r));
  t.teardown(() => new Promise<void>((r) => fake.close(() => r())));
  const port = (fake.address() as AddressInfo).port;
  const counters: SessionCounters = { requests: 0, errors: 0 };
  for (const s of [
    new V1Session({ target: { host: HOST, port }, path: V1_PATH, counters, onData: () => undefined }),
    new EioSession({ target: { host: HOST, port }, path: EIO_PATH, counters, onData: () => undefined }),
  ]) {
    t.teardown(() => s.close());
    await t.rejects(openSession(s), { code: 'BENCH_HTTP_STATUS' });
    t.notOk(s.alive);
  }
  t.equal(counters.errors, 2);
});

void t.test('engine.io server + v4 polling client: handshake, echo, broadcast, stats', async (t) => {
  const eio = createEngineIoServer();
  const port = await eio.listen(0, HOST);
  t.teardown(() => eio.close());
  const counters: SessionCounters = { requests: 0, errors: 0 };
  const got: string[] = [];
  const s = new EioSession({ target: { host: HOST, port }, path: EIO_PATH, counters, onData: (d) => got.push(d) });
  t.teardown(() => s.close());
  await openSession(s);
  const admin = new AdminClient({ host: HOST, port });
  t.teardown(() => admin.close());
  t.same(await statsWhen(admin, (st) => st.held === 1), { sessions: 1, held: 1 }, 'the first poll is held');
  s.send('hello');
  await until(() => got.length === 1);
  await admin.broadcast('to-all');
  await until(() => got.length === 2);
  t.same(got, ['hello', 'to-all']);
  t.equal(counters.errors, 0);
});

void t.test('engine.io client: answers pings, so an idle session outlives pingInterval + pingTimeout', async (t) => {
  const eio = createEngineIoServer({ pingInterval: 30, pingTimeout: 60 });
  const port = await eio.listen(0, HOST);
  t.teardown(() => eio.close());
  const counters: SessionCounters = { requests: 0, errors: 0 };
  const s = new EioSession({ target: { host: HOST, port }, path: EIO_PATH, counters, onData: () => undefined });
  t.teardown(() => s.close());
  await openSession(s);
  // Each ping ends the held poll and brings a pong POST: 4 pings are at least 1 + 2 * 4 requests.
  await until(() => counters.requests >= 9);
  t.ok(s.alive, 'still alive after several ping intervals');
  t.equal(eio.stats().sessions, 1, 'the server still has the session');
  t.equal(counters.errors, 0);
});

void t.test('frameResponse: Content-Length, chunked, bodiless, partial and broken responses', (t) => {
  const f = (s: string) => frameResponse(Buffer.from(s, 'latin1'));
  t.match(f('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), { status: 200, body: 'ok', close: false });
  t.match(f('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: close\r\n\r\nok'), { body: 'ok', close: true });
  t.equal(f('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok'), null, 'body not all there yet');
  t.equal(f('HTTP/1.1 200 OK\r\nContent-Len'), null, 'head not all there yet');
  t.match(f('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n'), { body: 'abc' });
  t.equal(f('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n'), null, 'last chunk not all there');
  t.equal(f('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\na'), null, 'chunk not all there');
  t.match(f('HTTP/1.1 204 No Content\r\n\r\n'), { status: 204, body: '' });
  t.throws(() => f('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), { code: 'BENCH_BAD_RESPONSE' });
  t.throws(() => f('SSH-2.0 hello\r\n\r\n'), { code: 'BENCH_BAD_RESPONSE' });
  t.throws(() => f('HTTP/1.1 200 OK\r\n\r\nuntil close'), { code: 'BENCH_BAD_RESPONSE' });
  t.end();
});

void t.test('LogHistogram: percentiles within its resolution, merge, reset', (t) => {
  const h = new LogHistogram();
  t.ok(Number.isNaN(h.percentile(0.5)), 'empty is NaN');
  for (let i = 1; i <= 1000; i++) h.add(i);
  const p50 = h.percentile(0.5);
  const p99 = h.percentile(0.99);
  t.ok(Math.abs(p50 - 500) / 500 < 0.03, `p50 ${p50} near 500`);
  t.ok(Math.abs(p99 - 990) / 990 < 0.03, `p99 ${p99} near 990`);
  const other = new LogHistogram();
  other.merge(h.toPairs());
  t.equal(other.count, 1000);
  t.equal(other.percentile(0.5), p50);
  h.add(0.1);
  h.reset();
  t.equal(h.count, 0);
  t.end();
});
