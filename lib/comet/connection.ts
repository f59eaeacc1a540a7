/**
 * The connection FSM: one gen_fsm per session, as in the post. Three states:
 *
 * - `waiting`: no request held, no packet pending (the dietimer counts);
 * - `have_request`: a request held, no packet pending (the wait timer counts, the dietimer does not);
 * - `have_packet`: packets pending, no request held (the dietimer counts).
 *
 * A request with packets pending is answered at once; without, it is held for at most `wait` ms.
 * A packet while a request is held answers it. A packet stays pending until the client acks its
 * seq, so a response lost in flight (socket died, proxy dropped it) loses nothing: the next
 * response carries it again. The post drops it; we do not.
 *
 * The dietimer: `inactivity` ms with no request held and the session ends (the application is
 * told why). It counts if and only if no request is held.
 *
 * Both are deadlines, and a session has exactly one at a time (the wait deadline while a request
 * is held, the dietimer's otherwise), so it arms ONE timer, lazily: holding or answering a request
 * moves the deadline but keeps the timer, unless the timer is due after the new deadline (then it
 * is started again for it). A timer that fires before the deadline (the session was busy
 * meanwhile) sleeps again for what is left. The post kills and restarts its timer "in plenty of
 * event handlers"; at thousands of requests a second that was two timer starts and two cancels
 * per round trip, and with two timers a held poll kept both armed (about 140 bytes more per
 * session). The deadline check keeps the same outcome: the same events, at the same instants.
 *
 * What a session holds is bounded in bytes as well as counts (lib/comet/budget.ts): the messages
 * buffered ahead of a missing rid, the unacked packets, the replies not yet flushed. Backpressure,
 * never a drop: while the queue or a budget is full, a request that brings new messages gets
 * `503 overloaded` before any of them is accepted (the client sends the same rid again), and polls
 * still pass, since they are what drains the queue. What `onMessage` pushes in place for a message
 * already accepted is always queued. A response carries the oldest packets up to
 * `maxResponseBytes`; the rest go in the next one.
 *
 * Each state function switches over every event, exhaustively (a new event does not compile until
 * every state decides), and passes the ones all three handle alike (`request`, `terminate`,
 * `packet`) to one `handleCommon`, as gen_statem's manual does: what is left in a state function is
 * what differs per state.
 */
import type { FsmContext, FsmRef, GenFsm, Transition } from '../otp/gen_fsm.js';
import type { ExitReason } from '../otp/errors.js';
import type { From } from '../otp/proc_lib.js';
import type { Logger } from '../otp/logger.js';
import type { TimerRef } from '../otp/timers.js';
import { asRid, type RequestToken, type Rid, type Seq, type Sid } from './ids.js';
import { encodeBatch, Inbox, RID_WINDOW, type Batch, type EncodedBatch, type RidFate } from './inbox.js';
import { Outbox } from './outbox.js';
import { DEFAULT_MAX_SESSION_BYTES, ServerBudget, SessionBudget } from './budget.js';
import { CometError } from './errors.js';
import { assertSendable, encodeRequestReply, REPLY_ENVELOPE_BYTES, type EncodedData, type Messages } from './wire.js';
import type { ConnectionStats } from './stats.js';
import { sidTag } from './sid_tag.js';

// ---------------------------------------------------------------------------------------------
// Types: states, events, replies
// ---------------------------------------------------------------------------------------------

export type ConnectionState = 'waiting' | 'have_request' | 'have_packet';

/** Why a session ended, as the application's `onSessionEnd` hears it. */
export type SessionEndReason = 'terminate' | 'inactivity' | 'shutdown' | 'crash';

/** One response, encoded: the oldest packets up to `maxResponseBytes`, their texts spliced in. */
export interface EncodedResponse {
  /** `{"rid":R,"packets":[…]}`. */
  readonly json: string;
  /** What it costs while it waits in a socket's buffer (an upper bound on its UTF-8 size). */
  readonly bytes: number;
  /** Count `bytes` in its session's budget until the socket took them: call once it is written;
   *  call what it returns once, on the response's 'finish' or 'close'. */
  written(): () => void;
}

