/**
 * Embedding comet-fsm in an Express 5 app: `app.use(comet.handler)`. The handler serves the comet
 * path, `/metrics` and `/healthz`, and calls `next()` for every other path, so it can sit anywhere
 * in the middleware chain. Mounted on a path, `app.use('/comet', comet.handler)`, it serves
 * `/comet` only (Express calls it for no other path).
 * The application is an echo: every message a client sends comes back to that session as one
 * packet.
 *
 * Mount it before `express.json()` if you can: then comet reads the body itself, with its own
 * size limit and its own JSON error replies. After `express.json()` it also works (it takes the
 * body the parser left in `req.body`), but then the parser's limit and error pages apply to
 * comet requests: give it `limit: DEFAULT_MAX_BODY_BYTES` as below.
 *
 * In your project import from 'comet-fsm' instead of '../lib/index.js'.
 *
 * Run: `npm run build && PORT=8080 node dist/examples/express.js`
 * (or without building: `node --import @tapjs/typescript/import examples/express.ts`).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { createCometServer, DEFAULT_MAX_BODY_BYTES, type CometServerOptions, applyHttpTimeouts, closeHttpServer } from '../lib/index.js';
import type { RunningExample } from './node-http.js';

/**
 * Start the echo app on `port` (0: any free port).
 * @example
 * const app = await startExpressExample({ port: 8080 });
 * await app.close();
 */
export async function startExpressExample(
  { port = 0, host = '127.0.0.1', options = {} }: { port?: number; host?: string; options?: CometServerOptions } = {},
): Promise<RunningExample> {
  const comet = await createCometServer({
    ...options,
    onMessage(_sid, data, session) {
      // In place, inside the FSM: the echo answers the request that carried the message. It
      // throws (logged by comet-fsm as a hook failure) when the session's queue is full.
      session.push(data);
    },
  });

  const app = express();
  app.use(comet.handler);
  // Your own routes, and a body parser for them, after comet.
  app.use(express.json({ limit: DEFAULT_MAX_BODY_BYTES }));
  app.get('/', (_req, res) => {
    res.type('text/plain').send('comet-fsm echo on Express: POST /comet\n');
  });
  app.post('/api/ping', (req, res) => {
    res.json({ pong: req.body as unknown });
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  // Slowloris bounds chosen against the long-poll wait (see applyHttpTimeouts).
  applyHttpTimeouts(server, comet.wait);

  return {
    port: (server.address() as AddressInfo).port,
    comet,
    // Stop accepting, let comet answer its held polls, then close what is left.
    close: () => closeHttpServer(server, () => comet.close()),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await startExpressExample({ port: Number(process.env['PORT'] ?? 8080), host: process.env['HOST'] ?? '127.0.0.1' });
  const stop = (): void => {
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // One JSON line when ready, as the runnable servers print: scripts and tests wait for it.
  console.log(JSON.stringify({ listening: true, port: app.port }));
}
