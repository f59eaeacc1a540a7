/**
 * The post's connection FSM written as a gen_statem: what `lib/comet/connection.ts` (a gen_fsm, as
 * in the post, and what the server runs) becomes in OTP's modern behaviour. It behaves the same,
 * event for event and instant for instant: test/connection_statem.test.ts runs it against the
 * state x event table the real one passes (test/fixtures/connection_table.ts).
 *
 * What changes in the translation (docs/erlang-mapping.md, "gen_fsm → gen_statem"):
 *
 * - The events say how they came: `handleRequest`'s `sync_send_event` is a call (`{call, From}`),
 *   `handlePacket` a call, a broadcast packet and `request_gone` casts. Replies are `reply` actions.
 * - The two timers are **state timeouts**. The dietimer runs in `waiting` and `have_packet` (no
 *   request held), the wait timer in `have_request`; each state's enter call arms its own, and a
 *   state change cancels it. gen_fsm's version keeps timer refs in the data and lets a stale firing
 *   lapse; here a timeout that belongs to a state the machine left is never delivered at all.
 * - Both are absolute (`abs: true`) deadlines, `idleSince + inactivity` and `held.since + wait`:
 *   `waiting → have_packet` must not restart the inactivity count, and an absolute deadline
 *   survives the state change that re-arms it. An event that moves the deadline without changing
 *   state (a request answered at once, a newer request held) sets the state timeout again.
 *
 * A module, not a script: test/connection_statem.test.ts starts it the way the server starts the
 * real one (`genStatem.start(parent, connectionStatem, { sid, config }, { clock })`).
 */
import * as genStatem from '../lib/otp/gen_statem.js';
import type { ExitReason } from '../lib/otp/errors.js';
import type { From } from '../lib/otp/proc_lib.js';
import {
  DEFAULT_MAX_RESPONSE_BYTES, ERR_SESSION_CONTEXT_STALE,
  type ConnectionConfig, type ConnectionEvent, type ConnectionState, type PacketOutcome, type RequestOutcome,
  type SessionContext, type SessionEndReason, type SessionHooks,
} from '../lib/comet/connection.js';
import { asRid, type Rid, type Seq, type Sid } from '../lib/comet/ids.js';
import { encodeBatch, Inbox, RID_WINDOW, type Batch, type EncodedBatch, type RidFate } from '../lib/comet/inbox.js';
import { Outbox, type PushResult } from '../lib/comet/outbox.js';
import { DEFAULT_MAX_SESSION_BYTES, ServerBudget, SessionBudget } from '../lib/comet/budget.js';
import { assertSendable, encodeRequestReply, REPLY_ENVELOPE_BYTES, type EncodedData } from '../lib/comet/wire.js';
import { CometError } from '../lib/comet/errors.js';

// ---------------------------------------------------------------------------------------------
// Types: events by OTP event type
// ---------------------------------------------------------------------------------------------

/** The gen_fsm's request token, whatever its definition: the two machines take the same ones. */
export type RequestToken = Extract<ConnectionEvent, { type: 'request_gone' }>['token'];

/** What a call asks: `request` and `terminate` answer a RequestOutcome, `packet` a PacketOutcome. */
export type ConnectionCall =
  | { readonly type: 'request'; readonly rid: Rid; readonly ack: Seq | undefined; readonly messages: readonly unknown[]; readonly token: RequestToken }
  | { readonly type: 'terminate'; readonly rid: Rid; readonly ack: Seq | undefined }
  | { readonly type: 'packet'; readonly data: EncodedData };

/** Casts: a broadcast packet (nobody to answer), the held request's socket closing. */
export type ConnectionCast = { readonly type: 'packet'; readonly data: EncodedData } | { readonly type: 'request_gone'; readonly token: RequestToken };

export type ConnectionEvents = {
  call: ConnectionCall;
  reply: RequestOutcome | PacketOutcome;
  cast: ConnectionCast;
  state_timeout: 'wait_timeout' | 'dietimer';
  enter: true;
};

