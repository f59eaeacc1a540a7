// The observer over HTTP: who gets it (loopback, a token, nobody), what actions answer, and what its
// feed, a comet session of its own, pushes after a crash.
import t from 'tap';
import { sidTag } from '../lib/comet/sid_tag.js';
import { createCometServer, type CometServer, type CometServerOptions, type Sid } from '../lib/index.js';
import { CometClient } from '../lib/client/index.js';
import type { FeedPacket, HistoryEntry, NodeView, TreeSnapshot } from '../lib/observer/page/protocol.js';

const TOKEN = 'correct-horse-battery-staple';

type Tap = { teardown(fn: () => unknown): void };

async function server(tt: Tap, options: CometServerOptions, host = '127.0.0.1'): Promise<{ comet: CometServer; base: string }> {
  const comet = await createCometServer(options);
  tt.teardown(() => comet.close());
  const { port } = await comet.listen(0, host);
  return { comet, base: `http://127.0.0.1:${port}` };
}

function node(tree: NodeView, path: string): NodeView | undefined {
  if (tree.path === path) return tree;
  for (const c of tree.children ?? []) {
    const n = node(c, path);
    if (n) return n;
  }
  return undefined;
}

/** An observer page's feed, as the page opens it: every packet it gets, in order. */
async function openFeed(tt: Tap, base: string): Promise<FeedPacket[]> {
  const feed = new CometClient(`${base}/observer/comet`, { retryBaseMs: 10 });
  tt.teardown(() => feed.close());
  const packets: FeedPacket[] = [];
  feed.on('message', ({ data }) => packets.push(data as FeedPacket));
  await feed.connect();
  return packets;
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const ENDPOINTS: readonly [string, RequestInit | undefined][] = [
  ['/observer', undefined],
  ['/observer/observer.js', undefined],
  ['/observer/api/tree', undefined],
  ['/observer/comet', json({ type: 'setup' })],
  ['/observer/api/crash', json({ path: 'comet_sup/session_ids', reason: 'kill' })],
  ['/observer/api/crash-session', json({ key: 'gen_fsm.1', reason: 'error' })],
  ['/observer/api/storm', json({ path: 'comet_sup' })],
  ['/observer/api/suspend', json({ path: 'comet_sup/session_ids' })],
  ['/observer/api/resume', json({ path: 'comet_sup/session_ids' })],
];

void t.test('off by default: /observer is an unknown path', async (t) => {
  const { base } = await server(t, {});
  for (const [path, init] of ENDPOINTS) t.equal((await fetch(base + path, init)).status, 404, path);
});

void t.test('bound to 0.0.0.0 without a token: the page and every endpoint answer 404, and nothing is crashed', async (t) => {
  const { base, comet } = await server(t, { observer: true }, '0.0.0.0');
  const before = comet.api;
  for (const [path, init] of ENDPOINTS) {
    const res = await fetch(base + path, init);
    t.equal(res.status, 404, `${path}: 404`);
    t.same(await res.json(), { error: 'not_found', message: 'no such endpoint' }, `${path}: the body of any unknown path`);
  }
  t.equal(comet.api, before);
  const snap = await fetch(`${base}/observer/api/tree`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  t.equal(snap.status, 404, 'a token the server was not given opens nothing');
});

void t.test('a public bind with the token, without --observer-actions: it shows, actions are refused 403', async (t) => {
  const { base } = await server(t, { observer: { token: TOKEN, boundAddress: () => '203.0.113.5' } });
  t.equal((await fetch(`${base}/observer`)).status, 404, 'no token: 404');
  t.equal((await fetch(`${base}/observer?token=wrong-token-of-enough-length`, { redirect: 'manual' })).status, 404, 'a wrong token: 404');
  const login = await fetch(`${base}/observer?token=${TOKEN}`, { redirect: 'manual' });
  t.equal(login.status, 303, 'the right token in the query: redirected');
  t.equal(login.headers.get('location'), '/observer', 'to the page without the token in its URL');
  const cookie = login.headers.get('set-cookie') ?? '';
  t.match(cookie, /^comet_observer=.+; Path=\/observer; HttpOnly; SameSite=Strict$/, 'the token moves to a cookie scoped to the observer');
  const page = await fetch(`${base}/observer`, { headers: { Cookie: cookie.split(';')[0] ?? '' } });
  t.equal(page.status, 200, 'the cookie opens the page');
  t.match(await page.text(), /comet-fsm observer/);
  const tree = await fetch(`${base}/observer/api/tree`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  t.equal(tree.status, 200, 'the bearer token opens the API');
  for (const action of ['crash', 'crash-session', 'storm', 'suspend', 'resume']) {
    const res = await fetch(`${base}/observer/api/${action}`, { ...json({ path: 'comet_sup/session_ids', key: 'x', reason: 'kill' }), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` } });
    t.equal(res.status, 403, `${action}: 403`);
    t.equal(((await res.json()) as { error: string }).error, 'observer_actions_disabled', `${action}: observer_actions_disabled`);
  }
  const after = (await (await fetch(`${base}/observer/api/tree`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as TreeSnapshot;
  t.equal(node(after.tree, 'comet_sup/session_ids')?.restarts, 0, 'nothing was crashed');
});

void t.test('with the token and actions on, a public bind may act', async (t) => {
  const { base } = await server(t, { observer: { token: TOKEN, actions: true, boundAddress: () => '203.0.113.5' } });
  const res = await fetch(`${base}/observer/api/crash`, { ...json({ path: 'comet_sup/session_ids', reason: 'kill' }), headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` } });
  t.equal(res.status, 200);
});

void t.test('a token shorter than 16 characters is refused at start', async (t) => {
  await t.rejects(createCometServer({ observer: { token: 'short' } }), /at least 16/);
});

void t.test('on loopback: a Host that is not loopback (DNS rebinding) gets 404; a cross-site POST gets 403', async (t) => {
  const { base } = await server(t, { observer: true });
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/observer`, { headers: { Host: 'evil.example:80' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(status, 404, 'Host evil.example: 404');
  const cross = await fetch(`${base}/observer/api/crash`, { ...json({ path: 'comet_sup/session_ids', reason: 'kill' }), headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' } });
  t.equal(cross.status, 403);
  t.equal(((await cross.json()) as { error: string }).error, 'observer_forbidden_origin');
  const plain = await fetch(`${base}/observer/api/crash`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"path":"comet_sup/session_ids"}' });
  t.equal(plain.status, 400, 'a form-like text/plain POST is not an action');
});

void t.test('crash session_ids (kill): the feed shows restarts 0 -> 1, the exit and the restart in the history, the action with who asked', async (t) => {
  const logged: unknown[] = [];
  const logger = { debug() {}, info() {}, error() {}, warn: (o: unknown) => logged.push(o), child() { return logger; } };
  const { base } = await server(t, { observer: { tickMs: 50 }, logger });
  const packets = await openFeed(t, base);
  const lastTree = (): NodeView | undefined => packets.filter((p) => p.type === 'tree').at(-1)?.tree;
  await until('a tree', () => lastTree() !== undefined);
  t.equal(packets[0]?.type, 'hello', 'the feed says hello first');
  t.equal(node(lastTree() as NodeView, 'comet_sup/session_ids')?.restarts, 0, 'restarts 0');
  t.match(lastTree(), { path: 'comet_sup', supervisor: { strategy: 'one_for_one', intensity: 1, period: 5, restartsInWindow: 0 } });
  t.match(node(lastTree() as NodeView, 'comet_sup/connection_sup/connection'), { restart: 'temporary', dynamic: { count: 0 } });

  const res = await fetch(`${base}/observer/api/crash`, json({ path: 'comet_sup/session_ids', reason: 'kill' }));
  t.equal(res.status, 200);
  await until('restarts 1', () => node(lastTree() as NodeView, 'comet_sup/session_ids')?.restarts === 1);
  t.equal(lastTree()?.supervisor?.restartsInWindow, 1, 'one restart in comet_sup\'s window');
  const history = (): HistoryEntry[] => packets.flatMap((p) => (p.type === 'history' ? p.entries : []));
  await until('the restart in the history', () => history().some((e) => e.kind === 'restart'));
  const kinds = history().filter((e) => e.path === 'comet_sup/session_ids').map((e) => `${e.kind}:${e.reason ?? ''}:${e.action ?? ''}`);
  t.same(kinds.sort(), ['action::crash kill', 'exit:killed:restart', 'restart::running again'].sort(), 'the action, the exit (killed, restart) and the restart');
  t.match(history().find((e) => e.kind === 'action'), { who: /^(::ffff:)?127\.0\.0\.1 \(loopback\)$/ });
  t.match(logged, [{ observer: 'crash', target: 'comet_sup/session_ids', reason: 'kill', via: 'loopback' }], 'the action is logged with who asked');
});

void t.test('a session shows in its state; crashing it from its row ends it; a wrong key is 404', async (t) => {
  const { base, comet } = await server(t, { observer: { tickMs: 50 } });
  const user = new CometClient(`${base}/comet`, { retryBaseMs: 10 });
  t.teardown(() => user.close());
  const sid = await user.connect();
  const packets = await openFeed(t, base);
  const rows = () => packets.flatMap((p) => (p.type === 'sessions' ? p.upsert : []));
  await until('the user in have_request', () => rows().some((r) => r.tag === sidTag(sid) && r.state === 'have_request'));
  t.notOk(JSON.stringify(packets).includes(sid), 'the full sid is never on the feed');
  const counts = packets.filter((p) => p.type === 'counts').at(-1);
  t.match(counts, { counts: { sessions: 1, have_request: 1, waiting: 0, have_packet: 0 } }, 'the observer\'s own session is not counted');
  const key = rows().find((r) => r.tag === sidTag(sid))?.key ?? '';
  t.notOk(rows().some((r) => sid.startsWith(r.tag)), 'a row shows no part of a sid, only its one-way tag');
  t.equal((await fetch(`${base}/observer/api/crash-session`, json({ key: 'gen_fsm.0', reason: 'error' }))).status, 404);
  const res = await fetch(`${base}/observer/api/crash-session`, json({ key, reason: 'error' }));
  t.equal(res.status, 200);
  await until('the session gone', () => !comet.sessions().includes(sid));
  t.pass('the session ended');
});

void t.test('a session killed from its row (no terminate) leaves the table: the counts drop, its row goes', async (t) => {
  const { base, comet } = await server(t, { observer: { tickMs: 50 } });
  const sid = (await (await fetch(`${base}/comet`, json({ type: 'setup' }))).json() as { sid: Sid }).sid;
  const packets = await openFeed(t, base);
  const rows = () => packets.flatMap((p) => (p.type === 'sessions' ? p.upsert : []));
  await until('the session on the page', () => rows().some((r) => r.tag === sidTag(sid)));
  const key = rows().find((r) => r.tag === sidTag(sid))?.key ?? '';
  const killed = await fetch(`${base}/observer/api/crash-session`, json({ key, reason: 'kill' }));
  t.equal(killed.status, 200, 'kill is allowed on a session');
  await until('the session gone', () => !comet.sessions().includes(sid));
  await until('counted out on the feed', () => packets.filter((p) => p.type === 'counts').at(-1)?.counts.sessions === 0);
  t.ok(packets.some((p) => p.type === 'sessions' && p.remove.includes(key)), 'its row is removed from the page');
  const req = await fetch(`${base}/comet`, json({ sid, rid: 1 }));
  t.equal(req.status, 404, 'its sid answers 404');
  t.match(await req.json(), { error: 'unknown_session' });
});

void t.test('suspend session_ids (sys:suspend): the tree shows it suspended, a setup waits; resume: the setup is answered', async (t) => {
  const { base } = await server(t, { observer: true });
  const tree = async (): Promise<TreeSnapshot> => (await (await fetch(`${base}/observer/api/tree`)).json()) as TreeSnapshot;
  const sus = await fetch(`${base}/observer/api/suspend`, json({ path: 'comet_sup/session_ids' }));
  t.equal(sus.status, 200);
  t.equal(node((await tree()).tree, 'comet_sup/session_ids')?.status, 'suspended');
  let answered = false;
  const setup = fetch(`${base}/comet`, json({ type: 'setup' })).then((r) => {
    answered = true;
    return r.status;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(answered, 'a setup waits while the session-id server is suspended');
  t.equal((await fetch(`${base}/observer/api/resume`, json({ path: 'comet_sup/session_ids' }))).status, 200);
  t.equal(await setup, 200, 'resumed, the setup is answered');
  t.equal(node((await tree()).tree, 'comet_sup/session_ids')?.status, 'running');
  t.equal(node((await tree()).tree, 'comet_sup/session_ids')?.restarts, 0, 'nothing was restarted');
});

void t.test('a crash storm on comet_sup exceeds its intensity: the tree gives up', async (t) => {
  let fatal: unknown;
  const { base } = await server(t, { observer: { tickMs: 50 }, onFatal: (r) => { fatal = r; } });
  const packets = await openFeed(t, base);
  const bad = await fetch(`${base}/observer/api/storm`, json({ path: 'comet_sup/connection_sup' }));
  t.equal(bad.status, 409, 'a simple_one_for_one supervisor cannot storm');
  const res = await fetch(`${base}/observer/api/storm`, json({ path: 'comet_sup' }));
  t.equal(res.status, 202);
  t.match(await res.json(), { child: 'session_ids', crashes: 2 });
  await until('the tree to give up', () => fatal !== undefined);
  t.equal(fatal, 'shutdown');
  await until('the page to show comet_sup stopped', () => packets.some((p) => p.type === 'tree' && p.tree.status === 'stopped'));
  const history = packets.flatMap((p) => (p.type === 'history' ? p.entries : []));
  t.match(history.find((e) => e.kind === 'shutdown'), { path: 'comet_sup', reason: 'reached_max_restart_intensity' }, 'the feed outlives the tree and shows why it stopped');
  t.equal(history.filter((e) => e.kind === 'exit' && e.path === 'comet_sup/session_ids').length, 2, 'two exits of session_ids');
});
