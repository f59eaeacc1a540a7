/**
 * What crosses Redis between nodes: plain JSON data, never a function or a process reference. A
 * forwarded event is the connection event without its reply slot (`from`); the owner builds a
 * local one and publishes the reply to the caller's channel under the call id.
 */
import type { ConnectionEvent, PacketOutcome, RequestOutcome } from '../comet/connection.js';
import { asRid } from '../comet/ids.js';
import { messagesOf, type EncodedData } from '../comet/wire.js';
import type { WireErrorCode } from '../comet/errors.js';
import { isWireErrorCode } from '../comet/errors.js';
import { asNodeId, type NodeId } from './node_id.js';

/** A connection event that waits for a reply, as data. The request's token travels with the
 *  caller's node id (`from` of the message): tokens are per process, unique only with their node. */
export type ForwardedCall =
  | { readonly type: 'request'; readonly rid: number; readonly ack: number | undefined; readonly messages: readonly unknown[]; readonly token: number }
  | { readonly type: 'terminate'; readonly rid: number; readonly ack: number | undefined }
  | { readonly type: 'packet'; readonly data: EncodedData };

/** A connection event sent without waiting, as data. */
export type ForwardedCast =
  | { readonly type: 'request_gone'; readonly token: number }
  | { readonly type: 'packet'; readonly data: EncodedData };

/**
 * An outcome as data: a response crosses as its text and size, without its budget callback. The
 * owner does not count a forwarded response's unflushed bytes: they wait in the forwarding node's
 * socket, not in the owner's process.
 */
export type WireOutcome =
  | Exclude<RequestOutcome, { readonly kind: 'packets' }>
  | { readonly kind: 'packets'; readonly rid: number; readonly response: { readonly json: string; readonly bytes: number } }
  | PacketOutcome;

export type CallReply =
  | { readonly ok: WireOutcome }
  | { readonly err: { readonly code: WireErrorCode; readonly message: string } };

export type ClusterMessage =
  /** Run `ev` on the session `sid` of the receiving node, reply to `from` under `id`. */
  | { readonly t: 'call'; readonly id: number; readonly from: NodeId; readonly sid: string; readonly ev: ForwardedCall; readonly timeout: number }
  | { readonly t: 'cast'; readonly from: NodeId; readonly sid: string; readonly ev: ForwardedCast }
  | { readonly t: 'reply'; readonly id: number; readonly reply: CallReply }
  /** On the broadcast channel: push `data` to every session of every node. */
  | { readonly t: 'broadcast'; readonly from: NodeId; readonly data: unknown }
  /** On the broadcast channel: `node` stopped (a graceful close): its sids are unknown from now. */
  | { readonly t: 'down'; readonly node: NodeId };

export function encode(msg: ClusterMessage): string {
  return JSON.stringify(msg);
}

/**
 * Decode a message from a peer; undefined if it is not one (another program on the channel, or a
 * newer version): dropped, as a lost message would be.
 */
export function decode(text: string): ClusterMessage | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null) return undefined;
  const r = m as Record<string, unknown>;
  switch (r.t) {
    case 'call':
      return typeof r.id === 'number' && asNodeId(r.from) && typeof r.sid === 'string' && isCall(r.ev) && typeof r.timeout === 'number'
        ? m as ClusterMessage : undefined;
    case 'cast':
      return asNodeId(r.from) && typeof r.sid === 'string' && isCast(r.ev) ? m as ClusterMessage : undefined;
    case 'reply':
      return typeof r.id === 'number' && isReply(r.reply) ? m as ClusterMessage : undefined;
    case 'broadcast':
      return asNodeId(r.from) && 'data' in r ? m as ClusterMessage : undefined;
    case 'down':
      return asNodeId(r.node) ? m as ClusterMessage : undefined;
    default:
      return undefined;
  }
}

function isCall(ev: unknown): ev is ForwardedCall {
  if (typeof ev !== 'object' || ev === null) return false;
  const e = ev as Record<string, unknown>;
  switch (e.type) {
    case 'request':
      return typeof e.rid === 'number' && Array.isArray(e.messages) && typeof e.token === 'number';
    case 'terminate':
      return typeof e.rid === 'number';
    case 'packet':
      return isEncoded(e.data);
    default:
      return false;
  }
}

function isCast(ev: unknown): ev is ForwardedCast {
  if (typeof ev !== 'object' || ev === null) return false;
  const e = ev as Record<string, unknown>;
  return (e.type === 'request_gone' && typeof e.token === 'number') || (e.type === 'packet' && isEncoded(e.data));
}

/** Packet data arrives encoded once, at the node that took it (`assertSendable`). */
function isEncoded(d: unknown): d is EncodedData {
  if (typeof d !== 'object' || d === null) return false;
  const o = d as Record<string, unknown>;
  return typeof o.json === 'string' && typeof o.bytes === 'number';
}

/** What the owner publishes for a local outcome. */
export function outcomeToWire(outcome: RequestOutcome | PacketOutcome): WireOutcome {
  if ('kind' in outcome && outcome.kind === 'packets') {
    return { kind: 'packets', rid: outcome.rid, response: { json: outcome.response.json, bytes: outcome.response.bytes } };
  }
  return outcome;
}

/** What the forwarding node's caller gets for a published outcome. */
export function outcomeFromWire(outcome: WireOutcome): RequestOutcome | PacketOutcome {
  if ('kind' in outcome && outcome.kind === 'packets') {
    return { kind: 'packets', rid: asRid(outcome.rid), response: { ...outcome.response, written: NOT_COUNTED } };
  }
  return outcome;
}

const NOT_COUNTED = (): (() => void) => () => undefined;

function isReply(r: unknown): r is CallReply {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  if ('ok' in o) return typeof o.ok === 'object' && o.ok !== null;
  const err = o.err as Record<string, unknown> | undefined;
  return typeof err === 'object' && err !== null && typeof err.code === 'string' && isWireErrorCode(err.code) && typeof err.message === 'string';
}

/** The data of a connection event that waits for a reply; undefined for one that cannot be forwarded. */
export function callOf(ev: ConnectionEvent): ForwardedCall | undefined {
  switch (ev.type) {
    case 'request':
      // Messages still as text (the body reader's) are built here: what crosses Redis is JSON data.
      return { type: 'request', rid: ev.rid, ack: ev.ack, messages: messagesOf(ev.messages), token: ev.token };
    case 'terminate':
      return { type: 'terminate', rid: ev.rid, ack: ev.ack };
    case 'packet':
      return { type: 'packet', data: ev.data };
    case 'request_gone':
    case 'wait_timeout':
    case 'dietimer':
      return undefined;
  }
}

/** The data of a connection event sent without waiting; undefined for one that is never sent across. */
export function castOf(ev: ConnectionEvent): ForwardedCast | undefined {
  switch (ev.type) {
    case 'request_gone':
      return { type: 'request_gone', token: ev.token };
    case 'packet':
      return { type: 'packet', data: ev.data };
    case 'request':
    case 'terminate':
    case 'wait_timeout':
    case 'dietimer':
      return undefined;
  }
}
