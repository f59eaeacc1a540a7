/**
 * The comet interface functions of the post: `handleJson` decodes a body and routes it,
 * `handleSetup` opens a session, `handleRequest` sends the FSM an event and waits for its reply
 * (and tells the FSM when the socket dies), `handlePacket` is for the application.
 *
 * They return replies as values (status + body); writing them to HTTP is the handler's job.
 */
import type { Clock } from '../otp/clock.js';
import type { ParentRef } from '../otp/nact.js';
import type { From } from '../otp/proc_lib.js';
import { clientKey, type ClientLimits } from './client_limits.js';
import { sessionIdServer, startConnection } from './comet_sup.js';
import { DEFAULT_MAX_RESPONSE_BYTES, type ConnectionEvent, type EncodedResponse, type PacketOutcome, type RequestOutcome } from './connection.js';
import { CometError, HTTP_STATUS, isCometError, isWireErrorCode, type WireErrorCode } from './errors.js';
import { newRequestToken, type RequestToken, type Rid, type Seq, type Sid } from './ids.js';
import * as sessionIds from './session_ids.js';
import { sessionError, type SessionCallWaiter, type SessionRouter } from './session_router.js';
import type { SessionTable } from './sessions.js';
import { assertSendable, decodeFrame, type ErrorReply, type RequestFrame, type RequestReply, type SetupReply, type TerminateFrame } from './wire.js';

/** How long past `wait` the HTTP side waits for an FSM's reply before giving up (a safety net:
 *  the FSM answers within `wait`, and a dead FSM is noticed at once by a monitor). */
export const REPLY_MARGIN_MS = 5000;
/** How long `handlePacket` waits for the FSM to accept a packet. */
export const PACKET_TIMEOUT_MS = 5000;
/** Sessions beyond this get `503 overloaded` at setup. One process holds about 19,000 sockets. */
export const DEFAULT_MAX_SESSIONS = 20_000;
/** How long the session-id server may be away (restarting) before a setup answers 503. */
export const SETUP_RETRY_MS = 1000;
/** How long a setup sleeps between two looks for a restarting session-id server. */
export const SETUP_RETRY_INTERVAL_MS = 10;
/** How long one call to a running session-id server may take. Long on purpose: a busy server is
 *  slow, not gone (a dead one rejects the call at once through its monitor), and a setup refused
 *  while its id is still being reserved would leave that id reserved. */
export const SETUP_CALL_TIMEOUT_MS = 10_000;

/**
 * A reply to write: 200 with a setup or request body, or an error status with an error body; or a
 * request's 200 already encoded (`json`), whose bytes count in its session's budget from when it is
 * written until its socket took them: the writer calls `written()` once it wrote `json`, and what
 * that returns once, on the response's 'finish' or 'close'.
 */
export type ApiReply =
  | { readonly status: 200; readonly body: SetupReply | RequestReply }
  /** `retryAfter`: whole seconds, sent as `Retry-After` (a 429 always has one). */
  | { readonly status: number; readonly body: ErrorReply; readonly retryAfter?: number }
  | { readonly status: 200; readonly json: string; readonly written: () => () => void };

/**
 * The socket of a request, as the FSM's handler needs it: `{active, once}` then `{tcp_closed, S}`.
 * `onClosed(cb)` runs `cb` if the connection dies before the reply is written; it returns a
 * function that stops watching.
 */
export interface SocketWatch {
  onClosed(cb: () => void): () => void;
  /** The client's address (the peer, or what a trusted proxy says it is): what per-client
   *  limits count under. Absent when the embedder's transport has none. */
  readonly peer?: string;
}

