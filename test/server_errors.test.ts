// Every error of wire contract v1 over real HTTP: its status, its code, a JSON body with exactly
// `error` and `message` (never a stack trace), Cache-Control: no-store.
import t from 'tap';
import type { Test } from 'tap';
import { DEFAULT_MAX_BODY_BYTES, HTTP_STATUS, isCometError, type WireErrorCode } from '../lib/index.js';
import {
  WireClient, fields, fsmHandled, packetsOf, post, rawPost, setup, startHttp, startServer, strangerSid, waitFor,
  type RawReply, type Reply,
} from './fixtures/http.js';

/** The reply is error `code` with its status, as the contract words it. */
function isError(t: Test, r: Reply | RawReply, code: WireErrorCode, what: string): void {
  const status = HTTP_STATUS[code];
  const headers = r instanceof Object && 'headers' in r && r.headers instanceof Headers
    ? { type: r.headers.get('content-type'), cache: r.headers.get('cache-control') }
    : { type: (r as RawReply).headers['content-type'], cache: (r as RawReply).headers['cache-control'] };
  let body: unknown;
  try {
    body = JSON.parse(r.text);
  } catch {
    body = r.text;
  }
  t.equal(r.status, status, `${what}: status ${status}`);
  t.match(headers.type, /^application\/json\b/, `${what}: JSON`);
  t.equal(headers.cache, 'no-store', `${what}: no-store`);
  t.match(body, { error: code, message: String }, `${what}: ${code}`);
  const keys = typeof body === 'object' && body !== null ? Object.keys(body).sort() : [];
  t.same(keys, ['error', 'message'], `${what}: only error and message`);
  t.notMatch(r.text, /\n\s+at |\.ts:\d|\.js:\d|node:internal/, `${what}: no stack trace`);
}

void t.test('status of every code', (t) => {
  t.same(HTTP_STATUS, {
    bad_json: 400, bad_request: 400, bad_rid: 400, unknown_session: 404, not_found: 404,
    method_not_allowed: 405, too_large: 413, unsupported_media_type: 415, rate_limited: 429, too_many_sessions: 429,
    overloaded: 503, shutting_down: 503,
  });
  t.end();
});

void t.test('400 bad_json: not JSON, empty body, invalid UTF-8, truncated', async (t) => {
  const { url } = await startServer(t);
  isError(t, await post(url, 'not json', { raw: true }), 'bad_json', 'not JSON');
  isError(t, await post(url, '', { raw: true }), 'bad_json', 'empty body');
  isError(t, await post(url, '{"type":"setup"', { raw: true }), 'bad_json', 'truncated');
  const invalid = new Uint8Array([...Buffer.from('{"type":"setup","x":"'), 0xff, 0xfe, ...Buffer.from('"}')]);
  isError(t, await post(url, invalid, { raw: true }), 'bad_json', 'invalid UTF-8');
  const overlong = new Uint8Array([...Buffer.from('{"type":"setup","x":"'), 0xc0, 0xaf, ...Buffer.from('"}')]);
  isError(t, await post(url, overlong, { raw: true }), 'bad_json', 'overlong UTF-8');
});

void t.test('400 bad_request: JSON of the wrong shape', async (t) => {
  const { url } = await startServer(t, { wait: 100 });
  const sid = await setup(url);
  const cases: [string, unknown][] = [
    ['array body', [{ type: 'setup' }]],
    ['null body', null],
    ['number body', 42],
    ['string body', 'setup'],
    ['boolean body', true],
    ['unknown type', { type: 'subscribe' }],
    ['type not a string', { type: 7, sid, rid: 1 }],
    ['sid missing', { rid: 1 }],
    ['sid a number', { sid: 12, rid: 1 }],
    ['sid null', { sid: null, rid: 1 }],
    ['sid empty', { sid: '', rid: 1 }],
    ['rid missing', { sid }],
    ['rid a string', { sid, rid: '1' }],
    ['rid null', { sid, rid: null }],
    ['rid 0', { sid, rid: 0 }],
    ['rid -1', { sid, rid: -1 }],
    ['rid 1.5', { sid, rid: 1.5 }],
    ['rid too large for a safe integer', { sid, rid: 2 ** 60 }],
    ['messages a string', { sid, rid: 1, messages: 'hi' }],
    ['messages an object', { sid, rid: 1, messages: { 0: 'hi' } }],
    ['messages null', { sid, rid: 1, messages: null }],
    ['ack negative', { sid, rid: 1, ack: -1 }],
    ['ack 1.5', { sid, rid: 1, ack: 1.5 }],
    ['ack a string', { sid, rid: 1, ack: '0' }],
    ['ack null', { sid, rid: 1, ack: null }],
    ['terminate without sid', { type: 'terminate', rid: 1 }],
    ['terminate without rid', { type: 'terminate', sid }],
    ['terminate rid 0', { type: 'terminate', sid, rid: 0 }],
  ];
  for (const [what, body] of cases) isError(t, await post(url, body), 'bad_request', what);
  const c = new WireClient(url, sid);
  t.same(fields(await c.request({ rid: 1, ack: 0, messages: [] })), { rid: 1, packets: [] }, 'the session was not disturbed');
});

