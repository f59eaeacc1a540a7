/**
 * Client side of wire contract v1 (`POST /comet`, JSON bodies) for the load generator.
 * Two keep-alive connections per session: one always holds a poll, the other carries messages.
 */
import { BenchError } from './errors.js';
import { HttpConn, type HttpResponse } from './http-conn.js';
import { hostHeader, MAX_CONSECUTIVE_FAILURES, type LoadSession, type SessionOptions } from './session.js';

/** The path of wire contract v1's endpoint in every server under test. */
export const V1_PATH = '/comet';

const SETUP_BODY = '{"type":"setup"}';

interface V1Reply {
  readonly sid?: unknown;
  readonly packets?: unknown;
}

/**
 * A v1 session: `{"type":"setup"}`, then requests carrying `rid`, `ack` and `messages`.
 * Packets at or below `ack` are re-sends and are dropped before `onData`.
 *
 * @example
 * const s = new V1Session({ target: { host: '127.0.0.1', port }, path: '/comet',
 *   counters: { requests: 0, errors: 0 }, onData: (d) => console.log(d) });
 * s.open((err) => { if (err === null) s.send('hello'); });
 */
export class V1Session implements LoadSession {
  readonly #o: SessionOptions;
  readonly #poll: HttpConn;
  #sender: HttpConn | null = null;
  readonly #prefix: string;
  #bodyHead = '';
  #rid = 0;
  #ack = 0;
  #alive = false;
  #closed = false;
  #failures = 0;
  #outbox: string[] = [];

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#poll = new HttpConn(options.target);
    this.#prefix =
      `POST ${options.path} HTTP/1.1\r\nHost: ${hostHeader(options.target)}\r\n` +
      'Content-Type: application/json\r\nContent-Length: ';
  }

  get alive(): boolean {
    return this.#alive;
  }

  open(cb: (err: BenchError | null) => void): void {
    this.#request(this.#poll, SETUP_BODY, (err, res) => {
      const reply = err === null ? this.#parse(res) : null;
      if (reply === null || typeof reply.sid !== 'string') {
        this.#o.counters.errors++;
        cb(err ?? new BenchError('BENCH_HTTP_STATUS', `setup answered ${res?.status ?? 0}: ${res?.body ?? ''}`));
        return;
      }
      this.#bodyHead = `{"sid":${JSON.stringify(reply.sid)},"rid":`;
      this.#alive = true;
      this.#pollOnce();
      cb(null);
    });
  }

  send(message: string): void {
    this.#outbox.push(message);
    if (this.#sender?.busy !== true) this.#flush();
  }

  close(): void {
    this.#closed = true;
    this.#alive = false;
    this.#poll.destroy();
    this.#sender?.destroy();
  }

  #request(conn: HttpConn, body: string, cb: (err: BenchError | null, res: HttpResponse | null) => void): void {
    this.#o.counters.requests++;
    conn.request(`${this.#prefix}${Buffer.byteLength(body)}\r\n\r\n${body}`, cb);
  }

  #pollOnce(): void {
    this.#request(this.#poll, `${this.#bodyHead}${++this.#rid},"ack":${this.#ack}}`, (err, res) => {
      if (this.#closed) return;
      if (this.#handle(err, res)) this.#pollOnce();
    });
  }

  #flush(): void {
    if (this.#outbox.length === 0 || !this.#alive) return;
    const messages = JSON.stringify(this.#outbox);
    this.#outbox = [];
    this.#sender ??= new HttpConn(this.#o.target);
    const body = `${this.#bodyHead}${++this.#rid},"ack":${this.#ack},"messages":${messages}}`;
    this.#request(this.#sender, body, (err, res) => {
      if (this.#closed) return;
      if (this.#handle(err, res)) this.#flush();
    });
  }

  /** Deliver a reply's packets; false once the session is dead. */
  #handle(err: BenchError | null, res: HttpResponse | null): boolean {
    const reply = err === null ? this.#parse(res) : null;
    if (reply === null) {
      this.#o.counters.errors++;
      // 404: the server ended the session; polling on would only collect more 404s.
      if (res?.status === 404 || ++this.#failures >= MAX_CONSECUTIVE_FAILURES) this.#alive = false;
      return this.#alive;
    }
    this.#failures = 0;
    if (Array.isArray(reply.packets)) {
      for (const p of reply.packets as { seq: number; data: unknown }[]) {
        if (p.seq <= this.#ack) continue;
        this.#ack = p.seq;
        if (typeof p.data === 'string') this.#o.onData(p.data);
      }
    }
    return this.#alive;
  }

  #parse(res: HttpResponse | null): V1Reply | null {
    if (res === null || res.status !== 200) return null;
    try {
      const v: unknown = JSON.parse(res.body);
      return typeof v === 'object' && v !== null ? v : null;
    } catch {
      return null;
    }
  }
}
