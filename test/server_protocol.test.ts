// Wire contract v1 over real HTTP on loopback: setup, requests, held polls, terminate, dietimer,
// acks, retransmissions and the rid window. (The FSM's state x event table is connection.test.ts.)
import t from 'tap';
import {
  DEFAULT_INACTIVITY_MS, DEFAULT_WAIT_MS, RID_WINDOW, createCometServer, type Sid,
} from '../lib/index.js';
import {
  WireClient, fields, fsmHandled, packetsOf, post, setup, startServer, waitFor,
} from './fixtures/http.js';

void t.test('setup: 200 {sid, wait, inactivity}, JSON, Cache-Control: no-store', async (t) => {
  const { url } = await startServer(t, { wait: 1234, inactivity: 4321 });
  const r = await post(url, { type: 'setup' });
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /^application\/json\b/);
  t.equal(r.headers.get('cache-control'), 'no-store');
  t.same(Object.keys(fields(r)).sort(), ['inactivity', 'sid', 'wait']);
  t.match(r.body, { sid: String, wait: 1234, inactivity: 4321 });
});

void t.test('setup: wait 60000 and inactivity 45000 when not set', async (t) => {
  t.equal(DEFAULT_WAIT_MS, 60_000);
  t.equal(DEFAULT_INACTIVITY_MS, 45_000);
  const comet = await createCometServer();
  t.teardown(() => comet.close());
  const { port } = await comet.listen(0, '127.0.0.1');
  const r = await post(`http://127.0.0.1:${port}/comet`, { type: 'setup' });
  t.match(r.body, { sid: String, wait: 60_000, inactivity: 45_000 });
});

void t.test('Content-Type with parameters (charset=utf-8) is accepted', async (t) => {
  const { url } = await startServer(t);
  const r = await post(url, { type: 'setup' }, { contentType: 'application/json; charset=utf-8' });
  t.equal(r.status, 200);
});

void t.test('the path is configurable', async (t) => {
  const { base } = await startServer(t, { path: '/x/poll' });
  t.equal((await post(`${base}/x/poll`, { type: 'setup' })).status, 200);
  t.match(await post(`${base}/comet`, { type: 'setup' }), { status: 404, body: { error: 'not_found' } });
});

void t.test('a request with nothing pending is held until a packet comes, then answered with it', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 10_000 });
  const c = await WireClient.open(url);
  let answered = false;
  const poll = c.request().then((r) => {
    answered = true;
    return r;
  });
  await fsmHandled(seen, c.sid, 'request');
  t.equal(comet.heldCount(), 1, 'the request is held');
  t.notOk(answered, 'not answered before a packet');
  t.equal(await comet.handlePacket(c.sid, { hello: 'world' }), 1, 'handlePacket resolves with the seq');
  const r = await poll;
  t.equal(r.status, 200);
  t.equal(r.headers.get('cache-control'), 'no-store');
  t.match(r.headers.get('content-type'), /^application\/json\b/);
  t.same(r.body, { rid: 1, packets: [{ seq: 1, data: { hello: 'world' } }] });
});

void t.test('pending packets answer a request at once; seqs go 1, 2, 3 per session', async (t) => {
  const { url, comet } = await startServer(t, { wait: 10_000 });
  const a = await WireClient.open(url);
  const b = await WireClient.open(url);
  await comet.handlePacket(a.sid, 'a1');
  await comet.handlePacket(b.sid, 'b1');
  await comet.handlePacket(a.sid, 'a2');
  await comet.handlePacket(a.sid, 'a3');
  t.same(packetsOf(await a.request()), [{ seq: 1, data: 'a1' }, { seq: 2, data: 'a2' }, { seq: 3, data: 'a3' }]);
  t.same(packetsOf(await b.request()), [{ seq: 1, data: 'b1' }], 'seqs are per session');
});

void t.test('a held request is answered with [] after wait', async (t) => {
  const { url, comet } = await startServer(t, { wait: 200, inactivity: 5000 });
  const c = await WireClient.open(url);
  const r = await c.request();
  t.same(r.body, { rid: 1, packets: [] });
  t.equal(comet.heldCount(), 0);
  t.same(comet.sessions(), [c.sid], 'the session lives on');
});

