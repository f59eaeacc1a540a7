/**
 * Who may see the observer, and who may act through it.
 *
 * - Bound to loopback (127.0.0.0/8, ::1) and no token configured: the page and its endpoints are
 *   served, actions allowed, but only to requests whose `Host` names a loopback host (a page on
 *   another site that rebinds its DNS name to 127.0.0.1 gets nothing).
 * - A token configured: every request must carry it (the `comet_observer` cookie the page gets
 *   after `?token=`, or `Authorization: Bearer TOKEN`), compared in constant time. Actions need
 *   `actions: true` as well, unless the server is bound to loopback.
 * - Bound elsewhere without a token: the observer does not exist (the path answers 404 like every
 *   unknown path does).
 *
 * Refusals of access are 404 on purpose: nothing tells a scanner an observer is there.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, type Server } from 'node:net';

/** The cookie the page's later requests carry the token in (path-scoped to the observer). */
export const TOKEN_COOKIE = 'comet_observer';
/** A token shorter than this is refused at start: it could be guessed. */
export const MIN_TOKEN_LENGTH = 16;

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** True for an address in 127.0.0.0/8, `::1`, or an IPv4-mapped 127.x address. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(a);
  if (family === 0) return false;
  return loopback.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

/** The address the server that accepted `req` is bound to (not the one the client reached). */
export function boundAddress(req: IncomingMessage): string | undefined {
  const server = (req.socket as { server?: Pick<Server, 'address'> }).server;
  const addr = server?.address();
  if (addr !== null && typeof addr === 'object') return addr.address;
  return req.socket.localAddress;
}

/** Whether the request's Host header names a loopback host (the DNS-rebinding check). */
export function hostIsLoopback(host: string | undefined): boolean {
  if (host === undefined) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  return isLoopbackAddress(bare);
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison: equal-length digests, so neither the length nor a prefix leaks. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token a request carries: `Authorization: Bearer`, else the cookie. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const cookie = req.headers.cookie;
  if (cookie === undefined) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export interface AccessPolicy {
  readonly token: string | undefined;
  /** Actions on a server not bound to loopback (`--observer-actions`). */
  readonly actions: boolean;
  /** Tests inject this to play a non-loopback bind; default: the listening socket's address. */
  readonly boundAddress?: (req: IncomingMessage) => string | undefined;
}

/** What a request may do: nothing (404), look, or look and act. `via` says how it was let in. */
export type Access =
  | { readonly kind: 'none' }
  | { readonly kind: 'view'; readonly actions: boolean; readonly via: 'loopback' | 'token' };

/** Decide a request's access. `token` is what it carries (from the query on the page's first load). */
export function accessOf(req: IncomingMessage, policy: AccessPolicy, token: string | undefined = tokenOf(req)): Access {
  const bound = (policy.boundAddress ?? boundAddress)(req);
  const local = bound !== undefined && isLoopbackAddress(bound);
  if (policy.token !== undefined) {
    if (!tokenMatches(token, policy.token)) return { kind: 'none' };
    return { kind: 'view', actions: local || policy.actions, via: 'token' };
  }
  if (!local || !hostIsLoopback(req.headers.host)) return { kind: 'none' };
  return { kind: 'view', actions: true, via: 'loopback' };
}

/**
 * A cross-site request may not act: a browser sends `Origin` on every POST, and it must be this
 * host's own; `Sec-Fetch-Site`, when sent, must say same-origin.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser (curl, the CLI): no ambient credentials to abuse
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
