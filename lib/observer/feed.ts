/**
 * The live feed: every open observer page is a comet session of the observer's own feed endpoint,
 * and once a tick each gets, as packets, only what changed since its last one: the tree when it
 * changed, the counts when they changed, the rows of its page that changed (and which left), the
 * history entries it has not seen, and on a cluster node the nodes whose row changed (and which left). Nothing runs while no page is open.
 */
import type { Sid } from '../comet/ids.js';
import type { ConnectionData } from '../comet/connection.js';
import type { Logger } from '../otp/logger.js';
import type { History } from './history.js';
import type { ClusterView, Counts, FeedPacket, FeedRequest, NodeView } from './page/protocol.js';
import { countSessions, OBSERVER_PAGE_SIZE, sessionPage, type SessionSources } from './sessions_view.js';

/** How often open pages are updated (ms). */
export const OBSERVER_TICK_MS = 1000;

/** The comet server the feed's sessions live on (a second one, so the application never sees them). */
export interface FeedTransport {
  handlePacket(sid: string, data: unknown): Promise<unknown>;
}

interface Viewer {
  page: number;
  query: string;
  tree: string | undefined;
  counts: string | undefined;
  order: string | undefined;
  rows: Map<string, string>;
  historyId: number;
  sids: Map<string, Sid>;
  /** The cluster's header and rows as last sent (JSON), by node id. */
  clusterHead: string | undefined;
  clusterRows: Map<string, string>;
}

export interface FeedDeps {
  readonly sources: SessionSources;
  readonly history: History;
  readonly readTree: () => Promise<NodeView>;
  readonly logger: Logger;
  readonly tickMs: number;
  readonly hello: () => Extract<FeedPacket, { type: 'hello' }>;
  /** The cluster, on a cluster node (absent: no cluster packet is ever sent). */
  readonly readCluster?: () => ClusterView | undefined;
}

export class Feed {
  readonly #viewers = new Map<string, Viewer>();
  readonly #deps: FeedDeps;
  readonly #bytes = new WeakMap<ConnectionData, [number, number, number]>();
  #transport: FeedTransport | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;

  constructor(deps: FeedDeps) {
    this.#deps = deps;
  }

  attach(transport: FeedTransport): void {
    this.#transport = transport;
  }

  /** How many pages are open. */
  get viewers(): number {
    return this.#viewers.size;
  }

  /** The sid of a session shown on some open page, by its row key. */
  shownSid(key: string): Sid | undefined {
    for (const v of this.#viewers.values()) {
      const sid = v.sids.get(key);
      if (sid !== undefined) return sid;
    }
    return undefined;
  }

  /** The feed server's hooks. */
  readonly hooks = {
    onSession: (sid: Sid): void => {
      this.#viewers.set(sid, fresh());
      this.#push(sid, this.#deps.hello());
      this.#timer ??= setInterval(() => this.tick(), this.#deps.tickMs);
      this.tick();
    },
    onMessage: (sid: Sid, data: unknown): void => {
      const v = this.#viewers.get(sid);
      if (!v || !isView(data)) return;
      v.page = data.page;
      v.query = data.query;
      this.tick();
    },
    onSessionEnd: (sid: Sid): void => {
      this.#viewers.delete(sid);
      if (this.#viewers.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    },
  };

  /** Update every open page now (one tick at a time; a tick asked for during one runs after it). */
  tick(): void {
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = this.#tick().catch((err: unknown) => {
      this.#deps.logger.error({ err: String(err) }, 'observer: tick failed');
    }).finally(() => {
      this.#ticking = undefined;
      if (this.#again) {
        this.#again = false;
        this.tick();
      }
    });
  }