/** A response of this process's own: its budget on the record, `written` a shared method (a
 *  closure and its context per response was what a method saves). */
class Response implements EncodedResponse {
  constructor(readonly json: string, readonly bytes: number, readonly budget: SessionBudget) {}

  written(): () => void {
    return this.budget.written(this.bytes);
  }
}

/** What the HTTP side gets back for a request or a terminate. */
export type RequestOutcome =
  | { readonly kind: 'packets'; readonly rid: Rid; readonly response: EncodedResponse }
  | { readonly kind: 'error'; readonly code: 'bad_rid' | 'overloaded'; readonly message: string }
  /** The held request's socket died (`request_gone`): nobody is listening for an answer. */
  | { readonly kind: 'gone' };

/** What `handlePacket` gets back. */
export type PacketOutcome = { readonly ok: true; readonly seq: Seq } | { readonly ok: false; readonly code: 'overloaded' };

export type ConnectionEvent =
  | {
    readonly type: 'request'; readonly rid: Rid; readonly ack: Seq | undefined;
    readonly messages: Messages; readonly token: RequestToken; readonly from: From<RequestOutcome>;
  }
  | { readonly type: 'terminate'; readonly rid: Rid; readonly ack: Seq | undefined; readonly from: From<RequestOutcome> }
  /** `data` was encoded (and checked against `maxResponseBytes`) by the caller: once for a broadcast. */
  | { readonly type: 'packet'; readonly data: EncodedData; readonly from: From<PacketOutcome> | undefined }
  /** The socket of the request with this token closed before its response: `{tcp_closed, Socket}`. */
  | { readonly type: 'request_gone'; readonly token: RequestToken }
  | { readonly type: 'wait_timeout' }
  | { readonly type: 'dietimer' };

/**
 * What `onMessage` can do to its own session while it runs: push a packet in place, as a gen_fsm
 * callback changes its own state, without sending the session a message. A push that answers the
 * request carrying the message (the echo case) costs no extra event.
 */
export interface SessionContext {
  readonly sid: Sid;
  /**
   * Queue `data` for this session, now; returns its seq. Only while `onMessage` runs (its
   * synchronous part): after an `await` the FSM has moved on, so use `CometServer.handlePacket`.
   * Never refused for a full queue or budget: the message it answers was accepted, and the FSM
   * takes no new messages while the queue is full, so this only goes over by what one request's
   * messages push.
   * @throws CometError `bad_request` (not JSON-serialisable), `ERR_COMET_PACKET_TOO_LARGE` (its
   *   reply alone would exceed `maxResponseBytes`), `unknown_session` (the session is ending),
   *   `ERR_COMET_SESSION_CONTEXT_STALE` when called after `onMessage` returned.
   */
  push(data: unknown): Seq;
}

/** Code of the error `SessionContext.push` throws once its `onMessage` has returned. */
export const ERR_SESSION_CONTEXT_STALE = 'ERR_COMET_SESSION_CONTEXT_STALE';

/**
 * The application hooks a connection calls. Errors they throw are logged, never fatal. They are
 * called as plain functions (`createCometServer` calls its options' methods on the options).
 */
export interface SessionHooks {
  readonly onSession?: (sid: Sid) => void | Promise<void>;
  readonly onMessage?: (sid: Sid, data: unknown, session: SessionContext) => void | Promise<void>;
  readonly onSessionEnd?: (sid: Sid, reason: SessionEndReason) => void | Promise<void>;
}

/** How long a request is held without packets (ms). Keep it below any proxy's idle timeout. */
export const DEFAULT_WAIT_MS = 60_000;
/** The post's dietimer: this long without a held request and the session ends (ms). */
export const DEFAULT_INACTIVITY_MS = 45_000;

