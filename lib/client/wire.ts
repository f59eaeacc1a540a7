/**
 * The client's half of wire contract v1 (docs/protocol.md): the bodies it sends and the checks
 * on what comes back. Kept apart from the server's decoder so the browser bundle does not pull
 * in server code.
 */
import { asRid, asSeq, asSid, type Rid, type Seq, type Sid } from './ids.js';

/** The server's default hold time for a poll (ms), used if a setup answer lacks `wait`. */
export const DEFAULT_SERVER_WAIT_MS = 60_000;
/** The server's default inactivity limit (ms), used if a setup answer lacks `inactivity`. */
export const DEFAULT_SERVER_INACTIVITY_MS = 45_000;

/** What a successful setup tells the client. */
export interface SetupAnswer {
  readonly sid: Sid;
  readonly wait: number;
  readonly inactivity: number;
}

/** One packet pushed by the server. */
export interface Packet {
  readonly seq: Seq;
  readonly data: unknown;
}

/** The body of every request the client sends. */
export type RequestBody =
  | { readonly type: 'setup' }
  | { readonly sid: Sid; readonly rid: Rid; readonly ack: number; readonly messages?: readonly unknown[] }
  | { readonly type: 'terminate'; readonly sid: Sid; readonly rid: Rid; readonly ack: number };

/** The JSON error body of a non-2xx answer, when it has one. */
export interface ErrorAnswer {
  readonly error: string;
  readonly message: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isPositiveMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** Checks a setup answer; `undefined` if it is not one. */
export function parseSetup(body: unknown): SetupAnswer | undefined {
  if (!isRecord(body) || typeof body.sid !== 'string' || body.sid === '') return undefined;
  return {
    sid: asSid(body.sid),
    wait: isPositiveMs(body.wait) ? body.wait : DEFAULT_SERVER_WAIT_MS,
    inactivity: isPositiveMs(body.inactivity) ? body.inactivity : DEFAULT_SERVER_INACTIVITY_MS,
  };
}

/**
 * Checks a request/terminate answer and returns its packets sorted by seq; `undefined` if the
 * body is not an answer. A terminate answer may omit `packets`.
 */
export function parsePackets(body: unknown): Packet[] | undefined {
  if (!isRecord(body)) return undefined;
  if (body.packets === undefined) return [];
  if (!Array.isArray(body.packets)) return undefined;
  const packets: Packet[] = [];
  for (const p of body.packets as unknown[]) {
    if (!isRecord(p) || !Number.isSafeInteger(p.seq) || (p.seq as number) < 1) return undefined;
    packets.push({ seq: asSeq(p.seq as number), data: p.data });
  }
  return packets.sort((a, b) => a.seq - b.seq);
}

/** Reads `{"error", "message"}` from an error answer; `undefined` if the body has no code. */
export function parseError(body: unknown): ErrorAnswer | undefined {
  if (!isRecord(body) || typeof body.error !== 'string') return undefined;
  return { error: body.error, message: typeof body.message === 'string' ? body.message : '' };
}

/** Builds a request body. `messages` is left out when empty so a poll stays a plain poll. */
export function requestBody(sid: Sid, rid: Rid, ack: number, messages: readonly unknown[]): RequestBody {
  return messages.length === 0 ? { sid, rid, ack } : { sid, rid, ack, messages };
}

/** Builds a terminate body; the ack spares the server re-sending what the client has. */
export const terminateBody = (sid: Sid, rid: Rid, ack: number): RequestBody => ({ type: 'terminate', sid, rid, ack });

/**
 * The server refuses a rid more than this far from the highest it has seen (`400 bad_rid`), so
 * a request still being retried pins how far the other connection may run ahead.
 */
export const RID_WINDOW = 16;

/** The first rid of every session. */
export const FIRST_RID: Rid = asRid(1);

/** The rid after `rid`. */
export const nextRid = (rid: Rid): Rid => asRid(rid + 1);
