/**
 * The comet interface functions of the post: `handleJson` decodes a body and routes it,
 * `handleSetup` opens a session, `handleRequest` sends the FSM an event and waits for its reply
 * (and tells the FSM when the socket dies), `handlePacket` is for the application.
 *
 * They return replies as values (status + body); writing them to HTTP is the handler's job.
 */
import { HTTP_STATUS, isCometError, isWireErrorCode, type WireErrorCode } from './errors.js';
import type { PacketOutcome, RequestOutcome } from './connection.js';
import { CometError } from './errors.js';
import { newRequestToken, type Rid, type Seq, type Sid } from './ids.js';
import type { SessionRouter } from './session_router.js';
import { decodeFrame, type ErrorReply, type RequestFrame, type RequestReply, type SetupReply, type TerminateFrame } from './wire.js';

/** How long past `wait` the HTTP side waits for an FSM's reply before giving up (a safety net:
 *  the FSM answers within `wait`, and a dead FSM is noticed at once by a monitor). */
export const REPLY_MARGIN_MS = 5000;
/** How long `handlePacket` waits for the FSM to accept a packet. */
export const PACKET_TIMEOUT_MS = 5000;

/** A reply to write: 200 with a setup or request body, or an error status with an error body. */
export type ApiReply =
  | { readonly status: 200; readonly body: SetupReply | RequestReply }
  | { readonly status: number; readonly body: ErrorReply };

/**
 * The socket of a request, as the FSM's handler needs it: `{active, once}` then `{tcp_closed, S}`.
 * `onClosed(cb)` runs `cb` if the connection dies before the reply is written; it returns a
 * function that stops watching.
 */
export interface SocketWatch {
  onClosed(cb: () => void): () => void;
}

/** What opening a session takes: an id from the session-id server and a started connection FSM. */
export type NewSession = () => Promise<{ readonly ok: Sid } | { readonly error: WireErrorCode; readonly message: string }>;

export interface CometApiDeps {
  readonly router: SessionRouter;
  readonly newSession: NewSession;
  readonly wait: number;
  readonly inactivity: number;
}

export interface CometApi {
  handleJson(body: unknown, socket: SocketWatch): Promise<ApiReply>;
  handleSetup(): Promise<ApiReply>;
  handleRequest(sid: Sid, request: RequestFrame | TerminateFrame, socket: SocketWatch): Promise<ApiReply>;
  /** Push `data` to one session. Rejects with a CometError `unknown_session` or `overloaded`. */
  handlePacket(sid: Sid, data: unknown): Promise<Seq>;
}

/** Build the comet API over a router and a way to open sessions. */
export function createCometApi(deps: CometApiDeps): CometApi {
  const { router, newSession, wait, inactivity } = deps;

  async function handleSetup(): Promise<ApiReply> {
    const r = await newSession();
    if ('error' in r) return error(r.error, r.message);
    return { status: 200, body: { sid: r.ok, wait, inactivity } };
  }

  // Not async (nor are handleJson and router.call): while a poll is held, an async frame here
  // would stay alive in every session, beside the HTTP handler's.
  function handleRequest(sid: Sid, request: RequestFrame | TerminateFrame, socket: SocketWatch): Promise<ApiReply> {
    const token = newRequestToken();
    // The post's {active, once}: the only thing the socket can still tell us is that it closed.
    const unwatch = request.type === 'request'
      ? socket.onClosed(() => router.cast(sid, { type: 'request_gone', token }))
      : undefined;
    const rid = request.rid;
    return router.call<RequestOutcome>(
      sid,
      (from) => request.type === 'request'
        ? { type: 'request', rid, ack: request.ack, messages: request.messages, token, from }
        : { type: 'terminate', rid, ack: request.ack, from },
      wait + REPLY_MARGIN_MS,
    ).then(
      (outcome) => {
        unwatch?.();
        return toReply(outcome, rid);
      },
      (err: unknown) => {
        unwatch?.();
        // Only a wire code goes on the wire: an ERR_COMET_* code is a bug here, not the client's.
        return isCometError(err) && isWireErrorCode(err.code) ? error(err.code, err.message) : error('overloaded', 'the session did not answer in time');
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
        return handleSetup();
      case 'request':
      case 'terminate':
        return handleRequest(frame.sid, frame, socket);
    }
  }

  async function handlePacket(sid: Sid, data: unknown): Promise<Seq> {
    assertSendable(data);
    const r = await router.call<PacketOutcome>(sid, (from) => ({ type: 'packet', data, from }), PACKET_TIMEOUT_MS);
    if (!r.ok) throw new CometError('overloaded', 'the session\'s packet queue is full');
    return r.seq;
  }

  return { handleJson, handleSetup, handleRequest, handlePacket };
}

/**
 * Packet data must survive JSON.stringify: a packet that cannot be encoded would break every
 * later response of its session (it is resent until acked), so refuse it up front.
 */
export function assertSendable(data: unknown): void {
  let encoded: string | undefined;
  try {
    encoded = JSON.stringify(data);
  } catch (err) {
    throw new CometError('bad_request', `packet data is not JSON-serialisable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (encoded === undefined) throw new CometError('bad_request', 'packet data is not JSON-serialisable (undefined, a function or a symbol)');
}

function toReply(outcome: RequestOutcome, rid: Rid): ApiReply {
  switch (outcome.kind) {
    case 'packets':
      return { status: 200, body: { rid: outcome.rid, packets: outcome.packets } };
    case 'error':
      return error(outcome.code, outcome.message);
    case 'gone':
      // Nobody reads this: the socket is already closed.
      return { status: 200, body: { rid, packets: [] } };
  }
}

function error(code: WireErrorCode, message: string): ApiReply {
  return { status: HTTP_STATUS[code], body: { error: code, message } };
}
