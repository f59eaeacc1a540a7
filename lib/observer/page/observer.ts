/**
 * The observer page's script (bundled with the client by scripts/build-client.mjs into
 * dist/client/observer.js). It is a comet client of the observer's feed: every update is a packet.
 * It keeps the tree, the counts, one page of sessions and the history, applying each packet's
 * changes; the buttons post to the observer's action endpoints. Text from the server only ever
 * reaches the page through `textContent`.
 *
 * Stable hooks for tests and tools: `data-node` (a node's path of ids), `data-restarts`,
 * `data-status`, `data-state` on session rows, `data-action` on buttons inside their node or row,
 * `data-cluster-node` and `data-lease` on a cluster node's row.
 */
import { CometClient } from '../../client/index.js';
import {
  CRASH_REASONS, FSM_STATES, type ClusterNodeRow, type Counts, type FeedPacket, type FeedRequest, type HistoryEntry, type NodeView, type SessionRow,
} from './protocol.js';

const base = document.querySelector<HTMLMetaElement>('meta[name="observer-base"]')?.content ?? '/observer';
const byId = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`missing #${id}`);
  return el as T;
};
const status = byId<HTMLSpanElement>('status');
const notice = byId<HTMLParagraphElement>('notice');
const treeEl = byId<HTMLUListElement>('tree');
const countsEl = byId<HTMLDivElement>('counts');
const tbody = byId<HTMLTableSectionElement>('sessions');
const historyEl = byId<HTMLOListElement>('history');
const query = byId<HTMLInputElement>('query');
const pageinfo = byId<HTMLSpanElement>('pageinfo');
const clusterSection = byId<HTMLElement>('cluster-section');
const clusterSummary = byId<HTMLSpanElement>('cluster-summary');
const clusterBody = byId<HTMLTableSectionElement>('cluster');

/** History entries kept on the page (the server keeps as many). */
const HISTORY_SHOWN = 200;

let actions = false;
/** Whether the server can suspend and resume processes (`sys` is there). */
let suspendable = false;
let pageSize = 20;
let page = 0;
let total = 0;
const rows = new Map<string, HTMLTableRowElement>();

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls !== undefined) e.className = cls;
  return e;
}

function say(text: string): void {
  notice.textContent = text;
}

async function post(action: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${base}/api/${action}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin',
  });
  const answer = await res.json().catch(() => ({})) as { error?: string; message?: string };
  say(res.ok ? '' : `${action} refused: ${answer.error ?? res.status} ${answer.message ?? ''}`);
}

function reasonPicker(reasons: readonly string[] = CRASH_REASONS): HTMLSelectElement {
  const s = el('select');
  s.dataset.testid = 'reason';
  for (const r of reasons) s.append(new Option(r, r));
  s.value = 'error';
  return s;
}

// --- the tree -------------------------------------------------------------------------------

function renderNode(n: NodeView): HTMLLIElement {
  const li = el('li', undefined, 'node');
  li.dataset.node = n.path;
  li.dataset.restarts = String(n.restarts);
  li.dataset.status = n.status;
  li.dataset.type = n.type;
  const row = el('div', undefined, 'row');
  row.append(el('span', n.id, 'id'));
  const meta: string[] = [];
  if (n.type === 'supervisor') meta.push('supervisor');
  if (n.supervisor) {
    const s = n.supervisor;
    meta.push(`${s.strategy}, intensity ${s.intensity} in ${s.period} s, ${s.restartsInWindow} in window`);
  }
  if (n.restart) meta.push(n.restart);
  if (n.name) meta.push(`as ${n.name}`);
  if (n.dynamic) meta.push(`×${n.dynamic.count} (see Sessions)`);
  row.append(el('span', n.status, 'st'));
  if (n.pid) row.append(el('span', n.pid, 'meta'));
  row.append(el('span', meta.join(' · '), 'meta'));
  const restarts = el('span', `restarts ${n.restarts}`, 'meta');
  restarts.dataset.testid = 'restarts';
  row.append(restarts);
  if (actions && n.status === 'suspended') {
    const resume = el('button', 'resume');
    resume.dataset.action = 'resume';
    resume.title = 'sys:resume: handle what waited, then carry on';
    resume.addEventListener('click', () => void post('resume', { path: n.path }));
    row.append(resume);
  }
  if (actions && n.status === 'running' && !n.dynamic) {
    const reason = reasonPicker();
    const crash = el('button', 'crash');
    crash.dataset.action = 'crash';
    crash.title = 'exit this process with the chosen reason';
    crash.addEventListener('click', () => void post('crash', { path: n.path, reason: reason.value }));
    row.append(reason, crash);
    if (suspendable) {
      const suspend = el('button', 'suspend');
      suspend.dataset.action = 'suspend';
      suspend.title = 'sys:suspend: it handles only system messages until resumed; what it is sent waits';
      suspend.addEventListener('click', () => void post('suspend', { path: n.path }));
      row.append(suspend);
    }
    if (n.type === 'supervisor' && n.supervisor && !n.children?.some((c) => c.dynamic)) {
      const storm = el('button', 'crash storm');
      storm.dataset.action = 'storm';
      storm.title = `crash a child ${n.supervisor.intensity + 1} times: past this supervisor's intensity`;
      storm.addEventListener('click', () => {
        if (confirm(`Crash a child of ${n.path} ${(n.supervisor?.intensity ?? 0) + 1} times? The supervisor gives up, and the failure goes up the tree (at the top, the server stops).`)) {
          void post('storm', { path: n.path });
        }
      });
      row.append(storm);
    }
  }
  li.append(row);
  if (n.children && n.children.length > 0) {
    const ul = el('ul');
    for (const c of n.children) ul.append(renderNode(c));
    li.append(ul);
  }
  return li;
}

