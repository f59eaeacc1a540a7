/**
 * The IPC protocol between the orchestrator (bench/run.ts) and its load worker processes.
 */
import type { HistogramPairs } from './histogram.js';

/** Which client protocol a worker speaks. */
export type Protocol = 'v1' | 'eio';

/** Orchestrator -> worker. */
export type ToWorker =
  | {
      readonly type: 'init';
      readonly protocol: Protocol;
      readonly host: string;
      readonly port: number;
      readonly path: string;
      readonly localAddress: string | undefined;
    }
  /** Open `count` sessions, at most `concurrency` setups in flight; answered by `opened`. */
  | { readonly type: 'open'; readonly count: number; readonly concurrency: number }
  /** Count broadcasts `b<n>:<t>`; send `got` when every live session has broadcast n. */
  | { readonly type: 'fanout' }
  /** Forget latencies, deliveries and counters so far (end of a warm-up); answered by `reset`. */
  | { readonly type: 'reset' }
  /** Closed-loop echo on the first `clients` sessions; answered by `measuring` then `echoed`. */
  | {
      readonly type: 'echo';
      readonly clients: number;
      readonly warmupMs: number;
      readonly durationMs: number;
      readonly maxRoundTrips: number;
    }
  /** Answered by `report`. */
  | { readonly type: 'report' }
  | { readonly type: 'stop' };

/** Worker -> orchestrator. */
export type FromWorker =
  | { readonly type: 'opened'; readonly ok: number; readonly failed: number; readonly ms: number; readonly firstError: string }
  | { readonly type: 'got'; readonly n: number }
  | { readonly type: 'reset' }
  | { readonly type: 'measuring' }
  | {
      readonly type: 'echoed';
      readonly roundTrips: number;
      readonly requests: number;
      readonly errors: number;
      readonly elapsedMs: number;
      readonly hist: HistogramPairs;
    }
  | {
      readonly type: 'report';
      readonly deliveries: number;
      readonly requests: number;
      readonly errors: number;
      readonly alive: number;
      readonly hist: HistogramPairs;
    };

/** Microseconds on CLOCK_MONOTONIC, which every process on the machine shares. */
export const monotonicUs = (): number => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

/** The payload of broadcast number `n`, stamped with the time it was sent. */
export const broadcastData = (n: number, sentUs: number): string => `b${n}:${Math.round(sentUs)}`;
