/**
 * One keep-alive HTTP/1.1 connection over `node:net`, one request at a time.
 *
 * Why not `node:http`'s client: it costs about as much CPU as the server it drives, so the
 * benchmark would measure itself. Here requests are strings the caller pre-builds and
 * responses are framed with `indexOf` on the raw bytes.
 */
import { connect, type Socket } from 'node:net';
import { BenchError } from './errors.js';

/** Where a connection goes, and from which loopback source address. */
export interface HttpTarget {
  readonly host: string;
  readonly port: number;
  /** A 127.x.y.z address of our own, so that each worker has its own ephemeral port range. */
  readonly localAddress?: string | undefined;
}

/** A complete response: status code and body decoded as UTF-8. */
export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

/** Called exactly once per request. */
export type ResponseHandler = (err: BenchError | null, res: HttpResponse | null) => void;

const HEAD_END = '\r\n\r\n';
const CONTENT_LENGTH = '\r\ncontent-length:';
// Node, engine.io and most servers spell it this way; checking it first spares a toLowerCase.
const CONTENT_LENGTH_NODE = '\r\nContent-Length: ';

interface Framed {
  readonly status: number;
  readonly body: string;
  readonly end: number;
  readonly close: boolean;
}

/** Body of a chunked message starting at `start`, or null when not all of it has arrived. */
const unchunk = (buf: Buffer, start: number): { body: string; end: number } | null => {
  const parts: Buffer[] = [];
  let pos = start;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = parseInt(buf.toString('latin1', pos, eol), 16);
    if (Number.isNaN(size)) throw new BenchError('BENCH_BAD_RESPONSE', 'bad chunk size');
    if (size === 0) {
      // No trailers are expected: the message ends with the empty line after the last chunk.
      if (buf.length < eol + 4) return null;
      return { body: Buffer.concat(parts).toString('utf8'), end: eol + 4 };
    }
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
};

/** One response framed out of `buf`, or null when it has not all arrived yet. */
export const frameResponse = (buf: Buffer): Framed | null => {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd < 0) return null;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  if (!head.startsWith('HTTP/1.') || !Number.isInteger(status)) {
    throw new BenchError('BENCH_BAD_RESPONSE', `not an HTTP/1.x status line: ${head.slice(0, 40)}`);
  }
  const bodyStart = headEnd + 4;
  let lenAt = head.indexOf(CONTENT_LENGTH_NODE);
  let lower: string | null = null;
  let skip = CONTENT_LENGTH_NODE.length;
  if (lenAt < 0) {
    lower = head.toLowerCase();
    lenAt = lower.indexOf(CONTENT_LENGTH);
    skip = CONTENT_LENGTH.length;
  }
  const close = (lower ?? head.toLowerCase()).includes('\r\nconnection: close');
  if (lenAt >= 0) {
    const eol = head.indexOf('\r\n', lenAt + skip);
    const len = parseInt(head.slice(lenAt + skip, eol < 0 ? head.length : eol), 10);
    if (buf.length < bodyStart + len) return null;
    return { status, body: buf.toString('utf8', bodyStart, bodyStart + len), end: bodyStart + len, close };
  }
  if ((lower ?? head.toLowerCase()).includes('\r\ntransfer-encoding: chunked')) {
    const r = unchunk(buf, bodyStart);
    return r === null ? null : { status, body: r.body, end: r.end, close };
  }
  // Neither length nor chunks: only bodiless statuses (204, 304) are framed; anything else would
  // be read-until-close, which a keep-alive benchmark client does not support.
  if (status === 204 || status === 304) return { status, body: '', end: bodyStart, close };
  throw new BenchError('BENCH_BAD_RESPONSE', `response ${status} without Content-Length or chunked body`);
};

/**
 * A keep-alive connection that sends one pre-built request at a time and reconnects lazily
 * after the server closed it.
 *
 * @example
 * const conn = new HttpConn({ host: '127.0.0.1', port: 8080 });
 * conn.request('GET /admin/stats HTTP/1.1\r\nHost: x\r\n\r\n', (err, res) => console.log(err ?? res));
 */
export class HttpConn {
  readonly #target: HttpTarget;
  #socket: Socket | null = null;
  #pending: ResponseHandler | null = null;
  #buf: Buffer | null = null;
  #destroyed = false;

  constructor(target: HttpTarget) {
    this.#target = target;
  }

  /** True while a request waits for its response. */
  get busy(): boolean {
    return this.#pending !== null;
  }

  /** Send `raw` (a complete HTTP/1.1 request) and call `cb` once with the response or an error. */
  request(raw: string, cb: ResponseHandler): void {
    if (this.#pending !== null) {
      cb(new BenchError('BENCH_CONN_BUSY', 'a request is already in flight on this connection'), null);
      return;
    }
    if (this.#destroyed) {
      cb(new BenchError('BENCH_CONN_CLOSED', 'connection destroyed'), null);
      return;
    }
    this.#pending = cb;
    (this.#socket ?? this.#open()).write(raw);
  }

  /** Close the socket for good; a request in flight gets `BENCH_CONN_CLOSED`. */
  destroy(): void {
    this.#destroyed = true;
    this.#socket?.destroy();
  }

  #open(): Socket {
    const t = this.#target;
    const socket = connect({ host: t.host, port: t.port, localAddress: t.localAddress, noDelay: true });
    this.#socket = socket;
    this.#buf = null;
    socket.on('data', (chunk: Buffer) => this.#onData(socket, chunk));
    // 'close' always follows 'error', and is where the pending request is failed.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      // A socket we already let go of (Connection: close, bad bytes) must not fail the request
      // that a newer socket now carries.
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#fail(new BenchError('BENCH_CONN_CLOSED', 'connection closed before the response'));
    });
    return socket;
  }

  #fail(err: BenchError): void {
    const cb = this.#pending;
    this.#pending = null;
    if (cb !== null) cb(err, null);
  }

  #onData(socket: Socket, chunk: Buffer): void {
    const buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    let framed: Framed | null;
    try {
      framed = frameResponse(buf);
    } catch (e) {
      this.#buf = null;
      this.#socket = null;
      socket.destroy();
      this.#fail(e instanceof BenchError ? e : new BenchError('BENCH_BAD_RESPONSE', String(e)));
      return;
    }
    if (framed === null) {
      this.#buf = buf;
      return;
    }
    // One request in flight at a time, so bytes past the response can only be garbage.
    this.#buf = null;
    if (framed.close) {
      this.#socket = null;
      socket.destroy();
    }
    const cb = this.#pending;
    this.#pending = null;
    if (cb !== null) cb(null, { status: framed.status, body: framed.body });
  }
}