export interface CometApiDeps {
  /** The actor system comet_sup runs in: where the session-id server and the connection
   *  supervisor are found by name. */
  readonly system: ParentRef;
  readonly router: SessionRouter;
  /** The live sessions (entered and left by the connections themselves). */
  readonly sessions: SessionTable;
  readonly wait: number;
  readonly inactivity: number;
  /** Live sessions plus setups in flight beyond which a setup answers `503 overloaded`. */
  readonly maxSessions: number;
  /** The clock a setup sleeps on while the session-id server restarts. */
  readonly clock: Clock;
  /** True once the server is closing: setups answer `503 shutting_down`. */
  readonly isClosing: () => boolean;
  /** Longest response: a packet whose reply alone would be longer is refused when pushed
   *  (default {@link DEFAULT_MAX_RESPONSE_BYTES}). */
  readonly maxResponseBytes?: number;
  /** Per-client setup limits (`429`); absent: none. */
  readonly clientLimits?: ClientLimits;
}

/** Told that a request's socket closed before its reply was written (`{tcp_closed, Socket}`). */
export interface SocketClosedListener {
  socketClosed(): void;
}

/** What waits for {@link CometApi.handleJsonWith}'s reply. */
export interface ReplyWaiter {
  /** The reply to write. */
  replied(reply: ApiReply): void;
  /** A bug, never the client's doing: answer 503. */
  failed(err: unknown): void;
  /**
   * Optional, for a waiter that is also the request's socket watch (the HTTP handler's): tell
   * `listener` if the socket closes before the reply, until `replied` or `failed` is called (the
   * watch ends there by itself). Without it, `socket.onClosed` is used, with its closures.
   */
  watchSocket?(listener: SocketClosedListener): void;
}

export interface CometApi {
  handleJson(body: unknown, socket: SocketWatch): Promise<ApiReply>;
  /**
   * {@link handleJson} with the reply told to `waiter` (from the check phase of the event loop,
   * with every other reply of the turn; never before this returns) instead of returned as a
   * promise: what the HTTP handler uses, so that a held poll keeps one small object alive rather
   * than a chain of promises. Optional: the handler falls back to `handleJson` for an API made by
   * other means.
   */
  handleJsonWith?(body: unknown, socket: SocketWatch, waiter: ReplyWaiter): void;
  /** Open a session for the client at `peer` (absent: no per-client limit applies). */
  handleSetup(peer?: string): Promise<ApiReply>;
  handleRequest(sid: Sid, request: RequestFrame | TerminateFrame, socket: SocketWatch): Promise<ApiReply>;
  /** Push `data` to one session. Rejects with a CometError `unknown_session`, `overloaded`,
   *  `bad_request` (not JSON-encodable) or `ERR_COMET_PACKET_TOO_LARGE`. */
  handlePacket(sid: Sid, data: unknown): Promise<Seq>;
  /** Push `data` to every live session without waiting; returns how many it was sent to.
   *  @throws CometError `bad_request` when `data` is not JSON-serialisable. */
  broadcast(data: unknown): number;
}

