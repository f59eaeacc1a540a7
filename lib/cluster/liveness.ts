/**
 * Node liveness, Erlang's `nodedown` on a lease in Redis. Every node renews `<p>node:<id>` (a key
 * with a TTL of one lease) several times per lease, and in the same atomic script reads which
 * nodes hold a lease. A node whose lease lapsed is declared dead by the first node that sees it:
 * a tombstone `<p>dead:<id>` is written and it leaves `<p>nodes`. Every node drops it from its
 * view, and its sids are `404 unknown_session` from then on.
 *
 * Fencing: a node that finds its own tombstone when it renews (it was paused, or cut off from
 * Redis, past its lease) was declared dead; its sessions must not live on beside the new sessions
 * their clients made elsewhere. It ends them and starts a new life (a new creation, so a new node
 * id). The renewal and the declaration are each one Lua script, so they cannot interleave: either
 * the node renewed before anyone saw its lease lapse, or it was declared and will fence.
 *
 * An empty Redis (restarted without persistence) holds no lease at all: for a grace period after
 * every (re)connection (one lease plus the longest reconnection delay) a node declares nobody dead
 * and keeps the nodes it knew, while they come back.
 */
import type { Clock, TimerHandle } from '../otp/clock.js';
import type { Logger } from '../otp/logger.js';
import type { ClusterBus } from './bus.js';
import { asNodeId, newNodeId, nodeName, type NodeId } from './node_id.js';

/** Default lease (ms): how long a node may go without renewing before it is declared dead. */
export const DEFAULT_LEASE_MS = 10_000;
/** Renewals per lease: a node survives missing RENEWALS_PER_LEASE - 1 of them in a row. */
export const RENEWALS_PER_LEASE = 4;
/** How long a tombstone stays (ms): a node paused longer than this is fenced by its own clock. */
export const TOMBSTONE_MS = 3_600_000;
/** How many dead node ids a node remembers to answer 404 during a grace period. */
export const REMEMBERED_DEAD = 1024;

/** What a node knows of another node id. */
export type NodeStatus = 'self' | 'live' | 'dead' | 'unknown';

const RENEW = `
local p, me, lease, tomb, declare = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', p .. 'dead:' .. me) == 1 then return {0} end
redis.call('SET', p .. 'node:' .. me, '1', 'PX', lease)
redis.call('SADD', p .. 'nodes', me)
local seen, out = {}, {1}
local function check(n)
  if seen[n] then return end
  seen[n] = true
  if redis.call('EXISTS', p .. 'node:' .. n) == 1 then
    table.insert(out, n)
  elseif declare == '1' then
    redis.call('SET', p .. 'dead:' .. n, '1', 'PX', tomb)
    redis.call('SREM', p .. 'nodes', n)
  end
end
for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do check(n) end
for i = 6, #ARGV do check(ARGV[i]) end
return out
`;

const WITHDRAW = `
local p, me, tomb = ARGV[1], ARGV[2], ARGV[3]
redis.call('DEL', p .. 'node:' .. me)
redis.call('SREM', p .. 'nodes', me)
redis.call('SET', p .. 'dead:' .. me, '1', 'PX', tomb)
return 1
`;

export interface LivenessOptions {
  readonly bus: ClusterBus;
  /** Key prefix, e.g. `comet:`. */
  readonly prefix: string;
  readonly name: string;
  readonly lease: number;
  /** How long after a (re)connection nobody is declared dead (default: one lease). It must cover
   *  the other nodes' reconnection delay too, or a node that reconnects a little later than this
   *  one after a Redis restart would be declared dead and fence itself for nothing. */
  readonly grace?: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A node left the view (lease lapsed, or it said it stopped). */
  readonly onNodeDown: (node: NodeId) => void;
  /** This node was declared dead: end its sessions. Called with the old and the new node id. */
  readonly onFenced: (old: NodeId, next: NodeId) => Promise<void>;
}

type Renewal = 'alive' | 'fenced' | 'failed';

export class Liveness {
  readonly #o: LivenessOptions;
  #node: NodeId;
  readonly #view = new Set<NodeId>();
  readonly #dead = new Set<NodeId>();
  #graceUntil = -Infinity;
  /** When the last successful renewal was sent (its lease runs from no earlier than that). */
  #lastRenewOk = -Infinity;
  #renewing: Promise<Renewal> | undefined;
  #lastAttempt = -Infinity;
  #timer: TimerHandle | undefined;
  #stopped = false;
  /** Counters for metrics and stats. */
  fenced = 0;
  renewFailures = 0;

  constructor(o: LivenessOptions) {
    this.#o = o;
    this.#node = newNodeId(o.name);
  }

  /** This node's id in its current life. */
  get node(): NodeId {
    return this.#node;
  }

