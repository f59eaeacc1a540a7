/**
 * The chat's messages, shared by the page, the demo server and `comet-fsm client --nick`.
 * Browser-safe. A client sends a {@link ChatRequest}; the server answers with {@link ChatEvent}s.
 */

/** Longest nickname the server relays (characters). */
export const MAX_NICK_LENGTH = 32;
/** Longest message text the server relays (characters). */
export const MAX_TEXT_LENGTH = 500;
/** Longest id a client may put on a line to recognise it when it comes back (characters). */
export const MAX_LINE_ID_LENGTH = 64;

/** One line of the chat as every session sees it. */
export interface ChatLine {
  readonly nick: string;
  readonly text: string;
  /** The sender's own id for the line, echoed back so the sender can mark it delivered. */
  readonly id?: string;
}

/**
 * What a client sends. `join` enters the room under a nickname (again to change it) and is
 * answered with the recent history; `say` sends a line, and joins too if not done yet.
 */
export type ChatRequest =
  | { readonly type: 'join'; readonly nick: string }
  | { readonly type: 'say'; readonly nick: string; readonly text: string; readonly id?: string };

/**
 * What the server pushes. `line` goes to every session; `history` (the last lines sent before
 * one joined, oldest first) and `refused` (why a request was not relayed) to one session;
 * `presence` (the nicknames in the room, sorted) to every session whenever it changes.
 */
export type ChatEvent =
  | ({ readonly type: 'line' } & ChatLine)
  | { readonly type: 'history'; readonly lines: readonly ChatLine[] }
  | { readonly type: 'presence'; readonly nicks: readonly string[] }
  | { readonly type: 'refused'; readonly reason: string };

const isNick = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NICK_LENGTH;

/** Why `data` is not a valid {@link ChatRequest}, or undefined if it is one. */
export function chatRequestProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'not a chat request: send {"type":"say","nick":…,"text":…}';
  const { type, nick, text, id } = data as Record<string, unknown>;
  if (type !== 'join' && type !== 'say') return 'not a chat request: "type" must be "join" or "say"';
  if (!isNick(nick)) return `"nick" must be 1 to ${MAX_NICK_LENGTH} characters`;
  if (type === 'join') return undefined;
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT_LENGTH) {
    return `"text" must be 1 to ${MAX_TEXT_LENGTH} characters`;
  }
  if (id !== undefined && (typeof id !== 'string' || id.length > MAX_LINE_ID_LENGTH)) {
    return `"id" must be a string of at most ${MAX_LINE_ID_LENGTH} characters`;
  }
  return undefined;
}

/** True if `data` is a {@link ChatEvent} (what a client checks before trusting a packet). */
export function isChatEvent(data: unknown): data is ChatEvent {
  if (typeof data !== 'object' || data === null) return false;
  const event = data as Record<string, unknown>;
  switch (event.type) {
    case 'line':
      return typeof event.nick === 'string' && typeof event.text === 'string';
    case 'history':
      return Array.isArray(event.lines);
    case 'presence':
      return Array.isArray(event.nicks);
    case 'refused':
      return typeof event.reason === 'string';
    default:
      return false;
  }
}
