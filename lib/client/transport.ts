/**
 * One HTTP attempt: POST a JSON body, read the answer, give up after a deadline. Uses only the
 * global `fetch` and `AbortController`, so it runs unchanged in browsers and in Node 20.
 */
import type { RequestBody } from './wire.js';

/** The part of a fetch `Response` the client reads. */
export interface FetchResponseLike {
  readonly status: number;
  text(): Promise<string>;
  /** Read for `Retry-After` only; a fetch without headers is fine (no Retry-After then). */
  readonly headers?: { get(name: string): string | null };
}

/** The part of `RequestInit` the client sets. */
export interface FetchInitLike {
  readonly method: 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly signal: AbortSignal;
  readonly keepalive?: boolean;
}

/** A `fetch` the client can call: the global one, or a fake in tests. */
export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>;

/** Timer functions the client uses; injectable so tests control time. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The global timers. */
export const defaultTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
};

/**
 * The global fetch, looked up at call time and called as a plain function: browsers throw
 * "Illegal invocation" when `fetch` is called with another `this`, as `options.fetch(...)` would.
 */
export const defaultFetch: FetchLike = (url, init) => globalThis.fetch(url, init);

/** How one attempt ended. */
export type AttemptOutcome =
  /** An HTTP answer; `body` is the parsed JSON, or `undefined` if the body was not JSON;
   *  `retryAfterMs` from a `Retry-After` header, when there was a valid one. */
  | { readonly kind: 'answer'; readonly status: number; readonly body: unknown; readonly retryAfterMs?: number }
  | { readonly kind: 'network'; readonly cause: unknown }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'aborted' };

/** Options of {@link attempt}. */
export interface AttemptOptions {
  readonly fetch: FetchLike;
  readonly timers: Timers;
  readonly timeoutMs: number;
  /** Aborting it cancels the attempt (the client is closing or left the session behind). */
  readonly signal: AbortSignal;
  readonly keepalive?: boolean;
}

/** POSTs `body` to `url` once. Never throws: every ending is an {@link AttemptOutcome}. */
export async function attempt(url: string, body: RequestBody, options: AttemptOptions): Promise<AttemptOutcome> {
  const { signal, timers } = options;
  if (signal.aborted) return { kind: 'aborted' };
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = (): void => controller.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  // The deadline covers reading the body too: a proxy that sends headers and then stalls must
  // not hold the loop forever.
  const timer = timers.setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  try {
    const response = await options.fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
      ...(options.keepalive === true ? { keepalive: true } : {}),
    });
    const text = await response.text();
    const retryAfterMs = parseRetryAfter(response.headers?.get('retry-after') ?? null, Date.now());
    return retryAfterMs === undefined
      ? { kind: 'answer', status: response.status, body: parseJson(text) }
      : { kind: 'answer', status: response.status, body: parseJson(text), retryAfterMs };
  } catch (cause) {
    if (timedOut) return { kind: 'timeout' };
    if (signal.aborted) return { kind: 'aborted' };
    return { kind: 'network', cause };
  } finally {
    timers.clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * A `Retry-After` value in ms (RFC 9110 10.2.3): delay-seconds, or an HTTP-date (from `now`,
 * wall-clock ms). `undefined` when absent or not valid.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
