/**
 * Read a request body as one JSON value with hard limits: media type checked before a byte is
 * read, size checked against Content-Length before reading and against the running count while
 * reading (chunked bodies), strict UTF-8, bounded nesting. Never buffers more than the limit.
 * A body with a Content-Length (what every client sends) is read by one object here; raw-body
 * reads the rest (chunked bodies, odd streams), with the same outcomes.
 */
import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import { parse as parseContentType } from 'content-type';
import { parseShallow, scanJson, type ScanFailure } from '../comet/json_text.js';

/** Default body limit of wire contract v1: 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 65_536;

/**
 * Default limit on array/object nesting. Node's JSON.parse copes with any depth, but
 * JSON.stringify throws RangeError a few thousand levels down, so a 64 KiB body of `[[[[...`
 * echoed back by an application would break the reply that carries it. 64 leaves real
 * messages ~60 levels and stays far from the stack.
 */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * Bodies up to this many bytes are parsed whole by JSON.parse, also when `lazy` asks that only
 * the top-level object be built: most requests a client sends are smaller (an echo request is
 * about 130 bytes), and what so small a body can build is bounded and short-lived. Larger bodies
 * are checked by a scan first, and with `lazy` built only at the top (lib/comet/json_text.ts).
 */
export const EAGER_PARSE_MAX_BYTES = 4096;

export type ReadJsonBodyOptions = {
  /** Largest body accepted, in bytes (exactly this many is accepted). */
  readonly maxBytes: number;
  /** Deepest array/object nesting accepted; the top-level object is depth 1. */
  readonly maxDepth?: number;
  /**
   * Check the whole body but build only its top-level object: arrays and objects inside it stay
   * as `JsonText` (lib/comet/json_text.ts), built when someone needs them; a top-level array is a
   * JsonText itself. What the comet handler reads: a request's messages are built only when they
   * are delivered, never for a request buffered ahead of a missing rid. Default false (the value
   * JSON.parse makes).
   */
  readonly lazy?: boolean;
};

/**
 * Who hears how a body read by {@link readJsonBodyTo} went. One object can serve every request:
 * `tag`, the caller's own (the comet handler passes the response), says which one.
 */
export interface BodyReceiver<T> {
  /** The headers passed every check (media type, declared length) and the first body byte is
   *  about to be read: where a `100 Continue` goes. */
  beforeRead(tag: T): void;
  /** The outcome, or `result` undefined and `err` a programming error. Called once. */
  bodyRead(tag: T, err: unknown, result: ReadJsonBodyResult | undefined): void;
}

export type BodyErrorCode = 'bad_json' | 'too_large' | 'unsupported_media_type';

export type ReadJsonBodyResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly code: BodyErrorCode; readonly message: string };

type Failure = Extract<ReadJsonBodyResult, { ok: false }>;

const failure = (code: BodyErrorCode, message: string): Failure => ({ ok: false, code, message });

// Strict UTF-8; one decoder serves every request (a non-streaming decode keeps no state).
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Why the Content-Type (or Content-Encoding) is refused, or undefined when it is acceptable. */
function mediaTypeProblem(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  if (header === undefined || header === '') return 'Content-Type must be application/json';
  // What every client sends needs no parser; anything else goes through content-type.
  if (header !== 'application/json') {
    // content-type 2.x is lenient (it never throws on a string): junk parses to a type that is not ours.
    const { type, parameters } = parseContentType(header);
    const charset = parameters['charset'];
    if (type !== 'application/json') return 'Content-Type must be application/json';
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
      return 'charset must be utf-8 (or omitted)';
    }
  }
  // A compressed body would only fail later as bad_json; 415 names the real problem (RFC 9110 15.5.16).
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    return 'Content-Encoding is not supported; send the body uncompressed';
  }
  return undefined;
}

/** Declared Content-Length, or null for a chunked body (node has already rejected malformed ones). */
function declaredLength(req: IncomingMessage): number | null {
  const header = req.headers['content-length'];
  if (header === undefined) return null;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** raw-body's errors carry a `type` string; anything else is not from raw-body. */
function rawBodyErrorType(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('type' in err)) return undefined;
  const type: unknown = err.type;
  return typeof type === 'string' ? type : undefined;
}

