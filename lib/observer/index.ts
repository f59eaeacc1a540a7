/**
 * The observer: a live view of one comet server's supervision tree and of every session's FSM,
 * with fault injection (docs/observer.md). A layer above lib/comet and lib/http, below
 * lib/server.ts, which creates it when the `observer` option is on and gives it the feed server
 * (a second comet server, so the observer's own sessions never reach the application).
 *
 *   GET  <base>                 the page (`?token=` once: sets the cookie, redirects)
 *   GET  <base>/observer.js     its script
 *   POST <base>/comet           its feed (wire contract v1)
 *   GET  <base>/api/tree        the tree and the counts, as JSON (`comet-fsm tree`)
 *   POST <base>/api/crash       {"path", "reason"}: crash a process of the tree
 *   POST <base>/api/crash-session {"key", "reason"}: crash one session's FSM (a row on screen)
 *   POST <base>/api/storm       {"path"}: crash a supervisor's child past its intensity
 *   POST <base>/api/suspend     {"path"}: sys:suspend a process of the tree; /api/resume: sys:resume
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../otp/clock.js';
import type { Logger } from '../otp/logger.js';
import type { ParentRef } from '../otp/nact.js';
import { whereis } from '../otp/registry.js';
import type { Pid } from '../otp/proc_lib.js';
import { connectionName } from '../comet/connection.js';
import type { SessionTable } from '../comet/sessions.js';
import type { ConnectionStats } from '../comet/stats.js';
import { readJsonBody } from '../http/body.js';
import { sendJson } from '../http/respond.js';
import type { SupRef } from '../../supervisors/supervisor.js';
import { crash, planStorm, runStorm, suspendOrResume } from './actions.js';
import { Feed, OBSERVER_TICK_MS, type FeedTransport } from './feed.js';
import { History } from './history.js';
import { ClusterNodes, type ClusterSource } from './cluster_view.js';
import { findProcess, TreeReader } from './introspect.js';
import { DEFAULT_OBSERVER_PATH, defaultBundleDir, sendPage, sendScript } from './page.js';
import {
  CRASH_REASONS, OBSERVER_HTTP_STATUS, type CrashReason, type ObserverErrorCode, type TreeSnapshot,
} from './page/protocol.js';
import { accessOf, MIN_TOKEN_LENGTH, sameOrigin, TOKEN_COOKIE, tokenMatches, type Access } from './security.js';
import { countSessions, OBSERVER_PAGE_SIZE, sidTag } from './sessions_view.js';

export { DEFAULT_OBSERVER_PATH, MIN_TOKEN_LENGTH, OBSERVER_TICK_MS, OBSERVER_PAGE_SIZE };
export type { FeedTransport };
export { OBSERVER_ERROR_CODES, OBSERVER_HTTP_STATUS, type ObserverErrorCode } from './page/protocol.js';

/** Largest action body (bytes). */
export const MAX_ACTION_BODY_BYTES = 4096;

/** The `observer` option of `createCometServer`. */
export interface ObserverOptions {
  /** Where the page and its endpoints live (default `/observer`). */
  readonly path?: string;
  /** Required on every request when set (at least 16 characters); without it the observer exists
   *  only on a server bound to loopback. */
  readonly token?: string;
  /** Allow actions on a server not bound to loopback (with the token). Default false. */
  readonly actions?: boolean;
  /** How often open pages are updated (ms, default 1000). */
  readonly tickMs?: number;
  /** Where `observer.js` is (default: the package's dist/client). */
  readonly bundleDir?: string;
  /** The address the server is bound to, for the loopback rule (default: the listening socket's).
   *  Tests use it to play a public bind. */
  readonly boundAddress?: (req: IncomingMessage) => string | undefined;
}

/** What the observer looks at: wired by lib/server.ts once the tree runs. */
export interface ObserverSources {
  readonly system: ParentRef;
  readonly top: SupRef | undefined;
  readonly rootId: string;
  readonly sessions: SessionTable;
  readonly held: () => number;
  readonly stats: ConnectionStats;
  /** This node of a cluster, when the server runs as one. */
  readonly cluster?: ClusterSource;
}

export interface Observer {
  /** Wrap the tree's logger so the supervisors' reports reach the history. */
  watch(logger: Logger): Logger;
  /** The feed server's session hooks. */
  readonly feedHooks: Feed['hooks'];
  /** The feed server's path. */
  readonly feedPath: string;
  attach(sources: ObserverSources, feed: FeedTransport & { readonly handler: (req: IncomingMessage, res: ServerResponse) => void }): void;
  /** Serve `req` if it is the observer's and allowed; false otherwise (the caller answers 404). */
  serve(pathname: string, req: IncomingMessage, res: ServerResponse): boolean;
  stop(): void;
}

