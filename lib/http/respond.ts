/**
 * Write JSON replies and error replies of wire contract v1, safely: never onto a response that
 * has already been answered or whose socket is gone, and never leaving an unread request body to
 * be drained into a keep-alive connection.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTP_STATUS, type WireErrorCode } from '../comet/errors.js';
import { encodeErrorReply } from '../comet/wire.js';

/** Content-Type of every JSON reply. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Methods the comet endpoint serves; `OPTIONS` is added when CORS is configured. */
export const ALLOWED_METHODS = 'POST';

/** Extra response headers, set from code (never from request data). */
export type ResponseHeaders = Readonly<Record<string, string>>;

/**
 * True when a reply can still be written: no headers sent yet, not ended, response and socket
 * alive. Writing to a destroyed response makes node emit an 'error' nobody listens to.
 */
export function isWritable(res: ServerResponse): boolean {
  return !res.headersSent && !res.writableEnded && !res.destroyed && res.socket?.destroyed !== true;
}

/**
 * True when the request declared a body that has not been received to its end. Node would drain
 * such a body after the reply to reuse the connection (`req._dump()`), reading up to the whole
 * upload; closing the connection instead bounds what we read to what we chose to read.
 * (`complete` is false for a body-less request until the parser's next step, hence the headers.)
 */
function bodyLeftUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

// The two header lists of every reply, shared: `writeHead` turns a list into the header text at
// once and keeps nothing of it, so only the Content-Length slot changes, for the time of the call.
const HEADERS = ['Content-Type', JSON_CONTENT_TYPE, 'Cache-Control', 'no-store', 'X-Content-Type-Options', 'nosniff', 'Content-Length', ''];
const HEADERS_CLOSE = [...HEADERS, 'Connection', 'close'];
const CONTENT_LENGTH = 7;

function writeJson(
  res: ServerResponse,
  status: number,
  payload: string,
  headers: ResponseHeaders | undefined,
  forceClose: boolean,
): boolean {
  if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      const value = headers[name];
      if (value !== undefined) res.setHeader(name, value);
    }
  }
  // One flat list through writeHead: no per-header map entries, which every response would
  // otherwise pay for (node merges it over headers set earlier, and these win, as documented).
  // With `Connection: close` node ends the socket once the reply is flushed (res._last ->
  // socket.destroySoon()) and never calls req._dump(), so the unread rest of an upload stays
  // in the kernel and is discarded with the connection instead of being read.
  const list = forceClose || bodyLeftUnread(res.req) ? HEADERS_CLOSE : HEADERS;
  list[CONTENT_LENGTH] = String(Buffer.byteLength(payload));
  try {
    res.writeHead(status, list);
  } finally {
    list[CONTENT_LENGTH] = '';
  }
  res.end(payload);
  return true;
}

/**
 * Send `body` as JSON with `Content-Type: application/json; charset=utf-8`, `Cache-Control:
 * no-store` and `X-Content-Type-Options: nosniff` (these win over `headers`). Returns false,
 * writing nothing, when the response was already answered or its socket is gone.
 *
 * @throws TypeError when `body` cannot be serialised (BigInt, cycle, undefined); nothing has been
 *   written then, so the caller can still answer.
 * @example
 * ```ts
 * sendJson(res, 200, { rid, packets });
 * ```
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: ResponseHeaders): boolean {
  if (!isWritable(res)) return false;
  const payload: unknown = JSON.stringify(body);
  if (typeof payload !== 'string') throw new TypeError('sendJson: body is not JSON-serialisable');
  return writeJson(res, status, payload, headers, false);
}

/**
 * Send `json`, a JSON text already encoded (a request's reply, spliced from its packets' texts), as
 * {@link sendJson} sends a body. Returns false, writing nothing, when the response was already
 * answered or its socket is gone.
 */
export function sendJsonText(res: ServerResponse, status: number, json: string): boolean {
  if (!isWritable(res)) return false;
  return writeJson(res, status, json, undefined, false);
}

/**
 * Send the error reply `{"error": code, "message": message}` with the status of `code`
 * ({@link HTTP_STATUS}). `message` goes to the client as is: never put a stack trace or request
 * data in it. A `405` carries `Allow: POST` unless `headers` gives another `Allow`. A `413`
 * always closes the connection, so the rest of an oversize upload is never read. Returns false
 * when nothing could be written.
 *
 * @example
 * ```ts
 * if (req.method !== 'POST') return sendError(res, 'method_not_allowed', 'use POST');
 * ```
 */
export function sendError(
  res: ServerResponse,
  code: WireErrorCode,
  message: string,
  headers?: ResponseHeaders,
): boolean {
  if (!isWritable(res)) return false;
  if (code === 'method_not_allowed' && res.getHeader('Allow') === undefined) {
    res.setHeader('Allow', ALLOWED_METHODS);
  }
  return writeJson(res, HTTP_STATUS[code], encodeErrorReply({ error: code, message }), headers, code === 'too_large');
}
