/**
 * The request bodies the attacks send, each filling the server's default body limit (64 KiB)
 * without passing it.
 */

/** The server's default `maxBodyBytes` (lib/http/body.ts), which every attack fills. */
export const BODY_LIMIT = 65_536;

/** `{"sid":S,"rid":R,"ack":A,"messages":[` ... `]}` with `item` repeated to fill `limit` bytes. */
const filled = (sid: string, rid: number, ack: number, item: string, limit: number): { body: string; count: number } => {
  const head = `{"sid":${JSON.stringify(sid)},"rid":${rid},"ack":${ack},"messages":[`;
  const tail = ']}';
  const room = limit - Buffer.byteLength(head) - tail.length;
  // n items take n * item + (n - 1) commas.
  const count = Math.max(1, Math.floor((room + 1) / (Buffer.byteLength(item) + 1)));
  return { body: head + new Array<string>(count).fill(item).join(',') + tail, count };
};

/**
 * A request of `[[]]` messages: JSON that is cheap to send and dear to keep parsed (each `[[]]`
 * is two arrays on the heap, about 100 bytes for 4 sent).
 */
export const nestedArraysBody = (sid: string, rid: number, limit = BODY_LIMIT): string => filled(sid, rid, 0, '[[]]', limit).body;

/** A request carrying one string message as long as the limit allows; `ack` as given. */
export const bigStringBody = (sid: string, rid: number, ack: number, limit = BODY_LIMIT): string => {
  const head = `{"sid":${JSON.stringify(sid)},"rid":${rid},"ack":${ack},"messages":["`;
  const tail = '"]}';
  return head + 'x'.repeat(limit - head.length - tail.length) + tail;
};

/** The chat line the flood repeats: the shortest the demo relays. */
export const CHAT_LINE = '{"type":"say","nick":"a","text":"b"}';

/** One request of as many chat lines as fit. */
export const chatFloodBody = (sid: string, limit = BODY_LIMIT): { body: string; lines: number } => {
  const { body, count } = filled(sid, 1, 0, CHAT_LINE, limit);
  return { body, lines: count };
};

/** A plain poll (no messages) with `rid` and `ack`. */
export const pollBody = (sid: string, rid: number, ack: number): string => `{"sid":${JSON.stringify(sid)},"rid":${rid},"ack":${ack}}`;

/** A request carrying `messages` (already JSON-encodable values). */
export const messagesBody = (sid: string, rid: number, ack: number, messages: readonly unknown[]): string =>
  JSON.stringify({ sid, rid, ack, messages });

/** The message that makes the huge-push fixture server push its huge packets. */
export const HUGE_PUSH_MESSAGE = 'huge-push';

/** What the huge-push fixture's `onMessage` pushes, unless its flags say otherwise: this many
 *  strings of this many MiB each, made (flat, in the application's memory) one after the other. */
export const DEFAULT_PUSH_COUNT = 4;
export const DEFAULT_PUSH_MIB = 150;

/** The setup body. */
export const SETUP = '{"type":"setup"}';

/** The sid of a setup answer, or null. */
export const sidOf = (body: string): string | null => {
  try {
    const v = JSON.parse(body) as { sid?: unknown };
    return typeof v.sid === 'string' ? v.sid : null;
  } catch {
    return null;
  }
};

/** The error code of an error answer (`{"error": CODE}`), or the status when it has none. */
export const codeOf = (status: number, body: string): string => {
  try {
    const v = JSON.parse(body) as { error?: unknown };
    if (typeof v.error === 'string') return `${status} ${v.error}`;
  } catch {
    // not JSON
  }
  return String(status);
};
