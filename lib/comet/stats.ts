/**
 * Plain counters the connection FSMs bump as they work. A shared mutable record, not callbacks or
 * messages: thousands of FSMs update it on every packet, and the metrics read it only at scrape.
 */
export interface ConnectionStats {
  /** Client messages delivered to the application. */
  messagesIn: number;
  /** Packets accepted into session queues. */
  packetsOut: number;
  /** Packets refused because a session's queue was full. */
  packetsRefused: number;
  /** Packets queued and not yet acknowledged, across all sessions. */
  queued: number;
}

export function newConnectionStats(): ConnectionStats {
  return { messagesIn: 0, packetsOut: 0, packetsRefused: 0, queued: 0 };
}
