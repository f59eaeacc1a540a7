/**
 * A log-scale latency histogram in microseconds: fixed memory whatever the sample count,
 * mergeable across worker processes by adding counts, about 2% resolution.
 */

/** Buckets per doubling: 2^(1/32) apart, about 2.2%. */
export const BUCKETS_PER_OCTAVE = 32;
const OCTAVES = 31; // up to 2^31 us, about 36 minutes: nothing we wait for lasts longer
const SIZE = BUCKETS_PER_OCTAVE * OCTAVES + 1;

/** Sparse form for IPC: [bucket, count] pairs. */
export type HistogramPairs = [number, number][];

/**
 * @example
 * const h = new LogHistogram();
 * h.add(120); h.add(250);
 * h.percentile(0.5); // about 120
 */
export class LogHistogram {
  readonly #counts = new Float64Array(SIZE);
  #total = 0;

  /** Number of samples. */
  get count(): number {
    return this.#total;
  }

  /** Record one latency in microseconds. */
  add(us: number): void {
    const b = us < 1 ? 0 : Math.min(SIZE - 1, Math.floor(Math.log2(us) * BUCKETS_PER_OCTAVE) + 1);
    this.#counts[b] = (this.#counts[b] ?? 0) + 1;
    this.#total++;
  }

  /** Add another histogram's pairs (from another worker). */
  merge(pairs: HistogramPairs): void {
    for (const [b, c] of pairs) {
      if (b < 0 || b >= SIZE) continue;
      this.#counts[b] = (this.#counts[b] ?? 0) + c;
      this.#total += c;
    }
  }

  /** The `q` quantile (0..1) in microseconds, NaN when empty. */
  percentile(q: number): number {
    if (this.#total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    for (let b = 0; b < SIZE; b++) {
      seen += this.#counts[b] ?? 0;
      if (seen >= rank) return b === 0 ? 0.5 : 2 ** ((b - 0.5) / BUCKETS_PER_OCTAVE);
    }
    return NaN;
  }

  /** Sparse pairs for IPC. */
  toPairs(): HistogramPairs {
    const out: HistogramPairs = [];
    this.#counts.forEach((c, b) => {
      if (c > 0) out.push([b, c]);
    });
    return out;
  }

  /** Forget every sample. */
  reset(): void {
    this.#counts.fill(0);
    this.#total = 0;
  }
}