void t.test('400 bad_rid', async (t) => {
  const { url } = await startServer(t);
  const sid = await setup(url);
  isError(t, await post(url, { sid, rid: 17 }), 'bad_rid', 'rid 17 after setup');
});

void t.test('404 unknown_session: never handed out, and after the session ended', async (t) => {
  const { url, comet } = await startServer(t, { wait: 200 });
  isError(t, await post(url, { sid: strangerSid(), rid: 1 }), 'unknown_session', 'never handed out');
  isError(t, await post(url, { type: 'terminate', sid: strangerSid(), rid: 1 }), 'unknown_session', 'terminate of a stranger');
  const c = await WireClient.open(url);
  await c.terminate();
  const r = await c.request();
  isError(t, r, 'unknown_session', 'after terminate');
  t.notMatch(r.text, c.sid, 'the sid is not echoed back');
  const err: unknown = await comet.handlePacket(strangerSid(), 'x').then(() => undefined, (e: unknown) => e);
  t.ok(isCometError(err), 'handlePacket rejects with a CometError');
  t.match(err, { code: 'unknown_session', status: 404 });
});

void t.test('404 not_found: another path', async (t) => {
  const { base } = await startServer(t);
  isError(t, await post(`${base}/other`, { type: 'setup' }), 'not_found', 'POST /other');
  isError(t, await post(`${base}/comet/extra`, { type: 'setup' }), 'not_found', 'POST /comet/extra');
  isError(t, await post(`${base}/`, null, { method: 'GET' }), 'not_found', 'GET /');
  t.equal((await post(`${base}/comet?x=1`, { type: 'setup' })).status, 200, 'a query string does not change the path');
});

void t.test('405 method_not_allowed with Allow: POST; OPTIONS is a CORS preflight', async (t) => {
  const { url } = await startServer(t);
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const r = await post(url, { type: 'setup' }, { method });
    isError(t, r, 'method_not_allowed', method);
    t.equal(r.headers.get('allow'), 'POST', `${method}: Allow`);
  }

  const origin = 'http://app.example';
  const cors = await startServer(t, { cors: [origin] });
  const pre = await post(cors.url, null, { method: 'OPTIONS', contentType: null, headers: { origin, 'access-control-request-method': 'POST' } });
  t.equal(pre.status, 204, 'preflight of a configured origin');
  t.equal(pre.headers.get('access-control-allow-origin'), origin);
  const other = await post(cors.url, null, { method: 'OPTIONS', contentType: null, headers: { origin: 'http://evil.example' } });
  isError(t, other, 'method_not_allowed', 'preflight of another origin');
  t.equal(other.headers.get('access-control-allow-origin'), null);
  const get = await post(cors.url, null, { method: 'GET', headers: { origin } });
  isError(t, get, 'method_not_allowed', 'GET with CORS on');
  t.equal(get.headers.get('allow'), 'POST, OPTIONS');
  const ok = await post(cors.url, { type: 'setup' }, { headers: { origin } });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('access-control-allow-origin'), origin);
});

