/**
 * The distributed session router: the same `SessionRouter` the API calls, so the HTTP handler and
 * the application never know where a session lives (Erlang's location-transparent pids). The sid
 * names its owner; an event for a session of this node goes to the local router, one for another
 * node is published on that node's channel with a call id, and the owner publishes the reply back.
 *
 * A forwarded call is answered, whatever happens:
 * - by the owner's reply (the FSM's answer, or its error);
 * - `404 unknown_session` at once when the owner is known dead, or the moment it is declared dead
 *   while the call waits (Erlang's monitor firing with `noconnection`);
 * - `503 overloaded` at once when Redis is unreachable, when nobody listens on the owner's channel
 *   (it is restarting its connection), or when this node's subscription drops (the reply could
 *   not arrive); after `timeout` plus a margin when the reply was lost in between.
 * A 503 is safe to retry with the same rid: the owner never delivers a rid twice.
 */
import type { From } from '../otp/proc_lib.js';
import type { Logger } from '../otp/logger.js';
import type { ConnectionEvent, PacketOutcome, RequestOutcome } from '../comet/connection.js';
import { CometError, isCometError, isWireErrorCode, type WireErrorCode } from '../comet/errors.js';
import { asRid, asSeq, asSid, newRequestToken, type RequestToken, type Sid } from '../comet/ids.js';
import type { SessionCallWaiter, SessionRouter } from '../comet/session_router.js';
import type { ClusterBus } from './bus.js';
import type { Liveness } from './liveness.js';
import { ownerOf, type NodeId } from './node_id.js';
import { PendingCalls } from './pending_calls.js';
import type { ClusterStats, ForwardFailure } from './stats.js';
import { callOf, castOf, encode, outcomeFromWire, outcomeToWire, type CallReply, type ClusterMessage, type ForwardedCall, type ForwardedCast } from './wire.js';

/** How long past the call's own timeout a forwarding node waits for the owner's reply (ms). */
export const HOP_MARGIN_MS = 2000;

interface PendingCall {
  readonly owner: NodeId;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: CometError) => void;
  /** Set right after the call has its id (the timer names it). */
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface ClusterRouterDeps {
  readonly local: SessionRouter;
  readonly bus: ClusterBus;
  readonly liveness: Liveness;
  readonly stats: ClusterStats;
  readonly logger: Logger;
  readonly channelOf: (node: NodeId) => string;
}

// The FSM's reply slot is never used for a forwarded event: only the event's data crosses.
const NO_FROM = Object.freeze({}) as From<never>;

export class ClusterRouter implements SessionRouter {
  readonly #d: ClusterRouterDeps;
  readonly #pending = new PendingCalls<PendingCall>();
  /** Tokens of forwarded requests held here, by `<node>/<token>`: a token is unique only with its
   *  node, so the owner mints its own and maps a later `request_gone` to it. */
  readonly #tokens = new Map<string, RequestToken>();

  constructor(d: ClusterRouterDeps) {
    this.#d = d;
  }

