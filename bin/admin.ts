/**
 * The runnable servers' admin endpoints (loopback tools for tests, benchmarks and operators):
 *   GET  /admin/stats                  -> {"sessions": N, "held": H} and, on a cluster node,
 *                                         "node" (its id), "forwarded" (calls it forwarded to
 *                                         another node), "served", "redis", "nodes"
 *   POST /admin/broadcast {"data": X}  -> pushes X to every live session (of every node, on a
 *                                         cluster), answers {"sessions": N} (this node's), plus
 *                                         "nodes" on a cluster; 503 overloaded if Redis is away
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CometServer } from '../lib/index.js';
import { sendJson } from '../lib/http/respond.js';

/** Largest /admin/broadcast body read (bytes). */
export const ADMIN_MAX_BODY_BYTES = 1 << 20;

export interface AdminOptions {
  /** Serve POST /admin/broadcast too (the echo server; not the public demo). */
  readonly broadcast: boolean;
}

/** The admin routes; true if the request was one of them. */
export function adminRoutes(opts: AdminOptions): (comet: CometServer, req: IncomingMessage, res: ServerResponse) => boolean {
  return (comet, req, res) => {
    if (req.url === '/admin/stats' && req.method === 'GET') {
      sendJson(res, 200, { sessions: comet.sessions().length, held: comet.heldCount(), ...comet.cluster?.stats() });
      return true;
    }
    if (opts.broadcast && req.url === '/admin/broadcast' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= ADMIN_MAX_BODY_BYTES) chunks.push(c);
      });
      req.on('end', () => {
        let data: unknown;
        try {
          data = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown }).data;
        } catch {
          sendJson(res, 400, { error: 'bad_json', message: 'body must be {"data": X}' });
          return;
        }
        const sent = comet.cluster ? comet.cluster.broadcast(data) : comet.broadcast(data).then((n) => ({ sessions: n }));
        sent.then((r) => sendJson(res, 200, r), () => sendJson(res, 503, { error: 'overloaded', message: 'broadcast failed' }));
      });
      return true;
    }
    return false;
  };
}