/** The config of the gen_fsm, with the started callback given this machine's ref. */
export type ConnectionStatemConfig = Omit<ConnectionConfig, 'onStarted'> & {
  readonly onStarted?: (sid: Sid, ref: genStatem.StatemRef<ConnectionEvents>) => void;
};

interface Held {
  readonly rid: Rid;
  readonly token: RequestToken;
  readonly from: From<RequestOutcome>;
  /** When it was held (clock ms): it is answered empty at `since + wait`. */
  readonly since: number;
}

/** The machine's data: the gen_fsm's, without the timer refs. Mutated in place, as there. */
export interface ConnectionStatemData {
  readonly sid: Sid;
  readonly config: ConnectionStatemConfig;
  readonly outbox: Outbox;
  readonly inbox: Inbox;
  /** The bytes this session holds, in its own and its server's budget. */
  readonly budget: SessionBudget;
  /** What the inbox and the outbox held when last counted in `budget`. */
  counted: number;
  readonly maxResponseBytes: number;
  held: Held | undefined;
  /** Since when no request has been held (clock ms): the dietimer is due at `idleSince + inactivity`. */
  idleSince: number;
}

type D = ConnectionStatemData;
type Ev = genStatem.CallbackEvent<ConnectionState, ConnectionEvents>;
type R = genStatem.Result<ConnectionState, D, ConnectionEvents>;
type Call = Extract<genStatem.Event<ConnectionEvents>, { type: 'call' }>;
type Now = { readonly now: () => number };

// ---------------------------------------------------------------------------------------------
// The behaviour
// ---------------------------------------------------------------------------------------------

export const connectionStatem: genStatem.GenStatem<{ sid: Sid; config: ConnectionStatemConfig }, ConnectionState, D, ConnectionEvents> = {
  callbackMode: 'state_functions',
  stateEnter: true,

  init({ sid, config }, ctx) {
    const data: D = {
      sid, config,
      outbox: new Outbox({ maxQueue: config.maxQueue }),
      inbox: new Inbox(),
      budget: new SessionBudget(config.serverBudget ?? new ServerBudget(Infinity), config.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES),
      counted: 0,
      maxResponseBytes: config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      held: undefined, idleSince: ctx.clock.now(),
    };
    config.onStarted?.(sid, ctx.self);
    callHook(data, 'onSession', config.hooks.onSession, sid);
    return { ok: 'waiting', data }; // waiting's enter call arms the dietimer
  },

  states: {
    waiting(ev, d, ctx): R {
      if (ev.type === 'enter') return { keepStateAndData: true, actions: [dietimer(d)] };
      maybeFault(d, ev);
      const before = deadline('waiting', d);
      switch (ev.type) {
        case 'call':
          return common(ev, d, ctx.clock, 'waiting', before);
        case 'cast':
          // nothing held: a request_gone is a late signal for an answered request
          return ev.content.type === 'packet' ? broadcast(ev.content.data, d, ctx.clock, 'waiting', before) : { keepStateAndData: true };
        case 'state_timeout':
          // a wait_timeout cannot come here: it belonged to have_request, and leaving it cancelled it
          return ev.content === 'dietimer' ? { stop: { shutdown: 'inactivity' } } : { keepStateAndData: true };
      }
    },

    have_request(ev, d, ctx): R {
      if (ev.type === 'enter') return { keepStateAndData: true, actions: [waitTimer(d)] };
      maybeFault(d, ev);
      const before = deadline('have_request', d);
      switch (ev.type) {
        case 'call':
          return common(ev, d, ctx.clock, 'have_request', before);
        case 'cast':
          if (ev.content.type === 'packet') return broadcast(ev.content.data, d, ctx.clock, 'have_request', before);
          if (d.held?.token !== ev.content.token) return { keepStateAndData: true };
          // Nothing was sent, so nothing is lost: the packets stay pending for the next request.
          genStatem.reply(d.held.from, { kind: 'gone' });
          release(d, ctx.clock);
          return settle(d, 'have_request', before);
        case 'state_timeout':
          // The wait timer: the held request has waited `wait` ms. (No dietimer here: a held
          // request keeps the session alive, and entering have_request cancelled it.)
          if (ev.content === 'wait_timeout') answerHeld(d, ctx.clock);
          return settle(d, 'have_request', before);
      }
    },

    have_packet(ev, d, ctx): R {
      if (ev.type === 'enter') return { keepStateAndData: true, actions: [dietimer(d)] };
      maybeFault(d, ev);
      const before = deadline('have_packet', d);
      switch (ev.type) {
        case 'call':
          return common(ev, d, ctx.clock, 'have_packet', before);
        case 'cast':
          return ev.content.type === 'packet' ? broadcast(ev.content.data, d, ctx.clock, 'have_packet', before) : { keepStateAndData: true };
        case 'state_timeout':
          return ev.content === 'dietimer' ? { stop: { shutdown: 'inactivity' } } : { keepStateAndData: true };
      }
    },
  },

  terminate(reason, _state, d, ctx) {
    // Whatever ends the session, a held request is answered with what there is.
    if (d.held) answerHeld(d, ctx.clock);
    if (d.config.stats) d.config.stats.queued -= d.outbox.size;
    deliverBuffered(d, ctx.clock);
    d.budget.charge(-d.counted); // unflushed replies give theirs back when their sockets are done
    d.counted = 0;
    const why = endReason(reason);
    d.config.onEnded?.(d.sid, why);
    callHook(d, 'onSessionEnd', d.config.hooks.onSessionEnd, d.sid, why);
  },
};

