/**
 * Embedding comet-fsm in a Fastify 5 app. Fastify parses bodies before route handlers run and
 * answers with its own replies, so comet takes its requests earlier: an `onRequest` hook (which
 * runs before body parsing, for every URL) hijacks the reply of comet's paths (the endpoint,
 * `/metrics`, `/healthz`) and hands the raw node objects to `comet.handler`. Fastify leaves a hijacked reply alone. The application is an
 * echo: every message a client sends comes back to that session as one packet.
 *
 * In your project import from 'comet-fsm' instead of '../lib/index.js'.
 *
 * Run: `npm run build && PORT=8080 node dist/examples/fastify.js`
 * (or without building: `node --import @tapjs/typescript/import examples/fastify.ts`).
 */
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { createCometServer, type CometServerOptions } from '../lib/index.js';
import type { RunningExample } from './node-http.js';

/**
 * Start the echo app on `port` (0: any free port).
 * @example
 * const app = await startFastifyExample({ port: 8080 });
 * await app.close();
 */
export async function startFastifyExample(
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

  // Fastify's own timeouts default to off (`connectionTimeout: 0`); if you set one, keep it above
  // comet's `wait`, or it cuts held polls.
  const fastify = Fastify();
  // The paths comet answers: the endpoint, the Prometheus metrics and the health check.
  const cometPaths = new Set([comet.path, comet.metricsPath, comet.healthPath]);
  fastify.addHook('onRequest', (request, reply, done) => {
    if (cometPaths.has(request.url.split('?')[0] ?? '')) {
      reply.hijack();
      comet.handler(request.raw, reply.raw);
    }
    done();
  });
  fastify.get('/', (_request, reply) => {
    void reply.type('text/plain').send('comet-fsm echo on Fastify: POST /comet\n');
  });

  await fastify.listen({ port, host });
  const address = fastify.server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    comet,
    async close() {
      // comet first: it answers the held polls, which Fastify's close would otherwise wait for.
      await comet.close();
      await fastify.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = await startFastifyExample({ port: Number(process.env['PORT'] ?? 8080), host: process.env['HOST'] ?? '127.0.0.1' });
  const stop = (): void => {
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // One JSON line when ready, as the runnable servers print: scripts and tests wait for it.
  console.log(JSON.stringify({ listening: true, port: app.port }));
}
