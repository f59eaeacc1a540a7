/**
 * What stands for a session in a log line. The sid is the session's only credential (whoever
 * has it can read and write as that session), and logs travel to places credentials must not:
 * so no log line carries a full sid, only this tag, the same for one session everywhere it is
 * logged (grep the logs for it), from which the sid cannot be recovered.
 */
import { createHash } from 'node:crypto';
import type { Sid } from './ids.js';

/** Characters of the tag: 60 bits of sha256, enough to tell apart millions of sessions. */
export const SID_TAG_LENGTH = 10;

/**
 * The log tag of a session: the first {@link SID_TAG_LENGTH} base64url characters of
 * sha256(sid). One-way, and short enough that a log line stays small.
 * @example
 * logger.warn({ session: sidTag(sid) }, 'packet refused: queue full');
 */
export function sidTag(sid: Sid | string): string {
  return createHash('sha256').update(sid).digest('base64url').slice(0, SID_TAG_LENGTH);
}
