/**
 * The URL the client asked for. Express and Connect strip the mount path from `req.url` under
 * `app.use('/comet', handler)` and keep the whole URL in `req.originalUrl`; comet's paths are the
 * ones the client sees, so that is the one to match.
 */
import type { IncomingMessage } from 'node:http';

/** `req.originalUrl` when a framework set one, else `req.url`. */
export function requestUrl(req: IncomingMessage): string | undefined {
  const original = (req as IncomingMessage & { originalUrl?: unknown }).originalUrl;
  return typeof original === 'string' ? original : req.url;
}
