/** The chat's messages, shared by the page and the demo server. Browser-safe. */

/** Longest nickname the server relays (characters). */
export const MAX_NICK_LENGTH = 32;
/** Longest message text the server relays (characters). */
export const MAX_TEXT_LENGTH = 500;

/** What a client sends and what the server broadcasts to every session. */
export interface ChatLine {
  readonly nick: string;
  readonly text: string;
}

/** True if `data` is a chat line within the limits. */
export function isChatLine(data: unknown): data is ChatLine {
  if (typeof data !== 'object' || data === null) return false;
  const { nick, text } = data as Record<string, unknown>;
  return (
    typeof nick === 'string' &&
    typeof text === 'string' &&
    nick.length > 0 &&
    nick.length <= MAX_NICK_LENGTH &&
    text.length > 0 &&
    text.length <= MAX_TEXT_LENGTH
  );
}
