/**
 * The Mochiweb loop's equivalent: a `(req, res[, next])` handler for node:http, Express and
 * Fastify (through `request.raw`/`reply.raw`). It stays thin, as the post's handler does: check the
 * method and the body, hand the decoded JSON to `handleJson` with a watch on the socket, and write
 * whatever comes back.
 *
 * Socket death is the response's `close` before it finished. A request's own `close` fires as soon
 * as its body has been read (Node >= 16), so it says nothing about the client; the response's does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CometApi, SocketWatch } from '../comet/api.js';
import { systemClock, type Clock } from '../otp/clock.js';
import type { Logger } from '../otp/logger.js';
import { readJsonBodyThen } from './body.js';
import { requestUrl } from './request_url.js';
import { allowedMethods, applyCors, handlePreflight, type CorsOption } from './cors.js';
import { isWritable, sendError, sendJson, sendJsonText } from './respond.js';

/** The endpoint path of wire contract v1. */
export const DEFAULT_PATH = '/comet';

/**
 * How long a response may take to be flushed to its socket before the socket is destroyed (ms):
 * a client that does not read would otherwise hold the response's bytes in memory for ever.
 * Nothing is lost by it: the packets stay in the session's outbox until acked. Far longer than
 * any client that reads needs for a bounded response (nginx's `send_timeout` is 60 s).
 */
export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;

/**
 * Requests of one session in flight at once (received, not yet answered and flushed). A client
 * needs two (the poll and a send) and briefly a third (a retry whose abandoned predecessor is
 * still closing); beyond, `503 overloaded`, so one session cannot have one big response written
 * to hundreds of sockets.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_SESSION = 4;

/** Express-style continuation: called for requests outside the comet path, when given. */
export type Next = (err?: unknown) => void;

/** The request handler. Mount it on a node:http server, or as Express middleware. */
export type CometHandler = (req: IncomingMessage, res: ServerResponse, next?: Next) => void;

export interface HandlerOptions {
  readonly path: string;
  readonly maxBodyBytes: number;
  readonly cors: CorsOption;
  readonly logger: Logger;
  /** Default {@link DEFAULT_WRITE_TIMEOUT_MS}. */
  readonly writeTimeout?: number;
  /** Default {@link DEFAULT_MAX_CONNECTIONS_PER_SESSION}. */
  readonly maxConnectionsPerSession?: number;
  /** The clock of the write timeout (tests inject a ManualClock). Default: the system clock. */
  readonly clock?: Clock;
  /** True once the server is closing: new requests get `503 shutting_down`. */
  readonly isClosing: () => boolean;
  /** Take the client's address from the last `X-Forwarded-For` entry (the one the proxy in
   *  front appended) instead of the socket. Only behind a proxy that sets it: without one, any
   *  client can claim any address and escape per-client limits. Default false. */
  readonly trustProxy?: boolean;
  /** Told of every response to a request frame while it is in flight (the test hook `dropHeldPoll`). */
  readonly inFlight?: { add(res: ServerResponse, body: unknown): void; delete(res: ServerResponse): void };
}

/**
 * Build the handler.
 * @example
 * const handler = createHandler(api, { path: '/comet', maxBodyBytes: 65_536, cors: false, logger, isClosing: () => false });
 * http.createServer(handler).listen(8080);
 */
export function createHandler(api: CometApi, opts: HandlerOptions): CometHandler {
  const limits: ResponseLimits = {
    writeTimeout: opts.writeTimeout ?? DEFAULT_WRITE_TIMEOUT_MS,
    maxPerSession: opts.maxConnectionsPerSession ?? DEFAULT_MAX_CONNECTIONS_PER_SESSION,
    clock: opts.clock ?? systemClock,
    inFlight: new Map(),
  };
  return (req, res, next) => {
    if (pathnameOf(requestUrl(req)) !== opts.path) {
      if (next) return next();
      sendError(res, 'not_found', 'no such endpoint');
      return;
    }
    const failed = (err: unknown): void => {
      // Only a bug gets here; the client gets a plain 503 and no stack trace.
      opts.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'comet handler failed');
      sendError(res, 'overloaded', 'internal error');
    };
    try {
      serve(api, opts, limits, req, res, failed);
    } catch (err) {
      failed(err);
    }
  };
}

