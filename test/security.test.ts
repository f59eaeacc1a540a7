// Security over real HTTP against createCometServer on 127.0.0.1:0: one session never sees
// another's data (100 sessions, tagged payloads pushed by handlePacket and by echo, sharing
// keep-alive connections); CORS answers only configured origins, exactly (near-miss origins get
// nothing); and no error body ever carries a stack trace or an internal path, including when
// application code throws. Sid guessing: security_sids.test.ts; sid randomness:
// security_sid_randomness.test.ts.
import t from 'tap';
import type { Test } from 'tap';
import { MANY_CLIENTS_ON_LOOPBACK, WireClient, post, setup, startHttp, startServer, type Reply } from './fixtures/http.js';
import { RawSocket, assertNoLeak, assertStillServes, expectError, requestHead, startProbedServer } from './fixtures/raw_socket.js';

interface Tagged {
  readonly sid: string;
  readonly kind: 'push' | 'echo';
  readonly n: number;
}

const isTagged = (v: unknown): v is Tagged =>
  typeof v === 'object' && v !== null && typeof (v as Tagged).sid === 'string' && typeof (v as Tagged).n === 'number';

void t.test('100 sessions, tagged payloads by handlePacket and by echo: each receives only its own', async (t) => {
  const SESSIONS = 100;
  const EACH = 3;
  const { url, comet, seen } = await startServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, wait: 500, inactivity: 60_000 }, { echo: true });
  const clients = await Promise.all(Array.from({ length: SESSIONS }, () => WireClient.open(url)));
  // Pushes in an interleaved order across sessions, all in flight at once with the clients' traffic.
  const order = clients.flatMap((c) => Array.from({ length: EACH }, (_, n) => ({ c, n }))).sort(() => Math.random() - 0.5);
  const pushes = Promise.all(order.map(({ c, n }) => comet.handlePacket(c.sid, { sid: c.sid, kind: 'push', n } satisfies Tagged)));
  const errors: string[] = [];
  await Promise.all(clients.map(async (c) => {
    const messages: Tagged[] = Array.from({ length: EACH }, (_, n) => ({ sid: c.sid, kind: 'echo', n }));
    const sent = await c.request({ messages });
    if (sent.status !== 200) errors.push(`${sent.status} ${sent.text}`);
    for (let i = 0; i < 20 && c.seqs.length < 2 * EACH; i++) {
      const r = await c.request();
      if (r.status !== 200) errors.push(`${r.status} ${r.text}`);
    }
  }));
  await pushes;
  t.same(errors, [], 'every request answered 200');
  for (const c of clients) {
    const foreign = c.wire.filter((p) => !isTagged(p.data) || p.data.sid !== c.sid);
    if (foreign.length > 0) t.fail(`session ${c.sid} received ${JSON.stringify(foreign)}`);
    const mine = c.data.filter(isTagged).map((d) => `${d.kind}${d.n}`).sort();
    if (JSON.stringify(mine) !== JSON.stringify(['echo0', 'echo1', 'echo2', 'push0', 'push1', 'push2'])) t.fail(`session ${c.sid} got ${JSON.stringify(mine)}`);
  }
  t.pass(`checked ${clients.reduce((a, c) => a + c.wire.length, 0)} packets on the wire across ${SESSIONS} sessions`);
  const misdelivered = seen.messages.filter((m) => !isTagged(m.data) || m.data.sid !== m.sid);
  t.same(misdelivered, [], 'onMessage always got a message under the sid of the session that sent it');
  t.equal(seen.messages.length, SESSIONS * EACH, 'every message delivered once');
});

const APP = 'https://app.example.com';

/** Origins an attacker would try against an allow-list of exactly APP. */
const NEAR_ORIGINS = [
  'https://evil.example.com', `${APP}.evil.com`, 'https://evilapp.example.com', 'https://app.example.co',
  'http://app.example.com', `${APP}:443`, `${APP}:8443`, `${APP}/`, `${APP}.`, APP.toUpperCase(),
  `${APP}, https://evil.example.com`, 'null', '*', 'https://app.example.com%00.evil.com', 'file://',
];

