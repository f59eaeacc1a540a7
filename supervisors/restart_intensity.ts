/**
 * Maximum restart intensity, as OTP's `add_restart`: a sliding window of monotonic timestamps.
 * Each restart pushes `now`; timestamps older than `period` are dropped; if more than `intensity`
 * remain, the supervisor must give up (stop its children and exit with reason `shutdown`).
 *
 * OTP keeps whole monotonic seconds; this keeps the Clock's milliseconds, so the window is exactly
 * `period * 1000` ms, boundary included: a restart exactly `period` seconds ago still counts.
 * Time comes from an injectable Clock so tests advance a ManualClock instead of sleeping.
 */
import type { Clock } from '../lib/otp/clock.js';

/** The answer for one restart: go on, or the intensity was exceeded. */
export type IntensityVerdict = 'ok' | 'terminate';

/**
 * One supervisor's restart history.
 * @example
 * const window = new RestartIntensity(1, 5, clock);
 * window.add(); // 'ok'        (1 restart within 5 s)
 * window.add(); // 'terminate' (2 restarts within 5 s > intensity 1)
 */
export class RestartIntensity {
  readonly intensity: number;
  readonly period: number;
  readonly #periodMs: number;
  readonly #clock: Clock;
  // Newest first, as OTP's list; never longer than intensity + 1, since the supervisor stops then.
  #restarts: number[] = [];

  constructor(intensity: number, periodSeconds: number, clock: Clock) {
    this.intensity = intensity;
    this.period = periodSeconds;
    this.#periodMs = periodSeconds * 1000;
    this.#clock = clock;
  }

  /** Record a restart now; `'terminate'` if that makes more than `intensity` within `period`. */
  add(): IntensityVerdict {
    const now = this.#clock.now();
    const threshold = now - this.#periodMs;
    const kept = [now];
    for (const r of this.#restarts) {
      if (r < threshold) break;
      kept.push(r);
    }
    this.#restarts = kept;
    return kept.length <= this.intensity ? 'ok' : 'terminate';
  }

  /** Restarts currently inside the window (as of the last `add`). */
  get count(): number {
    return this.#restarts.length;
  }
}
