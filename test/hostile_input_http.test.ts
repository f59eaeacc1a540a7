// Hostile HTTP against createCometServer on 127.0.0.1:0, over raw sockets: 10 MB uploads (413
// before they are all sent, memory not growing with them), every non-POST method, malformed HTTP
// (node answers 400/431 and closes), slowloris clients (headers or body a byte at a time) that
// never block anyone else, and the deliberate header/request timeouts. After each, the same
// server still serves a fresh session.
import t from 'tap';
import type { Test } from 'tap';
import type net from 'node:net';
import { DEFAULT_WAIT_MS } from '../lib/index.js';
import { MANY_CLIENTS_ON_LOOPBACK, type Started } from './fixtures/http.js';
import {
  LAST_CHUNK, RawSocket, assertNoLeak, assertStillServes, chunkOf, expectError, requestHead, startProbedServer,
} from './fixtures/raw_socket.js';

const JSON_TYPE = { 'Content-Type': 'application/json' };
const TEN_MB = 10 * 1024 * 1024;

/** Every socket the server accepts, to read how much of an upload it actually took in. */
function serverSockets(started: Started): net.Socket[] {
  const sockets: net.Socket[] = [];
  const server = started.comet.httpServer;
  if (!server) throw new Error('the server is not listening');
  server.on('connection', (s) => sockets.push(s));
  return sockets;
}

/** Upload up to `total` bytes in 64 KiB pieces, stopping as soon as the server answers or closes. */
async function upload(conn: RawSocket, total: number, piece: Buffer): Promise<number> {
  let sent = 0;
  while (sent < total && !conn.hasData && !conn.isClosed) {
    if (!(await conn.write(piece))) break;
    sent += piece.length;
  }
  return sent;
}

interface Memory {
  readonly rss: number;
  readonly arrayBuffers: number;
}

function memory(): Memory {
  const m = process.memoryUsage();
  return { rss: m.rss, arrayBuffers: m.arrayBuffers };
}

