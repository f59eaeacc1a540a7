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
import type { ApiReply, CometApi, ReplyWaiter, SocketClosedListener, SocketWatch } from '../comet/api.js';
import { systemClock, type Clock, type TimerHandle } from '../otp/clock.js';
import type { Logger } from '../otp/logger.js';
import { readJsonBodyTo, type BodyReceiver, type ReadJsonBodyOptions, type ReadJsonBodyResult } from './body.js';
import { HeldPolls, type InFlightRequest } from './held_polls.js';
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
  /** The table of requests in flight by sid, when the caller reads it too (`heldCount`, the test
   *  hook `dropHeldPoll`); default: the handler's own. */
  readonly inFlight?: HeldPolls;
  /** Called once for each response the handler was given, once it has been flushed to its
   *  socket (not for one whose socket died first): the metrics' response counter. */
  readonly onResponse?: (res: ServerResponse) => void;
}

/**
 * Build the handler.
 * @example
 * const handler = createHandler(api, { path: '/comet', maxBodyBytes: 65_536, cors: false, logger, isClosing: () => false });
 * http.createServer(handler).listen(8080);
 */
export function createHandler(api: CometApi, opts: HandlerOptions): CometHandler {
  const endpoint = new Endpoint(api, opts);
  const onResponse = opts.onResponse;
  // One listener function for every response ('close' fires once, after 'finish' or when the
  // socket died first; `this` is the response), its exchange found on it: no closure, no `once`
  // wrapper, and no second listener (an array per response) for the response count.
  function onResponseClose(this: ExchangeResponse): void {
    this[EXCHANGE]?.closed();
    if (onResponse !== undefined && this.writableFinished) onResponse(this);
  }
  return (req, res, next) => {
    res.on('close', onResponseClose);
    if (pathnameOf(requestUrl(req)) !== opts.path) {
      if (next) return next();
      sendError(res, 'not_found', 'no such endpoint');
      return;
    }
    try {
      endpoint.serve(req, res);
    } catch (err) {
      internalError(opts.logger, res, err);
    }
  };
}

/** Only a bug gets here; the client gets a plain 503 and no stack trace. */
function internalError(logger: Logger, res: ServerResponse, err: unknown): void {
  logger.error({ err: err instanceof Error ? err.message : String(err) }, 'comet handler failed');
  sendError(res, 'overloaded', 'internal error');
}

/**
 * The comet endpoint of one handler, and the receiver of every body it reads (the response is
 * the read's tag): nothing is made per request before the body is in but the read itself.
 * No async function: while a poll is held, its frame (every local, the generator state) would
 * stay alive with it, in every session.
 */
class Endpoint implements BodyReceiver<ServerResponse> {
  readonly #api: CometApi;
  readonly #opts: HandlerOptions;
  readonly #limits: ResponseLimits;
  // `lazy`: the messages stay text until their session delivers them (lib/comet/json_text.ts).
  readonly #read: ReadJsonBodyOptions;