/**
 * Create an observer (lib/server.ts does, for the `observer` option).
 * @throws Error if the token is shorter than {@link MIN_TOKEN_LENGTH}.
 */
export function createObserver(opts: ObserverOptions, clock: Clock, logger: Logger): Observer {
  if (opts.token !== undefined && opts.token.length < MIN_TOKEN_LENGTH) {
    throw new Error(`observer token must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  const base = (opts.path ?? DEFAULT_OBSERVER_PATH).replace(/\/+$/, '');
  const bundleDir = opts.bundleDir ?? defaultBundleDir();
  const policy = { token: opts.token, actions: opts.actions === true, ...(opts.boundAddress ? { boundAddress: opts.boundAddress } : {}) };
  const history = new History(clock);
  const reader = new TreeReader(history);
  let src: ObserverSources | undefined;
  let feedHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let lastAccess: Access = { kind: 'none' };
  let clusterNodes: ClusterNodes | undefined;
  const readTree = () => reader.read(src?.top, src?.rootId ?? 'comet_sup');
  const sessionSources = {
    get system() { return need().system; },
    get sessions() { return need().sessions; },
    held: () => need().held(),
    get stats() { return need().stats; },
    clock,
  };
  const need = (): ObserverSources => {
    if (!src) throw new Error('observer not attached');
    return src;
  };
  const feed = new Feed({
    sources: sessionSources, history, readTree, logger, tickMs: opts.tickMs ?? OBSERVER_TICK_MS,
    readCluster: () => clusterNodes?.read(),
    hello: () => ({
      type: 'hello', actions: lastAccess.kind === 'view' && lastAccess.actions, suspend: true,
      pageSize: OBSERVER_PAGE_SIZE, tickMs: opts.tickMs ?? OBSERVER_TICK_MS,
    }),
  });

  const fail = (res: ServerResponse, code: ObserverErrorCode, message: string): void => {
    sendJson(res, OBSERVER_HTTP_STATUS[code], { error: code, message });
  };

  /** Log and record an action, with who asked: their address, never a sid. */
  const audit = (req: IncomingMessage, access: Extract<Access, { kind: 'view' }>, action: string, target: string, extra: Record<string, unknown> = {}): void => {
    const who = `${req.socket.remoteAddress ?? 'unknown'} (${access.via})`;
    logger.warn({ observer: action, target, ...extra, from: req.socket.remoteAddress, via: access.via }, 'observer action');
    history.add({ kind: 'action', path: target, action: [action, ...Object.values(extra).map(String)].join(' '), who });
  };

  async function act(route: string, body: unknown, req: IncomingMessage, res: ServerResponse, access: Extract<Access, { kind: 'view' }>): Promise<void> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const reason = b.reason ?? 'error';
    if ((route === 'crash' || route === 'crash-session') && !CRASH_REASONS.includes(reason as CrashReason)) {
      fail(res, 'observer_bad_request', `reason must be one of ${CRASH_REASONS.join(', ')}`);
      return;
    }
    const s = need();
    switch (route) {
      case 'crash': {
        if (typeof b.path !== 'string') return fail(res, 'observer_bad_request', 'path must be a string');
        const found = await findProcess(s.top, s.rootId, b.path);
        if (!found) return fail(res, 'observer_unknown_target', 'no process running at that path');
        audit(req, access, 'crash', b.path, { reason });
        await crash(found.pid, reason as CrashReason);
        sendJson(res, 200, { ok: true, path: b.path, reason });
        feed.tick();
        return;
      }
      case 'crash-session': {
        if (typeof b.key !== 'string') return fail(res, 'observer_bad_request', 'key must be a string');
        const sid = feed.shownSid(b.key);
        const pid = sid === undefined ? undefined : whereis(s.system, connectionName(sid)) as Pid<never> | undefined;
        if (sid === undefined || pid === undefined) return fail(res, 'observer_unknown_target', 'no such session on screen');
        audit(req, access, 'crash-session', `${s.rootId}/connection_sup/connection`, { session: sidTag(sid), reason });
        await crash(pid, reason as CrashReason);
        sendJson(res, 200, { ok: true, session: sidTag(sid), reason });
        feed.tick();
        return;
      }
      case 'suspend':
      case 'resume': {
        if (typeof b.path !== 'string') return fail(res, 'observer_bad_request', 'path must be a string');
        const found = await findProcess(s.top, s.rootId, b.path);
        if (!found) return fail(res, 'observer_unknown_target', 'no process running at that path (or under a suspended supervisor)');
        audit(req, access, route, b.path);
        await suspendOrResume(found.pid, route);
        sendJson(res, 200, { ok: true, path: b.path, [route === 'suspend' ? 'suspended' : 'resumed']: true });
        feed.tick();
        return;
      }
      case 'storm': {
        if (typeof b.path !== 'string') return fail(res, 'observer_bad_request', 'path must be a string');
        const plan = await planStorm(s.top, s.rootId, b.path);
        if (!plan.ok) return fail(res, plan.code, plan.message);
        audit(req, access, 'storm', b.path, { child: plan.child, crashes: plan.crashes });
        // Answered first: a storm on the top supervisor stops the server it runs in.
        sendJson(res, 202, { ok: true, path: b.path, child: plan.child, crashes: plan.crashes });
        void runStorm(plan, (ms) => new Promise((r) => setTimeout(r, ms))).then(() => feed.tick());
        return;
      }
      default:
        fail(res, 'observer_bad_request', 'no such action');
    }
  }

  function serve(pathname: string, req: IncomingMessage, res: ServerResponse): boolean {
    if (pathname !== base && !pathname.startsWith(`${base}/`)) return false;
    const rest = pathname.slice(base.length);
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    // The page's first load may carry the token in the query; it is moved to a cookie at once.
    const queryToken = rest === '' && get && opts.token !== undefined ? new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined : undefined;
    const access = accessOf(req, policy, queryToken);
    if (access.kind === 'none') return false;
    lastAccess = access;
    if (queryToken !== undefined && opts.token !== undefined && tokenMatches(queryToken, opts.token)) {
      res.writeHead(303, {
        Location: base,
        'Set-Cookie': `${TOKEN_COOKIE}=${encodeURIComponent(queryToken)}; Path=${base}; HttpOnly; SameSite=Strict`,
        'Cache-Control': 'no-store',
      }).end();
      return true;
    }
    if (rest === '' && get) {
      sendPage(res, base, method === 'HEAD');
      return true;
    }
    if (rest === '/observer.js' && get) {
      sendScript(res, bundleDir, method === 'HEAD');
      return true;
    }
    if (rest === '/comet' && feedHandler) {
      feedHandler(req, res);
      return true;
    }
    if (rest === '/api/tree' && get) {
      void readTree().then((tree) => {
        const cluster = clusterNodes?.read();
        const snapshot: TreeSnapshot = { tree, counts: countSessions(sessionSources), ...(cluster ? { cluster } : {}) };
        sendJson(res, 200, snapshot, { 'Cache-Control': 'no-store' });
      }, () => sendJson(res, 503, { error: 'overloaded', message: 'tree unavailable' }));
      return true;
    }
    const action = /^\/api\/(crash|crash-session|storm|suspend|resume)$/.exec(rest)?.[1];
    if (action === undefined) return false;
    if (method !== 'POST') {
      fail(res, 'observer_bad_request', 'use POST');
      return true;
    }
    if (!sameOrigin(req)) {
      fail(res, 'observer_forbidden_origin', 'actions only from the observer page itself');
      return true;
    }
    if (!access.actions) {
      fail(res, 'observer_actions_disabled', 'actions are off: the server is not bound to loopback and was not started with --observer-actions');
      return true;
    }
    void readJsonBody(req, { maxBytes: MAX_ACTION_BODY_BYTES }).then((r) => {
      if (!r.ok) return fail(res, 'observer_bad_request', r.message);
      return act(action, r.value, req, res, access);
    }).catch((err: unknown) => {
      logger.error({ err: String(err) }, 'observer: action failed');
      if (!res.headersSent) sendJson(res, 503, { error: 'overloaded', message: 'action failed' });
    });
    return true;
  }

  return {
    watch: (l) => history.watch(l),
    feedHooks: feed.hooks,
    feedPath: `${base}/comet`,
    attach(sources, transport) {
      src = sources;
      clusterNodes = sources.cluster ? new ClusterNodes(sources.cluster, () => sources.sessions.size) : undefined;
      feedHandler = transport.handler;
      feed.attach(transport);
    },
    serve,
    stop: () => feed.stop(),
  };
}
