/**
 * `createCometServer`: the embedding API. It starts an actor system with the comet supervision
 * tree, builds the post's interface functions over it, and exposes a `(req, res)` handler (or its
 * own node:http server through `listen`).
 *
 * The library reads no environment variables; the runnable servers in bin/ do.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { Clock } from '../otp/clock.js';
import { describe, type ExitReason } from '../otp/errors.js';
import { nullLogger, type Logger } from '../otp/logger.js';
import { startSystem, stopSystem } from '../otp/nact.js';
import * as genServer from '../otp/gen_server.js';
import { shutdown, type Pid } from '../otp/proc_lib.js';
import { clearRegistry } from '../otp/registry.js';
import { DEFAULT_MAX_BODY_BYTES } from '../http/body.js';
import { DEFAULT_CORS, type CorsOption } from '../http/cors.js';
import { createHandler, pathnameOf, type CometHandler } from '../http/handler.js';
import { DEFAULT_HEALTH_PATH, DEFAULT_METRICS_PATH, serveOps } from '../http/ops.js';
import { applyHttpTimeouts, closeHttpServer } from '../http/http_server.js';
import type { Registry } from 'prom-client';
import { createMetrics } from './metrics.js';
import { newConnectionStats } from './stats.js';
import { sessionIdServer, startCometSup, startConnection } from './comet_sup.js';
import { assertSendable, createCometApi, type CometApi } from './api.js';
import type { ConnectionEvent, SessionEndReason, SessionHooks } from './connection.js';
import { asSid, type Seq, type Sid } from './ids.js';
import { DEFAULT_MAX_QUEUE } from './outbox.js';
import * as sessionIds from './session_ids.js';
import { localRouter } from './session_router.js';

/** Defaults, as the wire contract states them. */
export const DEFAULT_PATH = '/comet';
/** How long a request is held without packets (ms). Keep it below any proxy's idle timeout. */
export const DEFAULT_WAIT_MS = 60_000;
/** The post's dietimer: this long without a held request and the session ends (ms). */
export const DEFAULT_INACTIVITY_MS = 45_000;
/** Sessions beyond this get `503 overloaded` at setup. One process holds about 19,000 sockets. */
export const DEFAULT_MAX_SESSIONS = 20_000;
/** How long the session-id server may be away (restarting) before a setup answers 503. */
export const SETUP_RETRY_MS = 1000;
/** How long one call to a running session-id server may take. Long on purpose: a busy server is
 *  slow, not gone (a dead one rejects the call at once through its monitor), and a setup refused
 *  while its id is still being reserved would leave that id reserved. */
export const SETUP_CALL_TIMEOUT_MS = 10_000;

export interface CometServerOptions extends SessionHooks {
  /** Endpoint path (default `/comet`). */
  readonly path?: string;
  readonly wait?: number;
  readonly inactivity?: number;
  readonly maxBodyBytes?: number;
  readonly maxSessions?: number;
  /** Unacked packets per session before `handlePacket` rejects with `overloaded`. */
  readonly maxQueue?: number;
  /** CORS origins allowed to call the endpoint (default: none). */
  readonly cors?: CorsOption;
  /** A pino-compatible logger (default: silent). */
  readonly logger?: Logger;
  /** comet_sup's restart intensity and period (OTP's defaults: 1 in 5 s). */
  readonly intensity?: number;
  readonly period?: number;
  /** Called once if the supervision tree gives up (restart intensity reached at the top). The
   *  server stops serving; a runnable server should exit non-zero. */
  readonly onFatal?: (reason: ExitReason) => void;
  /** Prometheus metrics: `false` for none, or the registry to register in (default: a new one). */
  readonly metrics?: false | { readonly registry?: Registry };
  /** Where `GET` serves the metrics and the health check (default `/metrics`, `/healthz`; false: off). */
  readonly metricsPath?: string | false;
  readonly healthPath?: string | false;
  /** Fault injection for crash tests: return true to make that FSM's handler throw. */
  readonly fault?: (sid: Sid, event: ConnectionEvent['type']) => boolean;
  /** The clock FSM timers read (tests inject a ManualClock). */
  readonly clock?: Clock;
  /** The session-id source (tests inject a colliding one). */
  readonly generateSid?: () => string;
}

