/**
 * The two things a node:http server carrying comet needs, whether `listen()` made it or an
 * embedder did: timeouts chosen against the long-poll wait, and a close that stops accepting,
 * lets held polls be answered, and only then cuts what is left.
 */
import type { Server } from 'node:http';
import { pathnameOf } from './handler.js';

/** How long a close waits for replies still being written before it cuts the connections. */
export const CLOSE_GRACE_MS = 1000;

/** Keep-alive of a server `listen()` makes: the client's next poll comes at once after a
 *  response, so an idle connection is not worth keeping long. */
export const KEEP_ALIVE_TIMEOUT_MS = 5000;

/**
 * Set `headersTimeout` and `requestTimeout` for a server holding polls of up to `wait` ms.
 * They bound how long a client may take to *send* a request (headers, then the whole body): a
 * slowloris client is cut off then. Node applies them only while a request is being received,
 * never to a response we hold, so they do not cut held polls; they are set above `wait` so that
 * no timeout here is ever shorter than the poll cycle a client expects.
 * @example
 * applyHttpTimeouts(server, comet.wait);
 */
export function applyHttpTimeouts(server: Server, wait: number): void {
  server.headersTimeout = wait + 5000;
  server.requestTimeout = wait + 10_000;
}

/**
 * Let the comet handler answer `Expect: 100-continue` itself: node:http sends `100 Continue`
 * before any handler runs unless the server listens to `checkContinue`, so a client would be told
 * to send a body the headers already condemn (405, 413, 415). Requests for the comet path go to
 * the `request` listeners unanswered (the handler sends the 100 once the headers pass); any other
 * path gets node's usual 100 first, so routes installed in front keep working.
 * @example
 * deferContinue(server, '/comet');
 */
export function deferContinue(server: Server, cometPath: string): void {
  server.on('checkContinue', (req, res) => {
    if (pathnameOf(req.url) !== cometPath) res.writeContinue();
    server.emit('request', req, res);
  });
}

/**
 * Close `server` gracefully: stop accepting, run `drain` (e.g. `comet.close()`, which answers every
 * held poll), close the idle connections, and cut what is still open after `graceMs`.
 * @example
 * await closeHttpServer(server, () => comet.close());
 */
export async function closeHttpServer(server: Server, drain: () => Promise<void> = () => Promise.resolve(), graceMs = CLOSE_GRACE_MS): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await drain();
  // Let the handlers write the replies the drain just produced before idle sockets are closed.
  await new Promise((resolve) => setImmediate(resolve));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(force);
}