export interface ConnectionConfig {
  /** How long a request is held before it is answered with no packets (ms). */
  readonly wait: number;
  /** How long without a held request before the session ends (ms). */
  readonly inactivity: number;
  readonly maxQueue: number;
  /** Bytes the session may hold (default {@link DEFAULT_MAX_SESSION_BYTES}). */
  readonly maxSessionBytes?: number;
  /** The server's budget all its sessions count in (default: one of their own, unbounded). */
  readonly serverBudget?: ServerBudget;
  /** Longest response, in bytes (default {@link DEFAULT_MAX_RESPONSE_BYTES}). */
  readonly maxResponseBytes?: number;
  readonly hooks: SessionHooks;
  /** Where a session's warnings go; give it a throttled logger (lib/otp/log_throttle.ts): a
   *  client can make a session warn once per message it sends. */
  readonly logger: Logger;
  /** Told when a connection starts and ends (the server's session table, metrics). `data` is the
   *  FSM's own record, for read-only views (lib/comet/session_info.ts): never write to it. */
  readonly onStarted?: (sid: Sid, fsm: FsmRef<ConnectionEvent>, data: ConnectionData) => void;
  readonly onEnded?: (sid: Sid, reason: SessionEndReason) => void;
  /** Counters for metrics, shared by every connection of a server. */
  readonly stats?: ConnectionStats;
  /** Test/`--fault` hook: make the handler of this event throw, to crash the FSM. */
  readonly fault?: (sid: Sid, event: ConnectionEvent['type']) => boolean;
}

interface Held {
  readonly rid: Rid;
  readonly token: RequestToken;
  readonly from: From<RequestOutcome>;
  /** When it was held (clock ms): it is answered empty at `since + wait`. */
  readonly since: number;
}

/** The FSM's data. Mutated in place: one record per session, thousands of sessions. */
export interface ConnectionData {
  readonly sid: Sid;
  /** The FSM itself: what the router sends a session's events to, found by sid in the session
   *  table (sessions.ts), with no `session:<sid>` name to build per request. */
  readonly self: FsmRef<ConnectionEvent>;
  /** What stands for the sid in log lines (sid_tag.ts): never log the sid itself. */
  readonly tag: string;
  readonly config: ConnectionConfig;
  readonly outbox: Outbox;
  readonly inbox: Inbox;
  /** The bytes this session holds, in its own and its server's budget. */
  readonly budget: SessionBudget;
  /** What the inbox and the outbox held when last counted in `budget` (`account`). */
  counted: number;
  readonly maxResponseBytes: number;
  held: Held | undefined;
  /** The one timer armed, due at `timerAt`, no later than the deadline that counts now (the
   *  held request's, or the dietimer's); undefined only while its timeout is being handled. */
  timer: TimerRef | undefined;
  /** When `timer` is due (clock ms). */
  timerAt: number;
  /** Since when no request has been held (clock ms): the session ends at `idleSince + inactivity`. */
  idleSince: number;
  /** Client messages delivered to the application by this session (the observer shows it). */
  messagesIn: number;
  /** Set once what the session holds outside its process went back ({@link sessionEnded}). */
  ended: boolean;
}

type Ctx = FsmContext<ConnectionEvent>;

/** Longest response, in bytes: 1 MiB. A packet whose reply alone would be longer is refused when
 *  pushed (`ERR_COMET_PACKET_TOO_LARGE`), so a session can never be wedged by one. */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

// Timer events carry nothing but their type: one shared object each.
const WAIT_TIMEOUT: ConnectionEvent = Object.freeze({ type: 'wait_timeout' });
const DIETIMER: ConnectionEvent = Object.freeze({ type: 'dietimer' });
type T = Transition<ConnectionState, ConnectionData>;

