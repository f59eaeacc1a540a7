// The observer on a cluster node: every node and its lease, from what the node's own lease
// renewals know (two nodes in this process on a real redis-server, lease 1 s). Node B shows in
// A's feed and A's /api/tree alive; cut off from Redis, its lease lapses in A's view; back, it
// fences itself and its own observer shows its old life fenced; stopped, it lapses at once.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { main } from '../bin/comet-fsm.js';
import { CometClient } from '../lib/client/index.js';
import type { ClusterBus } from '../lib/cluster/bus.js';
import { createRedisBus } from '../lib/cluster/redis_bus.js';
import { renderSnapshot } from '../lib/observer/render.js';
import type { ClusterNodeRow, FeedPacket, TreeSnapshot } from '../lib/observer/page/protocol.js';
import { startNode, TEST_LEASE_MS, until } from './fixtures/cluster.js';
import { RedisServer, requireRedis } from './fixtures/redis.js';

/** A Redis bus that can be cut off: while frozen its commands fail, as with a partition. */
function freezableBus(url: string): { bus: ClusterBus; frozen: { on: boolean } } {
  const inner = createRedisBus({ url, commandTimeoutMs: TEST_LEASE_MS / 4 });
  const frozen = { on: false };
  const cut = (): Promise<never> => Promise.reject(new Error('cut off (test)'));
  const bus: ClusterBus = {
    get up() { return inner.up; },
    publish: (c, m) => (frozen.on ? cut() : inner.publish(c, m)),
    evalScript: (s, a) => (frozen.on ? cut() : inner.evalScript(s, a)),
    subscribe: (c) => inner.subscribe(c),
    unsubscribe: (c) => inner.unsubscribe(c),
    onMessage: (h) => inner.onMessage(h),
    onEvent: (h) => inner.onEvent(h),
    close: () => inner.close(),
  };
  return { bus, frozen };
}

/** The cluster rows a feed has been sent, as the page keeps them (upserts applied, removals done). */
function clusterOf(packets: readonly FeedPacket[]): Map<string, ClusterNodeRow> {
  const rows = new Map<string, ClusterNodeRow>();
  for (const p of packets) {
    if (p.type !== 'cluster') continue;
    if (p.full) rows.clear();
    for (const n of p.remove) rows.delete(n);
    for (const r of p.upsert) rows.set(r.node, r);
  }
  return rows;
}

async function tree(base: string): Promise<TreeSnapshot> {
  return (await (await fetch(`${base}/observer/api/tree`)).json()) as TreeSnapshot;
}