  async #tick(): Promise<void> {
    if (this.#viewers.size === 0) return;
    const tree = JSON.stringify(await this.#deps.readTree());
    const counts: Counts = countSessions(this.#deps.sources);
    const countsJson = JSON.stringify(counts);
    const cluster = this.#deps.readCluster?.();
    for (const [sid, v] of this.#viewers) {
      if (v.tree !== tree) {
        v.tree = tree;
        this.#push(sid, { type: 'tree', tree: JSON.parse(tree) as NodeView });
      }
      if (v.counts !== countsJson) {
        v.counts = countsJson;
        this.#push(sid, { type: 'counts', counts });
      }
      this.#sessions(sid, v);
      if (cluster) this.#cluster(sid, v, cluster);
      const entries = this.#deps.history.since(v.historyId);
      if (entries.length > 0) {
        v.historyId = this.#deps.history.lastId;
        this.#push(sid, { type: 'history', entries });
      }
    }
  }

  #sessions(sid: string, v: Viewer): void {
    const page = sessionPage(this.#deps.sources, v.page, v.query, this.#bytes);
    v.sids = page.sids;
    const { upsert, remove } = diffRows(v.rows, page.rows, (r) => r.key);
    const keys = page.rows.map((r) => r.key);
    const order = `${page.total}|${page.page}|${v.query}|${keys.join(',')}`;
    const orderChanged = order !== v.order;
    if (!orderChanged && upsert.length === 0 && remove.length === 0) return;
    v.order = order;
    this.#push(sid, {
      type: 'sessions', total: page.total, page: page.page, query: v.query,
      ...(orderChanged ? { order: keys } : {}), upsert, remove,
    });
  }

  /** The cluster's rows that changed since this page's last packet, and the nodes that left the list. */
  #cluster(sid: string, v: Viewer, c: ClusterView): void {
    const head = JSON.stringify([c.node, c.leaseMs, c.redis]);
    const { upsert, remove } = diffRows(v.clusterRows, c.nodes, (r) => r.node);
    if (head === v.clusterHead && upsert.length === 0 && remove.length === 0) return;
    // A page started over (its packets were refused) may hold rows this one does not list.
    const full = v.clusterHead === undefined;
    v.clusterHead = head;
    this.#push(sid, { type: 'cluster', node: c.node, leaseMs: c.leaseMs, redis: c.redis, upsert, remove, ...(full ? { full: true } : {}) });
  }

  #push(sid: string, packet: FeedPacket): void {
    const t = this.#transport;
    if (!t) return;
    t.handlePacket(sid, packet).catch(() => {
      // Refused (the page stopped acking, or it left): start it over from a full picture.
      const v = this.#viewers.get(sid);
      if (v) this.#viewers.set(sid, { ...fresh(), page: v.page, query: v.query });
    });
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#viewers.clear();
  }
}

function fresh(): Viewer {
  return {
    page: 0, query: '', tree: undefined, counts: undefined, order: undefined, rows: new Map(), historyId: 0, sids: new Map(),
    clusterHead: undefined, clusterRows: new Map(),
  };
}

function isView(data: unknown): data is FeedRequest {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Partial<Record<keyof FeedRequest, unknown>>;
  return d.type === 'view' && typeof d.page === 'number' && Number.isSafeInteger(d.page) && d.page >= 0 && d.page < 1e6
    && typeof d.query === 'string' && d.query.length <= 64;
}

export { OBSERVER_PAGE_SIZE };

/**
 * The rows that changed since `sent` (each row's JSON by key, as last sent to one page) and the
 * keys no longer listed; `sent` is brought up to date. What makes every update incremental.
 */
function diffRows<R>(sent: Map<string, string>, rows: readonly R[], keyOf: (row: R) => string): { upsert: R[]; remove: string[] } {
  const upsert: R[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const key = keyOf(row);
    seen.add(key);
    const json = JSON.stringify(row);
    if (sent.get(key) !== json) {
      sent.set(key, json);
      upsert.push(row);
    }
  }
  const remove = [...sent.keys()].filter((k) => !seen.has(k));
  for (const k of remove) sent.delete(k);
  return { upsert, remove };
}