/** The registered name of a session's FSM: the sid names the process, as in the post. */
export function connectionName(sid: Sid): string {
  return `session:${sid}`;
}

/** What a session's FSM prints as in logs, reports and errors: its tag, never the sid it is
 *  registered under (the sid is the session's only credential). */
export function connectionLabel(sid: Sid): string {
  return `session:${sidTag(sid)}`;
}

// ---------------------------------------------------------------------------------------------
// The behaviour
// ---------------------------------------------------------------------------------------------

export const connection: GenFsm<{ sid: Sid; config: ConnectionConfig }, ConnectionState, ConnectionData, ConnectionEvent> = {
  init({ sid, config }, ctx) {
    const data: ConnectionData = {
      sid, self: ctx.self, tag: sidTag(sid), config,
      outbox: new Outbox({ maxQueue: config.maxQueue }),
      inbox: new Inbox(),
      budget: new SessionBudget(config.serverBudget ?? new ServerBudget(Infinity), config.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES),
      counted: 0,
      maxResponseBytes: config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      held: undefined, timer: undefined, timerAt: 0, idleSince: 0, messagesIn: 0, ended: false,
    };
    startDietimer(data, ctx);
    config.onStarted?.(sid, ctx.self, data);
    callHook(data, 'onSession', config.hooks.onSession, sid);
    return { ok: 'waiting', data };
  },

  states: {
    waiting(ev, d, ctx): T {
      maybeFault(d, ev);
      switch (ev.type) {
        case 'request':
        case 'terminate':
        case 'packet':
          return handleCommon(ev, d, ctx);
        case 'request_gone':
          return { next: 'waiting', data: d }; // nothing held: a late signal for an answered request
        case 'wait_timeout': // the session's one timer, armed while a request was held
        case 'dietimer':
          return dietimer(d, ctx);
      }
    },

    have_request(ev, d, ctx): T {
      maybeFault(d, ev);
      switch (ev.type) {
        case 'request':
        case 'terminate':
        case 'packet':
          return handleCommon(ev, d, ctx);
        case 'request_gone':
          if (d.held?.token !== ev.token) return { next: 'have_request', data: d };
          // Nothing was sent, so nothing is lost: the packets stay pending for the next request.
          ctx.reply(d.held.from, { kind: 'gone' });
          release(d, ctx);
          return settle(d, ctx);
        // The session's one timer, whatever deadline counted when it was armed: the held request
        // keeps the session alive (answering it starts the dietimer again), so the wait counts.
        case 'wait_timeout':
        case 'dietimer':
          return waitTimeout(d, ctx);
      }
    },

    have_packet(ev, d, ctx): T {
      maybeFault(d, ev);
      switch (ev.type) {
        case 'request':
        case 'terminate':
        case 'packet':
          return handleCommon(ev, d, ctx);
        case 'request_gone':
          return { next: 'have_packet', data: d };
        case 'wait_timeout': // the session's one timer, armed while a request was held
        case 'dietimer':
          return dietimer(d, ctx);
      }
    },
  },

  terminate(reason, _state, d, ctx) {
    // Whatever ends the session (terminate, inactivity, shutdown, crash), a held request is
    // answered with what there is, so a held poll never blocks a server's close.
    if (d.held) answerHeld(d, ctx);
    deliverBuffered(d, ctx);
    sessionEnded(d, reason);
  },
};

/**
 * Give back what a session holds outside its process: its packets in the queued count, its bytes
 * in the server's budget (replies still in a socket's buffer give theirs back when it flushes or
 * closes), its place in the session table and its sid (`onEnded`); then the application hears
 * `onSessionEnd`. Once per session: `terminate` calls it, and so does the tree when the process
 * exited without running `terminate` (killed, or stopped past its shutdown time; comet_sup.ts
 * watches every connection for that), so a killed session leaks nothing.
 */
