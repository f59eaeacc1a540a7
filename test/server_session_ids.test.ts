// Session ids over real HTTP: unpredictable, url-safe, unique among live sessions, and still
// unique after the session-id server crashes and its supervisor restarts it.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { CometServer, Sid } from '../lib/index.js';
import { MANY_CLIENTS_ON_LOOPBACK, WireClient, fields, packetsOf, post, setup, startServer, waitFor, type Reply } from './fixtures/http.js';

void t.test('sids are url-safe and carry at least 122 random bits (uuid v4 or 16+ bytes of base64url)', async (t) => {
  const { url } = await startServer(t, MANY_CLIENTS_ON_LOOPBACK);
  const sids = await Promise.all(Array.from({ length: 50 }, () => setup(url)));
  t.equal(new Set(sids).size, sids.length, 'all different');
  for (const sid of sids) {
    t.ok(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(sid) || /^[A-Za-z0-9_-]{22,}$/.test(sid), `${sid} is a uuid v4 or base64url`);
    t.equal(encodeURIComponent(sid), sid, 'url-safe');
  }
});

void t.test('a generator that repeats itself cannot hand out a live sid', async (t) => {
  const ids = ['same', 'same', 'same', 'other', 'same', 'third'];
  let i = 0;
  const { url, comet } = await startServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, generateSid: () => ids[i++] ?? randomUUID() });
  const a = await setup(url);
  const b = await setup(url);
  const c = await setup(url);
  t.same([a, b, c], ['same', 'other', 'third']);
  t.equal(comet.sessions().length, 3);
});

void t.test('the session-id server crashes and restarts while sessions are live: new sids never collide', async (t) => {
  const ref: { comet?: CometServer } = {};
  let replaying = false;
  let offered = 0;
  let next = 0;
  // After the crash, offer every live sid before a fresh one, on every call: only the restarted
  // server's uniqueness check (its live set rebuilt from the connection supervisor) stops them.
  const generateSid = (): string => {
    const live = replaying && ref.comet ? ref.comet.sessions() : [];
    if (next < live.length) {
      offered++;
      return live[next++] ?? randomUUID();
    }
    next = 0;
    return randomUUID();
  };
  const started = await startServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, wait: 10_000, inactivity: 10_000, generateSid }, { echo: true });
  const { url, seen } = started;
  const comet = started.comet;
  ref.comet = comet;

  const before = await Promise.all(Array.from({ length: 20 }, () => WireClient.open(url)));
  // Some of them are mid-poll during the crash.
  const polls = before.slice(0, 10).map((c) => c.request());
  await waitFor(() => seen.events.filter((e) => e.type === 'request').length >= 10, 'ten polls held');

  replaying = true;
  t.ok(comet.crashSessionIds(), 'crash cast to the session-id server');
  // Setups during the restart: answered 200 or 503, never left hanging (post aborts a hung one).
  const during: Reply[] = await Promise.all(Array.from({ length: 30 }, () => post(url, { type: 'setup' })));
  for (const r of during) t.ok(r.status === 200 || (r.status === 503 && fields(r)['error'] === 'overloaded'), `setup during restart: ${r.status}`);
  await waitFor(() => seen.logs.some((l) => l.level === 'error'), 'the crash to be reported');

  const after: Sid[] = [];
  for (let i = 0; i < 20; i++) after.push(await setup(url));
  t.ok(offered >= 20 * before.length, `live sids were offered to the restarted server (${offered} times)`);

  const liveBefore = new Set<string>(before.map((c) => c.sid));
  const granted = [...during.flatMap((r) => (r.status === 200 ? [fields(r)['sid'] as string] : [])), ...after];
  t.equal(granted.filter((s) => liveBefore.has(s)).length, 0, 'no new sid is a live one');
  t.equal(new Set(granted).size, granted.length, 'no two new sids are equal');
  t.equal(comet.sessions().length, before.length + granted.length, 'every session has its own FSM');

  // The old sessions were not disturbed: their held polls and their echoes still work.
  for (const [i, c] of before.entries()) {
    const r = await c.request({ messages: [`still ${i}`] });
    t.equal(r.status, 200, `old session ${i} answers`);
  }
  for (const p of polls) t.equal((await p).status, 200);
  for (const [i, c] of before.entries()) {
    for (let n = 0; n < 5 && !c.data.includes(`still ${i}`); n++) await c.request();
    t.same(c.data, [`still ${i}`], `old session ${i}: its echo, and only its echo`);
  }
  const first = after[0];
  if (first === undefined) throw new Error('no setup after the restart');
  const fresh = new WireClient(url, first);
  await comet.handlePacket(fresh.sid, 'hello');
  t.same(packetsOf(await fresh.request()), [{ seq: 1, data: 'hello' }], 'a new session works');
});
