/**
 * Stable error codes of the client. Match on `err.code`, never on the message text nor with
 * `instanceof` (two copies of the client in one page make it lie). All are listed, with the
 * server's codes, in docs/errors.md.
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

// A Record, not an array, so the compiler checks the list against the union both ways.
const CODES: Readonly<Record<CometClientErrorCode, true>> = {
  network: true,
  timeout: true,
  http_status: true,
  bad_response: true,
  unknown_session: true,
  protocol: true,
  too_large: true,
  bad_message: true,
  closed: true,
  expired: true,
  unreachable: true,
  invalid_state: true,
  listener_error: true,
};

/** Every {@link CometClientErrorCode}. */
export const CLIENT_ERROR_CODES: readonly CometClientErrorCode[] = Object.freeze(Object.keys(CODES) as CometClientErrorCode[]);

/**
 * True when `err` is a {@link CometClientError}, from this copy of the client or another one.
 * Duck-typed on `code` and `name`, not `instanceof`: two client codes (`unknown_session`,
 * `too_large`) are also server codes, so the name tells a client error from a server's.
 */
export function isCometClientError(err: unknown): err is CometClientError {
  if (typeof err !== 'object' || err === null || !('code' in err) || !('name' in err)) return false;
  const code: unknown = err.code;
  return err.name === 'CometClientError' && typeof code === 'string' && Object.hasOwn(CODES, code);
}
