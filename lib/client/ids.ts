/**
 * Branded identifiers of wire contract v1, the client's own copy: the client stands alone (the
 * browser bundle must not reach into server code), so it declares the same brands as the server's
 * lib/comet/ids.ts. A `Rid` can never be passed where a `Seq` is due, nor a plain string where a
 * `Sid` is due: the brand exists only at compile time.
 */
// A string-keyed brand, not a `unique symbol`: lib/comet/ids.ts declares the same brands, and the
// two must be one type (a client's Sid is the server's Sid), which only a structural key gives.
type Brand<T, B extends string> = T & { readonly __brand: B };

/** Session id: the only credential a client holds (>= 122 random bits, url-safe). */
export type Sid = Brand<string, 'Sid'>;
/** Request id: positive integer, +1 per request on either connection. */
export type Rid = Brand<number, 'Rid'>;
/** Packet sequence number: per session, from 1, +1 per packet, never reused. */
export type Seq = Brand<number, 'Seq'>;

/** Trust a string as a Sid (the wire decoder has checked it). */
export const asSid = (s: string): Sid => s as Sid;
/** Trust a number as a Rid (callers have checked it is a positive safe integer). */
export const asRid = (n: number): Rid => n as Rid;
/** Trust a number as a Seq (callers have checked it is a non-negative safe integer). */
export const asSeq = (n: number): Seq => n as Seq;