void t.test('a second request while one is held answers the older at once and holds the new one', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 10_000 });
  const c = await WireClient.open(url);
  const first = c.request();
  await fsmHandled(seen, c.sid, 'request');
  const second = c.request();
  t.same((await first).body, { rid: 1, packets: [] }, 'the older one is answered with nothing');
  await fsmHandled(seen, c.sid, 'request', 2);
  t.equal(comet.heldCount(), 1, 'the newer one is held');
  await comet.handlePacket(c.sid, 'p');
  t.same((await second).body, { rid: 2, packets: [{ seq: 1, data: 'p' }] });
});

void t.test('ack forgets packets; unacked ones are sent again with the same seq and data', async (t) => {
  const { url, comet } = await startServer(t, { wait: 200 });
  const c = await WireClient.open(url);
  await comet.handlePacket(c.sid, 'one');
  await comet.handlePacket(c.sid, 'two');
  t.same(packetsOf(await c.request({ ack: null })), [{ seq: 1, data: 'one' }, { seq: 2, data: 'two' }]);
  t.same(packetsOf(await c.request({ ack: 0 })), [{ seq: 1, data: 'one' }, { seq: 2, data: 'two' }], 'ack 0: all sent again');
  t.same(packetsOf(await c.request({ ack: 1 })), [{ seq: 2, data: 'two' }], 'ack 1: seq 1 forgotten');
  await comet.handlePacket(c.sid, 'three');
  t.same(packetsOf(await c.request({ ack: 2 })), [{ seq: 3, data: 'three' }], 'seq is never reused');
  t.same(packetsOf(await c.request({ ack: 1 })), [{ seq: 3, data: 'three' }], 'a stale ack does not bring back forgotten packets');
  t.same(packetsOf(await c.request({ ack: 3 })), [], 'everything acked: held, then [] after wait');
});

void t.test('messages reach onMessage in order; a retransmitted rid is answered but not delivered twice', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 200 });
  const c = await WireClient.open(url);
  await comet.handlePacket(c.sid, 'pending'); // so every request is answered at once
  t.equal((await c.request({ rid: 1, messages: ['a', 'b'], ack: 0 })).status, 200);
  t.equal((await c.request({ rid: 2, messages: [{ n: 3 }], ack: 0 })).status, 200);
  const again = await c.request({ rid: 2, messages: [{ n: 3 }], ack: 0 });
  t.equal(again.status, 200, 'a retransmission is answered as a normal request');
  t.same(packetsOf(again), [{ seq: 1, data: 'pending' }]);
  t.equal((await c.request({ rid: 1, messages: ['a', 'b'], ack: 0 })).status, 200, 'an older retransmission too');
  t.same(seen.messages, [{ sid: c.sid, data: 'a' }, { sid: c.sid, data: 'b' }, { sid: c.sid, data: { n: 3 } }]);
});

void t.test('rid window: exactly 16 away is accepted, 17 is 400 bad_rid, in either direction', async (t) => {
  t.equal(RID_WINDOW, 16);
  const { url, comet } = await startServer(t, { wait: 200 });

  const fresh = await WireClient.open(url);
  t.match(await fresh.request({ rid: RID_WINDOW + 1 }), { status: 400, body: { error: 'bad_rid' } }, 'rid 17 after setup');
  await comet.handlePacket(fresh.sid, 'x');
  t.equal((await fresh.request({ rid: RID_WINDOW })).status, 200, 'rid 16 after setup');

  const c = await WireClient.open(url);
  await comet.handlePacket(c.sid, 'pending');
  for (let rid = 1; rid <= 20; rid++) t.equal((await c.request({ rid, ack: 0 })).status, 200, `rid ${rid}`);
  t.match(await c.request({ rid: 20 - RID_WINDOW - 1 }), { status: 400, body: { error: 'bad_rid' } }, '17 below');
  t.equal((await c.request({ rid: 20 - RID_WINDOW, ack: 0 })).status, 200, '16 below');
  t.match(await c.request({ rid: 20 + RID_WINDOW + 1 }), { status: 400, body: { error: 'bad_rid' } }, '17 above');
  t.equal((await c.request({ rid: 20 + RID_WINDOW, ack: 0 })).status, 200, '16 above');
  const bad = await c.request({ rid: 1000 });
  t.equal(bad.status, 400);
  t.equal(bad.headers.get('cache-control'), 'no-store');
  t.same(Object.keys(fields(bad)).sort(), ['error', 'message']);
});