/** Build the comet API over a running comet_sup tree. */
export function createCometApi(deps: CometApiDeps): CometApi {
  const { system, router, sessions, wait, inactivity, maxSessions, clock, isClosing, clientLimits } = deps;
  const maxResponseBytes = deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;

  /**
   * The post's handle_setup: a sid from the session-id server, a connection FSM for it under the
   * connection supervisor, the sid back to the client. The FSM's `init` enters it in `sessions`.
   * A client over its own share (per-client limits) is refused first, with `429`: one address
   * must not be able to use up `maxSessions` for everyone.
   */
  async function handleSetup(peer?: string): Promise<ApiReply> {
    if (isClosing()) return error('shutting_down', 'the server is shutting down');
    const client = peer === undefined || clientLimits === undefined ? undefined : clientKey(peer);
    const refused = client === undefined ? undefined : clientLimits?.admit(client);
    if (refused) return { ...error(refused.error, refused.message), retryAfter: refused.retryAfter };
    let opened: Sid | undefined;
    try {
      if (sessions.size + sessions.settingUp >= maxSessions) return error('overloaded', 'session limit reached');
      sessions.settingUp++;
      try {
        // The session-id server may be restarting after a crash: retry briefly inside rather than
        // fail the setup, then give up with a 503 the client retries.
        const deadline = clock.now() + SETUP_RETRY_MS;
        let sid: Sid | undefined;
        for (;;) {
          const ids = sessionIdServer(system);
          // A call that fails means it died during the call: the same as not finding it.
          if (ids) sid = await sessionIds.newSid(ids, SETUP_CALL_TIMEOUT_MS).catch(() => undefined);
          if (sid !== undefined) break;
          if (clock.now() >= deadline || isClosing()) return error('overloaded', 'session ids unavailable, retry');
          await new Promise<void>((resolve) => clock.setTimeout(resolve, SETUP_RETRY_INTERVAL_MS));
        }
        const started = await startConnection(system, sid);
        if (!('ok' in started)) {
          // A name clash means a live session owns this sid: releasing it would free a live id.
          const clash = 'error' in started && typeof started.error === 'object' && started.error !== null && 'already_started' in started.error;
          const ids = sessionIdServer(system);
          if (ids && !clash) sessionIds.release(ids, sid);
          return error('overloaded', 'could not start the session, retry');
        }
        opened = sid;
        return { status: 200, body: { sid, wait, inactivity } };
      } finally {
        sessions.settingUp--;
      }
    } finally {
      // The client's slot is held by the session until it ends; a session that ended before its
      // setup returned has been counted out already, and a failed setup gives the slot back.
      if (client !== undefined) clientLimits?.settle(client, opened !== undefined && sessions.has(opened) ? opened : undefined);
    }
  }

  // Not async (nor are handleJson and router.call): while a poll is held, an async frame here
  // would stay alive in every session, beside the HTTP handler's. What the callbacks below keep
  // (the sid, the token, the rid, the unwatch) is all a held poll keeps of this call: the frame
  // itself goes into the event (`makeEvent`), out of their scope.
  function handleRequest(sid: Sid, request: RequestFrame | TerminateFrame, socket: SocketWatch): Promise<ApiReply> {
    const token = newRequestToken();
    // The post's {active, once}: the only thing the socket can still tell us is that it closed.
    const unwatch = request.type === 'request'
      ? socket.onClosed(() => router.cast(sid, { type: 'request_gone', token }))
      : undefined;
    const rid = request.rid;
    return router.call<RequestOutcome>(sid, makeEvent(request, token), wait + REPLY_MARGIN_MS).then(
      (outcome) => {
        unwatch?.();
        return toReply(outcome, rid);
      },
      (err: unknown) => {
        unwatch?.();
        return callError(err);
      },
    );
  }

  // Not async: it only routes, so it keeps no frame of its own alive while a request is held.
  function handleJson(body: unknown, socket: SocketWatch): Promise<ApiReply> {
    const decoded = decodeFrame(body);
    if (!decoded.ok) return Promise.resolve(error(decoded.code, decoded.message));
    const frame = decoded.frame;
    switch (frame.type) {
      case 'setup':
        return handleSetup(socket.peer);
      case 'request':
      case 'terminate':
        return handleRequest(frame.sid, frame, socket);
    }
  }

  function handleJsonWith(body: unknown, socket: SocketWatch, waiter: ReplyWaiter): void {
    const decoded = decodeFrame(body);
    if (!decoded.ok) {
      later(new Settled(waiter, error(decoded.code, decoded.message)));
      return;
    }
    const frame = decoded.frame;
    switch (frame.type) {
      case 'setup':
        handleSetup(socket.peer).then((r) => waiter.replied(r), (e: unknown) => waiter.failed(e));
        return;
      case 'request':
      case 'terminate': {
        if (router.callWith === undefined) {
          handleRequest(frame.sid, frame, socket).then((r) => waiter.replied(r), (e: unknown) => waiter.failed(e));
          return;
        }
        const sid = frame.sid;
        const token = newRequestToken();
        const call = new RequestCall(router, sid, frame.rid, token, waiter);
        // The post's {active, once}: the only thing the socket can still tell us is that it closed.
        if (frame.type === 'request') {
          if (waiter.watchSocket !== undefined) waiter.watchSocket(call);
          else call.unwatch = socket.onClosed(() => call.socketClosed());
        }
        router.callWith(sid, makeEvent(frame, token), wait + REPLY_MARGIN_MS, call);
        return;
      }
    }
  }

  async function handlePacket(sid: Sid, data: unknown): Promise<Seq> {
    const encoded = assertSendable(data, maxResponseBytes);
    const r = await router.call<PacketOutcome>(sid, (from) => ({ type: 'packet', data: encoded, from }), PACKET_TIMEOUT_MS);
    if (!r.ok) throw new CometError('overloaded', 'the session\'s packet queue or byte budget is full');
    return r.seq;
  }

  function broadcast(data: unknown): number {
    // One event, and one encoding, for every session: events are never mutated, and a broadcast
    // to 19,000 sessions need not allocate 19,000 copies of it. (Each session still counts the
    // bytes in its budget and the server's: an upper bound, as the text is shared.)
    const event: ConnectionEvent = { type: 'packet', data: assertSendable(data, maxResponseBytes), from: undefined };
    let n = 0;
    for (const sid of sessions) if (router.cast(sid, event)) n++;
    return n;
  }

  return { handleJson, handleJsonWith, handleSetup, handleRequest, handlePacket, broadcast };
}

