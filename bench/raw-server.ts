/**
 * The ceiling: a bare `node:http` long-poll server speaking wire contract v1 with the least work
 * per request. One Map of sessions, one sweep timer for every wait and inactivity timeout, no
 * validation. Same admin endpoints as `npm run echo`, so the load generator drives both alike.
 *
 * What it leaves out on purpose (the comet-fsm server must do all of it): input validation and
 * every 4xx but 404, rid ordering and retransmission dedupe, body and session limits, CORS,
 * logging. It keeps what a correct long-poll server cannot skip: per-session seq and ack, re-sending
 * unacked packets, answering the older poll when a second arrives, the wait and inactivity timers.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Wire contract v1's default long-poll wait (ms). */
export const DEFAULT_WAIT_MS = 60_000;
/** Wire contract v1's default inactivity timeout (ms). */
export const DEFAULT_INACTIVITY_MS = 45_000;
/** How often the one timer looks at every session; the timeouts are this coarse. */
export const DEFAULT_SWEEP_MS = 1_000;

/** Options of {@link createRawServer}. */
export interface RawServerOptions {
  /** Endpoint path (default `/comet`). */
  readonly path?: string;
  readonly wait?: number;
  readonly inactivity?: number;
  readonly sweepMs?: number;
}

/** A running raw server. */
export interface RawServer {
  readonly server: Server;
  /** Bind and resolve with the bound port (pass 0 for any). */
  listen(port: number, host: string): Promise<number>;
  /** Sessions and held polls, as `GET /admin/stats` reports them. */
  stats(): { sessions: number; held: number };
  close(): Promise<void>;
}

interface Session {
  /** Last seq handed out. */
  seq: number;
  /** Serialized packets not yet acked; queue[i] has seq `seq - queue.length + 1 + i`. */
  queue: string[];
  held: ServerResponse | null;
  heldRid: number;
  heldSince: number;
  lastSeen: number;
}

interface CometBody {
  readonly type?: unknown;
  readonly sid?: unknown;
  readonly rid?: unknown;
  readonly ack?: unknown;
  readonly messages?: unknown;
}

const HEADERS = ['Content-Type', 'application/json', 'Cache-Control', 'no-store'];

const reply = (res: ServerResponse, status: number, body: string): void => {
  res.writeHead(status, [...HEADERS, 'Content-Length', String(Buffer.byteLength(body))]);
  res.end(body);
};

const fail = (res: ServerResponse, status: number, code: string): void =>
  reply(res, status, `{"error":"${code}","message":"${code}"}`);

const readBody = (req: IncomingMessage, then: (body: string) => void): void => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => then(body));
};

const parse = (body: string): CometBody | null => {
  try {
    const v: unknown = JSON.parse(body);
    return typeof v === 'object' && v !== null ? v : null;
  } catch {
    return null;
  }
};

/**
 * Create (not yet bound) the raw v1 long-poll server with echo and broadcast.
 *
 * @example
 * const raw = createRawServer({ wait: 60_000 });
 * const port = await raw.listen(0, '127.0.0.1');
 */
export const createRawServer = (options: RawServerOptions = {}): RawServer => {
  const path = options.path ?? '/comet';
  const wait = options.wait ?? DEFAULT_WAIT_MS;
  const inactivity = options.inactivity ?? DEFAULT_INACTIVITY_MS;
  const sessions = new Map<string, Session>();
  // A clock the sweep advances: timeouts only need its resolution, and requests skip Date.now().
  let now = Date.now();

  const answer = (s: Session, res: ServerResponse, rid: number): void =>
    reply(res, 200, `{"rid":${rid},"packets":[${s.queue.join(',')}]}`);

  const push = (s: Session, dataJson: string): void => {
    s.queue.push(`{"seq":${++s.seq},"data":${dataJson}}`);
    if (s.held !== null) {
      answer(s, s.held, s.heldRid);
      s.held = null;
      s.lastSeen = now;
    }
  };

  const comet = (res: ServerResponse, m: CometBody | null): void => {
    if (m === null) return fail(res, 400, 'bad_json');
    if (m.type === 'setup') {
      const sid = randomUUID();
      sessions.set(sid, { seq: 0, queue: [], held: null, heldRid: 0, heldSince: 0, lastSeen: now });
      return reply(res, 200, `{"sid":"${sid}","wait":${wait},"inactivity":${inactivity}}`);
    }
    const sid = m.sid as string;
    const s = sessions.get(sid);
    if (s === undefined) return fail(res, 404, 'unknown_session');
    const rid = m.rid as number;
    s.lastSeen = now;
    const ack = m.ack as number | undefined;
    if (ack !== undefined && s.queue.length > 0) {
      const drop = ack - (s.seq - s.queue.length);
      if (drop > 0) s.queue = drop >= s.queue.length ? [] : s.queue.slice(drop);
    }
    if (m.type === 'terminate') {
      if (s.held !== null) answer(s, s.held, s.heldRid);
      sessions.delete(sid);
      return answer(s, res, rid);
    }
    if (s.queue.length > 0) {
      answer(s, res, rid);
    } else {
      if (s.held !== null) reply(s.held, 200, `{"rid":${s.heldRid},"packets":[]}`);
      s.held = res;
      s.heldRid = rid;
      s.heldSince = now;
    }
    // The echo application: each message comes back to its session as one packet.
    if (Array.isArray(m.messages)) for (const msg of m.messages) push(s, JSON.stringify(msg));
  };

  const broadcast = (res: ServerResponse, m: CometBody | null): void => {
    const data = m === null ? undefined : (m as { data?: unknown }).data;
    if (data === undefined) return fail(res, 400, 'bad_request');
    const json = JSON.stringify(data);
    for (const s of sessions.values()) push(s, json);
    reply(res, 200, `{"sessions":${sessions.size}}`);
  };

  const stats = (): { sessions: number; held: number } => {
    let held = 0;
    for (const s of sessions.values()) if (s.held !== null && !s.held.destroyed) held++;
    return { sessions: sessions.size, held };
  };

  const server = createServer((req, res) => {
    const url = req.url;
    if (req.method === 'POST' && url === path) return readBody(req, (b) => comet(res, parse(b)));
    if (req.method === 'POST' && url === '/admin/broadcast') return readBody(req, (b) => broadcast(res, parse(b)));
    if (url === '/admin/stats') return reply(res, 200, JSON.stringify(stats()));
    fail(res, 404, 'not_found');
  });

  // No 'close' listener per held poll: a dead one is found here, and a packet written into it
  // stays queued until acked, so nothing is lost.
  const sweep = setInterval(() => {
    now = Date.now();
    for (const [sid, s] of sessions) {
      if (s.held !== null) {
        if (s.held.destroyed) {
          s.held = null;
          s.lastSeen = now;
        } else if (now - s.heldSince >= wait) {
          answer(s, s.held, s.heldRid);
          s.held = null;
          s.lastSeen = now;
        }
      } else if (now - s.lastSeen >= inactivity) {
        sessions.delete(sid);
      }
    }
  }, options.sweepMs ?? DEFAULT_SWEEP_MS);
  sweep.unref();

  return {
    server,
    stats,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: () =>
      new Promise((resolve) => {
        clearInterval(sweep);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};