void t.test('terminate: pending packets returned, a held poll answered, the session ends, sid 404 afterwards', async (t) => {
  const { url, comet, seen } = await startServer(t, { wait: 10_000 });
  const c = await WireClient.open(url);
  const held = c.request();
  await fsmHandled(seen, c.sid, 'request');
  const term = await c.terminate();
  t.equal(term.status, 200);
  t.same((await held).body, { rid: 1, packets: [] }, 'the held poll is answered');
  t.same(term.body, { rid: 2, packets: [] });
  await waitFor(() => seen.ends.length === 1, 'onSessionEnd');
  t.same(seen.ends, [{ sid: c.sid, reason: 'terminate' }]);
  t.same(comet.sessions(), []);
  t.match(await c.request(), { status: 404, body: { error: 'unknown_session' } });
  t.match(await c.terminate(), { status: 404, body: { error: 'unknown_session' } });
  await t.rejects(comet.handlePacket(c.sid, 'late'), { code: 'unknown_session' });

  const d = await WireClient.open(url);
  await comet.handlePacket(d.sid, 'p1');
  await comet.handlePacket(d.sid, 'p2');
  const dt = await d.terminate();
  t.same(dt.body, { rid: 1, packets: [{ seq: 1, data: 'p1' }, { seq: 2, data: 'p2' }] }, 'pending packets come back');
});

void t.test('dietimer: no poll for `inactivity` ms ends the session (reason inactivity), then 404', async (t) => {
  const { url, seen, comet } = await startServer(t, { wait: 10_000, inactivity: 200 });
  const sid = await setup(url);
  await waitFor(() => seen.ends.length === 1, 'the session to end');
  t.same(seen.ends, [{ sid, reason: 'inactivity' }]);
  t.same(comet.sessions(), []);
  t.match(await post(url, { sid, rid: 1 }), { status: 404, body: { error: 'unknown_session' } });
});

void t.test('dietimer: a held poll keeps the session alive; it counts again once the poll is answered', async (t) => {
  const { url, seen } = await startServer(t, { wait: 600, inactivity: 200 });
  const c = await WireClient.open(url);
  t.same((await c.request()).body, { rid: 1, packets: [] }, 'held for wait (3x inactivity) without the session ending');
  t.same(seen.ends, []);
  await waitFor(() => seen.ends.length === 1, 'the session to end after the poll');
  t.same(seen.ends, [{ sid: c.sid, reason: 'inactivity' }]);
});

void t.test('hooks: onSession, onMessage, onSessionEnd; a throwing hook is logged and the session lives on', async (t) => {
  const sessions: Sid[] = [];
  const { url, seen, comet } = await startServer(t, {
    wait: 200,
    onSession: (sid) => {
      sessions.push(sid);
    },
    onMessage: (_sid, data) => {
      if (data === 'boom') throw new Error('application bug');
      return data === 'reject' ? Promise.reject(new Error('async application bug')) : undefined;
    },
  });
  const c = await WireClient.open(url);
  t.same(sessions, [c.sid]);
  await comet.handlePacket(c.sid, 'pending');
  t.equal((await c.request({ messages: ['boom', 'reject', 'fine'] })).status, 200);
  t.same(seen.messages.map((m) => m.data), ['boom', 'reject', 'fine'], 'later messages still delivered');
  await waitFor(() => seen.logs.filter((l) => l.level === 'error').length >= 2, 'both failures logged');
  t.same(comet.sessions(), [c.sid], 'the session did not end');
  t.equal((await c.request()).status, 200);
});

void t.test('broadcast reaches every live session', async (t) => {
  const { url, comet } = await startServer(t, { wait: 5000 });
  const a = await WireClient.open(url);
  const b = await WireClient.open(url);
  t.equal(await comet.broadcast({ all: true }), 2);
  t.same(packetsOf(await a.request()), [{ seq: 1, data: { all: true } }]);
  t.same(packetsOf(await b.request()), [{ seq: 1, data: { all: true } }]);
});
