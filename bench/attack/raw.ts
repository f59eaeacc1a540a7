/**
 * A raw HTTP/1.1 client over `node:net` for the attacks: one keep-alive socket, one request at a
 * time, from a source address of our choice. Responses are framed by `Content-Length` and counted
 * as they stream in; their bodies are kept only up to a limit, so that an attacker reading an
 * 18 MiB answer holds neither 18 MiB nor the quadratic copies of bench/loadgen/http-conn.ts.
 */
import { connect, type Socket } from 'node:net';

/** Why a request did not get its answer. Callers match on `code`. */
export type AttackErrorCode = 'ATTACK_CLOSED' | 'ATTACK_TIMEOUT' | 'ATTACK_BAD_RESPONSE' | 'ATTACK_BUSY';

/** An error with a stable `code`. */
export class AttackError extends Error {
  readonly code: AttackErrorCode;
  constructor(code: AttackErrorCode, message: string) {
    super(message);
    this.name = 'AttackError';
    this.code = code;
  }
}

/** One final response (1xx interim answers are skipped). */
export interface RawResponse {
  readonly status: number;
  /** Body length in bytes, whether kept or not. */
  readonly bytes: number;
  /** The body as UTF-8, or '' when it was longer than the connection keeps. */
  readonly body: string;
  /** The head (status line and headers), latin1. */
  readonly head: string;
}

/** Bodies up to this many bytes are kept by default (setup answers, errors, small polls). */
export const DEFAULT_KEEP_BYTES = 1 << 20;

const HEAD_END = Buffer.from('\r\n\r\n');

interface Pending {
  readonly resolve: (r: RawResponse) => void;
  readonly reject: (e: AttackError) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * A keep-alive connection to `host:port` from `localAddress`, opened lazily and again after the
 * server closed it.
 *
 * @example
 * const c = new RawConn('127.0.0.1', port, '127.0.0.2');
 * const r = await c.request(post('/comet', '{"type":"setup"}'), 5_000);
 */
export class RawConn {
  readonly #host: string;
  readonly #port: number;
  readonly #localAddress: string;
  readonly #keepBytes: number;
  #socket: Socket | null = null;
  #pending: Pending | null = null;
  #head: Buffer | null = null;
  #status = 0;
  #headText = '';
  #left = -1;
  #bytes = 0;
  #parts: Buffer[] = [];
  #kept = 0;
  #close = false;
  #destroyed = false;

  constructor(host: string, port: number, localAddress: string, keepBytes = DEFAULT_KEEP_BYTES) {
    this.#host = host;
    this.#port = port;
    this.#localAddress = localAddress;
    this.#keepBytes = keepBytes;
  }

  /** True while a request waits for its answer. */
  get busy(): boolean {
    return this.#pending !== null;
  }