export function sessionEnded(d: ConnectionData, reason: ExitReason): void {
  if (d.ended) return;
  d.ended = true;
  if (d.config.stats) d.config.stats.queued -= d.outbox.size;
  d.budget.charge(-d.counted);
  d.counted = 0;
  const why = endReason(reason);
  d.config.onEnded?.(d.sid, why);
  callHook(d, 'onSessionEnd', d.config.hooks.onSessionEnd, d.sid, why);
}

// ---------------------------------------------------------------------------------------------
// Event handlers shared by the states
// ---------------------------------------------------------------------------------------------

/** The events every state handles alike: what they do depends on the data, not on the state. */
type CommonEvent = Extract<ConnectionEvent, { type: 'request' | 'terminate' | 'packet' }>;

/**
 * gen_statem's `handle_common`: the state functions pass it the events they all handle the same
 * way, so they show only what differs per state (the timers, `request_gone`). Each handler ends
 * in `settle` (or a stop): the next state follows from the data, whatever the state was.
 */
function handleCommon(ev: CommonEvent, d: ConnectionData, ctx: Ctx): T {
  switch (ev.type) {
    case 'request':
      return request(ev, d, ctx);
    case 'terminate':
      return terminate(ev, d, ctx);
    case 'packet':
      return packet(ev, d, ctx);
  }
}

function request(ev: Extract<ConnectionEvent, { type: 'request' }>, d: ConnectionData, ctx: Ctx): T {
  const fate = d.inbox.peek(ev.rid);
  if (fate === 'bad_rid') {
    ctx.reply(ev.from, badRid(ev.rid, d));
    return settle(d, ctx);
  }
  applyAck(ev.ack, d);
  // Kept as text while it waits for a lower rid: encoded here once, to count it before taking it.
  const batch = fate === 'buffer' ? encodeBatch(ev.messages) : undefined;
  const refused = admit(ev, fate, batch, d);
  if (refused !== undefined) {
    ctx.reply(ev.from, refused);
    return settle(d, ctx);
  }
  const accepted = d.inbox.accept(ev.rid, ev.messages, batch);
  account(d);
  poll(ev, d, ctx);
  // The messages go to the application after the poll is settled, as the raw loop does: a packet
  // pushed in reply then answers the request held now (often this very one), with no second
  // response carrying the same packet.
  if (accepted.kind === 'deliver') deliver(d, accepted.batches, ctx, true);
  return settle(d, ctx);
}

/**
 * Backpressure: a request that brings new messages waits, with `503 overloaded` and nothing of it
 * accepted, while its session's queue is full (in packets or bytes, after its own ack) or the
 * server's budget is, or while the messages themselves would not fit (buffered ahead of a missing
 * rid, they are held). Its client sends the same rid again later. Polls and retransmissions always
 * pass: they take nothing, and polls are what drain the queue.
 */
function admit(ev: Extract<ConnectionEvent, { type: 'request' }>, fate: RidFate, batch: EncodedBatch | undefined, d: ConnectionData): RequestOutcome | undefined {
  if (fate === 'duplicate' || ev.messages.length === 0) return undefined;
  if (d.outbox.isFull || d.budget.full) {
    return overloaded('the session\'s packet queue is full: take and ack its packets, then send this request again');
  }
  if (batch !== undefined && !d.budget.fits(batch.bytes)) {
    return overloaded('the session cannot hold these messages until the missing rid arrives: send that rid, then this one again');
  }
  return undefined;
}

function overloaded(message: string): RequestOutcome {
  return { kind: 'error', code: 'overloaded', message };
}

/**
 * The polling half of a request: answer it, or hold it. A poll is not refused for a full queue:
 * it takes nothing, it carries the queue to the client, and a client whose answer was lost can
 * only ack what a later answer brings it (refusing its polls until it acks would stall it for
 * good). Each answer costs at most `maxResponseBytes`.
 */
