/**
 * Wire contract v1: turn an already-parsed JSON body into a typed frame, and give the reply
 * shapes one typed home. Pure functions, no I/O; see docs/protocol.md for the contract itself.
 */
import { asRid, asSeq, asSid, type Rid, type Seq, type Sid } from './ids.js';
import { CometError, type WireErrorCode } from './errors.js';

/** Longest sid accepted on the wire. Real sids are ~22-36 chars; this only bounds junk input. */
export const MAX_SID_LENGTH = 128;

/** `{"type":"setup"}`: open a session. */
export type SetupFrame = { readonly type: 'setup' };

/** A request (no `type` field on the wire): deliver `messages`, acknowledge up to `ack`, poll. */
export type RequestFrame = {
  readonly type: 'request';
  readonly sid: Sid;
  readonly rid: Rid;
  readonly ack: Seq | undefined;
  /** Application data, untouched: never merge or spread these objects into your own. */
  readonly messages: readonly unknown[];
};

/** `{"type":"terminate", ...}`: end the session; pending packets come back with the reply. */
export type TerminateFrame = {
  readonly type: 'terminate';
  readonly sid: Sid;
  readonly rid: Rid;
  readonly ack: Seq | undefined;
};

export type Frame = SetupFrame | RequestFrame | TerminateFrame;

export type DecodeResult =
  | { readonly ok: true; readonly frame: Frame }
  | { readonly ok: false; readonly code: 'bad_request'; readonly message: string };

/** One packet pushed by the application, numbered per session from 1. */
export type Packet = { readonly seq: Seq; readonly data: unknown };

/** Body of `200` to a setup. `wait` and `inactivity` are in milliseconds. */
export type SetupReply = { readonly sid: Sid; readonly wait: number; readonly inactivity: number };

/** Body of `200` to a request or a terminate. */
export type RequestReply = { readonly rid: Rid; readonly packets: readonly Packet[] };

/** Body of every error response. */
export type ErrorReply = { readonly error: WireErrorCode; readonly message: string };

type Fields = Readonly<Record<string, unknown>>;

const fail = (message: string): DecodeResult => ({ ok: false, code: 'bad_request', message });

/** Names a JSON value's kind without echoing it (the input may be huge or hostile); numbers are shown. */
function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      // A number's text is short, so showing it is safe and tells the client exactly what was wrong.
      return String(value);
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Own properties only: `{"__proto__": {...}}` from JSON.parse is an own key named "__proto__",
 * and a field must never be found on a prototype (`constructor`, `toString`, a polluted one).
 */
