/**
 * The errors of the comet layer: one class, {@link CometError}, for the codes of wire contract v1
 * (each with its HTTP status) and for the library's own `ERR_COMET_*` codes (a caller broke a
 * documented contract). Each code is a stable string: clients and application code match on
 * `code`, never on the message text (which may change) nor on `instanceof` (two copies of the
 * library in one process make `instanceof` lie). Every code is listed in docs/errors.md.
 */

/** The codes of wire contract v1: the `error` of a JSON error body, each with an HTTP status. */
export type WireErrorCode =
  | 'bad_json'
  | 'bad_request'
  | 'bad_rid'
  | 'unknown_session'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'too_many_sessions'
  | 'overloaded'
  | 'shutting_down';

/** The HTTP status sent with each wire code (see docs/errors.md). */
export const HTTP_STATUS: Readonly<Record<WireErrorCode, number>> = Object.freeze({
  bad_json: 400,
  bad_request: 400,
  bad_rid: 400,
  unknown_session: 404,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  too_many_sessions: 429,
  overloaded: 503,
  shutting_down: 503,
});

/** The library's own codes: never sent on the wire, thrown to the code that broke a contract. */
export type LibraryErrorCode =
  /** `createCometServer`: a numeric option is not a positive safe integer. */
  | 'ERR_COMET_INVALID_OPTION'
  /** `createCometServer`: the comet supervision tree did not start; `cause` is its start error. */
  | 'ERR_COMET_START_FAILED'
  /** `session.push` called after its `onMessage` returned (after an `await`). */
  | 'ERR_COMET_SESSION_CONTEXT_STALE'
  /** `handlePacket`, `broadcast`, `session.push`: the packet's reply alone would exceed `maxResponseBytes`. */
  | 'ERR_COMET_PACKET_TOO_LARGE'
  /** `Inbox.accept`: a rid that is not a positive safe integer. */
  | 'ERR_COMET_INVALID_RID'
  /** `new Outbox`: a `maxQueue` that is not a positive safe integer. */
  | 'ERR_COMET_INVALID_MAX_QUEUE'
  /** `Outbox.ack`: a seq that is not a non-negative safe integer. */
  | 'ERR_COMET_INVALID_SEQ';

/** Every code a {@link CometError} carries. */
export type CometErrorCode = WireErrorCode | LibraryErrorCode;

// A Record, not an array, so the compiler checks the list against the union both ways.
const LIBRARY_CODES: Readonly<Record<LibraryErrorCode, true>> = {
  ERR_COMET_INVALID_OPTION: true,
  ERR_COMET_START_FAILED: true,
  ERR_COMET_SESSION_CONTEXT_STALE: true,
  ERR_COMET_PACKET_TOO_LARGE: true,
  ERR_COMET_INVALID_RID: true,
  ERR_COMET_INVALID_MAX_QUEUE: true,
  ERR_COMET_INVALID_SEQ: true,
};

/** Every wire code, in the order of {@link HTTP_STATUS}. */
export const WIRE_ERROR_CODES: readonly WireErrorCode[] = Object.freeze(Object.keys(HTTP_STATUS) as WireErrorCode[]);
/** Every library code. */
export const LIBRARY_ERROR_CODES: readonly LibraryErrorCode[] = Object.freeze(Object.keys(LIBRARY_CODES) as LibraryErrorCode[]);

const WIRE_CODES: ReadonlySet<string> = new Set(WIRE_ERROR_CODES);
const CODES: ReadonlySet<string> = new Set([...WIRE_ERROR_CODES, ...LIBRARY_ERROR_CODES]);
// lib/client's error class (lib/client stands alone, so the name is all we share).
const CLIENT_ERROR_NAME = 'CometClientError';

/** True when `code` is a wire code (one a client can get in an error body). */
export function isWireErrorCode(code: string): code is WireErrorCode {
  return WIRE_CODES.has(code);
}

/**
 * An error with a stable `code` and, for a wire code, the HTTP `status` that code maps to
 * (`undefined` for an `ERR_COMET_*` code, which is never sent). Thrown to application code too
 * (e.g. `handlePacket` on an unknown session or a full queue).
 *
 * @example
 * ```ts
 * try {
 *   server.handlePacket(sid, data);
 * } catch (err) {
 *   if (isCometError(err) && err.code === 'unknown_session') forget(sid);
 *   else throw err;
 * }
 * ```
 */
export class CometError extends Error {
  readonly code: CometErrorCode;
  readonly status: number | undefined;

  constructor(code: CometErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CometError';
    this.code = code;
    this.status = isWireErrorCode(code) ? HTTP_STATUS[code] : undefined;
  }
}

/**
 * True when `err` carries one of our codes. Duck-typed on purpose (see {@link CometErrorCode}):
 * it also recognises a CometError made by another copy of this library. A client's
 * `CometClientError` is not one, though two of its codes (`unknown_session`, `too_large`) are
 * spelled as ours: told apart by its `name`, as lib/client cannot share this class.
 */
export function isCometError(err: unknown): err is CometError {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  if ('name' in err && err.name === CLIENT_ERROR_NAME) return false;
  const code: unknown = err.code;
  return typeof code === 'string' && CODES.has(code);
}