// Promise chains rather than async functions: while a poll is held, an async function's frame
// (every local, the generator state) would stay alive with it, in every session.
function serve(api: CometApi, opts: HandlerOptions, limits: ResponseLimits, req: IncomingMessage, res: ServerResponse, failed: (err: unknown) => void): void {
  if (handlePreflight(req, res, opts.cors)) return;
  applyCors(req, res, opts.cors);
  if (req.method !== 'POST') {
    sendError(res, 'method_not_allowed', 'use POST', { Allow: allowedMethods(opts.cors) });
    return;
  }
  if (opts.isClosing()) {
    sendError(res, 'shutting_down', 'the server is shutting down');
    return;
  }
  const pre = preParsedBody(req);
  if (pre) {
    answer(api, opts, limits, res, pre.value)?.catch(failed);
    return;
  }
  // `beforeRead` runs once the headers have passed every check that needs no body: a client
  // that sent `Expect: 100-continue` gets the 405/413/415 instead of a `100 Continue` first.
  // `lazy`: the messages stay text until their session delivers them (lib/comet/json_text.ts).
  readJsonBodyThen(req, { maxBytes: opts.maxBodyBytes, lazy: true, beforeRead: () => continueIfExpected(req, res) }, (err, parsed) => {
    try {
      if (parsed === undefined) failed(err);
      else if (parsed.ok) answer(api, opts, limits, res, parsed.value)?.catch(failed);
      else sendError(res, parsed.code, parsed.message);
    } catch (e) {
      failed(e);
    }
  });
}

/**
 * Send `100 Continue` to a client that waits for it before sending its body. node:http sends it
 * on its own unless the server listens to `checkContinue` (what `listen()` does, and what an
 * embedder does with `server.on('checkContinue', comet.handler)`); then it is ours to send, and
 * only once the headers have been judged. `_sent100` is node's own flag: a 100 already sent
 * (node's automatic one) is not sent twice.
 */
function continueIfExpected(req: IncomingMessage, res: ServerResponse): void {
  const expect = req.headers.expect;
  if (expect === undefined || expect.toLowerCase() !== '100-continue') return;
  if ((res as ServerResponse & { _sent100?: boolean })._sent100 === true || !isWritable(res)) return;
  res.writeContinue();
}

/** What bounds the responses of one handler: the write timeout and the requests per session. */
interface ResponseLimits {
  readonly writeTimeout: number;
  readonly maxPerSession: number;
  readonly clock: Clock;
  /** sid -> requests of that session in flight (an entry only while there is one). */
  readonly inFlight: Map<string, number>;
}

/**
 * Count a request against its session until its response is flushed or its socket gone; false
 * (nothing counted) when the session already has `maxPerSession` in flight. A sid that names no
 * session counts too, for the moment it takes to answer 404.
 */
function admitRequest(limits: ResponseLimits, res: ServerResponse, body: unknown): boolean {
  const sid = typeof body === 'object' && body !== null && 'sid' in body && typeof body.sid === 'string' ? body.sid : undefined;
  if (sid === undefined) return true;
  const n = limits.inFlight.get(sid) ?? 0;
  if (n >= limits.maxPerSession) return false;
  limits.inFlight.set(sid, n + 1);
  // 'close' fires once either way: after 'finish' (flushed) or when the socket dies first.
  res.once('close', () => {
    const left = (limits.inFlight.get(sid) ?? 1) - 1;
    if (left > 0) limits.inFlight.set(sid, left);
    else limits.inFlight.delete(sid);
  });
  return true;
}

/**
 * The response has been handed to node; if its bytes are not all flushed to the socket within
 * the write timeout, the client is not reading: destroy the socket, and the memory it pins goes
 * with it. What the response carried stays in the session's outbox until acked.
 */
function guardWrite(limits: ResponseLimits, res: ServerResponse): void {
  if (res.writableFinished || res.destroyed) return;
  const timer = limits.clock.setTimeout(() => {
    if (!res.writableFinished) res.destroy();
  }, limits.writeTimeout);
  res.once('close', () => limits.clock.clearTimeout(timer));
}

