/**
 * The orchestrator's side of the victim process (bench/attack/victim.ts): an ordinary client on
 * 127.0.0.1, in a process of its own so that the attacker's work cannot slow its clock.
 */
import type { ChildProcess } from 'node:child_process';
import { killChild, spawnTracked } from '../children.js';

/** What the victim's messages look like: an echo string, or a chat line whose text it matches. */
export type VictimKind = 'echo' | 'chat';

/** Orchestrator -> victim. */
export type ToVictim =
  | { readonly type: 'init'; readonly port: number; readonly kind: VictimKind; readonly clients: number; readonly localAddress: string }
  /** Answered by `stats`: what happened since the last `mark`, then counting starts again. */
  | { readonly type: 'mark' };

/** Victim -> orchestrator. */
export type FromVictim = { readonly type: 'stats'; readonly stats: VictimStats };

/** What the victim saw over one stretch of time. */
export interface VictimStats {
  /** Requests answered as they should be (setups, echoes, terminates). */
  readonly ok: number;
  /** Requests that failed: a non-200 answer, a closed connection, or no answer within the deadline. */
  readonly failed: number;
  /** Failures by cause (`503 overloaded`, `timeout`, `closed`...). */
  readonly failures: Readonly<Record<string, number>>;
  /** Latency of the answered requests (ms); NaN when none. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Requests a victim client sends per second at most (it pauses between them): a light user. */
export const VICTIM_PAUSE_MS = 50;
/** A victim request not answered within this is a failure (ms). */
export const VICTIM_TIMEOUT_MS = 5_000;
/** Each victim session does this many echoes, then ends, and a new one is set up. */
export const VICTIM_ECHOES_PER_SESSION = 5;

/** A running victim process. */
export class Victim {
  readonly #child: ChildProcess;
  #waiting: ((s: VictimStats) => void) | null = null;

  constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (m: FromVictim) => {
      const w = this.#waiting;
      this.#waiting = null;
      // IPC is JSON: a NaN percentile (no sample) arrives as null.
      const num = (x: number | null): number => x ?? NaN;
      w?.({ ...m.stats, p50: num(m.stats.p50), p99: num(m.stats.p99), max: num(m.stats.max) });
    });
  }

  /** Stats since the last mark (or the start), and start counting again. */
  mark(timeoutMs = 10_000): Promise<VictimStats> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the victim did not report')), timeoutMs);
      this.#waiting = (s) => {
        clearTimeout(timer);
        resolve(s);
      };
      this.#child.send({ type: 'mark' } satisfies ToVictim);
    });
  }

  stop(): Promise<void> {
    return killChild(this.#child);
  }
}

/** Fork the victim script and start its clients against `port`. */
export const startVictim = (script: string, init: Omit<Extract<ToVictim, { type: 'init' }>, 'type'>): Victim => {
  const child = spawnTracked(process.execPath, [script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  child.send({ type: 'init', ...init } satisfies ToVictim);
  return new Victim(child);
};
