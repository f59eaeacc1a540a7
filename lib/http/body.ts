/**
 * Read a request body as one JSON value with hard limits: media type checked before a byte is
 * read, size checked against Content-Length before reading and against the running count while
 * reading (chunked bodies), strict UTF-8, bounded nesting. Never buffers more than the limit.
 */
import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import { parse as parseContentType } from 'content-type';

/** Default body limit of wire contract v1: 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 65_536;

/**
 * Default limit on array/object nesting. Node's JSON.parse copes with any depth, but
 * JSON.stringify throws RangeError a few thousand levels down, so a 64 KiB body of `[[[[...`
 * echoed back by an application would break the reply that carries it. 64 leaves real
 * messages ~60 levels and stays far from the stack.
 */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export type ReadJsonBodyOptions = {
  /** Largest body accepted, in bytes (exactly this many is accepted). */
  readonly maxBytes: number;
  /** Deepest array/object nesting accepted; the top-level object is depth 1. */
  readonly maxDepth?: number;
  /** Called once the headers pass every check (media type, declared length), just before the
   *  first body byte is read: where a `100 Continue` goes. */
  readonly beforeRead?: () => void;
};

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
 * Deepest array/object nesting in a text that JSON.parse has accepted. Working on the text
 * (rather than walking the value) needs no recursion and no allocation.
 */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return max;
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
    readJsonBodyThen(req, opts, (err, result) => {
      if (result !== undefined) resolve(result);
      else reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
}

/**
 * {@link readJsonBody} with a callback, `done(undefined, result)` or `done(err)` for a programming
 * error: what the comet handler uses, so that reading a body makes no promise of its own.
 */
export function readJsonBodyThen(
  req: IncomingMessage, opts: ReadJsonBodyOptions, done: (err: unknown, result?: ReadJsonBodyResult) => void,
): void {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  // A NaN or negative limit would make raw-body skip the check altogether: refuse it loudly.
  if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0 || !Number.isSafeInteger(maxDepth) || maxDepth < 1) {
    done(new RangeError('readJsonBody: maxBytes must be an integer >= 0 and maxDepth an integer >= 1'));
    return;
  }
  const mediaProblem = mediaTypeProblem(req);
  if (mediaProblem !== undefined) return done(undefined, failure('unsupported_media_type', mediaProblem));
  if (req.readableEnded) {
    done(new Error('readJsonBody: the request body was already read (does a body parser run before this handler?)'));
    return;
  }
  if (req.destroyed) return done(undefined, failure('bad_json', 'request aborted before its body was read'));
  const length = declaredLength(req);
  // Decided from the headers alone, before `beforeRead` (a client waiting on 100-continue gets
  // the 413 instead); raw-body would refuse it too, but only once reading has been asked for.
  if (length !== null && length > opts.maxBytes) return done(undefined, failure('too_large', `body is larger than ${opts.maxBytes} bytes`));
  opts.beforeRead?.();
  getRawBody(req, { limit: opts.maxBytes, length }, (err, raw) => {
    if (err) {
      switch (rawBodyErrorType(err)) {
        case 'entity.too.large':
          return done(undefined, failure('too_large', `body is larger than ${opts.maxBytes} bytes`));
        case 'request.aborted':
        case 'request.size.invalid':
          return done(undefined, failure('bad_json', 'request aborted before its body was complete'));
        default:
          return req.destroyed ? done(undefined, failure('bad_json', 'request aborted before its body was complete')) : done(err);
      }
    }
    done(undefined, parseJson(raw, maxDepth));
  });
}

function parseJson(raw: Buffer, maxDepth: number): ReadJsonBodyResult {
  if (raw.length === 0) return failure('bad_json', 'body is empty; send one JSON object');
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    return failure('bad_json', 'body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // Some engines throw RangeError on deep nesting instead of parsing it.
    return failure('bad_json', err instanceof RangeError ? 'JSON nested too deeply' : 'body is not valid JSON');
  }
  // Each level takes an opening and a closing bracket: a text this short cannot nest too deep,
  // and most request bodies are this short, so they skip the scan.
  if (text.length > 2 * maxDepth && jsonDepth(text) > maxDepth) return failure('bad_json', `JSON nested deeper than ${maxDepth} levels`);
  return { ok: true, value };
}
