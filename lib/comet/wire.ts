/**
 * Wire contract v1: turn an already-parsed JSON body into a typed frame, and give the reply
 * shapes one typed home. Pure functions, no I/O; see docs/protocol.md for the contract itself.
 */
import { asRid, asSeq, asSid, type Rid, type Seq, type Sid } from './ids.js';
import { CometError, type WireErrorCode } from './errors.js';
import { JsonText } from './json_text.js';

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
  readonly messages: Messages;
};

/**
 * A request's messages: an array of values (a body something else parsed, such as Express's
 * `express.json()`), or the array's JSON text as the server's own body reader leaves it, checked
 * and not built (see lib/comet/json_text.ts). Either way `length` counts them.
 */
export type Messages = readonly unknown[] | JsonText;

/** The messages as values: parsed now when they are still text. */
export function messagesOf(messages: Messages): readonly unknown[] {
  return messages instanceof JsonText ? messages.parse() as unknown[] : messages;
}

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

/**
 * Application data encoded once, when it is pushed: its JSON text, and what that text costs in
 * memory. Every response splices the text in as it is, so no response re-encodes a queue.
 */
export type EncodedData = { readonly json: string; readonly bytes: number };

/** A queued packet: its seq and its data's JSON text. `bytes` is what it costs the session. */
export type EncodedPacket = { readonly seq: Seq; readonly json: string; readonly bytes: number };

/**
 * What a queued packet costs beyond its text: the V8 object holding it and the string's header
 * (about 56 bytes), and at least what it adds to a reply on the wire (`{"seq":N,"data":…},`, at
 * most 33 bytes). So a reply never costs more than {@link REPLY_ENVELOPE_BYTES} plus its packets'
 * `bytes`.
 */
export const PACKET_OVERHEAD_BYTES = 64;

/** A reply's own envelope, `{"rid":N,"packets":[…]}`, at its longest (a 16-digit rid). */
export const REPLY_ENVELOPE_BYTES = 37;

/**
 * What a string costs in memory, and an upper bound on its UTF-8 size on the wire. V8 keeps a
 * string of Latin-1 characters in one byte per character and any other string in two; its UTF-8
 * form takes 1 to 3 bytes per UTF-16 unit. An all-ASCII string costs its length either way; any
 * other is counted at the larger of the two.
 */
export function textBytes(text: string): number {
  const utf8 = Buffer.byteLength(text, 'utf8');
  return utf8 === text.length ? utf8 : Math.max(utf8, 2 * text.length);
}

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
  if (value instanceof JsonText) return value.isArray ? 'an array' : 'an object';
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

// The field parsers answer the value, or a `Bad` naming what is wrong: a request is decoded on
// every HTTP request, and a `{ok, value}` record per field (and per step) was five objects each
// time for nothing but the happy path.
class Bad {
  constructor(readonly message: string) {}
}

function parseSid(obj: Fields): Sid | Bad {
  const sid = field(obj, 'sid');
  if (sid === undefined) return new Bad('sid is missing');
  if (typeof sid !== 'string') return new Bad(`sid must be a string, got ${kind(sid)}`);
  if (sid.length === 0) return new Bad('sid must not be empty');
  if (sid.length > MAX_SID_LENGTH) return new Bad(`sid must be at most ${MAX_SID_LENGTH} characters`);
  return asSid(sid);
}

function parseRid(obj: Fields): Rid | Bad {
  const rid = field(obj, 'rid');
  if (rid === undefined) return new Bad('rid is missing');
  if (typeof rid !== 'number' || !Number.isSafeInteger(rid) || rid < 1) {
    return new Bad(`rid must be a positive safe integer (1, 2, ...), got ${kind(rid)}`);
  }
  return asRid(rid);
}

function parseAck(obj: Fields): Seq | undefined | Bad {
  // Absent means "nothing received yet"; null is rejected so a client bug does not pass as that.
  if (!Object.hasOwn(obj, 'ack')) return undefined;
  const ack = obj['ack'];
  if (typeof ack !== 'number' || !Number.isSafeInteger(ack) || ack < 0) {
    return new Bad(`ack must be a non-negative safe integer (omit it before the first packet), got ${kind(ack)}`);
  }
  return asSeq(ack);
}

/** The messages of a request without any: one shared empty array (a poll carries none). */
const NO_MESSAGES: Messages = Object.freeze([]);

/** A frame of a session, `request` or `terminate`: the sid, rid and ack both carry, then what
 *  each allows (field by field, without a record per field). */
