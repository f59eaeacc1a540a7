/**
 * Client side of Engine.IO protocol v4's polling transport, for the load generator.
 * Handshake `GET /engine.io/?EIO=4&transport=polling`, then long-poll GETs and packet POSTs;
 * packets in one body are separated by \x1e, each a type digit and its data.
 */
import { BenchError } from './errors.js';
import { HttpConn, type HttpResponse } from './http-conn.js';
import { hostHeader, MAX_CONSECUTIVE_FAILURES, type LoadSession, type SessionOptions } from './session.js';

/** Engine.IO's default path. */
export const EIO_PATH = '/engine.io/';

const SEPARATOR = '\x1e';

/**
 * An Engine.IO v4 polling session. Answers the server's pings, so it survives past `pingInterval`.
 *
 * @example
 * const s = new EioSession({ target: { host: '127.0.0.1', port }, path: '/engine.io/',
 *   counters: { requests: 0, errors: 0 }, onData: (d) => console.log(d) });
 * s.open((err) => { if (err === null) s.send('hello'); });
 */
export class EioSession implements LoadSession {
  readonly #o: SessionOptions;
  readonly #poll: HttpConn;
  #sender: HttpConn | null = null;
  readonly #query: string;
  #pollRequest = '';
  #postHead = '';
  #alive = false;
  #closed = false;
  #failures = 0;
  #outbox: string[] = [];

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#poll = new HttpConn(options.target);
    this.#query = `${options.path}?EIO=4&transport=polling`;
  }

  get alive(): boolean {
    return this.#alive;
  }

  open(cb: (err: BenchError | null) => void): void {
    const host = hostHeader(this.#o.target);
    this.#o.counters.requests++;
    this.#poll.request(`GET ${this.#query} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, (err, res) => {
      const sid = err === null ? handshakeSid(res) : null;
      if (sid === null) {
        this.#o.counters.errors++;
        cb(err ?? new BenchError('BENCH_HTTP_STATUS', `handshake answered ${res?.status ?? 0}: ${res?.body ?? ''}`));
        return;
      }
      const url = `${this.#query}&sid=${sid}`;
      this.#pollRequest = `GET ${url} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
      this.#postHead =
        `POST ${url} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: `;
      this.#alive = true;
      this.#pollOnce();
      cb(null);
    });
  }

  send(message: string): void {
    this.#enqueue(`4${message}`);
  }

  close(): void {
    this.#closed = true;
    this.#alive = false;
    this.#poll.destroy();
    this.#sender?.destroy();
  }

  #enqueue(packet: string): void {
    this.#outbox.push(packet);
    if (this.#sender?.busy !== true) this.#flush();
  }

  #pollOnce(): void {
    this.#o.counters.requests++;
    this.#poll.request(this.#pollRequest, (err, res) => {
      if (this.#closed) return;
      if (this.#ok(err, res)) this.#packets((res as HttpResponse).body);
      if (this.#alive) this.#pollOnce();
    });
  }

  #flush(): void {
    if (this.#outbox.length === 0 || !this.#alive) return;
    const body = this.#outbox.join(SEPARATOR);
    // A POST that only answers pings (an idle session) must not leave a second socket open per
    // session: 19,000 idle sessions would then need 38,000 descriptors in the server.
    const pongsOnly = this.#outbox.every((p) => p.charCodeAt(0) === 0x33 /* '3' */);
    this.#outbox = [];
    this.#sender ??= new HttpConn(this.#o.target);
    this.#o.counters.requests++;
    const head = pongsOnly ? this.#postHead.replace('\r\nContent-Length: ', '\r\nConnection: close\r\nContent-Length: ') : this.#postHead;
    this.#sender.request(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`, (err, res) => {
      if (this.#closed) return;
      if (this.#ok(err, res)) this.#flush();
    });
  }

  #ok(err: BenchError | null, res: HttpResponse | null): boolean {
    if (err === null && res?.status === 200) {
      this.#failures = 0;
      return true;
    }
    this.#o.counters.errors++;
    // 400 is how Engine.IO answers a sid it no longer knows: the session is over.
    if (res?.status === 400 || ++this.#failures >= MAX_CONSECUTIVE_FAILURES) this.#alive = false;
    return false;
  }

  #packets(body: string): void {
    let start = 0;
    while (start < body.length) {
      let end = body.indexOf(SEPARATOR, start);
      if (end < 0) end = body.length;
      const type = body.charCodeAt(start);
      if (type === 0x34 /* '4' message */) this.#o.onData(body.slice(start + 1, end));
      else if (type === 0x32 /* '2' ping */) this.#enqueue(`3${body.slice(start + 1, end)}`);
      else if (type === 0x31 /* '1' close */) this.#alive = false;
      start = end + 1;
    }
  }
}

/** The sid out of an open packet (`0{"sid":...}`), or null. */
const handshakeSid = (res: HttpResponse | null): string | null => {
  if (res === null || res.status !== 200 || !res.body.startsWith('0')) return null;
  try {
    const v: unknown = JSON.parse(res.body.slice(1));
    const sid = typeof v === 'object' && v !== null ? (v as { sid?: unknown }).sid : undefined;
    return typeof sid === 'string' ? sid : null;
  } catch {
    return null;
  }
};
