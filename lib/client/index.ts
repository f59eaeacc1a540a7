/**
 * comet-fsm's client, for browsers and Node 20 (`comet-fsm/client`).
 *
 * @example
 * ```ts
 * import { CometClient } from 'comet-fsm/client';
 * const client = new CometClient('/comet', { reconnect: true });
 * client.on('message', ({ data }) => console.log(data));
 * await client.connect();
 * await client.send('hello');
 * ```
 */
export { CometClient } from './client.js';
export {
  CLIENT_ERROR_CODES, CometClientError, isCometClientError, type CometClientErrorCode, type CometClientErrorDetails,
} from './errors.js';
export type { Listener } from './emitter.js';
export {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_HEALTHY_AFTER_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_POLL_MARGIN_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type CloseEvent,
  type CloseReason,
  type CometClientEvents,
  type CometClientOptions,
  type CometClientState,
  type MessageEvent,
  type OpenEvent,
  type StateEvent,
} from './options.js';
export { DEFAULT_RETRY_BASE_MS, DEFAULT_RETRY_CAP_MS, backoffDelay, type BackoffPolicy } from './backoff.js';
export type { FetchInitLike, FetchLike, FetchResponseLike, Timers } from './transport.js';
export type { Packet } from './wire.js';
export type { Rid, Seq, Sid } from './ids.js';
