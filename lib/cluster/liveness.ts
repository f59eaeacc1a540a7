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
 * An empty Redis (restarted without persistence) holds no lease at all. The rule that keeps that
 * from killing live nodes: a node asks the script to declare anyone dead only when, at the moment
 * it sends the renewal, its command connection has been up without a break for the whole grace
 * period (one lease plus the longest reconnection delay). The script declares a node only when its
 * lease key is absent, i.e. it has not renewed for a full lease on this Redis; an unbroken
 * connection that long means this Redis did not restart in that time (a restart breaks every
 * connection). So a node is declared dead only after it failed to renew for a full lease while
 * Redis was up, which is what it would take to declare it without any restart. The answer of a
 * renewal is acted on (nodes dropped from the view) only if that renewal was sent with the right
 * to declare and on the same connection: an answer sent inside the grace and read after it ends
 * says nothing about who is dead. Nor does a node declare anyone right after a stall of its own
 * (DECLARER_MAX_INTERVALS): it was not watching.
 *
 * Fencing on this node's own clock: its lease runs from when its last successful renewal was
 * *sent* (Redis counts from when it ran, later), so this node's view of its own lease always ends
 * first. Past it, with Redis reachable, the node serves its own sessions only after a fresh renewal
 * says this life is the live one (`confirm`): a renewal in flight across a pause, or one that
 * failed, proves nothing about now.
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
/**
 * A node declares others dead only while its own renewals are on time: its last successful
 * renewal was sent at most this many renewal intervals (half a lease) before. A node that was
 * stalled itself (a long GC, a starved event loop) observed nothing meanwhile, and the leases that
 * lapsed during its stall may be those of nodes stalled with it (every node of one process, a
 * whole VM): its first renewal after the stall re-registers it and declares nobody; the others
 * renew in the same moment.
 */
export const DECLARER_MAX_INTERVALS = 2;

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
  /** How long after a (re)connection nobody is declared dead (default and minimum: one lease). It
   *  must cover the other nodes' reconnection delay too, or a node that reconnects a little later
   *  than this one after a Redis restart would be declared dead and fence itself for nothing. */
  readonly grace?: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A node left the view (lease lapsed, or it said it stopped). */
  readonly onNodeDown: (node: NodeId) => void;
  /** This node was declared dead: end its sessions. Called with the old and the new node id. */
  readonly onFenced: (old: NodeId, next: NodeId) => Promise<void>;
}

type Renewal = 'alive' | 'fenced' | 'failed';

/** What `confirm` found: this life still holds its lease, was declared dead, or cannot tell now. */
export type Confirmation = 'alive' | 'fenced' | 'unconfirmed';

export class Liveness {
  readonly #o: LivenessOptions;
  #node: NodeId;
  readonly #view = new Set<NodeId>();
  readonly #dead = new Set<NodeId>();
  #graceUntil = -Infinity;
  /** When the command connection last became ready (this node's clock); undefined while down. */
  #connectedAt: number | undefined;
  /** Bumped at every connection and every loss: an answer counts only on the connection it came by. */
  #epoch = 0;
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

  /** Redis is (back) up: a grace period starts (nobody is declared dead in it); renew at once. */
  busUp(): void {
    const now = this.#o.clock.now();
    this.#connectedAt = now;
    this.#epoch++;
    this.#graceUntil = now + this.#grace();
    void this.renewNow();
  }

  /** Redis is unreachable: the next connection starts a new grace period. */
  busDown(): void {
    this.#connectedAt = undefined;
    this.#epoch++;
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
   * reachable and the last successful renewal was sent more than a lease ago (the process was
   * paused, SIGSTOP or a long GC, or its renewals failed), so others may have declared it dead
   * meanwhile. While Redis is unreachable it serves its own sessions (nobody can declare it dead
   * without Redis; a partition is the documented exception).
   */
  mustConfirm(): boolean {
    return this.#o.bus.up && this.#o.clock.now() - this.#lastRenewOk > this.#o.lease;
  }

  /**
   * Before serving its own sessions past its lease: renew and say whether this life may serve.
   * `alive` only if the lease holds *after* the renewal. The renewal joined may have been sent
   * before a pause (its answer, or its timeout, is about then, not now), so a second, fresh one
   * is tried. `unconfirmed` (neither succeeded): serve nothing, the client retries (503).
   */
  async confirm(): Promise<Confirmation> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!this.mustConfirm()) return 'alive';
      if ((await this.renewNow()) === 'fenced') return 'fenced';
    }
    return this.mustConfirm() ? 'unconfirmed' : 'alive';
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
    // Decided now, when the script runs against this Redis, never when its answer comes back.
    const epoch = this.#epoch;
    const declare = this.#mayDeclare(sentAt);
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
    // Only an answer that could declare, on the connection it was sent on, drops anyone: within a
    // grace period an empty Redis is not a dead cluster, even if the answer is read after it.
    if (declare && epoch === this.#epoch) {
      for (const n of [...this.#view]) if (!live.has(n)) this.nodeDown(n);
    }
    return 'alive';
  }

  #grace(): number {
    return Math.max(this.#o.lease, this.#o.grace ?? this.#o.lease);
  }

  /**
   * May a renewal sent at `at` declare others dead? Only after this node has been connected to
   * Redis without a break for a whole grace period (at least one lease): then a missing lease key
   * means a node that did not renew for a lease while this Redis was up, not a Redis that lost it.
   * And only while this node's own renewals are on time (DECLARER_MAX_INTERVALS).
   */
  #mayDeclare(at: number): boolean {
    const { bus, lease } = this.#o;
    return bus.up && this.#connectedAt !== undefined && at - this.#connectedAt >= this.#grace() &&
      at - this.#lastRenewOk <= (lease / RENEWALS_PER_LEASE) * DECLARER_MAX_INTERVALS;
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