void t.test('413 too_large: over maxBodyBytes, by Content-Length or chunked, answered without reading on', async (t) => {
  t.equal(DEFAULT_MAX_BODY_BYTES, 65_536);
  const { url, port } = await startServer(t);
  const exact = (n: number): string => {
    const head = '{"type":"setup","pad":"';
    return head + 'x'.repeat(n - head.length - 2) + '"}';
  };
  t.equal((await post(url, exact(65_536), { raw: true })).status, 200, 'exactly 64 KiB is accepted');
  isError(t, await post(url, exact(65_537), { raw: true }), 'too_large', '64 KiB + 1');
  isError(t, await rawPost(port, [exact(65_537)]), 'too_large', 'chunked 64 KiB + 1');
  // Never finished: only a server that stops at the limit can answer these.
  isError(t, await rawPost(port, ['{"pad":"', 'y'.repeat(70_000)], { end: false }), 'too_large', 'chunked, never ends');
  isError(t, await rawPost(port, ['{"pad":"'], { contentLength: 10_000_000, end: false }), 'too_large', 'Content-Length 10 MB, never sent');

  const small = await startServer(t, { maxBodyBytes: 100 });
  isError(t, await post(small.url, exact(101), { raw: true }), 'too_large', 'maxBodyBytes 100: 101 bytes');
  t.equal((await post(small.url, exact(100), { raw: true })).status, 200, 'maxBodyBytes 100: 100 bytes');
});

void t.test('415 unsupported_media_type', async (t) => {
  const { url, port } = await startServer(t);
  const body = JSON.stringify({ type: 'setup' });
  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'text/json']) {
    isError(t, await post(url, body, { raw: true, contentType }), 'unsupported_media_type', contentType);
  }
  isError(t, await rawPost(port, [body], { contentType: null }), 'unsupported_media_type', 'no Content-Type');
});

void t.test('503 overloaded: session limit reached', async (t) => {
  const { url } = await startServer(t, { maxSessions: 2 });
  const a = await WireClient.open(url);
  await WireClient.open(url);
  isError(t, await post(url, { type: 'setup' }), 'overloaded', 'third setup');
  await a.terminate();
  t.equal((await post(url, { type: 'setup' })).status, 200, 'a slot freed by a terminate is usable again');
});

void t.test('503 overloaded: a never-acking client fills its queue', async (t) => {
  const { url, comet, seen } = await startServer(t, { maxQueue: 3, wait: 200 });
  const c = await WireClient.open(url);
  for (const p of ['p1', 'p2', 'p3']) await comet.handlePacket(c.sid, p);
  const err: unknown = await comet.handlePacket(c.sid, 'p4').then(() => undefined, (e: unknown) => e);
  t.ok(isCometError(err), 'handlePacket rejects with a CometError, no silent drop');
  t.match(err, { code: 'overloaded', status: 503 });
  t.equal(packetsOf(await c.request({ ack: null })).length, 3, 'the full queue is delivered once');
  // Polls are never refused for a full queue (its answer may have been lost: it gets them again);
  // what waits is a request bringing messages.
  t.equal(packetsOf(await c.request({ ack: 0 })).length, 3, 'ack 0 acks nothing: the same packets again');
  isError(t, await c.request({ ack: null, messages: ['m'] }), 'overloaded', 'the same client, still not acking, sending a message');
  t.equal(seen.messages.length, 0, 'the message was not taken');
  t.same(comet.sessions(), [c.sid], 'the session is not ended for it');
  t.same(packetsOf(await c.request({ ack: 3 })), [], 'acking frees the queue (held, then [])');
  t.equal(await comet.handlePacket(c.sid, 'p4'), 4, 'and packets are accepted again');
  t.equal(seen.ends.length, 0);
  // broadcast to a full queue is refused and logged, never dropped silently.
  for (const p of ['p5', 'p6']) await comet.handlePacket(c.sid, p);
  await comet.broadcast('b');
  await waitFor(() => seen.logs.some((l) => l.level === 'warn' && l.msg !== undefined && /queue full/.test(l.msg)), 'the refusal to be logged');
});

void t.test('503 shutting_down after close() begins; held polls are answered, sessions end with reason shutdown', async (t) => {
  const { comet, seen } = await startServer(t, { wait: 10_000 }, { noListen: true });
  const { url } = await startHttp(t, (req, res) => comet.handler(req, res));
  const c = await WireClient.open(url);
  const held = c.request();
  await fsmHandled(seen, c.sid, 'request');
  const closed = comet.close();
  isError(t, await post(url, { type: 'setup' }), 'shutting_down', 'setup during close');
  isError(t, await post(url, { sid: c.sid, rid: 5 }), 'shutting_down', 'request during close');
  const r = await held;
  t.equal(r.status, 200, 'the held poll is answered');
  t.same(fields(r), { rid: 1, packets: [] });
  await closed;
  t.same(seen.ends, [{ sid: c.sid, reason: 'shutdown' }]);
  isError(t, await post(url, { type: 'setup' }), 'shutting_down', 'setup after close');
});