function poll(ev: Extract<ConnectionEvent, { type: 'request' }>, d: ConnectionData, ctx: Ctx): void {
  // A response already waits in a socket that does not read, and the budget is spent: another
  // copy of the same packets for another connection would only add to it.
  if (d.outbox.hasPending && d.budget.unflushed > 0 && d.budget.full) {
    ctx.reply(ev.from, overloaded('earlier responses of this session are not read yet'));
    return;
  }
  // A second request while one is held: the older one is answered at once, the new one held.
  if (d.held) answerHeld(d, ctx);
  if (d.outbox.hasPending) {
    ctx.reply(ev.from, respond(ev.rid, d));
    startDietimer(d, ctx); // the client is alive: restart the inactivity count
    return;
  }
  hold(ev, d, ctx);
}

function terminate(ev: Extract<ConnectionEvent, { type: 'terminate' }>, d: ConnectionData, ctx: Ctx): T {
  const accepted = d.inbox.accept(ev.rid, []);
  if (accepted.kind === 'bad_rid') {
    ctx.reply(ev.from, badRid(ev.rid, d));
    return settle(d, ctx);
  }
  // Messages a terminate unblocks (buffered behind its rid) reach the application; the session
  // ends with this event, so there is nothing left to push to.
  if (accepted.kind === 'deliver') deliver(d, accepted.batches, ctx, false);
  applyAck(ev.ack, d);
  if (d.held) answerHeld(d, ctx);
  ctx.reply(ev.from, respond(ev.rid, d));
  return { stop: { shutdown: 'terminate' }, data: d };
}

function packet(ev: Extract<ConnectionEvent, { type: 'packet' }>, d: ConnectionData, ctx: Ctx): T {
  const seq = pushPacket(ev.data, d, ctx);
  if (ev.from) ctx.reply(ev.from, seq !== undefined ? { ok: true, seq } : REFUSED);
  // A broadcast has nobody to tell: say it here rather than drop the packet silently.
  else if (seq === undefined) d.config.logger.warn({ session: d.tag, queued: d.outbox.size, bytes: d.budget.used }, 'packet refused: queue full');
  return settle(d, ctx);
}

const REFUSED: PacketOutcome = Object.freeze({ ok: false, code: 'overloaded' });

/** Queue a packet from outside (handlePacket, broadcast): its seq, or undefined when refused
 *  because the queue or a budget is full. A held request is answered with it at once. (A seq,
 *  not a result record: a broadcast delivery has nobody to hand one to.) */
function pushPacket(data: EncodedData, d: ConnectionData, ctx: Ctx): Seq | undefined {
  const seq = d.budget.fits(data.bytes) && !d.outbox.isFull ? d.outbox.pushPastBound(data) : undefined;
  countPush(seq !== undefined, d);
  if (d.held && seq !== undefined) answerHeld(d, ctx);
  return seq;
}

function countPush(ok: boolean, d: ConnectionData): void {
  if (ok) account(d);
  const stats = d.config.stats;
  if (stats) {
    if (ok) { stats.packetsOut++; stats.queued++; } else stats.packetsRefused++;
  }
}

/** Count in the budget what the inbox and the outbox hold now (the change since last counted). */
function account(d: ConnectionData): void {
  const held = d.inbox.bufferedBytes + d.outbox.bytes;
  d.budget.charge(held - d.counted);
  d.counted = held;
}

function badRid(rid: Rid, d: ConnectionData): RequestOutcome {
  return { kind: 'error', code: 'bad_rid', message: `rid ${rid} is more than 16 away from ${d.inbox.highestSeen}` };
}

/**
 * Hand delivered messages to `onMessage`, in order. `open`: whether its SessionContext may push
 * (not while the session is ending: the packets could never be sent).
 */
