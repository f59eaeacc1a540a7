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
import { throttleLogger } from './otp/log_throttle.js';
import { startSystem, stopSystem } from './otp/nact.js';
import { shutdown, type Pid } from './otp/proc_lib.js';
import type * as supervisor from '../supervisors/supervisor.js';
import { clearRegistry } from './otp/registry.js';
import { Cluster, type ClusterNodeStats, type ClusterOptions } from './cluster/cluster.js';
import { endConnections } from './cluster/fence.js';
import { createCometApi, DEFAULT_MAX_SESSIONS, type CometApi } from './comet/api.js';
import { ClientLimits, DEFAULT_MAX_SESSIONS_PER_CLIENT, DEFAULT_SETUP_RATE_PER_CLIENT } from './comet/client_limits.js';
import { sessionIdServer, startCometSup } from './comet/comet_sup.js';
import { DEFAULT_MAX_SERVER_BYTES, DEFAULT_MAX_SESSION_BYTES, ServerBudget } from './comet/budget.js';
import { DEFAULT_INACTIVITY_MS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_WAIT_MS, type ConnectionEvent, type SessionHooks } from './comet/connection.js';
import { CometError } from './comet/errors.js';
import { asSid, type Seq, type Sid } from './comet/ids.js';
import { createMetrics } from './comet/metrics.js';
import { DEFAULT_MAX_QUEUE } from './comet/outbox.js';
import * as sessionIds from './comet/session_ids.js';
import { nodeSid } from './comet/session_ids.js';
import { localRouter } from './comet/session_router.js';
import { SessionTable } from './comet/sessions.js';
import { newConnectionStats } from './comet/stats.js';
import { DEFAULT_MAX_BODY_BYTES } from './http/body.js';
import { DEFAULT_CORS, type CorsOption } from './http/cors.js';
import {
  createHandler, DEFAULT_MAX_CONNECTIONS_PER_SESSION, DEFAULT_PATH, DEFAULT_WRITE_TIMEOUT_MS, pathnameOf, type CometHandler,
} from './http/handler.js';
import { HeldPolls } from './http/held_polls.js';
import { applyHttpTimeouts, closeHttpServer, deferContinue, KEEP_ALIVE_TIMEOUT_MS } from './http/http_server.js';
import { DEFAULT_HEALTH_PATH, DEFAULT_METRICS_PATH, serveOps } from './http/ops.js';
import { requestUrl } from './http/request_url.js';
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
  /** Bytes one session may hold: messages buffered ahead of a missing rid, unacked packets,
   *  responses not yet flushed (default {@link DEFAULT_MAX_SESSION_BYTES}, 4 MiB). Over it, requests
   *  bringing messages get `503 overloaded` and `handlePacket` rejects with `overloaded`. */
  readonly maxSessionBytes?: number;
  /** Bytes all sessions together may hold (default {@link DEFAULT_MAX_SERVER_BYTES}, 256 MiB); over
   *  it, the same refusals, for every session. */
  readonly maxServerBytes?: number;
  /** Longest response in bytes (default {@link DEFAULT_MAX_RESPONSE_BYTES}, 1 MiB): a response
   *  carries the oldest packets up to it, the rest go in the next one. A packet whose reply alone
   *  is longer is refused when pushed (`ERR_COMET_PACKET_TOO_LARGE`). At most `maxSessionBytes`. */
  readonly maxResponseBytes?: number;
  /** Live sessions one client address (IPv6: one /64) may hold; beyond, setups get
   *  `429 too_many_sessions`. Default {@link DEFAULT_MAX_SESSIONS_PER_CLIENT}; 0: no limit. */
  readonly maxSessionsPerClient?: number;
  /** Setups a second one client address may make; beyond, `429 rate_limited`. Default
   *  {@link DEFAULT_SETUP_RATE_PER_CLIENT}; 0: no limit. */
  readonly setupRatePerClient?: number;
  /** A response not flushed to its socket within this many ms has its socket destroyed (its
   *  packets stay queued). Default {@link DEFAULT_WRITE_TIMEOUT_MS}. */
  readonly writeTimeout?: number;
  /** Requests of one session in flight at once; beyond, `503 overloaded`. Default
   *  {@link DEFAULT_MAX_CONNECTIONS_PER_SESSION}. */
  readonly maxConnectionsPerSession?: number;
  /** Count clients by the last `X-Forwarded-For` entry, not the socket's address. Only behind
   *  a proxy that sets that header: otherwise any client names its own address. Default false. */
  readonly trustProxy?: boolean;
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
  /**
   * Run as one node of a cluster on Redis: every node serves every request (no sticky sessions), the
   * sid names the node that owns it, and a request for another node's session is forwarded there
   * (docs/scale-out.md). Without it, one process and no Redis.
   */
  readonly cluster?: ClusterOptions;
  /** The observer page and its endpoints (docs/observer.md): off by default. `true` serves it only
   *  on a server bound to loopback; give a `token` to serve it elsewhere. */
  readonly observer?: boolean | ObserverOptions;
}

