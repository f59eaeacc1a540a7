// The cluster's pure parts, without Redis: node ids, the messages between nodes, and the liveness
// view driven by a scripted bus on a ManualClock (grace after a reconnection, previous lives,
// fencing, the pause guard), and the two races of issue 14 replayed step by step.
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import { nullLogger } from '../lib/otp/logger.js';
import type { BusEvent, ClusterBus } from '../lib/cluster/bus.js';
import { DECLARER_MAX_INTERVALS, Liveness, RENEWALS_PER_LEASE } from '../lib/cluster/liveness.js';
import { asNodeId, newNodeId, nodeName, ownerOf, type NodeId } from '../lib/cluster/node_id.js';
import { callOf, castOf, decode, encode } from '../lib/cluster/wire.js';
import { nodeSid, sidNode } from '../lib/comet/session_ids.js';
import { asRid, type RequestToken } from '../lib/comet/ids.js';
import { reconnectDelay, RECONNECT_CAP_MS } from '../lib/cluster/redis_bus.js';
import { ClusterRouter } from '../lib/cluster/router.js';
import { newClusterStats } from '../lib/cluster/stats.js';
import type { SessionRouter } from '../lib/comet/session_router.js';
import type { Sid } from '../lib/comet/ids.js';

void t.test('node ids: name~creation, a new creation per life, the owner read back from a sid', async (t) => {
  const a1 = newNodeId('web-1');
  const a2 = newNodeId('web-1');
  t.match(a1, /^web-1~[A-Za-z0-9_-]{8}$/);
  t.not(a1, a2, 'each life its own creation');
  t.equal(nodeName(a1), 'web-1');
  const sid = nodeSid(a1);
  t.equal(sidNode(sid), a1);
  t.equal(ownerOf(sid), a1);
  t.ok(sid.length <= 128, 'within the wire contract\'s 128 characters');
  t.equal(ownerOf('6f1c2b9e-3d4a-4f8e-9b7c-2a1d0e5f4c3b'), undefined, 'a single-process sid names no node');
  t.equal(ownerOf('bad node~x.y'), undefined, 'a malformed node part names none');
  t.throws(() => newNodeId('a.b'), { code: 'ERR_COMET_INVALID_OPTION' }, 'a dot would end the node part of a sid');
  t.throws(() => newNodeId(''), { code: 'ERR_COMET_INVALID_OPTION' });
  t.ok(newNodeId('x'.repeat(63)), 'a 63-character pod name fits');
  t.equal(asNodeId(42), undefined);
});

void t.test('wire: every message decodes to itself; anything else is dropped', async (t) => {
  const from = newNodeId('a');
  const msgs = [
    { t: 'call', id: 1, from, sid: 's', ev: { type: 'request', rid: 1, ack: 0, messages: ['m'], token: 3 }, timeout: 1000 },
    { t: 'call', id: 2, from, sid: 's', ev: { type: 'terminate', rid: 2, ack: 1 }, timeout: 1000 },
    { t: 'call', id: 3, from, sid: 's', ev: { type: 'packet', data: { json: '{"x":1}', bytes: 7 } }, timeout: 1000 },
    { t: 'cast', from, sid: 's', ev: { type: 'request_gone', token: 3 } },
    { t: 'cast', from, sid: 's', ev: { type: 'packet', data: { json: 'null', bytes: 4 } } },
    { t: 'reply', id: 1, reply: { ok: { kind: 'packets', rid: asRid(1), response: { json: '{"rid":1,"packets":[]}', bytes: 22 } } } },
    { t: 'reply', id: 1, reply: { err: { code: 'unknown_session', message: 'no such session' } } },
    { t: 'broadcast', from, data: 'hi' },
    { t: 'down', node: from },
  ] as const;
  for (const m of msgs) t.same(decode(encode(m)), m, `${m.t} round-trips`);
  const bad = [
    'not json', 'null', '[]', '{"t":"nope"}',
    JSON.stringify({ t: 'call', id: 'x', from, sid: 's', ev: { type: 'packet', data: 1 }, timeout: 1 }),
    JSON.stringify({ t: 'call', id: 1, from: 'not a node', sid: 's', ev: { type: 'packet', data: 1 }, timeout: 1 }),
    JSON.stringify({ t: 'call', id: 1, from, sid: 's', ev: { type: 'request', rid: 1, messages: 'x', token: 1 }, timeout: 1 }),
    JSON.stringify({ t: 'call', id: 1, from, sid: 's', ev: { type: 'terminate' }, timeout: 1 }),
    JSON.stringify({ t: 'call', id: 1, from, sid: 's', ev: { type: 'dietimer' }, timeout: 1 }),
    JSON.stringify({ t: 'call', id: 1, from, sid: 's', ev: null, timeout: 1 }),
    JSON.stringify({ t: 'cast', from, sid: 's', ev: { type: 'request_gone' } }),
    JSON.stringify({ t: 'cast', from, sid: 's', ev: 7 }),
    JSON.stringify({ t: 'cast', from, sid: 's', ev: { type: 'packet', data: null } }),
    JSON.stringify({ t: 'call', id: 1, from, sid: 's', ev: { type: 'packet', data: { json: 1, bytes: 1 } }, timeout: 1 }),
    JSON.stringify({ t: 'reply', id: 1, reply: { err: { code: 'ERR_COMET_X', message: 'm' } } }),
    JSON.stringify({ t: 'reply', id: 1, reply: { ok: 1 } }),
    JSON.stringify({ t: 'reply', id: 1, reply: null }),
    JSON.stringify({ t: 'broadcast', from }),
    JSON.stringify({ t: 'down', node: 'x' }),
  ];
  for (const b of bad) t.equal(decode(b), undefined, `dropped: ${b.slice(0, 60)}`);
  const token = 5 as RequestToken;
  t.same(callOf({ type: 'terminate', rid: asRid(1), ack: undefined, from: {} as never }), { type: 'terminate', rid: 1, ack: undefined });
  t.equal(callOf({ type: 'request_gone', token }), undefined, 'request_gone is never a call');
  t.same(castOf({ type: 'request_gone', token }), { type: 'request_gone', token: 5 });
  t.equal(castOf({ type: 'dietimer' }), undefined, 'timers never cross');
});