void t.test('a 10 MB body, with Content-Length and chunked: 413 before it is all sent, memory does not grow by it', async (t) => {
  const started = await startProbedServer(t);
  const sockets = serverSockets(started);
  const modes: [string, Record<string, string>, Buffer][] = [
    ['Content-Length', { ...JSON_TYPE, 'Content-Length': String(TEN_MB) }, Buffer.alloc(64 * 1024, 0x61)],
    ['chunked', { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' }, chunkOf(Buffer.alloc(64 * 1024 - 10, 0x61))],
  ];
  for (const [mode, headers, piece] of modes) {
    const before = memory();
    const conn = await RawSocket.open(t, started.port);
    await conn.write(requestHead('POST', '/comet', headers));
    const sent = await upload(conn, TEN_MB, piece);
    const reply = await conn.readResponse();
    expectError(t, reply, 413, 'too_large', mode);
    t.equal(reply.headers['connection'], 'close', `${mode}: Connection: close`);
    t.ok(sent < TEN_MB, `${mode}: answered after ${sent} of ${TEN_MB} bytes were sent`);
    t.ok(await conn.closesWithin(), `${mode}: the server closes the connection`);
    const read = sockets.at(-1)?.bytesRead ?? Infinity;
    t.ok(read < 1024 * 1024, `${mode}: the server read ${read} bytes of it`);
    const after = memory();
    const grewBuffers = after.arrayBuffers - before.arrayBuffers;
    const grewRss = after.rss - before.rss;
    t.ok(grewBuffers < 4 * 1024 * 1024, `${mode}: buffers grew by ${grewBuffers} bytes, not ~10 MB`);
    t.ok(grewRss < 8 * 1024 * 1024, `${mode}: RSS grew by ${grewRss} bytes, not ~10 MB`);
    await assertStillServes(t, started.url, `a 10 MB ${mode} body`);
  }
});

void t.test('a 10 MB body refused for its headers (method, media type, path) is never read either', async (t) => {
  const started = await startProbedServer(t);
  const sockets = serverSockets(started);
  const cases: [string, string, string, Record<string, string>, number, string][] = [
    ['GET with a body', 'GET', '/comet', JSON_TYPE, 405, 'method_not_allowed'],
    ['DELETE with a body', 'DELETE', '/comet', JSON_TYPE, 405, 'method_not_allowed'],
    ['text/plain', 'POST', '/comet', { 'Content-Type': 'text/plain' }, 415, 'unsupported_media_type'],
    ['gzip', 'POST', '/comet', { ...JSON_TYPE, 'Content-Encoding': 'gzip' }, 415, 'unsupported_media_type'],
    ['another path', 'POST', '/other', JSON_TYPE, 404, 'not_found'],
  ];
  for (const [what, method, path, headers, status, code] of cases) {
    const conn = await RawSocket.open(t, started.port);
    await conn.write(requestHead(method, path, { ...headers, 'Content-Length': String(TEN_MB) }));
    const sent = await upload(conn, TEN_MB, Buffer.alloc(64 * 1024, 0x61));
    const reply = await conn.readResponse();
    expectError(t, reply, status, code, what);
    t.equal(reply.headers['connection'], 'close', `${what}: Connection: close, the body is not drained`);
    t.ok(sent < TEN_MB, `${what}: answered after ${sent} bytes`);
    t.ok(await conn.closesWithin(), `${what}: closed`);
    t.ok((sockets.at(-1)?.bytesRead ?? Infinity) < 1024 * 1024, `${what}: read ${sockets.at(-1)?.bytesRead} bytes`);
    await assertStillServes(t, started.url, what);
  }
});

void t.test('every method but POST: 405 method_not_allowed (HEAD without a body); unknown methods are node\'s 400', async (t) => {
  const started = await startProbedServer(t);
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'MKCOL', 'LOCK', 'PURGE']) {
    const conn = await RawSocket.open(t, started.port);
    await conn.write(requestHead(method, '/comet', {}));
    const reply = await conn.readResponse();
    expectError(t, reply, 405, 'method_not_allowed', method);
    t.equal(reply.headers['allow'], 'POST', `${method}: Allow: POST`);
    t.equal(reply.headers['access-control-allow-origin'], undefined, `${method}: no CORS header (CORS off)`);
    await assertStillServes(t, started.url, method);
  }
  const head = await RawSocket.open(t, started.port);
  await head.write(requestHead('HEAD', '/comet', {}));
  await head.write(requestHead('POST', '/comet', { ...JSON_TYPE, 'Content-Length': '16' }) + '{"type":"setup"}');
  const headReply = await head.readResponse({ bodiless: true });
  t.equal(headReply.status, 405, 'HEAD: 405');
  t.equal(headReply.headers['allow'], 'POST', 'HEAD: Allow: POST');
  // A HEAD reply has no body: the very next bytes on the connection are the next response.
  const next = await head.readResponse();
  t.equal(next.status, 200, 'HEAD: no body was sent, the connection goes on with the next request');
  await assertStillServes(t, started.url, 'HEAD');

  for (const line of ['FOO /comet HTTP/1.1', 'post /comet HTTP/1.1', 'P\u00d3ST /comet HTTP/1.1']) {
    const conn = await RawSocket.open(t, started.port);
    await conn.write(Buffer.from(`${line}\r\nHost: x\r\n\r\n`, 'latin1'));
    const reply = await conn.readResponse();
    t.equal(reply.status, 400, `${line}: node answers 400`);
    t.ok(await conn.closesWithin(), `${line}: and closes`);
    await assertStillServes(t, started.url, line);
  }
  const connect = await RawSocket.open(t, started.port);
  await connect.write(requestHead('CONNECT', '127.0.0.1:443', {}));
  t.ok(await connect.closesWithin(), 'CONNECT: the connection is closed (no tunnel is ever opened)');
  t.equal(connect.hasData, false, 'CONNECT: with no answer');
  await assertStillServes(t, started.url, 'CONNECT');
});