  /** Send `raw` (a whole request) and resolve with the final response; rejects after `timeoutMs`. */
  request(raw: string | Buffer, timeoutMs: number): Promise<RawResponse> {
    if (this.#pending !== null) return Promise.reject(new AttackError('ATTACK_BUSY', 'a request is already in flight'));
    if (this.#destroyed) return Promise.reject(new AttackError('ATTACK_CLOSED', 'connection destroyed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // The socket is left mid-response: it cannot carry another request.
        this.#drop(new AttackError('ATTACK_TIMEOUT', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending = { resolve, reject, timer };
      this.#reset();
      (this.#socket ?? this.#open()).write(raw);
    });
  }

  /** Close for good; a request in flight fails with `ATTACK_CLOSED`. */
  destroy(): void {
    this.#destroyed = true;
    this.#drop(new AttackError('ATTACK_CLOSED', 'connection destroyed'));
  }

  #open(): Socket {
    const socket = connect({ host: this.#host, port: this.#port, localAddress: this.#localAddress, noDelay: true });
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket === socket) this.#onData(chunk);
    });
    socket.on('error', () => undefined); // 'close' follows and fails the request
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#fail(new AttackError('ATTACK_CLOSED', 'connection closed before the answer'));
    });
    return socket;
  }

  #reset(): void {
    this.#head = null;
    this.#status = 0;
    this.#headText = '';
    this.#left = -1;
    this.#bytes = 0;
    this.#parts = [];
    this.#kept = 0;
    this.#close = false;
  }

  #drop(err: AttackError): void {
    const s = this.#socket;
    this.#socket = null;
    s?.destroy();
    this.#fail(err);
  }

  #fail(err: AttackError): void {
    const p = this.#pending;
    this.#pending = null;
    if (p === null) return;
    clearTimeout(p.timer);
    this.#parts = [];
    p.reject(err);
  }

  #onData(chunk: Buffer): void {
    if (this.#pending === null) return; // bytes after an answer: nothing was asked
    let data = chunk;
    while (this.#left < 0) {
      const buf = this.#head === null ? data : Buffer.concat([this.#head, data]);
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        this.#head = buf;
        return;
      }
      this.#head = null;
      const head = buf.toString('latin1', 0, end);
      data = buf.subarray(end + 4);
      const status = Number(head.slice(9, 12));
      if (!head.startsWith('HTTP/1.') || !Number.isInteger(status)) {
        this.#drop(new AttackError('ATTACK_BAD_RESPONSE', `not an HTTP/1.x status line: ${head.slice(0, 40)}`));
        return;
      }
      if (status >= 100 && status < 200) continue; // 100 Continue: the final answer follows
      const lower = head.toLowerCase();
      const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
      this.#status = status;
      this.#headText = head;
      this.#close = lower.includes('\r\nconnection: close');
      this.#left = m?.[1] !== undefined ? Number(m[1]) : status === 204 || status === 304 ? 0 : NaN;
      if (Number.isNaN(this.#left)) {
        this.#drop(new AttackError('ATTACK_BAD_RESPONSE', `answer ${status} without Content-Length`));
        return;
      }
    }
    const take = Math.min(this.#left, data.length);
    if (take > 0) {
      this.#left -= take;
      this.#bytes += take;
      if (this.#kept + take <= this.#keepBytes) {
        this.#parts.push(data.subarray(0, take));
        this.#kept += take;
      } else {
        this.#parts = [];
        this.#kept = Infinity;
      }
    }
    if (this.#left > 0) return;
    const p = this.#pending;
    this.#pending = null;
    clearTimeout(p.timer);
    const body = Number.isFinite(this.#kept) ? Buffer.concat(this.#parts).toString('utf8') : '';
    const res: RawResponse = { status: this.#status, bytes: this.#bytes, body, head: this.#headText };
    this.#parts = [];
    this.#left = -1;
    if (this.#close) {
      const s = this.#socket;
      this.#socket = null;
      s?.destroy();
    }
    p.resolve(res);
  }
}

/** A complete `POST` with a JSON body (Content-Length framed). */
export const post = (path: string, body: string, host = 'x', extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** A complete `GET`. */
export const get = (path: string, host = 'x'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

/**
 * Open a socket from `localAddress`, write `raw`, and never read what comes back: the socket is
 * paused before it connects, so nothing leaves the kernel's receive buffer (Node cannot set
 * SO_RCVBUF; an unread socket keeps the window at its initial size, about 128 KiB here).
 */
export const sendAndNeverRead = (host: string, port: number, localAddress: string, raw: string): Socket => {
  const socket = connect({ host, port, localAddress, noDelay: true });
  socket.pause();
  socket.on('error', () => undefined);
  socket.once('connect', () => socket.write(raw));
  return socket;
};

/** A socket whose status lines are collected as they come (interim `100 Continue` included). */
export interface Probe {
  /** Status codes seen within the first wait, in order. */
  readonly lines: readonly number[];
  /** Write more, wait `ms`, resolve with the status codes seen meanwhile. */
  more(raw: string, ms: number): Promise<number[]>;
  destroy(): void;
}

/** Open a socket from `localAddress`, write `raw`, and collect the status lines sent within `ms`. */
export const probe = (host: string, port: number, localAddress: string, raw: string, ms: number): Promise<Probe> => {
  const socket = connect({ host, port, localAddress, noDelay: true });
  let seen = '';
  const lines: number[] = [];
  socket.setEncoding('latin1');
  socket.on('error', () => undefined);
  socket.on('data', (s: string) => {
    seen += s;
    // Status lines start a head; the bodies here are short JSON errors that never hold "HTTP/1.".
    for (let i = seen.indexOf('HTTP/1.'); i >= 0; i = seen.indexOf('HTTP/1.')) {
      lines.push(Number(seen.slice(i + 9, i + 12)));
      seen = seen.slice(i + 12);
    }
  });
  socket.once('connect', () => socket.write(raw));
  const collect = (wait: number): Promise<number[]> =>
    new Promise((r) => {
      const from = lines.length;
      setTimeout(() => r(lines.slice(from)), wait);
    });
  return collect(ms).then((first) => ({
    lines: first,
    more: (raw2, wait) => {
      if (!socket.destroyed && socket.writable) socket.write(raw2);
      return collect(wait);
    },
    destroy: () => socket.destroy(),
  }));
};
