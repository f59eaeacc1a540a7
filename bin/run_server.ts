/**
 * What the runnable servers share: start the comet server with a config, print one JSON line
 * containing "listening" when ready, arm fault injection if asked, and shut down gracefully on
 * SIGTERM/SIGINT (exit 0), or exit 1 with one clear line if the supervision tree gives up or the
 * address cannot be listened on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createCometServer, type CometServer, type CometServerOptions, type Sid } from '../lib/index.js';
import type { ServerConfig } from './server_config.js';

/** How long a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 5000;

export interface RunOptions {
  readonly name: string;
  /** Extra routes served before the comet handler (admin endpoints, static files). */
  readonly routes?: (comet: CometServer, req: IncomingMessage, res: ServerResponse) => boolean;
  readonly hooks: (comet: () => CometServer) => Partial<CometServerOptions>;
}

export async function runServer(config: ServerConfig, run: RunOptions): Promise<CometServer> {
  const { logger } = config;
  let faulty: Sid | undefined;
  const ref: { comet?: CometServer } = {};
  const get = (): CometServer => {
    if (!ref.comet) throw new Error('comet server not started yet');
    return ref.comet;
  };
  const comet = ref.comet = await createCometServer({
    ...config.options,
    ...run.hooks(get),
    onFatal: () => process.exit(1),
    ...(config.faultEveryMs !== undefined ? { fault: (sid: Sid) => sid === faulty } : {}),
  });
  const c = comet;
  try {
    await c.listen(config.port, config.host);
  } catch (err) {
    process.stderr.write(`${run.name}: ${listenProblem(err, config)}\n`);
    process.exit(1);
  }
  const server = c.httpServer;
  if (!server) throw new Error('listen did not create a server');
  if (run.routes) {
    const routes = run.routes;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!routes(c, req, res)) c.handler(req, res);
    });
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  // The readiness line is a contract with tests and benchmarks, not a log: print it whatever LOG_LEVEL says.
  process.stdout.write(`${JSON.stringify({ listening: true, name: run.name, port, host: config.host, url: `http://${config.host}:${port}/` })}\n`);

  if (config.faultEveryMs !== undefined) {
    const timer = setInterval(() => {
      const sessions = c.sessions();
      faulty = sessions[Math.floor(Math.random() * sessions.length)];
      // The fault fires on that session's next event; poke it so it happens now.
      if (faulty !== undefined) c.handlePacket(faulty, { fault: true }).catch(() => {});
    }, config.faultEveryMs);
    timer.unref();
  }
  if (config.faultSessionIdsEveryMs !== undefined) {
    // Faster than comet_sup's restart intensity allows, the tree gives up and the process exits 1
    // through onFatal: the crash test of a runnable server.
    setInterval(() => c.crashSessionIds(), config.faultSessionIdsEveryMs).unref();
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `${run.name} shutting down`);
    setTimeout(() => {
      logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed, exiting anyway');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    c.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return c;
}

/** One line saying why `listen` failed and what to do, for the common causes; the system's words otherwise. */
export function listenProblem(err: unknown, config: Pick<ServerConfig, 'host' | 'port'>): string {
  const where = `${config.host}:${config.port}`;
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the port is already in use (another server running?); choose another with --port or PORT`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges); choose another with --port or PORT`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: no such address on this machine; choose another with --host or HOST`;
    default:
      return `cannot listen on ${where}: ${err instanceof Error ? err.message : String(err)}`;
  }
}