export interface CometServer {
  /** The `(req, res[, next])` handler: node:http, Express middleware, Fastify's raw objects. */
  readonly handler: CometHandler;
  /** The Prometheus registry holding this server's metrics (undefined with `metrics: false`). */
  readonly registry: Registry | undefined;
  /** The post's interface functions, for embedders that route requests themselves. */
  readonly api: CometApi;
  /** Listen on its own node:http server; resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The node:http server `listen` created, if any. */
  readonly httpServer: http.Server | undefined;
  /** Push `data` to one session; rejects with CometError `unknown_session` or `overloaded`. */
  handlePacket(sid: Sid | string, data: unknown): Promise<Seq>;
  /** Push `data` to every live session without waiting for them; resolves to how many live
   *  sessions it was sent to. A session whose queue is full refuses it and logs a warning (not
   *  counted out here): use `handlePacket` per session to be told. */
  broadcast(data: unknown): Promise<number>;
  /** The live sessions. */
  sessions(): readonly Sid[];
  /** How many requests are held right now. */
  heldCount(): number;
  /** Test hook: destroy the socket of every request of `sid` in flight (a dead network). */
  dropHeldPoll(sid: Sid | string): number;
  /** Test hook: crash the session-id server (its supervisor restarts it); false if it is not running. */
  crashSessionIds(): boolean;
  /** Graceful: stop accepting, answer held polls with what they have, end sessions with reason
   *  `shutdown`, stop the tree in reverse order. */
  close(): Promise<void>;
}

/**
 * Start a comet server.
 * @example
 * const comet = await createCometServer({ onMessage: (sid, data) => comet.broadcast(data) });
 * const { port } = await comet.listen(8080, '127.0.0.1');
 */