/** A cluster node, as `CometServer.cluster` shows it. */
export interface CometCluster {
  /** This node's id in its current life (`<name>~<creation>`; it changes if the node fences itself). */
  readonly node: string;
  /** Its counts for `/admin/stats`: forwarded calls, served calls, Redis up, nodes seen. */
  stats(): ClusterNodeStats;
  /** Broadcast to every node; resolves with this node's session count and the nodes reached.
   *  Rejects with CometError `overloaded`, having sent nothing, when Redis is unreachable. */
  broadcast(data: unknown): Promise<{ readonly sessions: number; readonly nodes: number }>;
}

export interface CometServer {
  /** The `(req, res[, next])` handler: node:http, Express middleware, Fastify's raw objects. It
   *  serves `path`, `metricsPath` and `healthPath` (matched against `req.originalUrl` when Express
   *  set one) and calls `next()`, or answers 404 without it, for every other path. */
  readonly handler: CometHandler;
  /** The options in effect, defaults applied: e.g. `applyHttpTimeouts(server, comet.wait)`. */
  readonly path: string;
  readonly metricsPath: string | false;
  readonly healthPath: string | false;
  readonly wait: number;
  readonly inactivity: number;
  readonly maxBodyBytes: number;
  readonly maxSessions: number;
  readonly maxQueue: number;
  /** The Prometheus registry holding this server's metrics (undefined with `metrics: false`). */
  readonly registry: Registry | undefined;
  /** The post's interface functions, for embedders that route requests themselves. */
  readonly api: CometApi;
  /** This node of the cluster, when the `cluster` option is set. */
  readonly cluster: CometCluster | undefined;
  /** Listen on its own node:http server; resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The node:http server `listen` created, if any. */
  readonly httpServer: http.Server | undefined;
  /** Push `data` to one session (on a cluster, owned by any node); rejects with CometError
   *  `unknown_session` or `overloaded` (its queue or a byte budget is full), `bad_request` or
   *  `ERR_COMET_PACKET_TOO_LARGE` (never queued). */
  handlePacket(sid: Sid | string, data: unknown): Promise<Seq>;
  /** Push `data` to every live session without waiting for them; resolves to how many live
   *  sessions it was sent to. A session whose queue or byte budget is full refuses it and logs a
   *  warning (not counted out here): use `handlePacket` per session to be told. Rejects with
   *  `bad_request` or `ERR_COMET_PACKET_TOO_LARGE`, sent to none. Encoded once for all sessions.
   *  On a cluster node it reaches every node's sessions and resolves to this node's count; it
   *  rejects with CometError `overloaded`, having sent nothing anywhere, while Redis is unreachable. */
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
  const maxSessionBytes = positive('maxSessionBytes', options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES);
  const maxServerBytes = positive('maxServerBytes', options.maxServerBytes ?? DEFAULT_MAX_SERVER_BYTES);
  const maxResponseBytes = positive('maxResponseBytes', options.maxResponseBytes ?? Math.min(DEFAULT_MAX_RESPONSE_BYTES, maxSessionBytes));
  if (maxResponseBytes > maxSessionBytes) {
    throw new CometError('ERR_COMET_INVALID_OPTION', `option maxResponseBytes (${maxResponseBytes}) must be at most maxSessionBytes (${maxSessionBytes})`);
  }
  const serverBudget = new ServerBudget(maxServerBytes);
  const writeTimeout = positive('writeTimeout', options.writeTimeout ?? DEFAULT_WRITE_TIMEOUT_MS);
  const maxConnectionsPerSession = positive('maxConnectionsPerSession', options.maxConnectionsPerSession ?? DEFAULT_MAX_CONNECTIONS_PER_SESSION);
  const path = options.path ?? DEFAULT_PATH;
  const clock: Clock = options.clock ?? systemClock;

  const clientLimits = new ClientLimits({
    maxSessionsPerClient: nonNegative('maxSessionsPerClient', options.maxSessionsPerClient ?? DEFAULT_MAX_SESSIONS_PER_CLIENT),
    setupRatePerClient: nonNegative('setupRatePerClient', options.setupRatePerClient ?? DEFAULT_SETUP_RATE_PER_CLIENT),
    now: () => clock.now(),
  });
  const sessions = new SessionTable((sid) => clientLimits.ended(sid));
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
  // What clients' traffic can make the server say, one line per kind per interval with a count.
  const warnings = throttleLogger(logger, options.clock ? { clock: options.clock } : {});

