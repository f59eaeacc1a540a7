/**
 * Logs that a client cannot amplify: the first few lines of a kind in an interval are written at
 * once, the repeats after them only counted, and one line per kind per interval then says how
 * many there were (`repeated: N`). A flood that would have written one line per message (a full
 * queue refusing 500,000 broadcasts) writes a handful of lines per interval instead. The kind is the message text, a
 * constant of the code: a client cannot make new kinds, so the table stays small.
 */
import type { Clock, TimerHandle } from './clock.js';
import type { Logger } from './logger.js';

/** How long repeats of one kind are summed before their count is written (ms). */
export const DEFAULT_LOG_THROTTLE_MS = 10_000;
/** Lines of one kind written as they come in each interval, before the rest are only counted:
 *  a few distinct failures stay readable one by one, a flood does not. */
export const DEFAULT_LOG_BURST = 5;

type Level = keyof Logger;

interface Window {
  /** Lines written in this interval. */
  written: number;
  /** Lines counted, not written, in this interval. */
  repeated: number;
  /** The fields of the latest repeat: the summary line says who it was last. */
  last: object;
  readonly timer: TimerHandle | NodeJS.Timeout;
}

/** A {@link Logger} whose lines are throttled per message text, plus what ends it cleanly. */
export interface ThrottledLogger extends Logger {
  /** Write the counts of the repeats so far now, and stop every interval timer (server close). */
  flush(): void;
}

export interface LogThrottleOptions {
  /** Default {@link DEFAULT_LOG_THROTTLE_MS}. */
  readonly intervalMs?: number;
  /** Default {@link DEFAULT_LOG_BURST}. */
  readonly burst?: number;
  /** The clock the interval timers run on (tests inject a ManualClock). Without one, Node's
   *  timers, unref'd: a pending count never keeps a process alive. */
  readonly clock?: Clock;
  /** Which levels are throttled (default warn and error: what a client's traffic can cause). */
  readonly levels?: readonly Level[];
}

/**
 * Wrap `logger`: at the throttled levels, a line whose message text was already written in the
 * current interval is counted instead of written.
 * @example
 * const log = throttleLogger(pino(), { intervalMs: 10_000 });
 * for (let i = 0; i < 1e6; i++) log.warn({ n: i }, 'queue full'); // 5 lines now, 1 after 10 s: repeated 999995
 */
export function throttleLogger(logger: Logger, options: LogThrottleOptions = {}): ThrottledLogger {
  const intervalMs = options.intervalMs ?? DEFAULT_LOG_THROTTLE_MS;
  const burst = Math.max(1, options.burst ?? DEFAULT_LOG_BURST);
  const clock = options.clock;
  const throttled = new Set<Level>(options.levels ?? ['warn', 'error']);
  const windows = new Map<string, Window>();

  const startTimer = (fn: () => void): TimerHandle | NodeJS.Timeout => {
    if (clock) return clock.setTimeout(fn, intervalMs);
    const timer = setTimeout(fn, intervalMs);
    timer.unref();
    return timer;
  };
  const stopTimer = (timer: TimerHandle | NodeJS.Timeout): void => {
    if (clock) clock.clearTimeout(timer as TimerHandle);
    else clearTimeout(timer as NodeJS.Timeout);
  };

  const key = (level: Level, msg: string): string => `${level}\u0000${msg}`;

  function summarise(level: Level, msg: string, w: Window): void {
    logger[level]({ ...w.last, repeated: w.repeated, intervalMs }, `${msg} (repeated)`);
  }

  function open(level: Level, msg: string): Window {
    const k = key(level, msg);
    const w: Window = {
      written: 0, repeated: 0, last: {},
      timer: startTimer(() => {
        windows.delete(k);
        // Repeats went on through the interval: say how many, and keep counting in a new one,
        // so a flood that lasts writes one line per interval, never one per repeat.
        if (w.repeated > 0) {
          summarise(level, msg, w);
          open(level, msg).written = burst;
        }
      }),
    };
    windows.set(k, w);
    return w;
  }

  const at = (level: Level) => (obj: object, msg?: string): void => {
    if (!throttled.has(level) || msg === undefined) return logger[level](obj, msg);
    const w = windows.get(key(level, msg)) ?? open(level, msg);
    if (w.written < burst) {
      w.written++;
      logger[level](obj, msg);
      return;
    }
    w.repeated++;
    w.last = obj;
  };

  return {
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    flush() {
      for (const [k, w] of windows) {
        stopTimer(w.timer);
        const [level, msg] = k.split('\u0000') as [Level, string];
        if (w.repeated > 0) summarise(level, msg, w);
      }
      windows.clear();
    },
  };
}
