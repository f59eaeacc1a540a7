#!/usr/bin/env node
/**
 * `npm run echo`: every message a client sends is pushed back to that session as one packet whose
 * data equals the message. Admin endpoints for tests and benchmarks:
 *   POST /admin/broadcast {"data": X}  -> pushes X to every live session, answers {"sessions": N}
 *   GET  /admin/stats                  -> {"sessions": N, "held": H}
 * Binds 127.0.0.1 by default and prints one JSON line containing "listening" when ready.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CometServer } from '../lib/index.js';
import { sendJson } from '../lib/http/respond.js';
import { runServer } from './run_server.js';
import { loadConfig } from './server_config.js';

/** The admin routes; true if the request was one of them. */
function adminRoutes(comet: CometServer, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.url === '/admin/stats' && req.method === 'GET') {
    sendJson(res, 200, { sessions: comet.sessions().length, held: comet.heldCount() });
    return true;
  }
  if (req.url === '/admin/broadcast' && req.method === 'POST') {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => {
      let data: unknown;
      try {
        data = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown }).data;
      } catch {
        sendJson(res, 400, { error: 'bad_json', message: 'body must be {"data": X}' });
        return;
      }
      comet.broadcast(data).then((n) => sendJson(res, 200, { sessions: n }), () => sendJson(res, 503, { error: 'overloaded', message: 'broadcast failed' }));
    });
    return true;
  }
  return false;
}

const config = loadConfig(process.argv.slice(2), process.env, 8081);
await runServer(config, {
  name: 'comet-fsm echo',
  routes: adminRoutes,
  // The echo is pushed in place, inside the event that delivered the message: no second event.
  hooks: () => ({
    onMessage(_sid, data, session) {
      session.push(data);
    },
  }),
});