/**
 * Read and parse a JSON request body. Never rejects for anything a client can do: a wrong media
 * type, an oversize body, bad UTF-8, bad JSON and an abort mid-body all resolve to
 * `{ ok: false, code, message }` (an abort resolves as `bad_json`; its socket is gone, so the
 * reply will not be written). It rejects only on a programming error, such as a body that was
 * already consumed by another body parser.
 *
 * On `too_large` the rest of the body is left unread: answer with `sendError(res, 'too_large', ...)`,
 * which closes the connection instead of draining it.
 *
 * @example
 * ```ts
 * const body = await readJsonBody(req, { maxBytes: DEFAULT_MAX_BODY_BYTES });
 * if (!body.ok) return sendError(res, body.code, body.message);
 * const decoded = decodeFrame(body.value);
 * ```
 */
export function readJsonBody(req: IncomingMessage, opts: ReadJsonBodyOptions): Promise<ReadJsonBodyResult> {
  return new Promise((resolve, reject) => {
    readJsonBodyTo(req, opts, {
      beforeRead() {},
      bodyRead(_tag, err, result) {
        if (result !== undefined) resolve(result);
        else reject(err instanceof Error ? err : new Error(String(err)));
      },
    }, undefined);
  });
}

/**
 * {@link readJsonBody} without a promise or a closure of its own: `receiver.bodyRead(tag, ...)`
 * hears the outcome. What the comet handler uses, with one receiver for all its requests.
 */
export function readJsonBodyTo<T>(req: IncomingMessage, opts: ReadJsonBodyOptions, receiver: BodyReceiver<T>, tag: T): void {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  // A NaN or negative limit would make raw-body skip the check altogether: refuse it loudly.
  if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0 || !Number.isSafeInteger(maxDepth) || maxDepth < 1) {
    receiver.bodyRead(tag, new RangeError('readJsonBody: maxBytes must be an integer >= 0 and maxDepth an integer >= 1'), undefined);
    return;
  }
  const mediaProblem = mediaTypeProblem(req);
  if (mediaProblem !== undefined) return receiver.bodyRead(tag, undefined, failure('unsupported_media_type', mediaProblem));
  if (req.readableEnded) {
    receiver.bodyRead(tag, new Error('readJsonBody: the request body was already read (does a body parser run before this handler?)'), undefined);
    return;
  }
  if (req.destroyed) return receiver.bodyRead(tag, undefined, failure('bad_json', 'request aborted before its body was read'));
  const length = declaredLength(req);
  // Decided from the headers alone, before `beforeRead` (a client waiting on 100-continue gets
  // the 413 instead); raw-body would refuse it too, but only once reading has been asked for.
  if (length !== null && length > opts.maxBytes) return receiver.bodyRead(tag, undefined, failure('too_large', `body is larger than ${opts.maxBytes} bytes`));
  receiver.beforeRead(tag);
  if (length !== null && plainStream(req)) {
    new BodyRead(req, length, opts.maxBytes, maxDepth, opts.lazy === true, receiver, tag).start();
    return;
  }
  getRawBody(req, { limit: opts.maxBytes, length }, (err, raw) => {
    if (err) {
      switch (rawBodyErrorType(err)) {
        case 'entity.too.large':
          return receiver.bodyRead(tag, undefined, failure('too_large', `body is larger than ${opts.maxBytes} bytes`));
        case 'request.aborted':
        case 'request.size.invalid':
          return receiver.bodyRead(tag, undefined, failure('bad_json', ABORTED));
        default:
          return req.destroyed ? receiver.bodyRead(tag, undefined, failure('bad_json', ABORTED)) : receiver.bodyRead(tag, err, undefined);
      }
    }
    receiver.bodyRead(tag, undefined, parseJson(raw, maxDepth, opts.lazy === true));
  });
}

const ABORTED = 'request aborted before its body was complete';

/** Still readable, and in bytes: a stream raw-body would read (it refuses one with an encoding set). */
function plainStream(req: IncomingMessage): boolean {
  return req.readable && req.readableEncoding === null;
}

const READING = Symbol('comet.bodyRead');
type ReadingRequest = IncomingMessage & { [READING]?: BodyRead<unknown> | undefined };

// One listener function of each kind for every read (`this` is the request), the read found on
// it: no closure, no AsyncResource or bound function per request, as raw-body makes.
function onBodyData(this: ReadingRequest, chunk: Buffer): void {
  this[READING]?.data(chunk);
}
function onBodyEnd(this: ReadingRequest): void {
  this[READING]?.end();
}
function onBodyError(this: ReadingRequest, err: unknown): void {
  this[READING]?.failed(err);
}
function onBodyClose(this: ReadingRequest): void {
  this[READING]?.failed(undefined);
}

/**
 * The read of a body whose Content-Length is known (and within the limit): raw-body's, with the
 * same outcomes, as one object. Bytes past the limit are never kept, a body that ends short of
 * its length or whose stream fails or closes first is an abort, and on any of these the stream
 * is paused and left unread. Most bodies come in one chunk, kept as it is (no copy).
 */