  /** The other nodes believed alive. */
  get view(): readonly NodeId[] {
    return [...this.#view];
  }

  /** When this node's last successful renewal was sent (clock ms; -Infinity before the first):
   *  its lease runs at least a lease from then. Read by the observer. */
  get lastRenewed(): number {
    return this.#lastRenewOk;
  }

  get inGrace(): boolean {
    return this.#o.clock.now() < this.#graceUntil;
  }

  /** Begin renewing. Resolves after the first renewal (successful or not). */
  async start(): Promise<void> {
    const first = this.renewNow();
    this.#schedule();
    await first;
  }

  /** Redis is (back) up: a grace period of one lease, then renew at once. */
  busUp(): void {
    this.#graceUntil = this.#o.clock.now() + (this.#o.grace ?? this.#o.lease);
    void this.renewNow();
  }

  /** `node` said it stopped, or is otherwise known gone. */
  nodeDown(node: NodeId): void {
    if (!this.#view.delete(node) && this.#dead.has(node)) return;
    this.#remember(node);
    this.#o.onNodeDown(node);
  }

  status(node: NodeId): NodeStatus {
    if (node === this.#node) return 'self';
    if (this.#view.has(node)) return 'live';
    if (this.#dead.has(node)) return 'dead';
    // A previous life of a node alive now (or of this one).
    const name = nodeName(node);
    if (nodeName(this.#node) === name) return 'dead';
    for (const n of this.#view) if (nodeName(n) === name) return 'dead';
    return this.inGrace ? 'unknown' : 'dead';
  }

  /**
   * True when this node must confirm it is alive before serving its own sessions: Redis is
   * reachable and the last renewal is older than a lease (the process was paused, SIGSTOP or a
   * long GC), so others may have declared it dead meanwhile. While Redis is unreachable it serves
   * its own sessions (nobody can declare it dead without Redis).
   */
  mustConfirm(): boolean {
    return this.#o.bus.up && this.#o.clock.now() - this.#lastRenewOk > this.#o.lease;
  }

  /**
   * Nobody listens on `node`'s channel: it may have died. Look at the leases now rather than at
   * the next renewal (at most RENEWALS_PER_LEASE * 2 extra looks per lease), so its sids turn 404
   * as soon as its lease lapses.
   */
  suspect(): void {
    if (this.#o.clock.now() - this.#lastAttempt < this.#o.lease / (RENEWALS_PER_LEASE * 2)) return;
    void this.renewNow();
  }

  /** Renew now (or join the renewal in flight). */
  renewNow(): Promise<Renewal> {
    return (this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = undefined;
    }));
  }

  /** Stop renewing and withdraw: the others drop this node at their next look. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    await this.#renewing?.catch(() => undefined);
    if (this.#o.bus.up) {
      await this.#o.bus.evalScript(WITHDRAW, [this.#o.prefix, this.#node, String(TOMBSTONE_MS)]).catch(() => undefined);
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      void this.renewNow().finally(() => this.#schedule());
    }, Math.max(1, Math.floor(this.#o.lease / RENEWALS_PER_LEASE)));
  }

  async #renew(): Promise<Renewal> {
    const { bus, clock, lease, prefix, logger } = this.#o;
    if (this.#stopped) return 'failed';
    // Paused longer than a tombstone lives: declared dead and forgotten; fence on our own clock.
    if (clock.now() - this.#lastRenewOk > TOMBSTONE_MS && this.#lastRenewOk !== -Infinity) {
      await this.#fence();
      return 'fenced';
    }
    if (!bus.up) return 'failed';
    const sentAt = clock.now();
    this.#lastAttempt = sentAt;
    const declare = sentAt >= this.#graceUntil;
    let out: unknown;
    try {
      out = await bus.evalScript(RENEW, [prefix, this.#node, String(lease), String(TOMBSTONE_MS), declare ? '1' : '0', ...this.#view]);
    } catch (err) {
      this.renewFailures++;
      logger.warn({ err: err instanceof Error ? err.message : String(err), node: this.#node }, 'cluster: lease renewal failed');
      return 'failed';
    }
    if (!Array.isArray(out) || out[0] === 0) {
      await this.#fence();
      return 'fenced';
    }
    this.#lastRenewOk = sentAt;
    const live = new Set<NodeId>();
    for (const n of out.slice(1)) {
      const node = asNodeId(n);
      if (node !== undefined && node !== this.#node) live.add(node);
    }
    for (const n of live) {
      if (!this.#view.has(n)) this.#view.add(n);
    }
    // Within a grace period nobody is dropped: an empty Redis is not a dead cluster.
    if (clock.now() >= this.#graceUntil) {
      for (const n of [...this.#view]) if (!live.has(n)) this.nodeDown(n);
    }
    return 'alive';
  }

  async #fence(): Promise<void> {
    const old = this.#node;
    this.#node = newNodeId(this.#o.name);
    this.#lastRenewOk = -Infinity;
    this.fenced++;
    this.#remember(old);
    this.#o.logger.error({ old, node: this.#node }, 'cluster: this node was declared dead (paused or cut off past its lease); ending its sessions, starting a new life');
    await this.#o.onFenced(old, this.#node);
  }

  #remember(node: NodeId): void {
    this.#dead.add(node);
    if (this.#dead.size > REMEMBERED_DEAD) {
      const oldest = this.#dead.values().next();
      if (!oldest.done) this.#dead.delete(oldest.value);
    }
  }
}