function showTree(tree: NodeView): void {
  const before = new Map<string, string>();
  for (const e of Array.from(treeEl.querySelectorAll<HTMLLIElement>('li.node'))) before.set(e.dataset.node ?? '', e.dataset.restarts ?? '');
  treeEl.replaceChildren(renderNode(tree));
  for (const e of Array.from(treeEl.querySelectorAll<HTMLLIElement>('li.node'))) {
    const was = before.get(e.dataset.node ?? '');
    if (was !== undefined && was !== e.dataset.restarts) e.classList.add('flash');
  }
}

// --- the counts -----------------------------------------------------------------------------

const COUNT_LABELS: readonly [keyof Counts, string][] = [
  ['sessions', 'sessions'], ...FSM_STATES.map((s): [keyof Counts, string] => [s, s]),
  ['held', 'held polls'], ['queued', 'packets queued'], ['messagesIn', 'messages in'], ['packetsOut', 'packets out'],
];

function showCounts(c: Counts): void {
  countsEl.replaceChildren(...COUNT_LABELS.map(([k, label]) => {
    const d = el('div', undefined, 'count');
    d.dataset.count = k;
    d.append(el('b', String(c[k])), el('span', label, 'muted'));
    return d;
  }));
}

// --- the sessions ---------------------------------------------------------------------------

function fillRow(tr: HTMLTableRowElement, r: SessionRow): void {
  tr.dataset.state = r.state;
  tr.dataset.session = r.tag;
  tr.dataset.key = r.key;
  const cells = [r.key, r.tag, r.state, String(r.queued), String(r.queuedBytes), r.heldSeconds === null ? '–' : `${r.heldSeconds} s`, String(r.messagesIn), String(r.packetsOut)];
  const tds = cells.map((text, i) => el('td', text, i === 1 ? 'tag' : i === 2 ? 'st' : undefined));
  const last = el('td');
  if (actions) {
    const reason = reasonPicker(CRASH_REASONS);
    const crash = el('button', 'crash');
    crash.dataset.action = 'crash-session';
    crash.addEventListener('click', () => void post('crash-session', { key: r.key, reason: reason.value }));
    last.append(reason, crash);
  }
  tr.replaceChildren(...tds, last);
}

function showSessions(p: Extract<FeedPacket, { type: 'sessions' }>): void {
  total = p.total;
  page = p.page;
  for (const key of p.remove) {
    rows.get(key)?.remove();
    rows.delete(key);
  }
  for (const r of p.upsert) {
    let tr = rows.get(r.key);
    if (!tr) {
      tr = el('tr');
      rows.set(r.key, tr);
    }
    fillRow(tr, r);
  }
  if (p.order) tbody.replaceChildren(...p.order.flatMap((k) => rows.get(k) ?? []));
  const pages = Math.max(1, Math.ceil(total / pageSize));
  pageinfo.textContent = `page ${page + 1} of ${pages} · ${total} session${total === 1 ? '' : 's'}${p.query ? ` matching ${p.query}` : ''}`;
}

// --- the cluster ----------------------------------------------------------------------------

const clusterRows = new Map<string, ClusterNodeRow>();
let clusterHead: Pick<Extract<FeedPacket, { type: 'cluster' }>, 'node' | 'leaseMs' | 'redis'> | undefined;
let clusterTimer: ReturnType<typeof setInterval> | undefined;

/** Whole seconds (tenths below 10 s) between `at` and now; what only the node itself knows shows '–'. */
function ago(at: number | null, sign: 1 | -1): string {
  if (at === null) return '–';
  const ms = Math.max(0, sign * (Date.now() - at));
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function clusterRow(n: ClusterNodeRow): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.clusterNode = n.node;
  tr.dataset.lease = n.lease;
  tr.dataset.self = String(n.self);
  const unknown = 'not known on this node: only that node counts it';
  const cells: [string, string | undefined][] = [
    [n.self ? `${n.node} (this node)` : n.node, undefined],
    [n.lease, 'lease'],
    [n.seenAt === null ? '–' : `${ago(n.seenAt, 1)} ago`, undefined],
    [n.expiresAt === null ? '–' : `${ago(n.expiresAt, -1)}`, undefined],
    [n.redis ?? '–', undefined],
    [n.sessions === null ? '–' : String(n.sessions), undefined],
    [n.forwarded === null ? '–' : String(n.forwarded), undefined],
    [n.served === null ? '–' : String(n.served), undefined],
  ];
  tr.append(...cells.map(([text, cls], i) => {
    const td = el('td', text, cls);
    if (text === '–' && i >= 3) td.title = unknown;
    return td;
  }));
  return tr;
}