void t.test('reconnection delay: doubling from 50 ms, capped at 1 s, for ever', async (t) => {
  t.same([1, 2, 3, 5, 6, 100].map(reconnectDelay), [50, 100, 200, 800, RECONNECT_CAP_MS, RECONNECT_CAP_MS]);
});

/** A bus whose renewal script answers what the test says; with `hold`, only when `release`d
 *  (a renewal in flight while time passes: a slow Redis, a loaded host, a paused process). */
class ScriptedBus implements ClusterBus {
  up = true;
  answer: unknown = [1];
  hold = false;
  calls: (readonly string[])[] = [];
  handlers: ((e: BusEvent) => void)[] = [];
  readonly #held: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  publish(): Promise<number> {
    return Promise.resolve(1);
  }
  evalScript(_script: string, args: readonly string[]): Promise<unknown> {
    this.calls.push(args);
    if (this.hold) return new Promise((resolve, reject) => this.#held.push({ resolve, reject }));
    return this.answer instanceof Error ? Promise.reject(this.answer) : Promise.resolve(this.answer);
  }
  /** Answer the oldest held renewal with `answer` (an Error: it fails). */
  release(answer: unknown): void {
    const h = this.#held.shift();
    if (!h) throw new Error('no renewal in flight');
    if (answer instanceof Error) h.reject(answer);
    else h.resolve(answer);
  }
  get inFlight(): number {
    return this.#held.length;
  }
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }
  onMessage(): void {}
  onEvent(h: (e: BusEvent) => void): void {
    this.handlers.push(h);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Let renewals already in flight finish (they resolve through a few promise turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function rig(lease = 1000) {
  const bus = new ScriptedBus();
  const clock = new ManualClock();
  const downs: NodeId[] = [];
  const fences: [NodeId, NodeId][] = [];
  const live = new Liveness({
    bus, prefix: 'p:', name: 'me', lease, clock, logger: nullLogger,
    onNodeDown: (n) => downs.push(n),
    onFenced: (o, n) => {
      fences.push([o, n]);
      return Promise.resolve();
    },
  });
  return { bus, clock, live, downs, fences };
}

void t.test('liveness: grace after a (re)connection, then nodes without a lease are dead', async (t) => {
  const { bus, clock, live, downs } = rig();
  const b = newNodeId('b');
  const c = newNodeId('c');
  bus.answer = [1, live.node, b, c];
  live.busUp();
  await live.renewNow();
  t.equal(live.status(b), 'live');
  t.equal(live.status(live.node), 'self');
  t.equal(live.status(newNodeId('x')), 'unknown', 'a node never seen, within the grace: tried, not refused');
  t.equal(bus.calls.at(-1)?.[4], '0', 'nobody declared dead within the grace');
  // Redis restarted empty: within the grace nobody is dropped.
  bus.answer = [1, live.node];
  live.busUp();
  await live.renewNow();
  t.same([...live.view].sort(), [b, c].sort(), 'an empty Redis is not a dead cluster');
  t.same(downs, []);
  // After the grace: c came back, b did not.
  clock.advance(1001);
  bus.answer = [1, live.node, c];
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '0', 'its own renewal a lease late: it re-registers first');
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '1', 'declares after the grace');
  t.ok(bus.calls.at(-1)?.includes(b), 'and asks about the nodes it knew');
  t.same(downs, [b], 'b is down');
  t.equal(live.status(b), 'dead');
  t.equal(live.status(newNodeId('x')), 'dead', 'an unknown node, outside the grace: dead at once');
  t.equal(live.status(newNodeId('c')), 'dead', 'a previous life of a live node: dead at once');
  t.equal(live.status(newNodeId('me')), 'dead', 'a previous life of this node: dead at once');
  live.nodeDown(c);
  t.same(downs, [b, c], 'a node that says it stopped is down at once');
  live.nodeDown(c);
  t.same(downs, [b, c], 'once');
  await live.stop();
});