function decodeSessionFrame(obj: Fields, type: 'request' | 'terminate'): DecodeResult {
  const sid = parseSid(obj);
  if (sid instanceof Bad) return fail(sid.message);
  const rid = parseRid(obj);
  if (rid instanceof Bad) return fail(rid.message);
  const ack = parseAck(obj);
  if (ack instanceof Bad) return fail(ack.message);
  if (type === 'terminate') {
    // Messages sent with a terminate could never be delivered: refuse them rather than drop them.
    if (Object.hasOwn(obj, 'messages')) return fail('messages are only allowed in a request, not in a terminate');
    return { ok: true, frame: { type: 'terminate', sid, rid, ack } };
  }
  let messages: Messages = NO_MESSAGES;
  if (Object.hasOwn(obj, 'messages')) {
    const value = obj['messages'];
    if (value instanceof JsonText && value.isArray) messages = value;
    else if (Array.isArray(value)) messages = value;
    else return fail(`messages must be an array, got ${kind(value)}`);
  }
  return { ok: true, frame: { type: 'request', sid, rid, ack, messages } };
}

/**
 * Decode one parsed JSON body into a frame of wire contract v1: a value JSON.parse made, or what
 * the body reader's `lazy` parse made (its arrays and objects as {@link JsonText}; `messages` stays
 * text in the frame). Never throws; a wrong shape
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
  if (!Object.hasOwn(value, 'type')) return decodeSessionFrame(value, 'request');
  const type = value['type'];
  switch (type) {
    case 'setup':
      if (Object.hasOwn(value, 'messages')) return fail('messages are only allowed in a request, not in a setup');
      return { ok: true, frame: { type: 'setup' } };
    case 'terminate':
      return decodeSessionFrame(value, 'terminate');
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
 * Serialise a request/terminate reply from packets encoded when they were pushed: their texts are
 * spliced in, never parsed or stringified again, so a reply costs the size of its packets, not
 * the work of encoding them. Its text is exactly `JSON.stringify({rid, packets})` of the decoded
 * packets.
 */
export function encodeRequestReply(rid: Rid, packets: readonly EncodedPacket[]): string {
  let json = `{"rid":${rid},"packets":[`;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i] as EncodedPacket;
    json += `${i === 0 ? '' : ','}{"seq":${p.seq},"data":${p.json}}`;
  }
  return `${json}]}`;
}

/** Serialise an error reply. */
export function encodeErrorReply(reply: ErrorReply): string {
  return JSON.stringify(reply);
}

/**
 * Encode packet data, once, when it is pushed; the text is what the packet costs and what every
 * response splices in. A packet that cannot be encoded, or whose reply alone would be longer than
 * `maxResponseBytes`, would break every later response of its session (it is resent until acked),
 * so it is refused here, never queued.
 *
 * @throws CometError `bad_request` (a BigInt, a cycle, undefined, a function, a symbol),
 *   `ERR_COMET_PACKET_TOO_LARGE` (too long for one response, or for a string at all).
 */
export function assertSendable(data: unknown, maxResponseBytes = Infinity): EncodedData {
  // A string's JSON is at least its length and two quotes: one too long for any response is
  // refused by its length, never encoded. JSON.stringify would first flatten a string built by
  // concatenation (a copy as large as the string), then write its JSON (a second one), all for a
  // packet that is refused: memory the library must not spend on what the application pushed.
  if (typeof data === 'string' && REPLY_ENVELOPE_BYTES + data.length + 2 + PACKET_OVERHEAD_BYTES > maxResponseBytes) {
    throw tooLarge(maxResponseBytes);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    // V8 refuses to build a string past its length limit (about 512 MiB): too large, not malformed.
    if (err instanceof RangeError && /string length/i.test(err.message)) throw tooLarge(maxResponseBytes);
    throw new CometError('bad_request', `packet data is not JSON-serialisable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (json === undefined) throw new CometError('bad_request', 'packet data is not JSON-serialisable (undefined, a function or a symbol)');
  const bytes = textBytes(json) + PACKET_OVERHEAD_BYTES;
  if (REPLY_ENVELOPE_BYTES + bytes > maxResponseBytes) throw tooLarge(maxResponseBytes);
  return { json, bytes };
}

function tooLarge(maxResponseBytes: number): CometError {
  return new CometError('ERR_COMET_PACKET_TOO_LARGE', `packet data is too large for one response (maxResponseBytes ${maxResponseBytes})`);
}
