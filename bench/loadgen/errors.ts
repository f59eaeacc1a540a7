/**
 * Errors of the benchmark's load generator. Callers match on `code`, never on the class.
 */
export type BenchErrorCode =
  | 'BENCH_CONN_CLOSED'
  | 'BENCH_BAD_RESPONSE'
  | 'BENCH_HTTP_STATUS'
  | 'BENCH_CONN_BUSY'
  | 'BENCH_TIMEOUT'
  | 'BENCH_SERVER_START';

/** An error with a stable string `code`. */
export class BenchError extends Error {
  readonly code: BenchErrorCode;
  constructor(code: BenchErrorCode, message: string) {
    super(message);
    this.name = 'BenchError';
    this.code = code;
  }
}