export async function createCometServer(options: CometServerOptions = {}): Promise<CometServer> {
  const baseLogger = options.logger ?? nullLogger;
  const wait = positive('wait', options.wait ?? DEFAULT_WAIT_MS);
  const inactivity = positive('inactivity', options.inactivity ?? DEFAULT_INACTIVITY_MS);
  const maxSessions = positive('maxSessions', options.maxSessions ?? DEFAULT_MAX_SESSIONS);
  const maxBodyBytes = positive('maxBodyBytes', options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  const maxQueue = positive('maxQueue', options.maxQueue ?? DEFAULT_MAX_QUEUE);
  const path = options.path ?? DEFAULT_PATH;

  const live = new Set<Sid>();
  const held = new Map<ServerResponse, Sid>();
  let setupsInFlight = 0;
  let closing = false;
  let closed: Promise<void> | undefined;
  let httpServer: http.Server | undefined;

  const stats = newConnectionStats();
  const metrics = options.metrics === false ? undefined : createMetrics({
    sessions: () => live.size, held: () => held.size, stats,
  }, options.metrics?.registry);
  const logger = metrics ? metrics.countRestarts(baseLogger) : baseLogger;
  let fatal = false;

  const system = startSystem();
  // Called as plain functions, so an options object's methods keep working unbound.
  const hooks: SessionHooks = {
    onSession: (sid) => options.onSession?.(sid),
    onMessage: (sid, data, session) => options.onMessage?.(sid, data, session),
    onSessionEnd: (sid, why) => options.onSessionEnd?.(sid, why),
  };
  const started = await startCometSup(system, {
    connection: {
      wait, inactivity, maxQueue, hooks, logger, stats,
      onStarted: (sid) => live.add(sid),
      onEnded: (sid: Sid, _why: SessionEndReason) => {
        live.delete(sid);
        const ids = sessionIdServer(system);
        if (ids) sessionIds.release(ids, sid);
      },
      ...(options.fault ? { fault: options.fault } : {}),
    },
    logger,
    onExit: (reason) => {
      if (closing) return;
      closing = true;
      fatal = true;
      logger.error({ reason: describe(reason) }, 'comet supervision tree stopped: restart intensity reached, server no longer serving');
      options.onFatal?.(reason);
    },
    ...(options.intensity !== undefined ? { intensity: options.intensity } : {}),
    ...(options.period !== undefined ? { period: options.period } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.generateSid ? { generateSid: options.generateSid } : {}),
  });
  if (!('ok' in started)) {
    stopSystem(system);
    throw new Error(`comet supervision tree failed to start: ${describe('error' in started ? started.error : 'ignore')}`);
  }
  const top: Pid<never> = started.ok;
  const router = localRouter(system);

  async function newSid(): Promise<Sid | undefined> {
    // The session-id server may be restarting after a crash: retry briefly inside rather than
    // fail the setup, then give up with a 503 the client retries.
    const deadline = Date.now() + SETUP_RETRY_MS;
    for (;;) {
      const ids = sessionIdServer(system);
      if (ids) {
        try {
          return await sessionIds.newSid(ids, SETUP_CALL_TIMEOUT_MS);
        } catch {
          // it died during the call; fall through and retry
        }
      }
      if (Date.now() >= deadline || closing) return undefined;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const api = createCometApi({
    router, wait, inactivity,
    async newSession() {
      if (closing) return { error: 'shutting_down', message: 'the server is shutting down' };
      if (live.size + setupsInFlight >= maxSessions) return { error: 'overloaded', message: 'session limit reached' };
      setupsInFlight++;
      try {
        const sid = await newSid();
        if (sid === undefined) return { error: 'overloaded', message: 'session ids unavailable, retry' };
        const r = await startConnection(system, sid);
        if (!('ok' in r)) {
          // A name clash means a live session owns this sid: releasing it would free a live id.
          const clash = 'error' in r && typeof r.error === 'object' && r.error !== null && 'already_started' in r.error;
          const ids = sessionIdServer(system);
          if (ids && !clash) sessionIds.release(ids, sid);
          return { error: 'overloaded', message: 'could not start the session, retry' };
        }
        return { ok: sid };
      } finally {
        setupsInFlight--;
      }
    },
  });

  const cometHandler = createHandler(api, {
    path, maxBodyBytes, logger,
    cors: options.cors ?? DEFAULT_CORS,
    isClosing: () => closing,
    inFlight: {
      add(res, body) {
        const sid = typeof body === 'object' && body !== null && 'sid' in body && typeof body.sid === 'string' ? body.sid : undefined;
        if (sid !== undefined) held.set(res, asSid(sid));
      },
      delete(res) {
        held.delete(res);
      },
    },
  });

  const ops = {
    metricsPath: options.metricsPath ?? DEFAULT_METRICS_PATH,
    healthPath: options.healthPath ?? DEFAULT_HEALTH_PATH,
    registry: metrics?.registry,
    healthy: () => !closing && !fatal,
  };
  // One listener function for every response ('finish' fires once; `this` is the response).
  const countResponse = metrics ? function (this: ServerResponse): void { metrics.response(this.statusCode); } : undefined;
  const handler: CometHandler = (req, res, next) => {
    if (serveOps(ops, pathnameOf(req.url), req, res)) return;
    if (countResponse) res.on('finish', countResponse);
    cometHandler(req, res, next);
  };

  async function close(): Promise<void> {
    closing = true;
    // Ends every session with reason `shutdown`; each FSM's terminate answers its held poll.
    const endSessions = (): Promise<void> => shutdown(top, 'shutdown', 'infinity');
    if (httpServer) await closeHttpServer(httpServer, endSessions);
    else await endSessions();
    clearRegistry(system);
    stopSystem(system);
  }


  return {
    handler,
    api,
    registry: metrics?.registry,
    get httpServer() {
      return httpServer;
    },
    listen(port = 0, host = '127.0.0.1') {
      const server = http.createServer(handler);
      applyHttpTimeouts(server, wait);
      // Keep-alive between a response and the client's next poll: short, it comes at once.
      server.keepAliveTimeout = 5000;
      httpServer = server;
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    handlePacket: (sid, data) => api.handlePacket(asSid(sid), data),
    broadcast(data) {
      try {
        assertSendable(data);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      // One event for every session: events are never mutated, and a broadcast to 19,000
      // sessions need not allocate 19,000 copies of it.
      const event: ConnectionEvent = { type: 'packet', data, from: undefined };
      let n = 0;
      for (const sid of live) if (router.cast(sid, event)) n++;
      return Promise.resolve(n);
    },
    sessions: () => [...live],
    heldCount: () => held.size,
    dropHeldPoll(sid) {
      let n = 0;
      for (const [res, s] of held) {
        if (s === sid) {
          res.socket?.destroy();
          n++;
        }
      }
      return n;
    },
    crashSessionIds() {
      const ids = sessionIdServer(system);
      if (ids) genServer.cast(ids, { type: 'crash' });
      return ids !== undefined;
    },
    close() {
      return (closed ??= close());
    },
  };
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw Object.assign(new RangeError(`option ${name} must be a positive integer, got ${String(v)}`), { code: 'ERR_COMET_INVALID_OPTION' });
  }
  return v;
}

