/**
 * `createCometServer`: the embedding API, and wiring only. It validates the options, starts an
 * actor system with the comet supervision tree (lib/comet/comet_sup.ts), builds the post's
 * interface functions over it (lib/comet/api.ts), puts the Mochiweb-side handler in front
 * (lib/http/handler.ts), and closes all of it in order.
 *
 * The library reads no environment variables; the runnable servers in bin/ do.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from './otp/clock.js';
import { describe, type ExitReason } from './otp/errors.js';
import { nullLogger, type Logger } from './otp/logger.js';
import { startSystem, stopSystem } from './otp/nact.js';
import { shutdown, type Pid } from './otp/proc_lib.js';
import type * as supervisor from '../supervisors/supervisor.js';
import { clearRegistry } from './otp/registry.js';
import { createCometApi, DEFAULT_MAX_SESSIONS, type CometApi } from './comet/api.js';
import { sessionIdServer, startCometSup } from './comet/comet_sup.js';
import { DEFAULT_INACTIVITY_MS, DEFAULT_WAIT_MS, type ConnectionEvent, type SessionHooks } from './comet/connection.js';
import { CometError } from './comet/errors.js';
import { asSid, type Seq, type Sid } from './comet/ids.js';
import { createMetrics } from './comet/metrics.js';
import { DEFAULT_MAX_QUEUE } from './comet/outbox.js';
import * as sessionIds from './comet/session_ids.js';
import { localRouter } from './comet/session_router.js';
import { SessionTable } from './comet/sessions.js';
import { newConnectionStats } from './comet/stats.js';
import { DEFAULT_MAX_BODY_BYTES } from './http/body.js';
import { DEFAULT_CORS, type CorsOption } from './http/cors.js';
import { createHandler, DEFAULT_PATH, pathnameOf, type CometHandler } from './http/handler.js';
import { HeldPolls } from './http/held_polls.js';
import { applyHttpTimeouts, closeHttpServer, KEEP_ALIVE_TIMEOUT_MS } from './http/http_server.js';
import { DEFAULT_HEALTH_PATH, DEFAULT_METRICS_PATH, serveOps } from './http/ops.js';
import { createObserver, type ObserverOptions } from './observer/index.js';
import { COMET_SUP_NAME } from './comet/comet_sup.js';

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
  /** The clock the FSM timers and the setup retry read (tests inject a ManualClock). */
  readonly clock?: Clock;
  /** The session-id source (tests inject a colliding one). */
  readonly generateSid?: () => string;
  /** The observer page and its endpoints (docs/observer.md): off by default. `true` serves it only
   *  on a server bound to loopback; give a `token` to serve it elsewhere. */
  readonly observer?: boolean | ObserverOptions;
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
  const clock: Clock = options.clock ?? systemClock;

  const sessions = new SessionTable();
  const held = new HeldPolls();
  let closing = false;
  let fatal = false;
  let closed: Promise<void> | undefined;
  let httpServer: http.Server | undefined;
  let feedClose: (() => Promise<void>) | undefined;

  const stats = newConnectionStats();
  const metrics = options.metrics === false ? undefined : createMetrics({
    sessions: () => sessions.size, held: () => held.size, stats,
  }, options.metrics?.registry);
  const observer = options.observer ? createObserver(options.observer === true ? {} : options.observer, clock, baseLogger) : undefined;
  const counted = metrics ? metrics.countRestarts(baseLogger) : baseLogger;
  const logger = observer ? observer.watch(counted) : counted;

  // The tree.
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
      ...(options.fault ? { fault: options.fault } : {}),
    },
    sessions,
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
    const reason = 'error' in started ? started.error : 'ignore';
    throw new CometError('ERR_COMET_START_FAILED', `comet supervision tree failed to start: ${describe(reason)}`, { cause: reason });
  }
  const top: Pid<never> = started.ok;
  const router = localRouter(system);
  const api = createCometApi({ system, router, sessions, wait, inactivity, maxSessions, clock, isClosing: () => closing });

  // The handler: the ops endpoints, then the comet endpoint.
  const cometHandler = createHandler(api, {
    path, maxBodyBytes, logger,
    cors: options.cors ?? DEFAULT_CORS,
    isClosing: () => closing,
    inFlight: held,
  });
  const ops = {
    metricsPath: options.metricsPath ?? DEFAULT_METRICS_PATH,
    healthPath: options.healthPath ?? DEFAULT_HEALTH_PATH,
    registry: metrics?.registry,
    healthy: () => !closing && !fatal,
  };
  // One listener function for every response ('finish' fires once; `this` is the response).
  const countResponse = metrics ? function (this: ServerResponse): void { metrics.response(this.statusCode); } : undefined;
  if (observer) {
    // The observer's own sessions live on a comet server of their own: the application never
    // sees them, and they never count against its limits.
    const feed = await createCometServer({
      path: observer.feedPath, metrics: false, logger: baseLogger, ...observer.feedHooks,
    });
    feedClose = () => feed.close();
    observer.attach({
      system, top: top as supervisor.SupRef, rootId: COMET_SUP_NAME, sessions, held: () => held.size, stats,
    }, { handler: feed.handler, handlePacket: (sid, data) => feed.handlePacket(sid, data) });
  }
  const handler: CometHandler = (req, res, next) => {
    const pathname = pathnameOf(req.url);
    if (observer?.serve(pathname, req, res)) return;
    if (serveOps(ops, pathname, req, res)) return;
    if (countResponse) res.on('finish', countResponse);
    cometHandler(req, res, next);
  };

  // Close.
  async function close(): Promise<void> {
    closing = true;
    observer?.stop();
    await feedClose?.();
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
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
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
        return Promise.resolve(api.broadcast(data));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    sessions: () => [...sessions],
    heldCount: () => held.size,
    dropHeldPoll: (sid) => held.drop(sid),
    crashSessionIds() {
      const ids = sessionIdServer(system);
      if (ids) sessionIds.crash(ids);
      return ids !== undefined;
    },
    close() {
      return (closed ??= close());
    },
  };
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new CometError('ERR_COMET_INVALID_OPTION', `option ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}
