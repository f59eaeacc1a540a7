/**
 * Branded identifiers of wire contract v1. A `Rid` can never be passed where a `Seq` is due,
 * nor a plain string where a `Sid` is due: the brand exists only at compile time.
 */
// A string-keyed brand, not a `unique symbol`: lib/client/ids.ts declares the same brands, and the
// two must be one type (a client's Sid is the server's Sid), which only a structural key gives.
type Brand<T, B extends string> = T & { readonly __brand: B };

/** Session id: the only credential a client holds (>= 122 random bits, url-safe). */
export type Sid = Brand<string, 'Sid'>;
/** Request id: positive integer, +1 per request on either connection. */
export type Rid = Brand<number, 'Rid'>;
/** Packet sequence number: per session, from 1, +1 per packet, never reused. */
export type Seq = Brand<number, 'Seq'>;

/** Trust a string as a Sid. Only the session-id server and the wire decoder should call this. */
export const asSid = (s: string): Sid => s as Sid;
/** Trust a number as a Rid (callers have checked it is a positive safe integer). */
export const asRid = (n: number): Rid => n as Rid;
/** Trust a number as a Seq (callers have checked it is a non-negative safe integer). */
export const asSeq = (n: number): Seq => n as Seq;

/**
 * Identifies one HTTP request, so a late `request_gone` cannot drop a newer held request. Never on
 * the wire: `handleRequest` mints one per request and hands it to the connection FSM.
 */
export type RequestToken = Brand<number, 'RequestToken'>;

let lastRequestToken = 0;
/** A fresh RequestToken, never handed out before in this process: the only place one is made. */
export function newRequestToken(): RequestToken {
  return ++lastRequestToken as RequestToken;
}