class BodyRead<T> {
  readonly #req: ReadingRequest;
  readonly #length: number;
  readonly #maxBytes: number;
  readonly #maxDepth: number;
  readonly #lazy: boolean;
  readonly #receiver: BodyReceiver<T>;
  readonly #tag: T;
  #received = 0;
  #first: Buffer | undefined = undefined;
  #chunks: Buffer[] | undefined = undefined;

  constructor(req: IncomingMessage, length: number, maxBytes: number, maxDepth: number, lazy: boolean, receiver: BodyReceiver<T>, tag: T) {
    this.#req = req;
    this.#length = length;
    this.#maxBytes = maxBytes;
    this.#maxDepth = maxDepth;
    this.#lazy = lazy;
    this.#receiver = receiver;
    this.#tag = tag;
  }

  start(): void {
    const req = this.#req;
    req[READING] = this;
    req.on('close', onBodyClose);
    req.on('error', onBodyError);
    req.on('end', onBodyEnd);
    req.on('data', onBodyData);
  }

  data(chunk: Buffer): void {
    this.#received += chunk.length;
    if (this.#received > this.#maxBytes) return this.#done(undefined, failure('too_large', `body is larger than ${this.#maxBytes} bytes`), true);
    if (this.#first === undefined) this.#first = chunk;
    else (this.#chunks ??= [this.#first]).push(chunk);
  }

  end(): void {
    if (this.#received !== this.#length) return this.#done(undefined, failure('bad_json', ABORTED), true);
    const raw = this.#chunks !== undefined ? Buffer.concat(this.#chunks, this.#received) : this.#first ?? EMPTY;
    this.#first = this.#chunks = undefined;
    this.#done(undefined, parseJson(raw, this.#maxDepth, this.#lazy), false);
  }

  /** The stream failed (`err`) or closed before its end. */
  failed(err: unknown): void {
    // An 'error' on a stream that is not destroyed is not a client's doing (raw-body passes it on).
    if (err !== undefined && !this.#req.destroyed) return this.#done(err, undefined, true);
    this.#done(undefined, failure('bad_json', ABORTED), true);
  }

  #done(err: unknown, result: ReadJsonBodyResult | undefined, halt: boolean): void {
    const req = this.#req;
    req[READING] = undefined;
    req.off('data', onBodyData);
    req.off('end', onBodyEnd);
    req.off('error', onBodyError);
    req.off('close', onBodyClose);
    this.#first = this.#chunks = undefined;
    if (halt) {
      req.unpipe();
      req.pause();
    }
    this.#receiver.bodyRead(this.#tag, err, result);
  }
}

const EMPTY = Buffer.alloc(0);

function parseJson(raw: Buffer, maxDepth: number, lazy: boolean): ReadJsonBodyResult {
  if (raw.length === 0) return failure('bad_json', 'body is empty; send one JSON object');
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    return failure('bad_json', 'body is not valid UTF-8');
  }
  if (raw.length <= EAGER_PARSE_MAX_BYTES) return parseSmall(text, maxDepth);
  // Checked before anything is built: a body too deep, or not JSON, costs no objects.
  if (lazy) {
    const r = parseShallow(text, maxDepth);
    return r.ok ? { ok: true, value: r.value } : refused(r.failure, maxDepth);
  }
  const failed = scanJson(text, maxDepth);
  return failed === undefined ? { ok: true, value: JSON.parse(text) as unknown } : refused(failed, maxDepth);
}

/**
 * A body this small is parsed whole by JSON.parse, native and several times faster than the
 * scan; what it can build (about 20 times its size at most, for `[[],[],...]`) dies young, and a
 * request buffered ahead of a missing rid keeps its messages as bytes either way
 * (lib/comet/inbox.ts). The depth bound needs no scan below twice its value in characters.
 */
function parseSmall(text: string, maxDepth: number): ReadJsonBodyResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refused('syntax', maxDepth);
  }
  return text.length > 2 * maxDepth && deeperThan(text, maxDepth) ? refused('depth', maxDepth) : { ok: true, value };
}

/** Whether valid JSON `text` nests arrays and objects deeper than `maxDepth`. */
function deeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string: a quote ends it unless escaped (valid JSON, so every escape is complete).
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

function refused(why: ScanFailure, maxDepth: number): Failure {
  switch (why) {
    case 'syntax':
      return failure('bad_json', 'body is not valid JSON');
    case 'depth':
      return failure('bad_json', `JSON nested deeper than ${maxDepth} levels`);
  }
}
