/**
 * The session-id server: the post's gen_server that makes session ids both unique and
 * unpredictable. Ids are uuid v4 (122 random bits from the CSPRNG, url-safe), checked against the
 * set of live sessions and released when a session ends.
 *
 * The live set is state, and state dies with a crash. So `init` rebuilds it from whoever knows the
 * truth (the connection supervisor's children, each registered under its sid): a restarted server
 * never hands out a live id.
 */
import { v4 as uuidv4 } from 'uuid';
import * as genServer from '../otp/gen_server.js';
import type { GenServer, ServerRef } from '../otp/gen_server.js';
import type { Link, StartOptions, StartResult } from '../otp/proc_lib.js';
import { asSid, type Sid } from './ids.js';

/** Separates the owner node from the random part of a cluster sid: `<nodeId>.<uuid v4>`. A node
 *  id never contains it (lib/cluster/node_id.ts), a uuid neither. */
export const SID_NODE_SEPARATOR = '.';

/**
 * A cluster sid: the owner's node id, then uuid v4 (122 random bits). The sid names its owner, so
 * any node can route a request without a lookup table, and a node that died leaves nothing to
 * clean; still opaque to clients.
 */
export function nodeSid(nodeId: string, random: string = uuidv4()): string {
  return `${nodeId}${SID_NODE_SEPARATOR}${random}`;
}

/** The node id a sid names as its owner, or undefined for a single-process sid (no node part). */
export function sidNode(sid: string): string | undefined {
  const at = sid.indexOf(SID_NODE_SEPARATOR);
  return at > 0 ? sid.slice(0, at) : undefined;
}

/** Registered name of the session-id server in its actor system. */
export const SESSION_IDS_NAME = 'comet_session_ids';

export type SessionIdsCall = { readonly type: 'new' } | { readonly type: 'count' };
export type SessionIdsCast = { readonly type: 'release'; readonly sid: Sid } | { readonly type: 'crash' };
export type SessionIdsReply = Sid | number;

export interface SessionIdsArgs {
  /** The sids alive right now (asked once, in init). */
  readonly liveSids: () => Promise<readonly Sid[]> | readonly Sid[];
  /** The random source; tests inject a colliding one to prove the uniqueness check works. */
  readonly generate?: () => string;
}

interface State {
  readonly live: Set<string>;
  readonly generate: () => string;
}

export type SessionIdsRef = ServerRef<SessionIdsCall, SessionIdsReply, SessionIdsCast, never>;

const sessionIds: GenServer<SessionIdsArgs, State, SessionIdsCall, SessionIdsReply, SessionIdsCast> = {
  async init(args) {
    const live = new Set<string>(await args.liveSids());
    return { ok: { live, generate: args.generate ?? (() => uuidv4()) } };
  },

  handleCall(req, _from, state) {
    switch (req.type) {
      case 'new': {
        let sid = state.generate();
        // With 122 random bits this loop runs once; it exists so uniqueness is a check, not a hope.
        while (state.live.has(sid)) sid = state.generate();
        state.live.add(sid);
        return { reply: asSid(sid), state };
      }
      case 'count':
        return { reply: state.live.size, state };
    }
  },

  handleCast(msg, state) {
    switch (msg.type) {
      case 'release':
        state.live.delete(msg.sid);
        return { noreply: true, state };
      case 'crash':
        // Fault injection for crash tests: a crash here is exactly what a bug would do.
        throw new Error('session_ids: injected crash');
    }
  },
};

/** Start the session-id server linked to its supervisor. */
export function startLink(link: Link, args: SessionIdsArgs, opts: StartOptions = {}): Promise<StartResult<SessionIdsRef>> {
  return genServer.startLink(link, sessionIds, args, { name: SESSION_IDS_NAME, ...opts });
}

/** A new unique, unpredictable session id (reserved until `release`). */
export function newSid(server: SessionIdsRef, timeoutMs: number): Promise<Sid> {
  return genServer.call(server, { type: 'new' }, timeoutMs) as Promise<Sid>;
}

/** The session ended: its id may be handed out again (in practice it never will be). */
export function release(server: SessionIdsRef, sid: Sid): void {
  genServer.cast(server, { type: 'release', sid });
}

/** How many ids are reserved. */
export function count(server: SessionIdsRef, timeoutMs: number): Promise<number> {
  return genServer.call(server, { type: 'count' }, timeoutMs) as Promise<number>;
}

/** Fault injection for crash tests: make the server crash (its supervisor restarts it). */
export function crash(server: SessionIdsRef): void {
  genServer.cast(server, { type: 'crash' });
}
