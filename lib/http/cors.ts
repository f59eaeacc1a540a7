/**
 * CORS for the comet endpoint. Off by default. When on, an allowed origin gets its own origin
 * echoed back (never `*`) and preflights are answered `204`; everything else gets no
 * `Access-Control-*` header at all, so the browser refuses the cross-origin call.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ALLOWED_METHODS, isWritable, sendError } from './respond.js';

/**
 * `false` (default): no CORS. An array: exact origins such as `'https://app.example.com'`
 * (scheme, host and port as the browser sends them; no trailing slash, no wildcards). A
 * function: called with the request's Origin, synchronously; what it throws propagates.
 * Beware of allowing `'null'`: sandboxed iframes and `file:` pages all send it.
 */
export type CorsOption = false | readonly string[] | ((origin: string) => boolean);

/** Default CORS setting: off. */
export const DEFAULT_CORS: CorsOption = false;
/** `Access-Control-Max-Age` of a preflight answer, in seconds. */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;
/** `Access-Control-Allow-Methods` of a preflight answer. */
export const CORS_ALLOW_METHODS = 'POST, OPTIONS';
/** `Access-Control-Expose-Headers` of an allowed origin's response. */
export const CORS_EXPOSE_HEADERS = 'Retry-After';
/** `Access-Control-Allow-Headers` of a preflight answer: JSON bodies need only this one. */
export const CORS_ALLOW_HEADERS = 'Content-Type';

/** True when `origin` is present and allowed by `cors`. */
export function isOriginAllowed(origin: string | undefined, cors: CorsOption): origin is string {
  if (cors === false || origin === undefined || origin === '') return false;
  if (typeof cors === 'function') return cors(origin);
  return cors.includes(origin);
}

/** The `Allow` header for a `405` on the comet endpoint: OPTIONS is served only with CORS on. */
export function allowedMethods(cors: CorsOption): string {
  return cors === false ? ALLOWED_METHODS : CORS_ALLOW_METHODS;
}

/** Add `field` to the response's Vary header, keeping what other middleware put there. */
function appendVary(res: ServerResponse, field: string): void {
  const current = res.getHeader('Vary');
  const text = Array.isArray(current) ? current.join(',') : current === undefined ? '' : String(current);
  const fields = text
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  if (fields.some((f) => f === '*' || f.toLowerCase() === field.toLowerCase())) return;
  fields.push(field);
  res.setHeader('Vary', fields.join(', '));
}

/**
 * Set the CORS headers of an actual (non-preflight) response, before it is written. With CORS on,
 * `Vary: Origin` is set on every response, allowed or not, because the answer depends on Origin;
 * `Access-Control-Allow-Origin: <origin>` only for an allowed origin. Returns true when the
 * origin is allowed. It does not refuse anything: a browser stops a disallowed page from reading
 * the reply, and such a page cannot send `application/json` without a preflight, which fails.
 *
 * @example
 * ```ts
 * if (handlePreflight(req, res, cors)) return;
 * applyCors(req, res, cors);
 * // ... then read the body and answer with sendJson / sendError
 * ```
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, cors: CorsOption): boolean {
  if (cors === false || !isWritable(res)) return false;
  appendVary(res, 'Origin');
  const origin = req.headers.origin;
  if (!isOriginAllowed(origin, cors)) return false;
  res.setHeader('Access-Control-Allow-Origin', origin);
  // A page's script may read only the safelisted response headers unless told: a client in a
  // browser needs Retry-After to wait as long as a 429 says.
  res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS);
  return true;
}

/**
 * Answer an `OPTIONS` request; returns false (touching nothing) for any other method. A preflight
 * from an allowed origin gets `204` with `Access-Control-Allow-Origin: <origin>`,
 * `Access-Control-Allow-Methods: POST, OPTIONS`, `Access-Control-Allow-Headers: Content-Type`,
 * `Access-Control-Max-Age: 600`. Any other `OPTIONS` (CORS off, no Origin, origin not allowed)
 * gets `405 method_not_allowed` with no `Access-Control-*` header: a browser fails the
 * preflight, and a person with curl reads why in the body.
 *
 * @example
 * ```ts
 * const handler = async (req, res) => {
 *   if (handlePreflight(req, res, ['https://app.example.com'])) return;
 *   // ... POST handling
 * };
 * ```
 */
export function handlePreflight(req: IncomingMessage, res: ServerResponse, cors: CorsOption): boolean {
  if (req.method !== 'OPTIONS') return false;
  const origin = req.headers.origin;
  const allow = { Allow: allowedMethods(cors) };
  if (cors === false) {
    sendError(res, 'method_not_allowed', 'OPTIONS is not served: CORS is not enabled on this endpoint', allow);
    return true;
  }
  if (!isWritable(res)) return true;
  appendVary(res, 'Origin');
  if (origin === undefined || origin === '') {
    sendError(res, 'method_not_allowed', 'OPTIONS is only served as a CORS preflight, with an Origin header', allow);
    return true;
  }
  if (!isOriginAllowed(origin, cors)) {
    sendError(res, 'method_not_allowed', 'this origin is not allowed by the CORS configuration', allow);
    return true;
  }
  res.statusCode = 204;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Allow-Methods', CORS_ALLOW_METHODS);
  res.setHeader('Access-Control-Allow-Headers', CORS_ALLOW_HEADERS);
  res.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS));
  res.end();
  return true;
}
