/**
 * comet-fsm: long-polling comet on nact actors, a TypeScript port of the Erlang/Mochiweb gen_fsm
 * design. The server API; the OTP layer is `comet-fsm/otp`, its supervisors `comet-fsm/supervisors`,
 * the client `comet-fsm/client`.
 */
export { createCometServer, type CometCluster, type CometServer, type CometServerOptions } from './server.js';
export { DEFAULT_KEY_PREFIX, MIN_LEASE_MS, type ClusterNodeStats, type ClusterOptions } from './cluster/cluster.js';
export type { BusEvent, ClusterBus } from './cluster/bus.js';
export { DEFAULT_LEASE_MS } from './cluster/liveness.js';
export { createCometApi, DEFAULT_MAX_SESSIONS, type CometApi, type CometApiDeps, type ApiReply, type SocketWatch } from './comet/api.js';
export type { SessionEndReason, SessionHooks, SessionContext, ConnectionState, ConnectionEvent } from './comet/connection.js';
export { DEFAULT_INACTIVITY_MS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_WAIT_MS, ERR_SESSION_CONTEXT_STALE } from './comet/connection.js';
export { DEFAULT_MAX_SERVER_BYTES, DEFAULT_MAX_SESSION_BYTES } from './comet/budget.js';
export {
  CometError, HTTP_STATUS, LIBRARY_ERROR_CODES, WIRE_ERROR_CODES, isCometError, isWireErrorCode,
  type CometErrorCode, type LibraryErrorCode, type WireErrorCode,
} from './comet/errors.js';
export type { Sid, Rid, Seq } from './comet/ids.js';
export { DEFAULT_MAX_QUEUE } from './comet/outbox.js';
export { RID_WINDOW } from './comet/inbox.js';
export type { Frame, Packet, SetupReply, RequestReply, ErrorReply } from './comet/wire.js';
export { DEFAULT_MAX_BODY_BYTES } from './http/body.js';
export {
  DEFAULT_MAX_CONNECTIONS_PER_SESSION, DEFAULT_WRITE_TIMEOUT_MS, clientAddress, createHandler, DEFAULT_PATH, type CometHandler,
} from './http/handler.js';
export { deferContinue } from './http/http_server.js';
export { applyHttpTimeouts, closeHttpServer, CLOSE_GRACE_MS } from './http/http_server.js';
export type { CorsOption } from './http/cors.js';
export type { Logger } from './otp/logger.js';
export { DEFAULT_LOG_THROTTLE_MS, throttleLogger, type LogThrottleOptions, type ThrottledLogger } from './otp/log_throttle.js';
export { SID_TAG_LENGTH, sidTag } from './comet/sid_tag.js';
export {
  DEFAULT_MAX_SESSIONS_PER_CLIENT, DEFAULT_SETUP_RATE_PER_CLIENT, TOO_MANY_SESSIONS_RETRY_AFTER_S, clientKey,
} from './comet/client_limits.js';
export {
  DEFAULT_OBSERVER_PATH, MIN_TOKEN_LENGTH, OBSERVER_ERROR_CODES, OBSERVER_HTTP_STATUS, OBSERVER_TICK_MS,
  type ObserverErrorCode, type ObserverOptions,
} from './observer/index.js';
export type { TreeSnapshot, NodeView, Counts as ObserverCounts, FeedPacket } from './observer/page/protocol.js';