function deliver(d: ConnectionData, batches: readonly Batch[], ctx: Ctx, open: boolean): void {
  // A poll delivers nothing: no SessionContext for it (every request of a fan-out is one).
  let any = false;
  for (const batch of batches) any ||= batch.length > 0;
  if (!any) return;
  const onMessage = d.config.hooks.onMessage;
  const session = new InPlace(d, open);
  for (const batch of batches) {
    d.messagesIn += batch.length;
    for (const data of batch) {
      if (d.config.stats) d.config.stats.messagesIn++;
      callHook(d, 'onMessage', onMessage, d.sid, data, session);
    }
  }
  session.close();
  // Everything the hooks pushed goes out together, in one response to the held request.
  if (d.held && d.outbox.hasPending) answerHeld(d, ctx);
}

/** The SessionContext of one delivery: valid until `deliver` returns. */
class InPlace implements SessionContext {
  readonly sid: Sid;
  #d: ConnectionData | undefined;
  readonly #open: boolean;

  constructor(d: ConnectionData, open: boolean) {
    this.sid = d.sid;
    this.#d = d;
    this.#open = open;
  }

  push(data: unknown): Seq {
    const d = this.#d;
    if (d === undefined) {
      throw new CometError(ERR_SESSION_CONTEXT_STALE, 'session.push is only valid while onMessage runs; after an await, use handlePacket(sid, data)');
    }
    if (!this.#open) throw new CometError('unknown_session', 'the session is ending');
    const seq = d.outbox.pushPastBound(assertSendable(data, d.maxResponseBytes));
    countPush(true, d);
    return seq;
  }

  close(): void {
    this.#d = undefined;
  }
}

/**
 * The session is ending: deliver the messages still buffered behind a rid that never came. Their
 * requests were answered 200, so the client holds them accepted and will not send them again;
 * waiting for a gap that can no longer fill would lose them. The missing rids are stepped over as
 * empty: had one carried messages, the client never saw it accepted and re-sends them on its next
 * session. Bounded: the buffered rids lie within RID_WINDOW above nextExpected.
 */
function deliverBuffered(d: ConnectionData, ctx: Ctx): void {
  const from = d.inbox.nextExpected;
  for (let rid = from; d.inbox.bufferedCount > 0 && rid <= from + RID_WINDOW; rid++) {
    const r = d.inbox.accept(asRid(rid), []);
    if (r.kind === 'deliver') deliver(d, r.batches, ctx, false);
  }
}

/** Acks only move forward (the outbox ignores one at or below the last). */
function applyAck(ack: Seq | undefined, d: ConnectionData): void {
  if (ack === undefined) return;
  const before = d.outbox.size;
  d.outbox.ack(ack);
  const forgotten = before - d.outbox.size;
  if (d.config.stats) d.config.stats.queued -= forgotten;
  if (forgotten > 0) account(d);
}

/** The response to request `rid`: the oldest pending packets, up to `maxResponseBytes`. */
function respond(rid: Rid, d: ConnectionData): RequestOutcome {
  // Read here and let go: encoded into the response's text before anything can push or ack.
  const packets = d.outbox.peekPending(d.maxResponseBytes - REPLY_ENVELOPE_BYTES);
  let bytes = REPLY_ENVELOPE_BYTES;
  for (const p of packets) bytes += p.bytes;
  return { kind: 'packets', rid, response: new Response(encodeRequestReply(rid, packets), bytes, d.budget) };
}

function hold(ev: Extract<ConnectionEvent, { type: 'request' }>, d: ConnectionData, ctx: Ctx): void {
  const now = ctx.clock.now();
  d.held = { rid: ev.rid, token: ev.token, from: ev.from, since: now };
  armFor(now + d.config.wait, WAIT_TIMEOUT, d, ctx);
}

/** Answer the held request with whatever is pending, and let it go. */
function answerHeld(d: ConnectionData, ctx: Ctx): void {
  if (!d.held) return;
  ctx.reply(d.held.from, respond(d.held.rid, d));
  release(d, ctx);
}

/** No request is held any more: stop waiting, start dying. */
function release(d: ConnectionData, ctx: Ctx): void {
  d.held = undefined;
  startDietimer(d, ctx);
}

/** The inactivity count starts again from now. */
function startDietimer(d: ConnectionData, ctx: Ctx): void {
  const now = ctx.clock.now();
  d.idleSince = now;
  armFor(now + d.config.inactivity, DIETIMER, d, ctx);
}

/**
 * The session's deadline is now `at`: keep the armed timer if it is due by then (it fires early
 * and sleeps again for the rest), else start it again for `at`. Answering a request within
 * `wait - inactivity` ms of holding it (the defaults: 15 s) is the one common case that cancels.
 */
function armFor(at: number, event: ConnectionEvent, d: ConnectionData, ctx: Ctx): void {
  if (d.timer !== undefined) {
    if (d.timerAt <= at) return;
    ctx.cancelTimer(d.timer);
  }
  d.timer = ctx.startTimer(at - ctx.clock.now(), event);
  d.timerAt = at;
}

/** The wait deadline of the held request, else the dietimer's: the one that counts now. */
function deadline(d: ConnectionData): number {
  return d.held ? d.held.since + d.config.wait : d.idleSince + d.config.inactivity;
}

/** Arm the timer for the deadline that counts now (its own timeout was just handled). */
function armDeadline(d: ConnectionData, ctx: Ctx): void {
  armFor(deadline(d), d.held ? WAIT_TIMEOUT : DIETIMER, d, ctx);
}

/** The timer fired while a request is held: answer it if it has waited `wait` ms. */
function waitTimeout(d: ConnectionData, ctx: Ctx): T {
  d.timer = undefined;
  const held = d.held;
  if (held && held.since + d.config.wait <= ctx.clock.now()) answerHeld(d, ctx); // arms the dietimer
  else armDeadline(d, ctx);
  return settle(d, ctx);
}

/** The timer fired with no request held: the session ends if it has idled `inactivity` ms. */
function dietimer(d: ConnectionData, ctx: Ctx): T {
  d.timer = undefined;
  if (d.idleSince + d.config.inactivity <= ctx.clock.now()) return { stop: { shutdown: 'inactivity' }, data: d };
  armDeadline(d, ctx);
  return settle(d, ctx);
}

/** The state follows from the data: a held request, pending packets, or neither. */
function settle(d: ConnectionData, _ctx: Ctx): T {
  account(d);
  if (d.held) return { next: 'have_request', data: d };
  return { next: d.outbox.hasPending ? 'have_packet' : 'waiting', data: d };
}

function endReason(reason: ExitReason): SessionEndReason {
  if (reason === 'shutdown') return 'shutdown';
  if (typeof reason === 'object' && 'shutdown' in reason) {
    if (reason.shutdown === 'inactivity' || reason.shutdown === 'terminate') return reason.shutdown;
    return 'shutdown';
  }
  return reason === 'normal' ? 'shutdown' : 'crash';
}

/** Application code runs inside the FSM; its failures are logged and the session goes on. */
function callHook<A extends unknown[]>(
  d: ConnectionData, hook: keyof SessionHooks, fn: ((...args: A) => void | Promise<void>) | undefined, ...args: A
): void {
  if (fn === undefined) return;
  try {
    const r = fn(...args);
    if (r instanceof Promise) r.catch((err: unknown) => reportHook(d, hook, err));
  } catch (err) {
    reportHook(d, hook, err);
  }
}

function reportHook(d: ConnectionData, hook: keyof SessionHooks, err: unknown): void {
  d.config.logger.error({ session: d.tag, hook, err: err instanceof Error ? err.message : String(err) }, 'application hook failed');
}

function maybeFault(d: ConnectionData, ev: ConnectionEvent): void {
  if (d.config.fault?.(d.sid, ev.type)) throw new Error(`injected fault on ${ev.type}`);
}
