/**
 * Stable error codes of the client. Match on `err.code`, never on the message text.
 *
 * - `network`: the request never got an HTTP answer (connection refused/reset, DNS, CORS).
 * - `timeout`: no answer within the advertised `wait` plus the client's margin.
 * - `http_status`: an HTTP status the client retries (5xx, 408, 429) or cannot interpret.
 * - `bad_response`: a 2xx whose body is not the JSON the wire contract promises.
 * - `unknown_session`: the server no longer knows the session (it ended server-side).
 * - `protocol`: the server rejected a request as malformed (`400 bad_rid`, `bad_request`, ...);
 *   `serverCode` holds the server's code. This is a client bug or a version mismatch.
 * - `too_large`: the message cannot fit in one request body (`413`, or refused before sending).
 * - `bad_message`: `send()` got a value JSON cannot carry (`undefined`, a function, a BigInt, a cycle).
 * - `closed`: `close()` was called before the server accepted the message.
 * - `expired`: the session ended and the client was not asked to reconnect.
 * - `unreachable`: the client gave up after `maxRetries + 1` consecutive failed attempts (the first and `maxRetries` retries).
 * - `invalid_state`: the call does not fit the client's state (e.g. `connect()` twice).
 * - `listener_error`: an event listener of the application threw; the client carried on.
 */
export type CometClientErrorCode =
  | 'network'
  | 'timeout'
  | 'http_status'
  | 'bad_response'
  | 'unknown_session'
  | 'protocol'
  | 'too_large'
  | 'bad_message'
  | 'closed'
  | 'expired'
  | 'unreachable'
  | 'invalid_state'
  | 'listener_error';

/** Extra facts attached to a {@link CometClientError}. */
export interface CometClientErrorDetails {
  /** HTTP status of the answer, when there was one. */
  readonly status?: number;
  /** The server's `error` code from the JSON error body, when there was one. */
  readonly serverCode?: string;
  /** The underlying error (a fetch rejection, a listener's exception). */
  readonly cause?: unknown;
}

/** Every error the client produces (rejected promises and `error` events) is one of these. */
export class CometClientError extends Error {
  override readonly name = 'CometClientError';
  readonly code: CometClientErrorCode;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;

  constructor(code: CometClientErrorCode, message: string, details: CometClientErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.serverCode = details.serverCode;
  }
}
