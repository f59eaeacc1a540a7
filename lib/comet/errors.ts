/**
 * Error codes of wire contract v1. Each code is a stable string: clients and application code
 * match on `code`, never on the message text (which may change) nor on `instanceof` (two copies
 * of the library in one process make `instanceof` lie).
 */
export type CometErrorCode =
  | 'bad_json'
  | 'bad_request'
  | 'bad_rid'
  | 'unknown_session'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'unsupported_media_type'
  | 'overloaded'
  | 'shutting_down';

/** The HTTP status sent with each error code (see docs/errors.md). */
export const HTTP_STATUS: Readonly<Record<CometErrorCode, number>> = Object.freeze({
  bad_json: 400,
  bad_request: 400,
  bad_rid: 400,
  unknown_session: 404,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  unsupported_media_type: 415,
  overloaded: 503,
  shutting_down: 503,
});

/**
 * An error with a stable `code` and the HTTP `status` that code maps to. Thrown to application
 * code too (e.g. `handlePacket` on an unknown session or a full queue).
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
  readonly status: number;

  constructor(code: CometErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CometError';
    this.code = code;
    this.status = HTTP_STATUS[code];
  }
}

const CODES: ReadonlySet<string> = new Set(Object.keys(HTTP_STATUS));

/**
 * True when `err` carries one of our codes. Duck-typed on purpose (see {@link CometErrorCode}):
 * it also recognises a CometError made by another copy of this library.
 */
export function isCometError(err: unknown): err is CometError {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code: unknown = err.code;
  return typeof code === 'string' && CODES.has(code);
}
