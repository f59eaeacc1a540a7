/**
 * Prometheus metrics of a comet server (prom-client). Gauges and counters are computed at scrape
 * time from what the server already keeps (the session table, in-flight requests, the FSMs' shared
 * counters), so serving traffic costs no metric calls beyond one counter per HTTP response.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '../otp/logger.js';
import type { ConnectionStats } from './stats.js';

export interface MetricsSources {
  readonly sessions: () => number;
  readonly held: () => number;
  readonly stats: ConnectionStats;
}

export interface CometMetrics {
  readonly registry: Registry;
  /** Count one HTTP response on the comet endpoint. */
  response(status: number): void;
  /** Wrap a logger so supervisor reports of restarts are counted by child. */
  countRestarts(logger: Logger): Logger;
}

/**
 * Register comet-fsm's metrics in `registry` (a new one if not given).
 * @example
 * const m = createMetrics({ sessions: () => 3, held: () => 1, stats: newConnectionStats() });
 * await m.registry.metrics(); // Prometheus text
 */
export function createMetrics(src: MetricsSources, registry: Registry = new Registry()): CometMetrics {
  const registers = [registry];
  new Gauge({ name: 'comet_sessions', help: 'Live comet sessions', registers, collect() { this.set(src.sessions()); } });
  new Gauge({ name: 'comet_polls_held', help: 'Requests held by the server right now', registers, collect() { this.set(src.held()); } });
  new Gauge({ name: 'comet_packets_queued', help: 'Packets queued and not yet acknowledged, all sessions', registers, collect() { this.set(src.stats.queued); } });
  counterFromStat(registers, 'comet_messages_in_total', 'Client messages delivered to the application', () => src.stats.messagesIn);
  counterFromStat(registers, 'comet_packets_out_total', 'Packets accepted into session queues', () => src.stats.packetsOut);
  counterFromStat(registers, 'comet_packets_refused_total', 'Packets refused: session queue full', () => src.stats.packetsRefused);
  // Counted in a plain map per status and handed to prom-client at scrape time: its label lookup
  // (a key built from the labels object) would otherwise run on every response.
  const responses = new Map<number, { count: number; seen: number }>();
  new Counter({
    name: 'comet_http_requests_total', help: 'Responses on the comet endpoint, by status', labelNames: ['status'], registers,
    collect() {
      for (const [status, c] of responses) {
        if (c.count > c.seen) this.inc({ status: String(status) }, c.count - c.seen);
        c.seen = c.count;
      }
    },
  });
  const restarts = new Counter({ name: 'comet_supervisor_restarts_total', help: 'Children restarted by a supervisor, by child id', labelNames: ['supervisor', 'child'], registers });


  return {
    registry,
    response(status) {
      const c = responses.get(status);
      if (c) c.count++;
      else responses.set(status, { count: 1, seen: 0 });
    },
    countRestarts(logger) {
      return {
        ...logger,
        debug: (o, m) => logger.debug(o, m),
        info: (o, m) => logger.info(o, m),
        warn: (o, m) => logger.warn(o, m),
        error(obj, msg) {
          const r = obj as { errorContext?: unknown; action?: unknown; supervisor?: unknown; child?: unknown };
          if (r.errorContext === 'child_terminated' && r.action === 'restart') {
            restarts.inc({ supervisor: String(r.supervisor), child: String(r.child) });
          }
          logger.error(obj, msg);
        },
      };
    },
  };
}

/**
 * A Prometheus counter that follows a plain counter of ours (`read`, never decreasing), handed
 * over at scrape time: the hot path only does `n++`, and prom-client is touched once per scrape.
 */
export function counterFromStat(registers: Registry[], name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name, help, registers,
    collect() {
      const now = read();
      if (now > seen) this.inc(now - seen);
      seen = now;
    },
  });
}
