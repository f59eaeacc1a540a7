/**
 * A request carried through failures: the same body (same rid) is sent again after a network
 * error, a timeout or a 5xx, with capped exponential backoff and jitter, until an answer the
 * client can act on arrives. Re-sending the same rid is what makes retries safe: the server
 * treats a rid it has seen as a retransmission and does not deliver its messages twice.
 */
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { CometClientError } from './errors.js';
import { attempt, type AttemptOutcome, type FetchLike, type Timers } from './transport.js';
import { parseError, type RequestBody } from './wire.js';

/** What {@link exchange} needs from its client. */
export interface ExchangeContext {
  readonly url: string;
  readonly fetch: FetchLike;
  readonly timers: Timers;
  readonly random: () => number;
  readonly backoff: BackoffPolicy;
  /** Retries of one request after its first failed attempt before giving up (`maxRetries + 1` attempts in all). */
  readonly maxRetries: number;
  /** A retried request still pending after this long counts as healthy (the server holds it). */
  readonly healthyAfterMs: number;
  /** Called after each failed attempt, before the backoff sleep. */
  onFailure(error: CometClientError): void;
  /** Called when the server was heard from (any HTTP answer, or a retry the server is holding). */
  onHealthy(): void;
}

/** Per-request options of {@link exchange}. */
export interface ExchangeOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly keepalive?: boolean;
  /** Overrides the context's `maxRetries` (a terminate is tried once). */
  readonly maxRetries?: number;
}

/** How a request ended after all its retries. */
export type ExchangeResult<T> =
  | { readonly kind: 'ok'; readonly value: T }
  /** A 4xx the client must not retry (`unknown_session`, `too_large`, `protocol`). */
  | { readonly kind: 'rejected'; readonly error: CometClientError }
  | { readonly kind: 'aborted' }
  | { readonly kind: 'gave_up'; readonly error: CometClientError };

/**
 * The longest `Retry-After` the client honours (ms): a longer one (a misconfigured proxy, a
 * hostile server) is cut to this, so a client never sleeps for hours on one header.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** HTTP statuses worth the same request again: the server may recover, nothing was refused. */
const isRetryableStatus = (status: number): boolean => status >= 500 || status === 408 || status === 429;

/**
 * Sends `build()` until it succeeds, is refused, is aborted, or retries run out. `build` is
 * called per attempt so a retransmission carries the current ack (the rid and messages inside
 * stay the same: the caller closes over them).
 */
export async function exchange<T>(
  ctx: ExchangeContext,
  build: () => RequestBody,
  validate: (body: unknown) => T | undefined,
  options: ExchangeOptions,
): Promise<ExchangeResult<T>> {
  const maxRetries = options.maxRetries ?? ctx.maxRetries;
  for (let failures = 0; ; ) {
    const healthy = failures > 0 ? watchHealthy(ctx, options.signal) : undefined;
    const outcome = await attempt(ctx.url, build(), {
      fetch: ctx.fetch,
      timers: ctx.timers,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      ...(options.keepalive === undefined ? {} : { keepalive: options.keepalive }),
    });
    healthy?.();
    const verdict = judge(outcome, validate);
    if (verdict.kind !== 'retry') {
      if (verdict.kind === 'ok' || verdict.kind === 'rejected') ctx.onHealthy();
      return verdict;
    }
    failures += 1;
    ctx.onFailure(verdict.error);
    if (failures > maxRetries) {
      return {
        kind: 'gave_up',
        error: new CometClientError('unreachable', `gave up after ${failures} failed ${failures === 1 ? 'attempt' : 'attempts'} (${maxRetries} ${maxRetries === 1 ? 'retry' : 'retries'} after the first)`, {
          cause: verdict.error,
        }),
      };
    }
    // A `Retry-After` (429, or a 503 that says when) is the server's own word on when to come
    // back: it replaces the backoff of this attempt.
    const delay = verdict.retryAfterMs === undefined
      ? backoffDelay(failures, ctx.backoff, ctx.random)
      : Math.min(verdict.retryAfterMs, MAX_RETRY_AFTER_MS);
    if (!(await sleep(ctx.timers, delay, options.signal))) return { kind: 'aborted' };
  }
}

type Verdict<T> = ExchangeResult<T> | { readonly kind: 'retry'; readonly error: CometClientError; readonly retryAfterMs?: number };

function judge<T>(outcome: AttemptOutcome, validate: (body: unknown) => T | undefined): Verdict<T> {
  switch (outcome.kind) {
    case 'aborted':
      return { kind: 'aborted' };
    case 'timeout':
      return { kind: 'retry', error: new CometClientError('timeout', 'no answer before the deadline') };
    case 'network':
      return {
        kind: 'retry',
        error: new CometClientError('network', 'request failed before an HTTP answer', { cause: outcome.cause }),
      };
    case 'answer': {
      const verdict = judgeAnswer(outcome.status, outcome.body, validate);
      return verdict.kind === 'retry' && outcome.retryAfterMs !== undefined ? { ...verdict, retryAfterMs: outcome.retryAfterMs } : verdict;
    }
  }
}

function judgeAnswer<T>(status: number, body: unknown, validate: (body: unknown) => T | undefined): Verdict<T> {
  if (status >= 200 && status < 300) {
    const value = validate(body);
    // A mangled 2xx (a proxy's page, a truncated body) may hide an accepted request; the same
    // rid again is harmless, so retry rather than fail.
    if (value === undefined) {
      return { kind: 'retry', error: new CometClientError('bad_response', `unexpected ${status} body`, { status }) };
    }
    return { kind: 'ok', value };
  }
  const answer = parseError(body);
  const serverCode = answer?.error;
  const text = answer?.message ?? '';
  const details = serverCode === undefined ? { status } : { status, serverCode };
  if (isRetryableStatus(status)) {
    return { kind: 'retry', error: new CometClientError('http_status', `HTTP ${status} ${text}`.trim(), details) };
  }
  if (status === 404 && serverCode === 'unknown_session') {
    return { kind: 'rejected', error: new CometClientError('unknown_session', 'the session has ended', details) };
  }
  if (status === 413) {
    return { kind: 'rejected', error: new CometClientError('too_large', 'request body too large', details) };
  }
  const what = serverCode ?? `HTTP ${status}`;
  return { kind: 'rejected', error: new CometClientError('protocol', `server refused the request: ${what} ${text}`.trim(), details) };
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(timers: Timers, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      resolve(false);
    };
    const handle = timers.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A retransmitted poll that the server accepts is held silently, so no answer tells us the
 * server is back. If the retry has neither failed nor been answered after `healthyAfterMs`, we
 * take it as held. Returns the function that cancels the watch.
 */
function watchHealthy(ctx: ExchangeContext, signal: AbortSignal): () => void {
  const handle = ctx.timers.setTimeout(() => {
    if (!signal.aborted) ctx.onHealthy();
  }, ctx.healthyAfterMs);
  return () => ctx.timers.clearTimeout(handle);
}