void t.test('cluster_nodes: node B in A\'s observer, alive; its lease lapses when cut off; fenced on its own; lapsed at once when stopped', async (t) => {
  if (!requireRedis(t, 'observer on a cluster')) return;
  const redis = await RedisServer.start(t);
  const a = await startNode(t, redis.url, 'a', { observer: { tickMs: 50 } });
  const cut = freezableBus(redis.url);
  const b = await startNode(t, redis.url, 'b', { observer: { tickMs: 50 }, cluster: { redis: redis.url, bus: cut.bus } });
  const aId = a.comet.cluster?.node ?? '';
  const bFirst = b.comet.cluster?.node ?? '';

  const feed = new CometClient(`${a.base}/observer/comet`, { retryBaseMs: 10 });
  t.teardown(() => feed.close());
  const packets: FeedPacket[] = [];
  feed.on('message', ({ data }) => packets.push(data as FeedPacket));
  await feed.connect();
  const setup = await fetch(`${a.base}/comet`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"type":"setup"}' });
  t.equal(setup.status, 200);

  await until(() => clusterOf(packets).get(bFirst)?.lease === 'alive', 5000, 'B alive in A\'s feed');
  await until(() => clusterOf(packets).get(aId)?.sessions === 1, 5000, 'A\'s own session counted on its row');
  const rows = clusterOf(packets);
  t.equal(packets.filter((p) => p.type === 'cluster' && p.full === true).length, 1, 'the first cluster packet has every row, the others only what changed');
  t.match(rows.get(aId), { self: true, lease: 'alive', redis: 'up', sessions: 1, forwarded: 0, served: 0 }, 'A\'s own row: what A knows of itself');
  const self = rows.get(aId);
  t.ok(self?.seenAt !== null && self?.expiresAt !== null && (self?.expiresAt ?? 0) - (self?.seenAt ?? 0) === TEST_LEASE_MS, 'A\'s lease: its last renewal, and a lease later it expires');
  t.match(rows.get(bFirst), { self: false, lease: 'alive', redis: null, sessions: null, forwarded: null, served: null, expiresAt: null }, 'B\'s row: alive, what only B knows is null');
  t.type(rows.get(bFirst)?.seenAt, 'number', 'B\'s last renewal seen');

  // Incremental: a packet when a lease is renewed or a count changes, not every tick.
  const before = packets.filter((p) => p.type === 'cluster').length;
  await new Promise((r) => setTimeout(r, 1000));
  const sent = packets.filter((p) => p.type === 'cluster').length - before;
  t.ok(sent <= 10, `${sent} cluster packets in 1 s of 20 ticks (4 renewals a lease)`);

  const snap = await tree(a.base);
  t.match(snap.cluster, { node: aId, leaseMs: TEST_LEASE_MS, redis: 'up' }, '/api/tree has the cluster');
  t.ok(snap.cluster?.nodes.some((n) => n.node === bFirst && n.lease === 'alive'), '/api/tree: B alive');
  const text = renderSnapshot(snap).join('\n');
  t.match(text, /^cluster: 2 nodes alive, lease 1\.0 s, Redis up$/m, 'comet-fsm tree prints the cluster section');
  t.match(text, new RegExp(`^  ${aId}  this node  alive  renewed [0-9.]+ s ago, expires in [0-9.]+ s  sessions 1  forwarded 0  served 0$`, 'm'));
  t.match(text, new RegExp(`^  ${bFirst}  alive  seen [0-9.]+ s ago$`, 'm'));
  let printed = '';
  const stdout = new PassThrough().on('data', (c: Buffer) => (printed += c.toString()));
  t.equal(await main(['tree', `${a.base}/`], { stdin: new PassThrough(), stdout, stderr: new PassThrough() }), 0);
  t.match(printed, new RegExp(`^cluster: 2 nodes alive[^\n]*\n  ${aId}  this node  alive[^\n]*\n  ${bFirst}  alive`, 'm'), '`comet-fsm tree URL` prints the nodes after the tree');

  // B cut off from Redis: it renews no more, and A finds its lease gone.
  cut.frozen.on = true;
  const cutAt = Date.now();
  await until(() => clusterOf(packets).get(bFirst)?.lease === 'lapsed', 5000, 'B lapsed in A\'s feed');
  t.ok(Date.now() - cutAt >= TEST_LEASE_MS / 2, `lapsed ${Date.now() - cutAt} ms after the cut: once its lease ran out, not before`);
  t.equal((await tree(a.base)).cluster?.nodes.find((n) => n.node === bFirst)?.lease, 'lapsed', '/api/tree: B lapsed');

  // Back, B finds its tombstone and fences itself: its old life is fenced, it lives on under a new id.
  cut.frozen.on = false;
  await until(() => b.comet.cluster?.node !== bFirst, 5000, 'B fenced itself');
  const bSecond = b.comet.cluster?.node ?? '';
  await until(async () => (await tree(b.base)).cluster?.nodes.some((n) => n.node === bSecond && n.self && n.lease === 'alive') === true, 5000, 'B\'s new life on its own observer');
  const bView = (await tree(b.base)).cluster;
  t.match(bView?.nodes.find((n) => n.node === bFirst), { lease: 'fenced', self: false }, 'B\'s observer: its old life fenced');
  t.match(bView?.nodes.find((n) => n.node === aId), { lease: 'alive' }, 'B\'s observer: A alive');
  await until(() => clusterOf(packets).get(bSecond)?.lease === 'alive', 5000, 'B\'s new life alive in A\'s feed');

  // Stopped gracefully, B withdraws its lease and says so: lapsed at once.
  const closedAt = Date.now();
  await b.comet.close();
  await until(() => clusterOf(packets).get(bSecond)?.lease === 'lapsed', 5000, 'B\'s new life lapsed in A\'s feed');
  t.ok(Date.now() - closedAt < TEST_LEASE_MS, 'a graceful stop lapses without waiting for the lease');
  const last = clusterOf(packets);
  t.same([...last.values()].filter((n) => n.lease === 'alive').map((n) => n.node), [aId], 'A alone alive');
});

void t.test('a single node: no cluster in /api/tree, no cluster packet on the feed', async (t) => {
  const { createCometServer } = await import('../lib/index.js');
  const comet = await createCometServer({ observer: { tickMs: 50 } });
  t.teardown(() => comet.close());
  const { port } = await comet.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  const snap = await tree(base);
  t.equal(snap.cluster, undefined);
  t.notOk(renderSnapshot(snap).some((l) => l.startsWith('cluster')), 'comet-fsm tree prints no cluster section');
  const feed = new CometClient(`${base}/observer/comet`, { retryBaseMs: 10 });
  t.teardown(() => feed.close());
  const packets: FeedPacket[] = [];
  feed.on('message', ({ data }) => packets.push(data as FeedPacket));
  await feed.connect();
  await until(() => packets.some((p) => p.type === 'counts'), 5000, 'the first counts');
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(packets.some((p) => p.type === 'cluster'));
});