/** Something to run once the turn's I/O is done: a reply to hand to its waiter. */
interface Deferred {
  run(): void;
}

// One queue for every reply told in a turn of the event loop, handed to the waiters from one
// `setImmediate`, in the check phase, after the poll phase has read every request that was ready.
// Two reasons. The FSM tells its caller from inside its handler (`reply`), and the HTTP side must
// write only once that handler is done, as it did when a promise carried the reply. And replies
// written one by one, each as soon as its FSM answered, reach clients tens of microseconds apart:
// a client that went back to sleep in between is woken again by each one, and on one machine that
// wake-up is paid inside the server's `writev` (a cross-core interrupt: kernel time per echo
// request 11.5 -> 7.1 us, docs/benchmarks.md). Written together, a burst wakes each client once,
// as nact's own `setImmediate` scheduling did, while the mailboxes still run from a microtask
// (which is what keeps a request's garbage young). The costs: latency, as a reply waits for the
// rest of the poll phase (at most REPLY_BURST_MAX replies' worth), never for a timer or another
// turn; and GC, as what the waiting replies keep is alive when a scavenge lands in the poll phase
// (docs/benchmarks.md, "Issue 15, second pass").

/**
 * The most replies kept for the check phase: once this many wait, they are written from the next
 * microtask instead (still after the FSM's handler). A burst this long already wakes each client
 * once; holding more only adds latency (a broadcast's replies would wait behind every request the
 * rest of the poll phase reads) and keeps more requests alive for a scavenge to copy.
 */
export const REPLY_BURST_MAX = 64;

// Two arrays taken in turn, their slots reused: a fresh array per turn (or one emptied by
// `length = 0`) would be allocated again by the turn's first push, its backing store with it.
// One that held a burst larger than this is let go.
const KEPT_QUEUE_SLOTS = 1024;
let queue: (Deferred | undefined)[] = [];
let queued = 0;
let spare: (Deferred | undefined)[] = [];
let checkPhaseQueued = false;
const SETTLED = Promise.resolve();

function later(d: Deferred): void {
  queue[queued++] = d;
  if (queued === 1 && !checkPhaseQueued) {
    checkPhaseQueued = true;
    setImmediate(drainInCheckPhase);
  } else if (queued === REPLY_BURST_MAX) {
    // A reaction on a settled promise, as nact.ts schedules mailboxes: Node wraps each
    // queueMicrotask callback in an AsyncResource and a bound function.
    void SETTLED.then(drain);
  }
}

function drainInCheckPhase(): void {
  checkPhaseQueued = false;
  drain();
}

