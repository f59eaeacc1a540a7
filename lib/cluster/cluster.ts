/**
 * One node of a comet cluster: its Redis bus, its lease (liveness.ts), the distributed router
 * (router.ts), cluster-wide broadcast and the counters. Created before the comet tree (the node id
 * goes into every sid), started once the tree runs (it needs the local router), closed after the
 * sessions ended. Supervision stays per node, as OTP's does: nothing here restarts anything.
 */
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../otp/clock.js';
import type { Logger } from '../otp/logger.js';
import { CometError } from '../comet/errors.js';
import type { SessionRouter } from '../comet/session_router.js';
import { assertSendable } from '../comet/wire.js';
import type { BusEvent, ClusterBus } from './bus.js';
import { DEFAULT_LEASE_MS, Liveness, RENEWALS_PER_LEASE } from './liveness.js';
import { defaultNodeName, type NodeId } from './node_id.js';
import { createRedisBus, RECONNECT_CAP_MS } from './redis_bus.js';
import { ClusterRouter } from './router.js';
import { newClusterStats, registerClusterMetrics, type ClusterStats } from './stats.js';
import { decode, encode } from './wire.js';

/** Default key and channel prefix in Redis (several clusters may share one Redis with others). */
export const DEFAULT_KEY_PREFIX = 'comet:';
/** The shortest lease accepted (ms): below it a busy event loop would fence itself. */
export const MIN_LEASE_MS = 200;

/** `createCometServer`'s `cluster` option. */
export interface ClusterOptions {
  /** `redis://host:port[/db]`. */
  readonly redis: string;
  /** This node's name (letters, digits, `_`, `-`; default: host name and pid). A new creation is
   *  appended at every start, so names must be unique among live nodes, not across time. */
  readonly nodeId?: string;
  /** Lease (ms, default 10000): a dead node's sids are `404` within about 1.25 leases. */
  readonly lease?: number;
  /** Key and channel prefix (default `comet:`). */
  readonly keyPrefix?: string;
  /** The bus to use instead of ioredis (tests, or another client library). */
  readonly bus?: ClusterBus;
}

/** What `/admin/stats` shows of a node. */
export interface ClusterNodeStats {
  readonly node: NodeId;
  readonly forwarded: number;
  readonly served: number;
  readonly redis: 'up' | 'down';
  readonly nodes: number;
  readonly fenced: number;
}

/** How many previous lives of this node (fenced) {@link Cluster.members} remembers. */
export const FENCED_LIVES_KEPT = 8;

/**
 * What one node knows of the cluster's members, all from its own lease renewals: nothing is asked
 * of another node. The observer shows it (docs/observer.md).
 */
export interface ClusterMembers {
  /** This node's id in its current life. */
  readonly node: NodeId;
  readonly leaseMs: number;
  /** The clock's now (ms) when read, and when this node's last renewal succeeded (-Infinity: none yet). */
  readonly now: number;
  readonly renewedAt: number;
  readonly redis: 'up' | 'down';
  /** The other nodes believed alive: their lease was there at this node's last renewal. */
  readonly peers: readonly NodeId[];
  /** This node's previous lives, oldest first: each was declared dead while it ran, and fenced. */
  readonly fencedLives: readonly NodeId[];
  readonly forwarded: number;
  readonly served: number;
}

export interface ClusterStartDeps {
  /** The router of this node's own sessions. */
  readonly local: SessionRouter;
  /** Push `data` to every session of this node; how many. */
  readonly deliverBroadcast: (data: unknown) => number;
  /** End every session of this node (fencing). */
  readonly endLocalSessions: () => Promise<void>;
}

export class Cluster {
  readonly #bus: ClusterBus;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #liveness: Liveness;
  readonly #stats: ClusterStats = newClusterStats();
  #router: ClusterRouter | undefined;
  #deps: ClusterStartDeps | undefined;
  #closed = false;
  readonly #lease: number;
  readonly #upWaiters: (() => void)[] = [];
  readonly #clock: Clock;
  readonly #fencedLives: NodeId[] = [];