void t.test('liveness: a node that finds its tombstone fences itself; a paused one confirms first', async (t) => {
  const { bus, clock, live, fences } = rig();
  await live.start();
  t.notOk(live.mustConfirm(), 'just renewed');
  clock.advance(1000 / RENEWALS_PER_LEASE);
  t.notOk(live.mustConfirm(), 'renewed on schedule');
  await settle();
  bus.answer = new Error('timeout');
  t.equal(await live.renewNow(), 'failed', 'a renewal that fails');
  clock.advance(2000);
  t.ok(live.mustConfirm(), 'Redis up but no renewal for a lease: confirm before serving');
  bus.up = false;
  t.notOk(live.mustConfirm(), 'Redis unreachable: serve own sessions');
  bus.up = true;
  await settle();
  const old = live.node;
  bus.answer = [0];
  t.equal(await live.renewNow(), 'fenced');
  t.same(fences, [[old, live.node]]);
  t.not(live.node, old, 'a new life');
  t.equal(live.status(old), 'dead');
  t.equal(live.fenced, 1);
  t.ok(live.renewFailures >= 1, 'failed renewals counted');
  bus.answer = [1, live.node];
  t.equal(await live.renewNow(), 'alive', 'the new life renews');
  live.suspect();
  await live.stop();
  t.equal(await live.renewNow(), 'failed', 'stopped: no more renewals');
});

// Issue 14, race 1 (false 404s after a Redis restart, under load). The grace period was checked
// when a renewal's answer came back, not when the renewal ran: a renewal sent inside the grace
// (so nobody was declared, and the answer lists only the nodes that re-registered so far) whose
// answer was read after the grace ended dropped every node not yet back. Its sids were 404 on
// this node, and its calls in flight were answered 404, though it was alive and serving.
void t.test('redis_restart_grace: an answer read after the grace, for a renewal sent in it, drops nobody', async (t) => {
  const { bus, clock, live, downs } = rig();
  const b = newNodeId('b');
  bus.answer = [1, live.node, b];
  live.busUp();
  await live.renewNow();
  t.equal(live.status(b), 'live');
  // Redis restarts empty; this node is back first, at t = 0 (its grace: one lease, to t = 1000).
  bus.answer = [1, live.node];
  live.busUp();
  await live.renewNow();
  t.equal(live.status(b), 'live', 'b kept while it reconnects');
  clock.advance(900);
  bus.hold = true;
  const late = live.renewNow(); // sent at t = 900: b has not re-registered yet
  t.equal(bus.calls.at(-1)?.[4], '0', 'sent inside the grace: declares nobody');
  clock.advance(200); // the answer is read at t = 1100 (a slow Redis, a busy event loop)
  bus.release([1, live.node]);
  t.equal(await late, 'alive');
  t.same(downs, [], 'nobody dropped on an answer from inside the grace');
  t.equal(live.status(b), 'live', 'b\'s sids are still forwarded, not 404');
  // b re-registers; from the first renewal sent after the grace on, a missing lease is a death.
  bus.hold = false;
  bus.answer = [1, live.node, b];
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '1', 'past the grace, connected all along: may declare');
  t.same(downs, []);
  bus.answer = [1, live.node];
  clock.advance(1000 / RENEWALS_PER_LEASE);
  await live.renewNow();
  t.same(downs, [b], 'a node whose lease lapsed after the grace is down');
  await live.stop();
});

void t.test('redis_restart_grace: only a connection unbroken for the whole grace may declare', async (t) => {
  const { bus, clock, live } = rig();
  live.busUp();
  await live.renewNow();
  for (let i = 0; i < 6; i++) {
    clock.advance(1000 / RENEWALS_PER_LEASE);
    await live.renewNow();
  }
  t.equal(bus.calls.at(-1)?.[4], '1', 'connected for more than a lease');
  bus.up = false;
  live.busDown();
  clock.advance(5000);
  bus.up = true;
  live.busUp(); // back at t = 6500
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '0', 'just reconnected: declares nobody');
  clock.advance(999);
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '0', 'still inside the lease after the reconnection');
  clock.advance(1);
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '1', 'a full lease connected: declares');
  await live.stop();
});