  // A cluster node has its id before the tree starts: every sid it hands out carries it.
  const cluster = options.cluster ? new Cluster(options.cluster, { logger, registry: metrics?.registry }) : undefined;
  const userGenerate = options.generateSid;
  const generateSid = cluster ? () => nodeSid(cluster.node, userGenerate?.()) : userGenerate;

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
      wait, inactivity, maxQueue, maxSessionBytes, maxResponseBytes, serverBudget, hooks, stats, logger: warnings,
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
    ...(generateSid ? { generateSid } : {}),
  });
  if (!('ok' in started)) {
    stopSystem(system);
    await cluster?.close();
    const reason = 'error' in started ? started.error : 'ignore';
    throw new CometError('ERR_COMET_START_FAILED', `comet supervision tree failed to start: ${describe(reason)}`, { cause: reason });
  }
  const top: Pid<never> = started.ok;
  const local = localRouter(system);
  // The cluster starts before the API exists (the API needs its router): a broadcast arriving in
  // between finds no API yet, and no session either.
  const late: { api?: CometApi } = {};
  if (cluster) {
    await cluster.start({
      local,
      deliverBroadcast: (data) => late.api?.broadcast(data) ?? 0,
      endLocalSessions: () => endConnections(system),
    });
  }
  const router = cluster ? cluster.router : local;
  const api = late.api = createCometApi({ system, router, sessions, wait, inactivity, maxSessions, maxResponseBytes, clock, clientLimits, isClosing: () => closing });

  // The handler: the ops endpoints, then the comet endpoint.
  const cometHandler = createHandler(api, {
    path, maxBodyBytes, logger: warnings,
    cors: options.cors ?? DEFAULT_CORS,
    trustProxy: options.trustProxy ?? false,
    writeTimeout, maxConnectionsPerSession,
    ...(options.clock ? { clock: options.clock } : {}),
    isClosing: () => closing,
    inFlight: held,
    ...(metrics ? { onResponse: (res: ServerResponse) => metrics.response(res.statusCode) } : {}),
  });
  const ops = {
    metricsPath: options.metricsPath ?? DEFAULT_METRICS_PATH,
    healthPath: options.healthPath ?? DEFAULT_HEALTH_PATH,
    registry: metrics?.registry,
    healthy: () => !closing && !fatal,
  };
  if (observer) {
    // The observer's own sessions live on a comet server of their own: the application never
    // sees them, and they never count against its limits.
    const feed = await createCometServer({
      path: observer.feedPath, metrics: false, logger: baseLogger, ...observer.feedHooks,
    });
    feedClose = () => feed.close();
    observer.attach({
      system, top: top as supervisor.SupRef, rootId: COMET_SUP_NAME, sessions, held: () => held.size, stats,
      ...(cluster ? { cluster } : {}),
    }, { handler: feed.handler, handlePacket: (sid, data) => feed.handlePacket(sid, data) });
  }
  const handler: CometHandler = (req, res, next) => {
    const pathname = pathnameOf(requestUrl(req));
    if (observer?.serve(pathname, req, res)) return;
    if (serveOps(ops, pathname, req, res)) return;
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
    // After the sessions: a forwarded request in flight still reached them until now.
    await cluster?.close();
    clearRegistry(system);
    stopSystem(system);
    warnings.flush();
  }

  return {
    handler,
    path, metricsPath: ops.registry ? ops.metricsPath : false, healthPath: ops.healthPath,
    wait, inactivity, maxBodyBytes, maxSessions, maxQueue,
    api,
    cluster: cluster && {
      get node() {
        return cluster.node;
      },
      stats: () => cluster.stats(),
      broadcast: (data) => cluster.broadcast(data),
    },
    registry: metrics?.registry,
    get httpServer() {
      return httpServer;
    },
    listen(port = 0, host = '127.0.0.1') {
      const server = http.createServer(handler);
      applyHttpTimeouts(server, wait);
      deferContinue(server, path);
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
      if (cluster) return cluster.broadcast(data).then((r) => r.sessions);
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

function nonNegative(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new CometError('ERR_COMET_INVALID_OPTION', `option ${name} must be an integer >= 0 (0: no limit), got ${String(v)}`);
  }
  return v;
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new CometError('ERR_COMET_INVALID_OPTION', `option ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}
