/**
 * Node ids: `<name>~<creation>`. The name is the operator's (`--node-id`), stable across restarts;
 * the creation is new at every start (and after a fence), as Erlang's node "creation" is, so a
 * restarted node never answers for the sids of its previous life: they name another node id.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CometError } from '../comet/errors.js';
import { sidNode } from '../comet/session_ids.js';

type Brand<T, B extends string> = T & { readonly __brand: B };

/** One life of one node: `<name>~<creation>`. */
export type NodeId = Brand<string, 'NodeId'>;

/** What a node name may be: no `.` (it ends the node part of a sid), no `~` (it ends the name); up to
 *  63 characters, so a Kubernetes pod name fits. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,63}$/;
/** Separates the name from the creation. */
export const CREATION_SEPARATOR = '~';
/** Random bytes of a creation (48 bits, 8 base64url characters). */
export const CREATION_BYTES = 6;

const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,63}~[A-Za-z0-9_-]{8}$/;

/** A new life of the node called `name`. @throws CometError ERR_COMET_INVALID_OPTION on a bad name. */
export function newNodeId(name: string): NodeId {
  if (!NODE_NAME_PATTERN.test(name)) {
    throw new CometError('ERR_COMET_INVALID_OPTION', `cluster.nodeId must match ${String(NODE_NAME_PATTERN)}, got ${JSON.stringify(name)}`);
  }
  return `${name}${CREATION_SEPARATOR}${randomBytes(CREATION_BYTES).toString('base64url')}` as NodeId;
}

/** The name part of a node id (the same for every life of one node). */
export function nodeName(node: NodeId): string {
  return node.slice(0, node.lastIndexOf(CREATION_SEPARATOR));
}

/** The node a sid names as its owner; undefined when the sid names none (or a malformed one). */
export function ownerOf(sid: string): NodeId | undefined {
  const node = sidNode(sid);
  return node !== undefined && NODE_ID_PATTERN.test(node) ? node as NodeId : undefined;
}

/** Trust a string received from a peer as a node id, if it has the shape of one. */
export function asNodeId(s: unknown): NodeId | undefined {
  return typeof s === 'string' && NODE_ID_PATTERN.test(s) ? s as NodeId : undefined;
}

/** The default name: the host name, cleaned, and the process id (two workers on one host differ). */
export function defaultNodeName(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 36) || 'node';
  return `${host}-${process.pid}`;
}