/** Draw the cluster table again: the rows as last sent, the times relative to now. */
function drawCluster(): void {
  if (!clusterHead) return;
  const alive = [...clusterRows.values()].filter((n) => n.lease === 'alive').length;
  clusterSummary.textContent = `${alive} node${alive === 1 ? '' : 's'} alive · lease ${clusterHead.leaseMs / 1000} s · Redis ${clusterHead.redis}`;
  const order = [...clusterRows.values()].sort((a, b) => Number(b.self) - Number(a.self) || LEASE_ORDER[a.lease] - LEASE_ORDER[b.lease] || a.node.localeCompare(b.node));
  clusterBody.replaceChildren(...order.map(clusterRow));
}

const LEASE_ORDER: Readonly<Record<ClusterNodeRow['lease'], number>> = { alive: 0, lapsed: 1, fenced: 2 };

function showCluster(p: Extract<FeedPacket, { type: 'cluster' }>): void {
  clusterHead = { node: p.node, leaseMs: p.leaseMs, redis: p.redis };
  if (p.full) clusterRows.clear();
  for (const node of p.remove) clusterRows.delete(node);
  for (const n of p.upsert) clusterRows.set(n.node, n);
  clusterSection.hidden = false;
  drawCluster();
  // "seen … ago" and "expires in" count on between packets (a packet comes when a lease is renewed).
  clusterTimer ??= setInterval(drawCluster, 1000);
}

// --- the history ----------------------------------------------------------------------------

function historyLine(e: HistoryEntry): HTMLLIElement {
  const li = el('li');
  li.dataset.kind = e.kind;
  li.dataset.path = e.path;
  const time = new Date(e.at).toLocaleTimeString();
  const parts = [time, e.kind, e.path];
  if (e.reason !== undefined) parts.push(`reason: ${e.reason}`);
  if (e.action !== undefined) parts.push(e.kind === 'action' ? e.action : `supervisor: ${e.action}`);
  if (e.who !== undefined) parts.push(`by ${e.who}`);
  li.textContent = parts.join('  ');
  return li;
}

/** The newest history entry shown: a feed that starts over sends what the page has again. */
let newestShown = 0;

function showHistory(entries: readonly HistoryEntry[]): void {
  // Entries arrive newest first; older ones go below the newer.
  const fresh = entries.filter((e) => e.id > newestShown).map(historyLine);
  newestShown = Math.max(newestShown, ...entries.map((e) => e.id));
  historyEl.prepend(...fresh);
  while (historyEl.children.length > HISTORY_SHOWN) historyEl.lastElementChild?.remove();
}

// --- the feed -------------------------------------------------------------------------------

const client = new CometClient(new URL(`${base}/comet`, location.href).href, { reconnect: true });

function view(): void {
  const req: FeedRequest = { type: 'view', page, query: query.value.trim() };
  client.send(req).catch(() => {});
}

client.on('state', ({ state }) => {
  status.dataset.state = state;
  status.textContent = state;
});
client.on('open', ({ previousSid }) => {
  if (previousSid !== null) {
    // A new feed session starts from a full picture.
    historyEl.replaceChildren();
    newestShown = 0;
    rows.clear();
    tbody.replaceChildren();
    clusterRows.clear();
  }
  if (page !== 0 || query.value.trim() !== '') view();
});
client.on('close', ({ reason, willReconnect }) => {
  if (!willReconnect) say(`feed closed (${reason}): the server stopped or the observer is gone`);
});
client.on('message', ({ data }) => {
  const p = data as FeedPacket;
  switch (p.type) {
    case 'hello':
      actions = p.actions;
      suspendable = p.suspend;
      pageSize = p.pageSize;
      return;
    case 'tree':
      showTree(p.tree);
      return;
    case 'counts':
      showCounts(p.counts);
      return;
    case 'sessions':
      showSessions(p);
      return;
    case 'history':
      showHistory(p.entries);
      return;
    case 'cluster':
      showCluster(p);
      return;
  }
});

byId<HTMLButtonElement>('prev').addEventListener('click', () => {
  if (page > 0) page--;
  view();
});
byId<HTMLButtonElement>('next').addEventListener('click', () => {
  if ((page + 1) * pageSize < total) page++;
  view();
});
query.addEventListener('input', () => {
  page = 0;
  view();
});
addEventListener('pagehide', () => void client.close());

void client.connect().catch((err: unknown) => say(`cannot reach the observer feed: ${String(err)}`));