// The same false 404s from a stall rather than a restart: every node of a process (the test's
// three) or of a VM stalls past the lease; the first renewal after it re-registers its node and,
// connected all along, declared the others, whose leases lapsed during the same stall.
void t.test('redis_restart_grace: a node just out of a stall of its own declares nobody', async (t) => {
  const { bus, clock, live, downs } = rig();
  const b = newNodeId('b');
  bus.answer = [1, live.node, b];
  live.busUp();
  await live.renewNow();
  for (let i = 0; i < 6; i++) {
    clock.advance(1000 / RENEWALS_PER_LEASE);
    await live.renewNow();
  }
  t.equal(bus.calls.at(-1)?.[4], '1', 'connected for more than a lease, renewing on time');
  clock.advance(1200); // the process stalls: no renewal for more than a lease, b's lapses too
  bus.answer = [1, live.node];
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '0', 'its own last renewal a lease ago: it was not watching, it declares nobody');
  t.same(downs, [], 'b is kept');
  bus.answer = [1, live.node, b]; // b, stalled in the same process, renews in the same moment
  clock.advance(1000 / RENEWALS_PER_LEASE);
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '1', 'on time again: declares');
  t.same(downs, []);
  clock.advance((1000 / RENEWALS_PER_LEASE) * DECLARER_MAX_INTERVALS + 1);
  await live.renewNow();
  t.equal(bus.calls.at(-1)?.[4], '0', 'late by more than its allowance: declares nobody');
  await live.stop();
});

/** A node's router over a scripted bus, its own sessions answered by a fake local router. */
function routerRig() {
  const r = rig();
  const served: Sid[] = [];
  const local: SessionRouter = {
    call<R>(sid: Sid): Promise<R> {
      served.push(sid);
      return Promise.resolve({ kind: 'served' } as R);
    },
    cast: () => true,
  };
  const router = new ClusterRouter({
    local, bus: r.bus, liveness: r.live, stats: newClusterStats(), logger: nullLogger,
    channelOf: (n) => `p:node:${n}`,
  });
  const request = (): Promise<unknown> => router.call(nodeSid(r.live.node) as Sid, () => ({ type: 'dietimer' }), 1000);
  return { ...r, served, request };
}

// Issue 14, race 2 (one message delivered by both lives of a node paused past its lease). On
// SIGCONT the requests that waited in the node's sockets are read before its renewal timer runs.
// The guard made them wait for a renewal, but took any answer that was not a tombstone as leave to
// serve: the answer of a renewal sent before the pause (about then, not now), or a failed renewal.
void t.test('fencing_sigstop_guard: past its lease a node serves its own sessions only on a fresh renewal', async (t) => {
  const { bus, clock, live, served, request, fences } = routerRig();
  await live.start();
  t.ok(await request(), 'within its lease: served');
  t.equal(served.length, 1);
  bus.hold = true;
  clock.advance(1000 / RENEWALS_PER_LEASE); // a renewal goes out at t = 250 ...
  t.equal(bus.inFlight, 1, 'a renewal in flight');
  clock.advance(2250); // ... and the process is stopped until t = 2500, past its lease
  const waiting = request(); // a request that waited in its socket during the pause
  bus.release([1, live.node]); // the renewal sent at t = 250 comes back: alive *then*
  await settle();
  t.equal(served.length, 1, 'not served on the answer of a renewal sent before the pause');
  t.equal(bus.inFlight, 1, 'it renews again');
  const old = live.node;
  bus.release([0]); // meanwhile the others declared it dead: its tombstone
  await t.rejects(waiting, { code: 'unknown_session' }, 'refused like on every other node');
  t.equal(served.length, 1, 'nothing delivered by the buried life');
  t.same(fences.map(([o]) => o), [old], 'and it fenced itself');
  bus.hold = false;
  await live.stop();
});

void t.test('fencing_sigstop_guard: a failed renewal past the lease is a 503, not leave to serve', async (t) => {
  const { bus, clock, live, served, request } = routerRig();
  await live.start();
  bus.hold = true;
  clock.advance(1000 / RENEWALS_PER_LEASE);
  clock.advance(2000);
  const waiting = request();
  bus.release(new Error('Command timed out')); // the renewal in flight across the pause
  await settle();
  bus.release(new Error('Command timed out')); // and the fresh one (a loaded Redis)
  await t.rejects(waiting, { code: 'overloaded' }, '503: the client retries');
  t.equal(served.length, 0, 'nothing served while the lease is unconfirmed');
  bus.hold = false;
  bus.answer = [1, live.node];
  t.ok(await request(), 'a renewal that succeeds: served again');
  t.equal(served.length, 1);
  bus.up = false;
  clock.advance(5000);
  t.ok(await request(), 'Redis unreachable: the node serves its own sessions (nobody can declare it dead)');
  await live.stop();
});