function noCorsHeaders(t: Test, r: Reply, what: string): void {
  const cors: string[] = [];
  r.headers.forEach((_value, name) => {
    if (name.startsWith('access-control-')) cors.push(name);
  });
  t.same(cors, [], `${what}: no Access-Control-* header`);
}

void t.test('CORS: only the configured origin, exactly; never *, never credentials', async (t) => {
  const { url } = await startProbedServer(t, { cors: [APP] });
  const allowed = await post(url, { type: 'setup' }, { headers: { origin: APP } });
  t.equal(allowed.status, 200);
  t.equal(allowed.headers.get('access-control-allow-origin'), APP, 'the allowed origin gets ACAO: itself');
  t.equal(allowed.headers.get('access-control-allow-credentials'), null, 'no credentials');
  t.match(allowed.headers.get('vary') ?? '', /Origin/, 'Vary: Origin');
  const allowedError = await post(url, { type: 'nope' }, { headers: { origin: APP } });
  expectError(t, allowedError, 400, 'bad_request', 'an error to the allowed origin');
  t.equal(allowedError.headers.get('access-control-allow-origin'), APP, 'errors are readable by the allowed origin too');
  const preflight = await post(url, null, { method: 'OPTIONS', contentType: null, headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  t.equal(preflight.status, 204, 'the allowed origin\'s preflight succeeds');
  t.equal(preflight.headers.get('access-control-allow-origin'), APP);

  for (const origin of NEAR_ORIGINS) {
    // The POST itself is served (CORS is not authentication: the browser withholds the reply).
    const r = await post(url, { type: 'setup' }, { headers: { origin } });
    t.equal(r.status, 200, `${JSON.stringify(origin)}: the request is served`);
    noCorsHeaders(t, r, `${JSON.stringify(origin)} POST`);
    const pre = await post(url, null, { method: 'OPTIONS', contentType: null, headers: { origin, 'access-control-request-method': 'POST' } });
    expectError(t, pre, 405, 'method_not_allowed', `${JSON.stringify(origin)} preflight fails`);
    noCorsHeaders(t, pre, `${JSON.stringify(origin)} preflight`);
  }
  const noOrigin = await post(url, null, { method: 'OPTIONS', contentType: null });
  expectError(t, noOrigin, 405, 'method_not_allowed', 'OPTIONS without Origin');
  noCorsHeaders(t, noOrigin, 'OPTIONS without Origin');
  // A cross-site form can only send simple content types: always 415, whatever its origin.
  const form = await post(url, 'type=setup', { raw: true, contentType: 'application/x-www-form-urlencoded', headers: { origin: 'https://evil.example.com' } });
  expectError(t, form, 415, 'unsupported_media_type', 'a cross-site form post');
  await assertStillServes(t, url, 'CORS probing');

  const off = await startProbedServer(t);
  const r = await post(off.url, { type: 'setup' }, { headers: { origin: APP } });
  noCorsHeaders(t, r, 'CORS off, any origin');
  const pre = await post(off.url, null, { method: 'OPTIONS', contentType: null, headers: { origin: APP, 'access-control-request-method': 'POST' } });
  expectError(t, pre, 405, 'method_not_allowed', 'CORS off: preflight fails');
  noCorsHeaders(t, pre, 'CORS off: preflight');
});

/** Every error body the server can produce, provoked at least once, with application code throwing. */
void t.test('no stack trace or internal path in any error body, even when application code throws', async (t) => {
  const secret = (): Error => new Error(`failed at /work/main/app/secret.ts:12:3 (node_modules/x/index.js:1:1)`);
  const crashOn = new Set<string>();
  const { url, port, comet, seen } = await startProbedServer(t, {
    maxSessions: 4, maxQueue: 1, wait: 300,
    cors: (origin) => {
      if (origin === 'https://throws.example') throw secret();
      return origin === APP;
    },
    onSession() {
      throw secret();
    },
    onMessage(_sid, data) {
      if (data === 'throw') throw secret();
      if (data === 'reject') return Promise.reject(secret());
      return undefined;
    },
    onSessionEnd() {
      return Promise.reject(secret());
    },
    fault: (sid, type) => {
      if (crashOn.has(sid) && type === 'request') throw secret();
      return false;
    },
  });
  const bodies: { what: string; text: string }[] = [];
  const keep = (what: string, r: { text: string } | { body: string }): void => {
    bodies.push({ what, text: 'text' in r ? r.text : r.body });
  };

  // Application code throws on every session start and end, and on two messages: not on the wire.
  const sid = await setup(url);
  const thrown = await post(url, { sid, rid: 1, messages: ['throw', 'reject'] });
  t.equal(thrown.status, 200, 'hooks that throw do not turn into an error reply');
  keep('reply after onMessage threw', thrown);
  // A full queue (maxQueue 1): a request bringing a message is refused before it is taken.
  await comet.handlePacket(sid, 'p1');
  const queueFull = await post(url, { sid, rid: 2, ack: 0, messages: ['later'] });
  expectError(t, queueFull, 503, 'overloaded', 'queue full (maxQueue 1)');
  keep('queue full', queueFull);

  // Every code.
  const cases: [string, Promise<Reply>][] = [
    ['bad_json', post(url, '{"type":', { raw: true })],
    ['bad_request', post(url, { sid, rid: 'x' })],
    ['bad_rid', post(url, { sid, rid: 500 })],
    ['unknown_session', post(url, { sid: 'no-such-session', rid: 1 })],
    ['not_found', post(url.replace('/comet', '/elsewhere'), { type: 'setup' })],
    ['method_not_allowed', post(url, null, { method: 'GET' })],
    ['method_not_allowed (preflight, wrong origin)', post(url, null, { method: 'OPTIONS', contentType: null, headers: { origin: 'https://evil.example' } })],
    ['too_large', post(url, 'x'.repeat(70_000), { raw: true })],
    ['unsupported_media_type', post(url, '{}', { raw: true, contentType: 'text/plain' })],
    ['overloaded (internal error: the CORS predicate threw)', post(url, { type: 'setup' }, { headers: { origin: 'https://throws.example' } })],
  ];
  for (const [what, p] of cases) {
    const r = await p;
    t.not(r.status, 200, `${what}: an error`);
    keep(what, r);
  }
  // Sessions up to the limit, then overloaded.
  await setup(url);
  await setup(url);
  const crashing = await setup(url);
  const full = await post(url, { type: 'setup' });
  expectError(t, full, 503, 'overloaded', 'session limit');
  keep('session limit', full);
  // A connection FSM that crashes while handling a request (the application's fault hook threw).
  crashOn.add(crashing);
  const crashed = await post(url, { sid: crashing, rid: 1 });
  expectError(t, crashed, 404, 'unknown_session', 'the FSM crashed on this request');
  keep('FSM crash', crashed);
  // node's own answers to malformed HTTP.
  for (const [what, bytes] of [['garbage', 'NOT HTTP\r\n\r\n'], ['431', `POST /comet HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`]] as const) {
    const conn = await RawSocket.open(t, port);
    await conn.write(bytes);
    keep(`node ${what}`, await conn.readResponse());
  }
  const get = await RawSocket.open(t, port);
  await get.write(requestHead('DELETE', '/comet', {}));
  keep('raw DELETE', await get.readResponse());
  // shutting_down, last: through a server of our own, which close() does not stop.
  const own = await startHttp(t, (req, res) => comet.handler(req, res));
  const closing = comet.close();
  const down = await post(own.url, { type: 'setup' });
  expectError(t, down, 503, 'shutting_down', 'during close');
  keep('shutting_down', down);
  await closing;

  t.equal(bodies.length, 18, 'every body collected');
  for (const { what, text } of bodies) assertNoLeak(t, text, what);
  const codes = new Set(bodies.map((b) => (/"error":"([a-z_]+)"/.exec(b.text) ?? [])[1]).filter((c) => c !== undefined));
  t.same([...codes].sort(), ['bad_json', 'bad_request', 'bad_rid', 'method_not_allowed', 'not_found', 'overloaded', 'shutting_down', 'too_large', 'unknown_session', 'unsupported_media_type'], 'every error code was provoked');
  // The details went to the log instead, where they belong.
  t.ok(seen.logs.some((l) => l.level === 'error' && JSON.stringify(l.obj).includes('secret.ts')), 'the thrown error is in the log');
});
