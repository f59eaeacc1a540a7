/** First retry waits about this long (ms), before jitter. */
export const DEFAULT_RETRY_BASE_MS = 250;
/** No retry waits longer than this (ms): a recovered server is noticed within this delay. */
export const DEFAULT_RETRY_CAP_MS = 10_000;

/** Shape of the backoff policy. */
export interface BackoffPolicy {
  /** Delay before the first retry, before jitter (ms). */
  readonly baseMs: number;
  /** Upper bound of any delay (ms). */
  readonly capMs: number;
}

/**
 * Delay before retry number `attempt` (1 for the first retry): capped exponential backoff with
 * "equal jitter" — half the delay is fixed, half random — so thousands of clients cut off by the
 * same server restart do not come back in lockstep, yet none retries immediately.
 *
 * @param random a function returning a number in [0, 1), `Math.random` by default.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const exponent = Math.max(0, attempt - 1);
  // Cap before multiplying so a long outage cannot overflow to Infinity.
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(exponent, 30));
  const r = Math.min(Math.max(random(), 0), 1);
  return ceiling / 2 + r * (ceiling / 2);
}