  constructor(api: CometApi, opts: HandlerOptions) {
    this.#api = api;
    this.#opts = opts;
    this.#limits = {
      writeTimeout: opts.writeTimeout ?? DEFAULT_WRITE_TIMEOUT_MS,
      maxPerSession: opts.maxConnectionsPerSession ?? DEFAULT_MAX_CONNECTIONS_PER_SESSION,
      clock: opts.clock ?? systemClock,
      inFlight: opts.inFlight ?? new HeldPolls(),
      trustProxy: opts.trustProxy === true,
      logger: opts.logger,
    };
    this.#read = { maxBytes: opts.maxBodyBytes, lazy: true };
  }

  serve(req: IncomingMessage, res: ServerResponse): void {
    const opts = this.#opts;
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
      answer(this.#api, this.#limits, res, pre.value);
      return;
    }
    readJsonBodyTo(req, this.#read, this, res);
  }

  /** The headers passed every check that needs no body: a client that sent `Expect:
   *  100-continue` gets the 405/413/415 instead of a `100 Continue` first. */
  beforeRead(res: ServerResponse): void {
    continueIfExpected(res.req, res);
  }

  bodyRead(res: ServerResponse, err: unknown, parsed: ReadJsonBodyResult | undefined): void {
    try {
      if (parsed === undefined) internalError(this.#opts.logger, res, err);
      else if (parsed.ok) answer(this.#api, this.#limits, res, parsed.value);
      else sendError(res, parsed.code, parsed.message);
    } catch (e) {
      internalError(this.#opts.logger, res, e);
    }
  }
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
  /** The requests with a sid in flight, by sid (an entry only while there is one). */
  readonly inFlight: HeldPolls;
  readonly trustProxy: boolean;
  readonly logger: Logger;
}

const EXCHANGE = Symbol('comet.exchange');

/** A reply handed to node whose bytes the socket has not all taken yet: its write timeout, and
 *  its budget's release. Kept apart from the exchange: a held poll never has one. */
interface Unflushed {
  readonly timer: TimerHandle;
  readonly release: (() => void) | undefined;
}
type ExchangeResponse = ServerResponse & { [EXCHANGE]?: Exchange };

/**
 * One request frame and its response, from admission until the response closed: its count
 * against its session, the FSM's watch on its socket (`{active, once}` -> `{tcp_closed, Socket}`:
 * the response closed before it finished), its write timeout and its reply's budget release, all
 * ended by one 'close' listener. One object per request rather than a closure per concern: a held
 * poll keeps it alive for up to `wait`, in every session.
 */
class Exchange implements SocketWatch, InFlightRequest, ReplyWaiter {
  readonly res: ExchangeResponse;
  readonly #limits: ResponseLimits;
  /** The sid it counts under in `inFlight` (none for a setup). */
  readonly #sid: string | undefined;
  awaitingReply = true;
  nextInFlight: InFlightRequest | undefined = undefined;
  /** Told if the socket closes before the reply is written (the FSM's watch). */
  #onGone: SocketClosedListener | undefined = undefined;
  /** A reply the socket did not take at once (a client slow to read, rare): what bounds it. */
  #unflushed: Unflushed | undefined = undefined;

  constructor(res: ServerResponse, limits: ResponseLimits, sid: string | undefined) {
    this.res = res;
    this.#limits = limits;
    this.#sid = sid;
    if (sid !== undefined) limits.inFlight.add(sid, this);
    // The handler listens to the response's 'close' (see `createHandler`), which fires once
    // either way: after 'finish' (flushed) or when the socket dies first.
    this.res[EXCHANGE] = this;
  }

  /** The client's address, read only by a setup (per-client limits): a request never asks the
   *  socket for its peer. */
  get peer(): string | undefined {
    return clientAddress(this.res.req, this.#limits.trustProxy);
  }

  onClosed(cb: () => void): () => void {
    const listener: SocketClosedListener = { socketClosed: cb };
    this.watchSocket(listener);
    return () => {
      if (this.#onGone === listener) this.#onGone = undefined;
    };
  }

  /** The API's own watch: no closure, and it ends when the reply (or the failure) arrives. */
  watchSocket(listener: SocketClosedListener): void {
    const res = this.res;
    if (res.destroyed && !res.writableFinished) {
      // Already gone: tell the FSM after the request event it is about to receive.
      queueMicrotask(() => listener.socketClosed());
      return;
    }
    this.#onGone = listener;
  }

  /** The reply: written, then bounded by the write timeout until flushed. */
  replied(reply: ApiReply): void {
    this.#onGone = undefined; // the reply is here: the socket's end no longer concerns the FSM
    this.answered();
    const res = this.res;
    try {
      if (!('json' in reply)) {
        const retryAfter = 'retryAfter' in reply ? reply.retryAfter : undefined;
        sendJson(res, reply.status, reply.body, retryAfter === undefined ? undefined : { 'Retry-After': String(retryAfter) });
        this.written(undefined);
      } else this.written(sendJsonText(res, reply.status, reply.json) ? reply.written() : undefined);
    } catch (err) {
      internalError(this.#limits.logger, res, err);
    }
  }

  /** A bug on the way: a plain 503. */
  failed(err: unknown): void {
    this.#onGone = undefined;
    this.answered();
    internalError(this.#limits.logger, this.res, err);
  }

  /** The session answered (or the call failed): it no longer waits. */
  answered(): void {
    if (!this.awaitingReply) return;
    this.awaitingReply = false;
    if (this.#sid !== undefined) this.#limits.inFlight.answered();
  }

  /**
   * The reply has been handed to node; if its bytes are not all flushed to the socket within the
   * write timeout, the client is not reading: destroy the socket, and the memory it pins goes
   * with it. What the response carried stays in the session's outbox until acked. `release`
   * (the reply's budget) runs once the socket took the bytes or died: on 'finish' or 'close'.
   */
  written(release: (() => void) | undefined): void {
    const res = this.res;
    if (res.writableFinished || res.destroyed) {
      release?.();
      return;
    }
    if (release !== undefined) res.on('finish', release); // idempotent, and 'finish' fires once: no `once` wrapper
    const timer = this.#limits.clock.setTimeout(() => {
      if (!res.writableFinished) res.destroy();
    }, this.#limits.writeTimeout);
    this.#unflushed = { timer, release };
  }

  /** The response closed: flushed, or its socket died first. */
  closed(): void {
    const res = this.res;
    res[EXCHANGE] = undefined;
    const onGone = this.#onGone;
    this.#onGone = undefined;
    if (onGone !== undefined && !res.writableFinished) onGone.socketClosed();
    const unflushed = this.#unflushed;
    this.#unflushed = undefined;
    if (unflushed !== undefined) {
      unflushed.release?.();
      this.#limits.clock.clearTimeout(unflushed.timer);
    }
    if (this.#sid !== undefined) {
      this.answered();
      this.#limits.inFlight.delete(this.#sid, this);
    }
  }
}

/** The sid a body names, if it names one: what its request counts under. */
function sidOf(body: unknown): string | undefined {
  return typeof body === 'object' && body !== null && 'sid' in body && typeof body.sid === 'string' ? body.sid : undefined;
}

/**
 * Hand the decoded body to `handleJson` and write what comes back. A request naming a sid counts
 * against that session until its response is flushed or its socket gone: past `maxPerSession`
 * in flight, `503 overloaded`. A sid that names no session counts too, for the moment it takes
 * to answer 404.
 */
function answer(api: CometApi, limits: ResponseLimits, res: ServerResponse, body: unknown): void {
  if (res.destroyed) return; // the client left while we read its body
  const sid = sidOf(body);
  if (sid !== undefined && limits.inFlight.count(sid) >= limits.maxPerSession) {
    sendError(res, 'overloaded', `more than ${limits.maxPerSession} requests of this session in flight`);
    return;
  }
  const ex = new Exchange(res, limits, sid);
  if (api.handleJsonWith !== undefined) {
    api.handleJsonWith(body, ex, ex);
    return;
  }
  // An API made by other means: the same, through its promise.
  void api.handleJson(body, ex).then((reply) => ex.replied(reply), (err: unknown) => ex.failed(err));
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