/** The registered name, as the gen_fsm's: `session:<sid>`. */
export function connectionStatemName(sid: Sid): string {
  return `session:${sid}`;
}

// ---------------------------------------------------------------------------------------------
// Timers: one state timeout per state, at an absolute deadline
// ---------------------------------------------------------------------------------------------

function dietimer(d: D): genStatem.EnterAction<ConnectionEvents> {
  return { type: 'state_timeout', time: d.idleSince + d.config.inactivity, abs: true, content: 'dietimer' };
}

function waitTimer(d: D): genStatem.EnterAction<ConnectionEvents> {
  // have_request is entered only with a request held
  return { type: 'state_timeout', time: (d.held?.since ?? 0) + d.config.wait, abs: true, content: 'wait_timeout' };
}

function deadline(state: ConnectionState, d: D): number {
  return state === 'have_request' ? (d.held?.since ?? 0) + d.config.wait : d.idleSince + d.config.inactivity;
}

/**
 * The state follows from the data: a held request, pending packets, or neither. A state change
 * leaves the timers to the enter call; staying in a state whose deadline moved sets its state
 * timeout again.
 */
function settle(d: D, state: ConnectionState, before: number): R {
  account(d);
  const next: ConnectionState = d.held ? 'have_request' : d.outbox.hasPending ? 'have_packet' : 'waiting';
  if (next !== state) return { next, data: d };
  if (deadline(state, d) === before) return { keepStateAndData: true };
  return { keepStateAndData: true, actions: [state === 'have_request' ? waitTimer(d) : dietimer(d)] };
}

// ---------------------------------------------------------------------------------------------
// Event handlers shared by the states
// ---------------------------------------------------------------------------------------------

function common(ev: Call, d: D, clock: Now, state: ConnectionState, before: number): R {
  const c = ev.content;
  switch (c.type) {
    case 'request':
      return request(c, ev.from, d, clock, state, before);
    case 'terminate':
      return terminate(c, ev.from, d, clock);
    case 'packet': {
      const pushed = pushPacket(c.data, d, clock);
      const answer: PacketOutcome = pushed.ok ? { ok: true, seq: pushed.seq } : { ok: false, code: 'overloaded' };
      genStatem.reply(ev.from, answer);
      return settle(d, state, before);
    }
  }
}

