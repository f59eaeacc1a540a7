/**
 * The ClusterBus on ioredis: one connection for commands and PUBLISH, one in subscriber mode.
 *
 * Settings chosen for a request path, not a job queue:
 * - commands: `enableOfflineQueue: false` and `maxRetriesPerRequest: 0`, so a command sent while
 *   Redis is away fails at once (the forwarding node answers 503 and the client retries) instead of
 *   being replayed minutes later, when its HTTP request is long gone;
 * - a bounded `commandTimeout`, so a silent Redis is a failed command, not a hung request; but
 *   neither the connect timeout nor the ready check follows it, so a busy host does not throw away
 *   its reconnections (a node back late after a Redis restart is declared dead);
 * - an explicit `retryStrategy` (capped backoff, for ever): the node recovers by itself;
 * - the subscriber: `autoResubscribe` after every reconnection; its offline queue only ever holds
 *   SUBSCRIBE commands.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { BusEvent, ClusterBus } from './bus.js';

/** Longest wait between two reconnection attempts (ms). */
export const RECONNECT_CAP_MS = 1000;
/** First wait before reconnecting (ms), doubled per attempt up to the cap. */
export const RECONNECT_BASE_MS = 50;
/** Default command timeout (ms); the cluster passes a fraction of the lease. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
/**
 * How long one connection attempt may take (ms), whatever the lease. Not a fraction of the lease:
 * with a short lease on a loaded host the connect timer fires before the connection's own I/O is
 * read (Node runs timers first), the attempt is thrown away, and the next waits a full
 * RECONNECT_CAP_MS: after a Redis restart that node comes back a second late, past the others'
 * grace period, and is declared dead although it was serving all along.
 */
export const CONNECT_TIMEOUT_MS = 1000;

export interface RedisBusOptions {
  /** `redis://host:port[/db]`. */
  readonly url: string;
  readonly commandTimeoutMs?: number;
}

/** How long to wait before reconnection attempt `times` (1, 2, ...). */
export function reconnectDelay(times: number): number {
  return Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(times - 1, 10));
}

export function createRedisBus(options: RedisBusOptions): ClusterBus {
  const common: RedisOptions = {
    retryStrategy: reconnectDelay,
    connectTimeout: CONNECT_TIMEOUT_MS,
    lazyConnect: false,
  };
  const cmd = new Redis(options.url, {
    ...common,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    // The ready check's INFO runs under the command timeout too: one event-loop stall while it is
    // out and the whole connection is thrown away (see CONNECT_TIMEOUT_MS). Without it, a command
    // sent while Redis loads a dataset fails (LOADING) and is retried like any failed renewal.
    enableReadyCheck: false,
    connectionName: 'comet-cmd',
  });
  const sub = new Redis(options.url, {
    ...common,
    autoResubscribe: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    connectionName: 'comet-sub',
  });
  const eventHandlers: ((event: BusEvent) => void)[] = [];
  const emit = (event: BusEvent): void => {
    for (const h of eventHandlers) h(event);
  };
  let cmdUp = false;
  let subUp = false;
  // An 'error' without a listener would crash the process; the 'close' that follows is what counts.
  let lastError = 'connection closed';
  cmd.on('error', (err: Error) => {
    lastError = err.message;
  });
  sub.on('error', (err: Error) => {
    lastError = err.message;
  });
  cmd.on('ready', () => {
    cmdUp = true;
    emit({ type: 'up' });
  });
  cmd.on('close', () => {
    if (!cmdUp) return;
    cmdUp = false;
    emit({ type: 'down', reason: lastError });
  });
  // ioredis emits 'ready' and only then writes its SUBSCRIBE again: a PING written after it
  // answers once the resubscription is done, so 'sub_up' means subscribed.
  sub.on('ready', () => {
    setImmediate(() => {
      sub.ping().then(() => {
        if (subUp || sub.status !== 'ready') return;
        subUp = true;
        emit({ type: 'sub_up' });
      }, () => {});
    });
  });
  sub.on('close', () => {
    if (!subUp) return;
    subUp = false;
    emit({ type: 'sub_down', reason: lastError });
  });
  return {
    get up() {
      return cmdUp && cmd.status === 'ready';
    },
    publish: (channel, message) => cmd.publish(channel, message),
    evalScript: (script, args) => cmd.eval(script, 0, ...args),
    subscribe: async (channel) => {
      await sub.subscribe(channel);
    },
    unsubscribe: async (channel) => {
      await sub.unsubscribe(channel);
    },
    onMessage(handler) {
      sub.on('message', handler);
    },
    onEvent(handler) {
      eventHandlers.push(handler);
    },
    async close() {
      eventHandlers.length = 0;
      await Promise.allSettled([cmd.quit(), sub.quit()]);
      cmd.disconnect();
      sub.disconnect();
    },
  };
}