function drain(): void {
  const q = queue;
  const n = queued;
  queue = spare; // what a `run` tells in turn goes to the next drain
  queued = 0;
  for (let i = 0; i < n; i++) {
    const d = q[i];
    q[i] = undefined;
    try {
      d?.run();
    } catch (err) {
      // A waiter's bug must not keep the others from their replies; it still surfaces.
      queueMicrotask(() => {
        throw err;
      });
    }
  }
  spare = q.length > KEPT_QUEUE_SLOTS ? [] : q;
}

/** A reply known at once (a frame that does not decode), told with the turn's others. */
class Settled implements Deferred {
  constructor(readonly waiter: ReplyWaiter, readonly reply: ApiReply) {}

  run(): void {
    this.waiter.replied(this.reply);
  }
}

/**
 * One request frame's call to its session, from the HTTP side's waiter to the FSM's reply: all a
 * held poll keeps of the API (its rid, its socket watch, its waiter). Told by the router once,
 * then tells the waiter with the turn's other replies.
 */
class RequestCall implements SessionCallWaiter<RequestOutcome>, Deferred, SocketClosedListener {
  #outcome: RequestOutcome | undefined = undefined;
  #error: unknown = undefined;
  /** Stops a `socket.onClosed` watch; none when the waiter watches the socket itself. */
  unwatch: (() => void) | undefined = undefined;

  constructor(
    readonly router: SessionRouter,
    readonly sid: Sid,
    readonly rid: Rid,
    readonly token: RequestToken,
    readonly waiter: ReplyWaiter,
  ) {}

  /** The socket closed while the request waits: the FSM lets the held request go. */
  socketClosed(): void {
    this.router.cast(this.sid, { type: 'request_gone', token: this.token });
  }

  resolved(outcome: RequestOutcome): void {
    this.#outcome = outcome;
    later(this);
  }

  rejected(err: unknown): void {
    this.#error = err;
    later(this);
  }

  run(): void {
    this.unwatch?.();
    const outcome = this.#outcome;
    this.waiter.replied(outcome !== undefined ? toReply(outcome, this.rid) : callError(sessionError(this.#error)));
  }
}

/**
 * The event a request frame becomes, given its reply slot. Made here, not in `handleRequest`: a
 * closure there would put the frame in the context its reply handlers keep while the request is
 * held (up to `wait`), and with it the request's messages and their body, uncounted.
 */
function makeEvent(request: RequestFrame | TerminateFrame, token: RequestToken): (from: From<RequestOutcome>) => ConnectionEvent {
  const { rid, ack } = request;
  if (request.type === 'terminate') return (from) => ({ type: 'terminate', rid, ack, from });
  const messages = request.messages;
  return (from) => ({ type: 'request', rid, ack, messages, token, from });
}

function toReply(outcome: RequestOutcome, rid: Rid): ApiReply {
  switch (outcome.kind) {
    case 'packets':
      return new JsonReply(outcome.response);
    case 'error':
      return error(outcome.code, outcome.message);
    case 'gone':
      // Nobody reads this: the socket is already closed.
      return { status: 200, body: { rid, packets: [] } };
  }
}

/** A request's 200, its text encoded by the FSM: `written` is the response's own, called on it. */
class JsonReply {
  readonly status = 200;
  readonly json: string;
  readonly #response: EncodedResponse;

  constructor(response: EncodedResponse) {
    this.json = response.json;
    this.#response = response;
  }

  written(): () => void {
    return this.#response.written();
  }
}

/** The reply to a request whose call failed. Only a wire code goes on the wire: an ERR_COMET_*
 *  code is a bug here, not the client's. */
function callError(err: unknown): ApiReply {
  return isCometError(err) && isWireErrorCode(err.code) ? error(err.code, err.message) : error('overloaded', 'the session did not answer in time');
}

function error(code: WireErrorCode, message: string): ApiReply {
  return { status: HTTP_STATUS[code], body: { error: code, message } };
}