function request(c: Extract<ConnectionCall, { type: 'request' }>, from: From<RequestOutcome>, d: D, clock: Now, state: ConnectionState, before: number): R {
  const fate = d.inbox.peek(c.rid);
  if (fate === 'bad_rid') {
    genStatem.reply(from, badRid(c.rid, d));
    return settle(d, state, before);
  }
  applyAck(c.ack, d);
  const batch = fate === 'buffer' ? encodeBatch(c.messages) : undefined;
  const refused = admit(c, fate, batch, d);
  if (refused !== undefined) {
    genStatem.reply(from, refused);
    return settle(d, state, before);
  }
  const accepted = d.inbox.accept(c.rid, c.messages, batch);
  account(d);
  poll(c, from, d, clock);
  // The messages go to the application after the poll is settled, as the gen_fsm does.
  if (accepted.kind === 'deliver') deliver(d, accepted.batches, clock, true);
  return settle(d, state, before);
}

/** Backpressure, as the gen_fsm's: new messages wait (503, nothing taken) while the queue or a budget is full. */
function admit(c: Extract<ConnectionCall, { type: 'request' }>, fate: RidFate, batch: EncodedBatch | undefined, d: D): RequestOutcome | undefined {
  if (fate === 'duplicate' || c.messages.length === 0) return undefined;
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

/** The polling half of a request: answer it, or hold it. */
function poll(c: Extract<ConnectionCall, { type: 'request' }>, from: From<RequestOutcome>, d: D, clock: Now): void {
  if (d.outbox.hasPending && d.budget.unflushed > 0 && d.budget.full) {
    genStatem.reply(from, overloaded('earlier responses of this session are not read yet'));
    return;
  }
  if (d.held) answerHeld(d, clock);
  if (d.outbox.hasPending) {
    genStatem.reply(from, respond(c.rid, d));
    d.idleSince = clock.now(); // the client is alive: restart the inactivity count
    return;
  }
  d.held = { rid: c.rid, token: c.token, from, since: clock.now() };
}

function terminate(c: Extract<ConnectionCall, { type: 'terminate' }>, from: From<RequestOutcome>, d: D, clock: Now): R {
  const accepted = d.inbox.accept(c.rid, []);
  if (accepted.kind === 'bad_rid') {
    genStatem.reply(from, badRid(c.rid, d));
    return { keepStateAndData: true };
  }
  if (accepted.kind === 'deliver') deliver(d, accepted.batches, clock, false);
  applyAck(c.ack, d);
  if (d.held) answerHeld(d, clock);
  return { stopAndReply: { shutdown: 'terminate' }, replies: [{ type: 'reply', from: from as From<ConnectionEvents['reply']>, reply: respond(c.rid, d) }] };
}

function broadcast(data: EncodedData, d: D, clock: Now, state: ConnectionState, before: number): R {
  const pushed = pushPacket(data, d, clock);
  // A broadcast has nobody to tell: say it here rather than drop the packet silently.
  if (!pushed.ok) d.config.logger.warn({ sid: d.sid, queued: d.outbox.size, bytes: d.budget.used }, 'packet refused: queue full');
  return settle(d, state, before);
}

const REFUSED: PushResult = Object.freeze({ ok: false, code: 'overloaded' });

function pushPacket(data: EncodedData, d: D, clock: Now): PushResult {
  const pushed = d.budget.fits(data.bytes) ? d.outbox.push(data) : REFUSED;
  countPush(pushed.ok, d);
  if (d.held && pushed.ok) answerHeld(d, clock);
  return pushed;
}

function countPush(ok: boolean, d: D): void {
  if (ok) account(d);
  const stats = d.config.stats;
  if (stats) {
    if (ok) { stats.packetsOut++; stats.queued++; } else stats.packetsRefused++;
  }
}

/** Count in the budget what the inbox and the outbox hold now (the change since last counted). */
function account(d: D): void {
  const held = d.inbox.bufferedBytes + d.outbox.bytes;
  d.budget.charge(held - d.counted);
  d.counted = held;
}

function badRid(rid: Rid, d: D): RequestOutcome {
  return { kind: 'error', code: 'bad_rid', message: `rid ${rid} is more than 16 away from ${d.inbox.highestSeen}` };
}

function deliver(d: D, batches: readonly Batch[], clock: Now, open: boolean): void {
  const session = new InPlace(d, open);
  for (const batch of batches) {
    for (const data of batch) {
      if (d.config.stats) d.config.stats.messagesIn++;
      callHook(d, 'onMessage', d.config.hooks.onMessage, d.sid, data, session);
    }
  }
  session.close();
  if (d.held && d.outbox.hasPending) answerHeld(d, clock);
}

/** The SessionContext of one delivery: valid until `deliver` returns. */
class InPlace implements SessionContext {
  readonly sid: Sid;
  #d: D | undefined;
  readonly #open: boolean;

  constructor(d: D, open: boolean) {
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

/** The session is ending: deliver the messages still buffered behind a rid that never came. */
function deliverBuffered(d: D, clock: Now): void {
  const from = d.inbox.nextExpected;
  for (let rid = from; d.inbox.bufferedCount > 0 && rid <= from + RID_WINDOW; rid++) {
    const r = d.inbox.accept(asRid(rid), []);
    if (r.kind === 'deliver') deliver(d, r.batches, clock, false);
  }
}

function applyAck(ack: Seq | undefined, d: D): void {
  if (ack === undefined) return;
  const before = d.outbox.size;
  d.outbox.ack(ack);
  const forgotten = before - d.outbox.size;
  if (d.config.stats) d.config.stats.queued -= forgotten;
  if (forgotten > 0) account(d);
}

/** The response to request `rid`: the oldest pending packets, up to `maxResponseBytes`. */
function respond(rid: Rid, d: D): RequestOutcome {
  const packets = d.outbox.pending(d.maxResponseBytes - REPLY_ENVELOPE_BYTES);
  let bytes = REPLY_ENVELOPE_BYTES;
  for (const p of packets) bytes += p.bytes;
  const budget = d.budget;
  return { kind: 'packets', rid, response: { json: encodeRequestReply(rid, packets), bytes, written: () => budget.written(bytes) } };
}

/** Answer the held request with whatever is pending, and let it go. */
function answerHeld(d: D, clock: Now): void {
  if (!d.held) return;
  genStatem.reply(d.held.from, respond(d.held.rid, d));
  release(d, clock);
}

/** No request is held any more: the inactivity count starts again from now. */
function release(d: D, clock: Now): void {
  d.held = undefined;
  d.idleSince = clock.now();
}

function endReason(reason: ExitReason): SessionEndReason {
  if (reason === 'shutdown') return 'shutdown';
  if (typeof reason === 'object' && 'shutdown' in reason) {
    if (reason.shutdown === 'inactivity' || reason.shutdown === 'terminate') return reason.shutdown;
    return 'shutdown';
  }
  return reason === 'normal' ? 'shutdown' : 'crash';
}

function callHook<A extends unknown[]>(d: D, hook: keyof SessionHooks, fn: ((...args: A) => void | Promise<void>) | undefined, ...args: A): void {
  if (fn === undefined) return;
  try {
    const r = fn(...args);
    if (r instanceof Promise) r.catch((err: unknown) => reportHook(d, hook, err));
  } catch (err) {
    reportHook(d, hook, err);
  }
}

function reportHook(d: D, hook: keyof SessionHooks, err: unknown): void {
  d.config.logger.error({ sid: d.sid, hook, err: err instanceof Error ? err.message : String(err) }, 'application hook failed');
}

/** The gen_fsm's fault hook, by the gen_fsm's event names. */
function maybeFault(d: D, ev: Exclude<Ev, { type: 'enter' }>): void {
  const name = ev.type === 'state_timeout' ? ev.content : ev.content.type;
  if (d.config.fault?.(d.sid, name)) throw new Error(`injected fault on ${name}`);
}
