/**
 * The admin side every server under test offers: `POST /admin/broadcast {"data": X}` and
 * `GET /admin/stats` -> `{"sessions": N, "held": H}`.
 */
import { BenchError } from './errors.js';
import { HttpConn, type HttpResponse, type HttpTarget } from './http-conn.js';
import { hostHeader } from './session.js';

/** What `GET /admin/stats` reports. */
export interface ServerStats {
  readonly sessions: number;
  readonly held: number;
}

/** Default wait for an admin answer (ms). */
export const ADMIN_TIMEOUT_MS = 10_000;

/**
 * Promise-returning admin calls over one keep-alive connection, one at a time.
 *
 * @example
 * const admin = new AdminClient({ host: '127.0.0.1', port });
 * await admin.broadcast('hello');
 * const { sessions, held } = await admin.stats();
 */
export class AdminClient {
  readonly #target: HttpTarget;
  readonly #host: string;
  #conn: HttpConn;

  constructor(target: HttpTarget) {
    this.#target = target;
    this.#host = hostHeader(target);
    this.#conn = new HttpConn(target);
  }

  /** Push `data` to every live session. */
  async broadcast(data: string, timeoutMs = ADMIN_TIMEOUT_MS): Promise<void> {
    const body = JSON.stringify({ data });
    const res = await this.#call(
      `POST /admin/broadcast HTTP/1.1\r\nHost: ${this.#host}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      timeoutMs,
    );
    if (res.status !== 200) throw new BenchError('BENCH_HTTP_STATUS', `broadcast answered ${res.status}`);
  }

  /** Sessions and held polls. */
  async stats(timeoutMs = ADMIN_TIMEOUT_MS): Promise<ServerStats> {
    const res = await this.#call(`GET /admin/stats HTTP/1.1\r\nHost: ${this.#host}\r\n\r\n`, timeoutMs);
    if (res.status !== 200) throw new BenchError('BENCH_HTTP_STATUS', `stats answered ${res.status}`);
    const v = JSON.parse(res.body) as { sessions?: unknown; held?: unknown };
    if (typeof v.sessions !== 'number' || typeof v.held !== 'number') {
      throw new BenchError('BENCH_BAD_RESPONSE', `stats: ${res.body}`);
    }
    return { sessions: v.sessions, held: v.held };
  }

  close(): void {
    this.#conn.destroy();
  }

  #call(raw: string, timeoutMs: number): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const conn = this.#conn;
      const timer = setTimeout(() => {
        // The answer may still come; a fresh connection keeps later calls from waiting behind it.
        conn.destroy();
        this.#conn = new HttpConn(this.#target);
        reject(new BenchError('BENCH_TIMEOUT', `no admin answer within ${timeoutMs} ms`));
      }, timeoutMs);
      conn.request(raw, (err, res) => {
        clearTimeout(timer);
        if (err !== null || res === null) reject(err ?? new BenchError('BENCH_BAD_RESPONSE', 'no response'));
        else resolve(res);
      });
    });
  }
}