  constructor(options: ClusterOptions, env: { readonly logger: Logger; readonly clock?: Clock; readonly registry?: Registry | undefined }) {
    const lease = options.lease ?? DEFAULT_LEASE_MS;
    if (!Number.isSafeInteger(lease) || lease < MIN_LEASE_MS) {
      throw new CometError('ERR_COMET_INVALID_OPTION', `cluster.lease must be an integer >= ${MIN_LEASE_MS} ms, got ${String(lease)}`);
    }
    this.#lease = lease;
    this.#prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.#logger = env.logger;
    this.#clock = env.clock ?? systemClock;
    this.#bus = options.bus ?? createRedisBus({ url: options.redis, commandTimeoutMs: Math.floor(lease / RENEWALS_PER_LEASE) });
    this.#liveness = new Liveness({
      bus: this.#bus, prefix: this.#prefix, name: options.nodeId ?? defaultNodeName(), lease,
      // The others reconnect up to RECONNECT_CAP_MS after this node does.
      grace: lease + RECONNECT_CAP_MS,
      clock: this.#clock, logger: env.logger,
      onNodeDown: (node) => {
        this.#logger.warn({ node }, 'cluster: node down, its sessions are unknown from now');
        this.#router?.nodeDown(node);
      },
      onFenced: (old, next) => this.#fenced(old, next),
    });
    if (env.registry) {
      registerClusterMetrics(env.registry, this.#stats, {
        redisUp: () => this.#bus.up,
        nodes: () => this.#liveness.view.length + 1,
        fenced: () => this.#liveness.fenced,
        renewFailures: () => this.#liveness.renewFailures,
      });
    }
  }

  /** This node's id in its current life (it changes when the node fences itself). */
  get node(): NodeId {
    return this.#liveness.node;
  }

  /** The router the API uses. Valid once `start` ran. */
  get router(): SessionRouter {
    if (!this.#router) throw new CometError('ERR_COMET_INVALID_OPTION', 'cluster not started');
    return this.#router;
  }

  /** Subscribe, take the lease, serve. Resolves after the first renewal, even if Redis is away
   *  (the node then serves its own sessions and joins when Redis answers). */
  async start(deps: ClusterStartDeps): Promise<void> {
    this.#deps = deps;
    this.#router = new ClusterRouter({
      local: deps.local, bus: this.#bus, liveness: this.#liveness, stats: this.#stats, logger: this.#logger,
      channelOf: (node) => this.#channel(node),
    });
    this.#bus.onMessage((channel, text) => this.#receive(channel, text));
    this.#bus.onEvent((e) => this.#busEvent(e));
    // Subscriptions wait for Redis (the subscriber's queue holds them), so a node started while
    // Redis is away waits one lease at most, then serves its own sessions and joins later.
    const subscribed = Promise.all([this.#bus.subscribe(this.#channel(this.node)), this.#bus.subscribe(this.#broadcastChannel())]);
    subscribed.catch((err: unknown) => this.#logger.error({ err: String(err) }, 'cluster: subscribe failed'));
    const bound = this.#lease;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      subscribed.then(() => this.#upOrTimeout(bound)),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, bound); }),
    ]);
    clearTimeout(timer);
    if (this.#bus.up) this.#liveness.busUp();
    await this.#liveness.start();
  }

  /**
   * Push `data` to every session of every node. Published first: if Redis is unreachable nothing
   * is sent anywhere and it rejects with `overloaded` (safe to retry); once published, every node
   * connected to Redis pushes it to its sessions. Resolves with this node's session count and how
   * many nodes received it (this one included).
   */
  async broadcast(data: unknown): Promise<{ sessions: number; nodes: number }> {
    assertSendable(data);
    if (!this.#bus.up) throw new CometError('overloaded', 'the cluster cannot reach Redis, broadcast not sent');
    let nodes: number;
    try {
      nodes = await this.#bus.publish(this.#broadcastChannel(), encode({ t: 'broadcast', from: this.node, data }));
    } catch (err) {
      throw new CometError('overloaded', 'the cluster cannot reach Redis, broadcast not sent', { cause: err });
    }
    return { sessions: this.#deps?.deliverBroadcast(data) ?? 0, nodes };
  }

  stats(): ClusterNodeStats {
    return {
      node: this.node, forwarded: this.#stats.forwarded, served: this.#stats.served,
      redis: this.#bus.up ? 'up' : 'down', nodes: this.#liveness.view.length + 1, fenced: this.#liveness.fenced,
    };
  }

  /** What this node knows of the cluster's members (see {@link ClusterMembers}). */
  members(): ClusterMembers {
    return {
      node: this.node, leaseMs: this.#lease, now: this.#clock.now(), renewedAt: this.#liveness.lastRenewed,
      redis: this.#bus.up ? 'up' : 'down', peers: this.#liveness.view, fencedLives: [...this.#fencedLives],
      forwarded: this.#stats.forwarded, served: this.#stats.served,
    };
  }

  /** Withdraw from the cluster (the others answer 404 for this node's sids at once) and disconnect. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#liveness.stop();
    if (this.#bus.up) {
      await this.#bus.publish(this.#broadcastChannel(), encode({ t: 'down', node: this.node })).catch(() => undefined);
    }
    this.#router?.failAll('bus_lost', 'the server is shutting down');
    await this.#bus.close();
  }

  /** Resolves when the command connection is ready, or after `ms`. */
  #upOrTimeout(ms: number): Promise<void> {
    if (this.#bus.up) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#upWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #channel(node: NodeId): string {
    return `${this.#prefix}node:${node}`;
  }

  #broadcastChannel(): string {
    return `${this.#prefix}broadcast`;
  }

  #receive(channel: string, text: string): void {
    const msg = decode(text);
    const router = this.#router;
    if (!msg || !router) {
      this.#stats.dropped++;
      return;
    }
    const own = channel === this.#channel(this.node);
    switch (msg.t) {
      case 'call':
      case 'cast':
      case 'reply':
        // A message on a previous life's channel (still in flight when the node fenced) is dropped.
        if (own) router.receive(msg);
        else this.#stats.dropped++;
        return;
      case 'broadcast':
        if (msg.from !== this.node) this.#deps?.deliverBroadcast(msg.data);
        return;
      case 'down':
        if (msg.node !== this.node) this.#liveness.nodeDown(msg.node);
        return;
    }
  }

  #busEvent(e: BusEvent): void {
    if (this.#closed) return;
    switch (e.type) {
      case 'up':
        for (const w of this.#upWaiters.splice(0)) w();
        this.#logger.info({ node: this.node }, 'cluster: Redis reachable');
        this.#liveness.busUp();
        return;
      case 'down':
        this.#liveness.busDown();
        this.#logger.error({ node: this.node, reason: e.reason }, 'cluster: Redis unreachable; serving this node\'s sessions only, forwarded calls answer 503');
        return;
      case 'sub_down':
        this.#logger.error({ node: this.node, reason: e.reason }, 'cluster: Redis subscription lost; calls waiting for a reply answer 503');
        this.#router?.failAll('bus_lost', 'the cluster lost the session\'s node, retry');
        return;
      case 'sub_up':
        this.#logger.info({ node: this.node }, 'cluster: Redis subscription back');
        return;
    }
  }

  async #fenced(old: NodeId, next: NodeId): Promise<void> {
    this.#fencedLives.push(old);
    if (this.#fencedLives.length > FENCED_LIVES_KEPT) this.#fencedLives.shift();
    // Replies to calls in flight would come to the old channel: they cannot arrive now.
    this.#router?.failAll('bus_lost', 'this node restarted its cluster membership, retry');
    await Promise.allSettled([this.#bus.unsubscribe(this.#channel(old)), this.#bus.subscribe(this.#channel(next))]);
    await this.#deps?.endLocalSessions();
  }
}

