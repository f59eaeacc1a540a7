/**
 * Operations endpoints beside the comet endpoint: `GET /metrics` (Prometheus text) and
 * `GET /healthz` (200 while serving, 503 once closing or after the tree gave up), for a load
 * balancer to stop sending traffic before the process goes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { sendJson } from './respond.js';

export interface OpsOptions {
  /** Path of the Prometheus endpoint, or false to serve none (default `/metrics`). */
  readonly metricsPath: string | false;
  /** Path of the health endpoint, or false (default `/healthz`). */
  readonly healthPath: string | false;
  readonly registry: Registry | undefined;
  readonly healthy: () => boolean;
}

export const DEFAULT_METRICS_PATH = '/metrics';
export const DEFAULT_HEALTH_PATH = '/healthz';

/** Serve an ops request; false if `pathname` is not one of them. */
export function serveOps(opts: OpsOptions, pathname: string, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (opts.healthPath !== false && pathname === opts.healthPath) {
    const ok = opts.healthy();
    sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable' });
    return true;
  }
  if (opts.metricsPath !== false && pathname === opts.metricsPath && opts.registry) {
    const registry = opts.registry;
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(text);
      },
      () => sendJson(res, 503, { error: 'overloaded', message: 'metrics unavailable' }),
    );
    return true;
  }
  return false;
}
