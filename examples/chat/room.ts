/**
 * The chat room's memory, in the demo server's process: who is in the room (one nickname per
 * session) and the last lines sent, bounded in count and bytes so a busy room cannot grow it.
 * Nothing is persisted: a restart starts an empty room.
 */
import type { Sid } from '../../lib/index.js';
import type { ChatLine } from './protocol.js';

/** Most lines kept for those who join later. */
export const CHAT_HISTORY_MAX_LINES = 50;
/** Most bytes (UTF-8 JSON of the lines) kept for those who join later. */
export const CHAT_HISTORY_MAX_BYTES = 32 * 1024;

export interface RoomLimits {
  readonly maxLines: number;
  readonly maxBytes: number;
}

export class ChatRoom {
  readonly #nicks = new Map<Sid, string>();
  readonly #history: { readonly line: ChatLine; readonly bytes: number }[] = [];
  #historyBytes = 0;
  readonly #limits: RoomLimits;

  constructor(limits: RoomLimits = { maxLines: CHAT_HISTORY_MAX_LINES, maxBytes: CHAT_HISTORY_MAX_BYTES }) {
    this.#limits = limits;
  }

  /**
   * Puts `sid` in the room as `nick`. Returns whether it is new in the room (it then gets the
   * history) and whether the list of nicknames changed (everyone then gets the presence).
   */
  join(sid: Sid, nick: string): { readonly entered: boolean; readonly changed: boolean } {
    const before = this.#nicks.get(sid);
    this.#nicks.set(sid, nick);
    return { entered: before === undefined, changed: before !== nick };
  }

  /** Takes `sid` out of the room; true if it was in it. */
  leave(sid: Sid): boolean {
    return this.#nicks.delete(sid);
  }

  /** The nicknames in the room, sorted, each once (two sessions may share one). */
  nicks(): string[] {
    return [...new Set(this.#nicks.values())].sort();
  }

  /** Keeps `line` for later joiners, dropping the oldest lines beyond the limits. */
  remember(line: ChatLine): void {
    const bytes = Buffer.byteLength(JSON.stringify(line));
    this.#history.push({ line, bytes });
    this.#historyBytes += bytes;
    while (this.#history.length > this.#limits.maxLines || this.#historyBytes > this.#limits.maxBytes) {
      const oldest = this.#history.shift();
      if (oldest === undefined) break;
      this.#historyBytes -= oldest.bytes;
    }
  }

  /** The kept lines, oldest first. */
  history(): ChatLine[] {
    return this.#history.map((h) => h.line);
  }
}
