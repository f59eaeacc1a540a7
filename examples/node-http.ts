/**
 * Embedding comet-fsm in a plain `node:http` server you own: the comet handler serves
 * `POST /comet`, `GET /metrics` and `GET /healthz`, and calls its third argument, `next`, for
 * every other path, which your code serves. The application is an echo: every message a
 * client sends comes back to that session as one packet.
 *
 * In your project import from 'comet-fsm' instead of '../lib/index.js'.
 *
 * Run: `npm run build && PORT=8080 node dist/examples/node-http.js`
 * (or without building: `node --import @tapjs/typescript/import examples/node-http.ts`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createCometServer, type CometServer, type CometServerOptions, applyHttpTimeouts, closeHttpServer } from '../lib/index.js';

/** A running example: where it listens, its comet server, and how to stop it. */
export interface RunningExample {
  readonly port: number;
  readonly comet: CometServer;
  close(): Promise<void>;
}

/**
 * Start the echo server on `port` (0: any free port).
 * @example
 * const app = await startNodeHttpExample({ port: 8080 });
 * // ... later
 * await app.close();
 */
export async function startNodeHttpExample(
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

  const server = http.createServer((req, res) => {
    comet.handler(req, res, () => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('comet-fsm echo: POST /comet\n');
    });
  });
  // Slowloris bounds chosen against the long-poll wait (see applyHttpTimeouts).
  applyHttpTimeouts(server, comet.wait);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    comet,
    // Stop accepting, let comet answer its held polls, then close what is left.
    close: () => closeHttpServer(server, () => comet.close()),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await startNodeHttpExample({ port: Number(process.env['PORT'] ?? 8080), host: process.env['HOST'] ?? '127.0.0.1' });
  const stop = (): void => {
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // One JSON line when ready, as the runnable servers print: scripts and tests wait for it.
  console.log(JSON.stringify({ listening: true, port: app.port }));
}