/** Hand the decoded body to `handleJson` and write what comes back. */
function answer(api: CometApi, opts: HandlerOptions, limits: ResponseLimits, res: ServerResponse, body: unknown): Promise<void> | undefined {
  if (res.destroyed) return undefined; // the client left while we read its body
  if (!admitRequest(limits, res, body)) {
    sendError(res, 'overloaded', `more than ${limits.maxPerSession} requests of this session in flight`);
    return undefined;
  }
  const inFlight = opts.inFlight;
  inFlight?.add(res, body);
  return api.handleJson(body, watch(res, clientAddress(res.req, opts.trustProxy === true))).then(
    (reply) => {
      inFlight?.delete(res);
      if (!('json' in reply)) {
        const retryAfter = 'retryAfter' in reply ? reply.retryAfter : undefined;
        sendJson(res, reply.status, reply.body, retryAfter === undefined ? undefined : { 'Retry-After': String(retryAfter) });
      } else if (sendJsonText(res, reply.status, reply.json)) untilFlushed(res, reply.written());
      guardWrite(limits, res);
    },
    (err: unknown) => {
      inFlight?.delete(res);
      throw err;
    },
  );
}

/** Report when a written response's bytes left the process (or never will): `release` once, on
 *  'finish' (handed to the socket) or 'close' (the socket died first). The budget is not ours. */
function untilFlushed(res: ServerResponse, release: () => void): void {
  if (res.writableFinished || res.destroyed) {
    release();
    return;
  }
  res.once('finish', release);
  res.once('close', release);
}

/**
 * The client's address: the socket's peer, or behind a trusted proxy the last `X-Forwarded-For`
 * entry, which the proxy appended (the entries before it are whatever the client sent).
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const value = Array.isArray(header) ? header[header.length - 1] : header;
    if (value !== undefined) {
      const last = value.slice(value.lastIndexOf(',') + 1).trim();
      if (last !== '') return last;
    }
  }
  return req.socket.remoteAddress;
}

/** `{active, once}` -> `{tcp_closed, Socket}`: the response closed before it was finished. */
function watch(res: ServerResponse, peer: string | undefined): SocketWatch {
  return {
    ...(peer === undefined ? {} : { peer }),
    onClosed(cb) {
      if (res.destroyed && !res.writableFinished) {
        // Already gone: tell the FSM after the request event it is about to receive.
        queueMicrotask(cb);
        return () => {};
      }
      const onClose = (): void => {
        if (!res.writableFinished) cb();
      };
      res.on('close', onClose);
      return () => res.off('close', onClose);
    },
  };
}

/** Express's `express.json()` may have consumed the body already; use what it parsed. body-parser
 *  1.x flags that with `_body`; 2.x (Express 5) only sets `req.body`. */
function preParsedBody(req: IncomingMessage): { ok: true; value: unknown } | undefined {
  const r = req as IncomingMessage & { body?: unknown; _body?: unknown };
  return (r._body === true || 'body' in r) && r.readableEnded ? { ok: true, value: r.body } : undefined;
}

/**
 * The path of a request-target, without its query. Takes the origin-form (`/comet?x`) and the
 * absolute-form (`http://host/comet`, RFC 9112 3.2.2), which a server must accept although only
 * proxies are asked to send it; node passes the target through as it came.
 */
export function pathnameOf(url: string | undefined): string {
  if (url === undefined) return '/';
  let start = 0;
  if (url.charCodeAt(0) !== 0x2f /* / */) {
    const scheme = url.indexOf('://');
    if (scheme <= 0) return url; // asterisk-form (`*`) or junk: matches no path of ours
    // The authority ends at the first '/', '?' or '#'; no path at all means '/'.
    let end = scheme + 3;
    while (end < url.length && url[end] !== '/' && url[end] !== '?' && url[end] !== '#') end++;
    if (end === url.length || url[end] !== '/') return '/';
    start = end;
  }
  let stop = url.indexOf('?', start);
  if (stop === -1) stop = url.indexOf('#', start);
  return stop === -1 ? url.slice(start) : url.slice(start, stop);
}