function field(obj: Fields, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function parseSid(obj: Fields): Parsed<Sid> {
  const sid = field(obj, 'sid');
  if (sid === undefined) return { ok: false, message: 'sid is missing' };
  if (typeof sid !== 'string') return { ok: false, message: `sid must be a string, got ${kind(sid)}` };
  if (sid.length === 0) return { ok: false, message: 'sid must not be empty' };
  if (sid.length > MAX_SID_LENGTH) {
    return { ok: false, message: `sid must be at most ${MAX_SID_LENGTH} characters` };
  }
  return { ok: true, value: asSid(sid) };
}

function parseRid(obj: Fields): Parsed<Rid> {
  const rid = field(obj, 'rid');
  if (rid === undefined) return { ok: false, message: 'rid is missing' };
  if (typeof rid !== 'number' || !Number.isSafeInteger(rid) || rid < 1) {
    return { ok: false, message: `rid must be a positive safe integer (1, 2, ...), got ${kind(rid)}` };
  }
  return { ok: true, value: asRid(rid) };
}

function parseAck(obj: Fields): Parsed<Seq | undefined> {
  // Absent means "nothing received yet"; null is rejected so a client bug does not pass as that.
  if (!Object.hasOwn(obj, 'ack')) return { ok: true, value: undefined };
  const ack = obj['ack'];
  if (typeof ack !== 'number' || !Number.isSafeInteger(ack) || ack < 0) {
    return {
      ok: false,
      message: `ack must be a non-negative safe integer (omit it before the first packet), got ${kind(ack)}`,
    };
  }
  return { ok: true, value: asSeq(ack) };
}

/** The fields a request and a terminate share: which session, which rid, what is acked. */
type Addressed = { readonly sid: Sid; readonly rid: Rid; readonly ack: Seq | undefined };

function parseAddressed(obj: Fields): { readonly ok: true; readonly value: Addressed } | { readonly ok: false; readonly message: string } {
  const sid = parseSid(obj);
  if (!sid.ok) return sid;
  const rid = parseRid(obj);
  if (!rid.ok) return rid;
  const ack = parseAck(obj);
  if (!ack.ok) return ack;
  return { ok: true, value: { sid: sid.value, rid: rid.value, ack: ack.value } };
}

function decodeRequest(obj: Fields): DecodeResult {
  const a = parseAddressed(obj);
  if (!a.ok) return fail(a.message);
  let messages: readonly unknown[] = [];
  if (Object.hasOwn(obj, 'messages')) {
    const value = obj['messages'];
    if (!Array.isArray(value)) return fail(`messages must be an array, got ${kind(value)}`);
    messages = value;
  }
  return { ok: true, frame: { type: 'request', ...a.value, messages } };
}

function decodeTerminate(obj: Fields): DecodeResult {
  const a = parseAddressed(obj);
  if (!a.ok) return fail(a.message);
  // Messages sent with a terminate could never be delivered: refuse them rather than drop them.
  if (Object.hasOwn(obj, 'messages')) return fail('messages are only allowed in a request, not in a terminate');
  return { ok: true, frame: { type: 'terminate', ...a.value } };
}

/**
 * Decode one parsed JSON body into a frame of wire contract v1. Never throws; a wrong shape
 * comes back as `{ ok: false, code: 'bad_request', message }` where the message names the field.
 * Unknown fields are ignored (room for later versions). A well-formed sid is not checked for
 * existence here: an unknown one is the session layer's `404 unknown_session`.
 *
 * @example
 * ```ts
 * const body = await readJsonBody(req, { maxBytes: DEFAULT_MAX_BODY_BYTES });
 * if (!body.ok) return sendError(res, body.code, body.message);
 * const decoded = decodeFrame(body.value);
 * if (!decoded.ok) return sendError(res, decoded.code, decoded.message);
 * switch (decoded.frame.type) { case 'setup': ...; case 'request': ...; case 'terminate': ... }
 * ```
 */
export function decodeFrame(value: unknown): DecodeResult {
  if (!isPlainObject(value)) return fail(`body must be a JSON object, got ${kind(value)}`);
  if (!Object.hasOwn(value, 'type')) return decodeRequest(value);
  const type = value['type'];
  switch (type) {
    case 'setup':
      if (Object.hasOwn(value, 'messages')) return fail('messages are only allowed in a request, not in a setup');
      return { ok: true, frame: { type: 'setup' } };
    case 'terminate':
      return decodeTerminate(value);
    default:
      return fail(
        typeof type === 'string'
          ? 'type must be "setup" or "terminate" (omit it for a request)'
          : `type must be a string ("setup" or "terminate"), got ${kind(type)}`,
      );
  }
}

/** Serialise a setup reply. Throws only what `JSON.stringify` throws. */
export function encodeSetupReply(reply: SetupReply): string {
  return JSON.stringify(reply);
}

/**
 * Serialise a request/terminate reply. Packet `data` is application data: a BigInt or a cycle in
 * it makes `JSON.stringify` throw, so validate data when it is pushed, not here.
 */
export function encodeRequestReply(reply: RequestReply): string {
  return JSON.stringify(reply);
}

/** Serialise an error reply. */
export function encodeErrorReply(reply: ErrorReply): string {
  return JSON.stringify(reply);
}

/**
 * Packet data must survive JSON.stringify: a packet that cannot be encoded would break every
 * later response of its session (it is resent until acked), so refuse it up front.
 * @throws CometError `bad_request` when `data` cannot be encoded.
 */
export function assertSendable(data: unknown): void {
  let encoded: string | undefined;
  try {
    encoded = JSON.stringify(data);
  } catch (err) {
    throw new CometError('bad_request', `packet data is not JSON-serialisable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (encoded === undefined) throw new CometError('bad_request', 'packet data is not JSON-serialisable (undefined, a function or a symbol)');
}
