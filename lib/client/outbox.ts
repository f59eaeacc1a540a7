/**
 * Messages waiting for the send path. `send()` settles only when the server accepted the request
 * that carried the message, so each entry keeps its promise's settle functions.
 */
import { CometClientError } from './errors.js';

/**
 * Room (bytes) kept in every request for `sid`, `rid`, `ack` and the JSON around the messages;
 * a sid is at most a few dozen characters and the numbers at most 16 digits.
 */
export const ENVELOPE_BYTES = 256;

/**
 * Deepest nesting of arrays/objects a message may have: the server refuses a body nested deeper
 * than 64 levels (`400 bad_json`), and the body object and its `messages` array take two.
 */
export const MAX_MESSAGE_DEPTH = 62;

/** One message on its way. */
export interface Outgoing {
  readonly data: unknown;
  /** UTF-8 size of the message's JSON plus its separating comma. */
  readonly bytes: number;
  resolve(): void;
  reject(error: CometClientError): void;
}

const encoder = new TextEncoder();

/** FIFO of messages not yet accepted by the server. */
export class Outbox {
  #items: Outgoing[] = [];
  readonly #maxBodyBytes: number;

  constructor(maxBodyBytes: number) {
    this.#maxBodyBytes = maxBodyBytes;
  }

  get size(): number {
    return this.#items.length;
  }

  /** Queues `data`; the promise settles when the server accepts it or the client gives it up. */
  add(data: unknown): Promise<void> {
    // Typed as string, but JSON.stringify gives undefined for undefined, functions and symbols.
    let json: unknown;
    try {
      json = JSON.stringify(data);
    } catch (cause) {
      return Promise.reject(new CometClientError('bad_message', 'message is not JSON-serialisable', { cause }));
    }
    if (typeof json !== 'string') {
      return Promise.reject(new CometClientError('bad_message', 'message is not JSON-serialisable'));
    }
    if (nestingDepth(json) > MAX_MESSAGE_DEPTH) {
      // Refused here: the server's 400 would end the whole session, not just this message.
      return Promise.reject(new CometClientError('bad_message', `message nests deeper than ${MAX_MESSAGE_DEPTH} levels`));
    }
    const bytes = encoder.encode(json).length + 1;
    if (bytes + ENVELOPE_BYTES > this.#maxBodyBytes) {
      return Promise.reject(
        new CometClientError('too_large', `message of ${bytes - 1} bytes exceeds the ${this.#maxBodyBytes}-byte body limit`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.#items.push({ data, bytes, resolve, reject });
    });
  }

  /** Takes as many messages from the head as fit in one body (at least one if any). */
  takeBatch(): Outgoing[] {
    let room = this.#maxBodyBytes - ENVELOPE_BYTES;
    let count = 0;
    for (const item of this.#items) {
      if (count > 0 && item.bytes > room) break;
      room -= item.bytes;
      count += 1;
    }
    return this.#items.splice(0, count);
  }

  /** Puts a batch back at the head, in order (its request was not accepted). */
  putBack(batch: readonly Outgoing[]): void {
    this.#items.unshift(...batch);
  }

  /** Rejects and drops every queued message. */
  rejectAll(error: CometClientError): void {
    const items = this.#items;
    this.#items = [];
    for (const item of items) item.reject(error);
  }
}

/** Deepest array/object nesting in a JSON text (brackets inside strings do not count). */
export function nestingDepth(json: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}
