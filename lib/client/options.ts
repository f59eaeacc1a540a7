/** Options of the client, their defaults, and the event payloads. */
import type { Seq, Sid } from './ids.js';
import { DEFAULT_RETRY_BASE_MS, DEFAULT_RETRY_CAP_MS } from './backoff.js';
import type { CometClientError } from './errors.js';
import type { FetchLike, Timers } from './transport.js';

/**
 * Extra time (ms) a request may take beyond the server's advertised `wait` before the client
 * gives up on it and sends it again: room for the network and a slow proxy (docs/protocol.md).
 */
export const DEFAULT_POLL_MARGIN_MS = 10_000;
/** Deadline (ms) of requests the server answers at once (setup, terminate). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A retried request pending this long (ms) without failing counts as held by a live server. */
export const DEFAULT_HEALTHY_AFTER_MS = 2_000;
/** The server's default body limit (bytes); batches are cut to fit under it. */
export const DEFAULT_MAX_BODY_BYTES = 65_536;
/** How long (ms) `close()` waits for a send already on the wire to be answered. */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;

/** Options of {@link CometClient}. Every field is optional. */
export interface CometClientOptions {
  /** After the session ends server-side (`404 unknown_session`), set up a new one. Default false. */
  readonly reconnect?: boolean;
  /** Retries of one request after its first failed attempt (so `maxRetries + 1` attempts in all) before the client closes with `unreachable`. Default Infinity. */
  readonly maxRetries?: number;
  /** First retry delay before jitter (ms). Default {@link DEFAULT_RETRY_BASE_MS}. */
  readonly retryBaseMs?: number;
  /** Longest retry delay (ms). Default {@link DEFAULT_RETRY_CAP_MS}. */
  readonly retryCapMs?: number;
  /** Added to the advertised `wait` to bound a held poll (ms). Default {@link DEFAULT_POLL_MARGIN_MS}. */
  readonly pollMarginMs?: number;
  /** Deadline of setup and terminate (ms). Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  readonly requestTimeoutMs?: number;
  /** Default {@link DEFAULT_HEALTHY_AFTER_MS}. */
  readonly healthyAfterMs?: number;
  /** Largest request body the client builds (bytes). Default {@link DEFAULT_MAX_BODY_BYTES}. */
  readonly maxBodyBytes?: number;
  /** Default {@link DEFAULT_CLOSE_GRACE_MS}. */
  readonly closeGraceMs?: number;
  /** The fetch to use; the global `fetch` by default. */
  readonly fetch?: FetchLike;
  /** Timers to use; the global ones by default. */
  readonly timers?: Timers;
  /** Source of jitter in [0, 1); `Math.random` by default. */
  readonly random?: () => number;
}

/** The client's life: `connecting` until the first setup succeeds, `reconnecting` while requests fail or a new session is set up. */
export type CometClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/**
 * Why the client closed (or left a session behind):
 * `closed` by `close()`; `expired` the server ended the session; `unreachable` retries ran out;
 * `error` the server refused a request as malformed.
 */
export type CloseReason = 'closed' | 'expired' | 'unreachable' | 'error';

/** Payload of `open`. */
export interface OpenEvent {
  readonly sid: Sid;
  /** The server's hold time for a poll (ms). */
  readonly wait: number;
  /** The server's inactivity limit (ms). */
  readonly inactivity: number;
  /**
   * The session this one replaces after it expired, or null on the first open. When not null,
   * packets the server had queued for the old session and not delivered are lost: resynchronise.
   */
  readonly previousSid: Sid | null;
}

/** Payload of `message`: one packet, delivered once and in seq order. */
export interface MessageEvent {
  readonly sid: Sid;
  readonly seq: Seq;
  readonly data: unknown;
}

/** Payload of `close`. */
export interface CloseEvent {
  readonly reason: CloseReason;
  /** The session that closed (null if none was ever set up). */
  readonly sid: Sid | null;
  /** True when `reconnect` is on and a new session is being set up. */
  readonly willReconnect: boolean;
  /** True when the server may have held packets for this session that never reached the client. */
  readonly serverQueueLost: boolean;
  /** The error behind `unreachable` and `error`. */
  readonly error?: CometClientError;
}

/** Payload of `state`. */
export interface StateEvent {
  readonly state: CometClientState;
  readonly previous: CometClientState;
}

/** Event names and payloads of {@link CometClient}. */
export interface CometClientEvents {
  open: OpenEvent;
  message: MessageEvent;
  close: CloseEvent;
  /** Every failed attempt and every refusal; `close` follows only if the client gives up. */
  error: CometClientError;
  state: StateEvent;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly reconnect: boolean;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  readonly pollMarginMs: number;
  readonly requestTimeoutMs: number;
  readonly healthyAfterMs: number;
  readonly maxBodyBytes: number;
  readonly closeGraceMs: number;
  readonly fetch: FetchLike;
  readonly timers: Timers;
  readonly random: () => number;
}

/** Fills in defaults. */
export function resolveOptions(o: CometClientOptions, defaults: Pick<ResolvedOptions, 'fetch' | 'timers'>): ResolvedOptions {
  return {
    reconnect: o.reconnect ?? false,
    maxRetries: o.maxRetries ?? Infinity,
    retryBaseMs: o.retryBaseMs ?? DEFAULT_RETRY_BASE_MS,
    retryCapMs: o.retryCapMs ?? DEFAULT_RETRY_CAP_MS,
    pollMarginMs: o.pollMarginMs ?? DEFAULT_POLL_MARGIN_MS,
    requestTimeoutMs: o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    healthyAfterMs: o.healthyAfterMs ?? DEFAULT_HEALTHY_AFTER_MS,
    maxBodyBytes: o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    closeGraceMs: o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
    fetch: o.fetch ?? defaults.fetch,
    timers: o.timers ?? defaults.timers,
    random: o.random ?? Math.random,
  };
}