  call<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number): Promise<R> {
    const owner = ownerOf(sid);
    if (owner === undefined) return Promise.reject(unknown());
    switch (this.#d.liveness.status(owner)) {
      case 'self':
        return this.#serveLocal(sid, make, timeoutMs);
      case 'dead':
        this.#d.stats.deadOwner++;
        return Promise.reject(unknown());
      case 'live':
      case 'unknown':
        return this.#forward<R>(owner, sid, make(NO_FROM as From<R>), timeoutMs);
    }
  }

  /**
   * `call` with a waiter: a session of this node, while no lease renewal is due, is called
   * straight through the local router's `callWith` (what a held poll waits on, with no promise);
   * anything else (forwarded, fenced, dead owner) goes through `call` and tells the waiter.
   */
  callWith<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number, waiter: SessionCallWaiter<R>): void {
    const owner = ownerOf(sid);
    const { liveness, local } = this.#d;
    if (owner !== undefined && local.callWith !== undefined && liveness.status(owner) === 'self' && !liveness.mustConfirm()) {
      local.callWith(sid, make, timeoutMs, waiter);
      return;
    }
    this.call(sid, make, timeoutMs).then((v) => waiter.resolved(v), (err: unknown) => waiter.rejected(err));
  }

  cast(sid: Sid, event: ConnectionEvent): boolean {
    const owner = ownerOf(sid);
    if (owner === undefined) return false;
    switch (this.#d.liveness.status(owner)) {
      case 'self':
        return this.#d.local.cast(sid, event);
      case 'dead':
        return false;
      case 'live':
      case 'unknown': {
        const ev = castOf(event);
        if (ev === undefined || !this.#d.bus.up) return false;
        // At most once, like the local cast to a process that may be gone.
        this.#d.bus.publish(this.#d.channelOf(owner), encode({ t: 'cast', from: this.#d.liveness.node, sid, ev })).catch(() => undefined);
        return true;
      }
    }
  }

  /** A message on this node's channel or the broadcast channel (the cluster hands the rest). */
  receive(msg: Extract<ClusterMessage, { t: 'call' | 'cast' | 'reply' }>): void {
    switch (msg.t) {
      case 'call':
        this.#serveCall(msg);
        return;
      case 'cast':
        this.#serveCast(msg);
        return;
      case 'reply':
        this.#settle(msg.id, msg.reply);
        return;
    }
  }

  /** `node` is dead: its pending calls are answered 404 now, not at their timeout. */
  nodeDown(node: NodeId): void {
    for (const [id, p] of this.#pending.entries()) {
      if (p.owner !== node) continue;
      this.#d.stats.failures.node_down++;
      this.#fail(id, unknown());
    }
  }

  /** No reply can arrive (this node's subscription dropped, or it changed its channel): 503 now. */
  failAll(reason: ForwardFailure, message: string): void {
    for (const [id] of this.#pending.entries()) {
      this.#d.stats.failures[reason]++;
      this.#fail(id, new CometError('overloaded', message));
    }
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  // Not async: while a poll is held, an async frame here would stay alive per session.
  #serveLocal<R>(sid: Sid, make: (from: From<R>) => ConnectionEvent, timeoutMs: number): Promise<R> {
    const { liveness, local } = this.#d;
    if (!liveness.mustConfirm()) return local.call(sid, make, timeoutMs);
    // Past this node's own lease (SIGSTOP, a long GC, failed renewals): others may have declared
    // it dead and sent its clients elsewhere. On resume the requests that waited in its sockets
    // run before its renewal timer does, so each checks here: nothing is served until a fresh
    // renewal says this life is still the live one; if none can say so, 503 and the client retries.
    return liveness.confirm().then((r) => {
      switch (r) {
        case 'alive':
          return local.call(sid, make, timeoutMs);
        case 'fenced':
          throw unknown();
        case 'unconfirmed':
          throw new CometError('overloaded', 'this node cannot confirm its lease right now, retry');
      }
    });
  }

  #forward<R>(owner: NodeId, sid: Sid, event: ConnectionEvent, timeoutMs: number): Promise<R> {
    const { bus, stats, liveness, channelOf } = this.#d;
    const ev = callOf(event);
    if (ev === undefined) return Promise.reject(new CometError('ERR_COMET_INVALID_OPTION', `event ${event.type} cannot be forwarded`));
    if (!bus.up) {
      stats.failures.redis_down++;
      return Promise.reject(new CometError('overloaded', 'the cluster cannot reach the session\'s node right now, retry'));
    }
    stats.forwarded++;
    return new Promise<R>((resolve, reject) => {
      const call: PendingCall = { owner, resolve: resolve as (v: unknown) => void, reject, timer: undefined };
      const id = this.#pending.add(call);
      if (id === undefined) {
        reject(new CometError('overloaded', 'too many calls forwarded at once, retry'));
        return;
      }
      call.timer = setTimeout(() => {
        stats.failures.no_answer++;
        this.#fail(id, new CometError('overloaded', 'the session\'s node did not answer in time, retry'));
      }, timeoutMs + HOP_MARGIN_MS);
      const msg: ClusterMessage = { t: 'call', id, from: liveness.node, sid, ev, timeout: timeoutMs };
      bus.publish(channelOf(owner), encode(msg)).then((receivers) => {
        if (receivers > 0 || !this.#pending.has(id)) return;
        // Nobody listens on the owner's channel: it died (its lease will lapse) or is reconnecting.
        if (liveness.status(owner) === 'dead') {
          stats.failures.node_down++;
          this.#fail(id, unknown());
        } else {
          stats.failures.not_listening++;
          liveness.suspect();
          this.#fail(id, new CometError('overloaded', 'the session\'s node is not reachable right now, retry'));
        }
      }, () => {
        stats.failures.redis_down++;
        this.#fail(id, new CometError('overloaded', 'the cluster cannot reach the session\'s node right now, retry'));
      });
    });
  }

  #serveCall(msg: Extract<ClusterMessage, { t: 'call' }>): void {
    const { liveness, bus, channelOf, stats } = this.#d;
    const sid = asSid(msg.sid);
    const answer = (reply: CallReply): void => {
      bus.publish(channelOf(msg.from), encode({ t: 'reply', id: msg.id, reply })).catch(() => undefined);
    };
    // Only sessions of this life: a call for a previous life's sid is for a session that is gone.
    if (ownerOf(sid) !== liveness.node) {
      answer({ err: { code: 'unknown_session', message: 'no such session' } });
      return;
    }
    stats.served++;
    const key = msg.ev.type === 'request' ? `${msg.from}/${msg.ev.token}` : undefined;
    const make = (from: From<unknown>): ConnectionEvent => this.#eventOf(msg.ev, from, key);
    this.#serveLocal(sid, make, msg.timeout).then(
      (ok) => answer({ ok: outcomeToWire(ok as RequestOutcome | PacketOutcome) }),
      (err: unknown) => answer({ err: wireError(err) }),
    ).finally(() => {
      if (key !== undefined) this.#tokens.delete(key);
    });
  }

  #serveCast(msg: Extract<ClusterMessage, { t: 'cast' }>): void {
    const sid = asSid(msg.sid);
    if (ownerOf(sid) !== this.#d.liveness.node) return;
    const ev: ForwardedCast = msg.ev;
    switch (ev.type) {
      case 'request_gone': {
        const token = this.#tokens.get(`${msg.from}/${ev.token}`);
        if (token !== undefined) this.#d.local.cast(sid, { type: 'request_gone', token });
        return;
      }
      case 'packet':
        this.#d.local.cast(sid, { type: 'packet', data: ev.data, from: undefined });
        return;
    }
  }

  #eventOf(ev: ForwardedCall, from: From<unknown>, key: string | undefined): ConnectionEvent {
    switch (ev.type) {
      case 'request': {
        const token = newRequestToken();
        if (key !== undefined) this.#tokens.set(key, token);
        return {
          type: 'request', rid: asRid(ev.rid), ack: ev.ack === undefined ? undefined : asSeq(ev.ack),
          messages: ev.messages, token, from,
        };
      }
      case 'terminate':
        return { type: 'terminate', rid: asRid(ev.rid), ack: ev.ack === undefined ? undefined : asSeq(ev.ack), from };
      case 'packet':
        return { type: 'packet', data: ev.data, from };
    }
  }

  #settle(id: number, reply: CallReply): void {
    const p = this.#pending.take(id);
    if (!p) return; // answered already (timeout, node down): a late reply is dropped
    clearTimeout(p.timer);
    if ('ok' in reply) p.resolve(outcomeFromWire(reply.ok));
    else p.reject(new CometError(reply.err.code, reply.err.message));
  }

  #fail(id: number, err: CometError): void {
    const p = this.#pending.take(id);
    if (!p) return;
    clearTimeout(p.timer);
    p.reject(err);
  }
}

/** What a failed local call looks like on the wire: its wire code, or 503 for anything else. */
function wireError(err: unknown): { code: WireErrorCode; message: string } {
  if (isCometError(err) && isWireErrorCode(err.code)) return { code: err.code, message: err.message };
  return { code: 'overloaded', message: 'the session did not answer in time' };
}

function unknown(): CometError {
  // The sid is the only credential: never echo it back in an error.
  return new CometError('unknown_session', 'no such session');
}