/** Raw requests node's HTTP parser refuses: it answers 400 or 431 itself and closes. */
const MALFORMED: readonly [string, string | Buffer, number][] = [
  ['garbage request line', 'HELLO WORLD\r\n\r\n', 400],
  ['binary noise', Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10]), 400],
  ['HTTP/2 preface on HTTP/1.1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
  ['unknown HTTP version', 'POST /comet HTTP/9.9\r\nHost: x\r\n\r\n', 400],
  ['space in the path', 'POST /co met HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['bare LF line ends', 'POST /comet HTTP/1.1\nHost: x\n\n', 400],
  ['no Host header', 'POST /comet HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"type":"setup"}', 400],
  ['header without a colon', 'POST /comet HTTP/1.1\r\nHost: x\r\nFoo Bar\r\n\r\n', 400],
  ['NUL in a header value', 'POST /comet HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n', 400],
  ['obsolete line folding', 'POST /comet HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n', 400],
  ['Content-Length and Transfer-Encoding (smuggling)', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['two different Content-Lengths', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 400],
  ['negative Content-Length', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400],
  ['Content-Length in hex', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n{"type":"setup"}', 400],
  ['Transfer-Encoding gzip (not chunked last)', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
  ['invalid chunk size', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
  ['chunk longer than its size', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"type":"setup"}\r\n0\r\n\r\n', 400],
  ['garbage where the next chunk size goes', 'POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"typ\r\nXX\r\n', 400],
  ['chunk size of 20 hex digits', `POST /comet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${'f'.repeat(20)}\r\n`, 400],
  ['a 20 KB header', `POST /comet HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ['3,000 headers', `POST /comet HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: v`).join('\r\n')}\r\n\r\n`, 431],
  ['a 20 KB URL', `POST /comet?${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
];

void t.test('malformed HTTP: node answers 400/431 and closes; the server keeps serving', async (t) => {
  const started = await startProbedServer(t);
  for (const [what, bytes, status] of MALFORMED) {
    const conn = await RawSocket.open(t, started.port);
    await conn.write(bytes);
    const reply = await conn.readResponse();
    t.equal(reply.status, status, `${what}: ${status}`);
    t.ok(await conn.closesWithin(), `${what}: the connection is closed`);
    assertNoLeak(t, reply.body, what);
    await assertStillServes(t, started.url, what);
  }
  t.equal(started.seen.sessions.length, MALFORMED.length, 'none of them made a session (only the probes did)');
});

void t.test('a request cut off mid-body reaches nothing and leaves the server serving', async (t) => {
  const started = await startProbedServer(t);
  const conn = await RawSocket.open(t, started.port);
  await conn.write(requestHead('POST', '/comet', { ...JSON_TYPE, 'Content-Length': '100' }) + '{"type":"se');
  conn.socket.destroy();
  await conn.closed;
  const half = await RawSocket.open(t, started.port);
  await half.write(requestHead('POST', '/comet', { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' }));
  await half.write(chunkOf('{"type":"setup"'));
  half.socket.end();
  t.ok(await half.closesWithin(), 'a half-closed chunked upload is closed');
  await assertStillServes(t, started.url, 'cut-off uploads');
  t.equal(started.seen.sessions.length, 1, 'only the probe made a session');
});

/** Wait until `check()` holds, polling; fails the test after 10 s instead of hanging. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 1000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

void t.test('slowloris: headers or a body a byte at a time do not block other clients nor hold a session slot', async (t) => {
  // A long wait makes the header/request timeouts long too, so no slow client is cut while the
  // others run: what is shown is that they are not in anyone's way, not that they are cut.
  const started = await startProbedServer(t, { ...MANY_CLIENTS_ON_LOOPBACK, wait: 60_000, maxSessions: 1 });
  const SLOW = 20;
  const setupBody = '{"type":"setup"}';
  let stop = false;
  const slow: { conn: RawSocket; sent: Promise<number>; text: string }[] = [];
  for (let i = 0; i < SLOW; i++) {
    const conn = await RawSocket.open(t, started.port);
    if (i % 2 === 0) {
      // Headers a byte at a time (padded so that they never finish while the test runs).
      const text = `POST /comet HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: ${'p'.repeat(6000)}\r\nContent-Length: ${setupBody.length}\r\n\r\n${setupBody}`;
      slow.push({ conn, sent: conn.dribble(text, 5, () => stop), text });
    } else {
      // Headers at once, then a setup body a byte at a time, as 1-byte chunks, never finished.
      await conn.write(requestHead('POST', '/comet', { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' }));
      const text = Buffer.concat([...setupBody.padEnd(6000, ' ')].map((c) => chunkOf(c))).toString('latin1') + LAST_CHUNK;
      slow.push({ conn, sent: conn.dribble(text, 5, () => stop), text });
    }
  }
  await until(() => slow.every((s) => s.conn.socket.bytesWritten > 5), 'every slow client to have started');

  // Meanwhile: 30 full round trips (setup, message, echo, terminate), one after another, on a
  // server with a single session slot that all 20 slow clients are on their way to ask for.
  for (let i = 0; i < 30; i++) await assertStillServes(t, started.url, `round trip ${i} during slowloris`);
  const unfinished = slow.filter((s) => !s.conn.isClosed && !s.conn.hasData).length;
  t.equal(unfinished, SLOW, 'every slow client was still sending, unanswered, while the others completed');

  // Then let them finish at once: they are served like anyone else, the single slot included.
  stop = true;
  const sentCounts = await Promise.all(slow.map((s) => s.sent));
  const replies = await Promise.all(slow.map(async (s, i) => {
    const sent = sentCounts[i] ?? 0;
    await s.conn.write(Buffer.from(s.text.slice(sent), 'latin1'));
    return s.conn.readResponse();
  }));
  const statuses = replies.map((r) => r.status).sort();
  t.equal(statuses.filter((s) => s === 200).length, 1, 'one of them takes the single session slot');
  t.equal(statuses.filter((s) => s === 503).length, SLOW - 1, 'the others get 503 overloaded');
  for (const r of replies.filter((x) => x.status === 503)) expectError(t, r, 503, 'overloaded', 'a slow setup over the limit');
});

void t.test('header and request timeouts are deliberate: longer than the long-poll wait, never unbounded', async (t) => {
  const check = (t: Test, wait: number, s: Started): void => {
    const server = s.comet.httpServer;
    if (!server) throw new Error('not listening');
    t.ok(server.headersTimeout > wait, `wait ${wait}: headersTimeout ${server.headersTimeout} > wait`);
    t.ok(server.requestTimeout > wait, `wait ${wait}: requestTimeout ${server.requestTimeout} > wait`);
    t.ok(server.requestTimeout >= server.headersTimeout, 'requestTimeout >= headersTimeout');
    // 0 would disable them: a slowloris client could then hold its connection forever.
    t.ok(server.headersTimeout > 0 && Number.isFinite(server.headersTimeout), 'headersTimeout is on');
    t.ok(server.requestTimeout > 0 && Number.isFinite(server.requestTimeout), 'requestTimeout is on');
    t.ok(server.keepAliveTimeout > 0 && server.keepAliveTimeout < server.headersTimeout, `keepAliveTimeout ${server.keepAliveTimeout} is on and below headersTimeout`);
  };
  const byDefault = await startProbedServer(t, { wait: DEFAULT_WAIT_MS });
  check(t, DEFAULT_WAIT_MS, byDefault);
  // node's own default headersTimeout is exactly 60 s: equal to the default wait, so not ours.
  t.not(byDefault.comet.httpServer?.headersTimeout, 60_000, 'not node\'s default headersTimeout');
  t.not(byDefault.comet.httpServer?.requestTimeout, 300_000, 'not node\'s default requestTimeout');
  const short = await startProbedServer(t, { wait: 2000 });
  check(t, 2000, short);
  const long = await startProbedServer(t, { wait: 120_000 });
  check(t, 120_000, long);
  t.ok((long.comet.httpServer?.headersTimeout ?? 0) > (short.comet.httpServer?.headersTimeout ?? 0), 'they follow wait');
});
