/**
 * What every attack case is: a server to attack, a victim kind, and a `run` that attacks until its
 * work is done, its deadline passes or the server is gone, then reports its own outcome.
 */
import { RawConn } from './raw.js';
import type { VictimKind } from './victim-handle.js';

/** Which server a case attacks: the echo server, the chat demo, or the attack fixture. */
export type TargetKind = 'echo' | 'chat' | 'huge-push';

/** The first attacker source address; a case's second address is 127.0.0.3, and so on. */
export const ATTACKER_BASE = 2;

/** What `run` gets. */
export class AttackContext {
  readonly host: string;
  readonly port: number;
  /** The case's main count (`--count`), or null for its default. */
  readonly count: number | null;
  /** performance.now() after which the attack must stop. */
  readonly deadline: number;
  /** Bytes the server has logged since the attack began. */
  readonly logBytes: () => number;
  readonly #conns = new Set<{ destroy(): void }>();
  #stopReason: string | null = null;
  readonly #wakers = new Set<() => void>();

  constructor(host: string, port: number, count: number | null, deadline: number, logBytes: () => number) {
    this.host = host;
    this.logBytes = logBytes;
    this.port = port;
    this.count = count;
    this.deadline = deadline;
  }

  /** The attacker's source address number `i` (0: 127.0.0.2). */
  address(i = 0): string {
    return `127.0.0.${ATTACKER_BASE + i}`;
  }

  /** True once the deadline passed or the server is gone. */
  get stopped(): boolean {
    if (this.#stopReason === null && performance.now() >= this.deadline) this.stop('deadline');
    return this.#stopReason !== null;
  }

  /** Why it stopped ('deadline', or how the server ended), or null. */
  get stopReason(): string | null {
    return this.#stopReason;
  }

  /** Stop now: every connection the case opened through `conn`/`track` is destroyed. */
  stop(reason: string): void {
    if (this.#stopReason !== null) return;
    this.#stopReason = reason;
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    for (const w of this.#wakers) w();
  }

  /** A keep-alive connection from address `i`, destroyed when the case stops. */
  conn(i = 0, keepBytes?: number): RawConn {
    return this.track(new RawConn(this.host, this.port, this.address(i), keepBytes));
  }

  /** Destroy `c` when the case stops. */
  track<C extends { destroy(): void }>(c: C): C {
    if (this.#stopReason !== null) c.destroy();
    else this.#conns.add(c);
    return c;
  }

  /** Sleep `ms`, or less if the case stops meanwhile (or the deadline comes first). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, Math.min(ms, this.deadline - performance.now())));
      this.#wakers.add(wake);
    });
  }

  /** ms left before the deadline. */
  get left(): number {
    return Math.max(0, this.deadline - performance.now());
  }
}

/** A case's own result: a one-line summary, its figures, and a verdict on its own goal. */
export interface Outcome {
  readonly summary: string;
  /** Sessions the attack held at its peak (for the RSS target's per-session overhead). */
  readonly sessions: number;
  /** The case's own goal (3,000 echoes, a 200 to the absolute form...), or null when it has none beyond the four targets. */
  readonly ownPass: boolean | null;
  readonly figures: Readonly<Record<string, number | string>>;
}

/** One row of the attack table. */
export interface AttackCase {
  readonly name: string;
  /** Its row in issue 11's table. */
  readonly row: number;
  readonly summary: string;
  readonly target: TargetKind;
  readonly victim: VictimKind;
  /** What `--count` sets, and its default. */
  readonly count: { readonly what: string; readonly default: number } | null;
  run(ctx: AttackContext): Promise<Outcome>;
}

/** Count occurrences by key. */
export const tally = (m: Record<string, number>, key: string): void => {
  m[key] = (m[key] ?? 0) + 1;
};

/** `{"503 overloaded": 3, "200": 5}` as `200 x5, 503 overloaded x3`. */
export const tallyText = (m: Readonly<Record<string, number>>): string =>
  Object.entries(m)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k} x${v}`)
    .join(', ') || 'none';

/** Bytes as MiB with one decimal. */
export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
