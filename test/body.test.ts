import t from 'tap';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_DEPTH, EAGER_PARSE_MAX_BYTES, readJsonBody, type ReadJsonBodyResult } from '../lib/http/body.js';
import { sendError, sendJson } from '../lib/http/respond.js';
import { chunk, head, LAST_CHUNK, RawConnection, startServer, type Teardown } from './fixtures/wire-http.js';

const LIMIT = 1024;

/** Poll a condition, bounded: fails the wait after `ms` instead of hanging the file. */
async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited >= ms) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A server that reads the body with readJsonBody and answers with what it got. */
async function bodyServer(t: Teardown, opts: { maxBytes: number; maxDepth?: number } = { maxBytes: LIMIT }) {
  const results: ReadJsonBodyResult[] = [];
  const ts = await startServer(t, async (req, res) => {
    const r = await readJsonBody(req, opts);
    results.push(r);
    if (r.ok) sendJson(res, 200, { value: r.value });
    else sendError(res, r.code, r.message);
  });
  return { ...ts, results };
}

async function post(port: number, body: string | Uint8Array<ArrayBuffer>, contentType: string | undefined, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { ...extra };
  if (contentType !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`http://127.0.0.1:${port}/comet`, { method: 'POST', body, headers });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

void t.test('defaults', (t) => {
  t.equal(DEFAULT_MAX_BODY_BYTES, 65_536);
  t.equal(DEFAULT_MAX_JSON_DEPTH, 64);
  t.end();
});

void t.test('media type is checked', async (t) => {
  const { port } = await bodyServer(t);
  const cases: { ct: string | undefined; status: number; extra?: Record<string, string> }[] = [
    { ct: 'application/json', status: 200 },
    { ct: 'application/json; charset=utf-8', status: 200 },
    { ct: 'Application/JSON; Charset=UTF-8', status: 200 },
    { ct: 'application/json;charset="utf-8"', status: 200 },
    { ct: 'application/json; foo=bar', status: 200 },
    { ct: 'application/json', status: 200, extra: { 'content-encoding': 'identity' } },
    { ct: undefined, status: 415 },
    { ct: '', status: 415 },
    { ct: 'text/plain', status: 415 },
    { ct: 'text/plain; charset=utf-8', status: 415 },
    { ct: 'application/x-www-form-urlencoded', status: 415 },
    { ct: 'multipart/form-data; boundary=x', status: 415 },
    { ct: 'application/jsonx', status: 415 },
    { ct: 'application/*', status: 415 },
    { ct: 'application/json; charset=latin1', status: 415 },
    { ct: 'application/json; charset=utf-16', status: 415 },
    { ct: 'application/json', status: 415, extra: { 'content-encoding': 'gzip' } },
  ];
  for (const c of cases) {
    const name = `${String(c.ct)} ${JSON.stringify(c.extra ?? {})}`;
    // fetch adds text/plain to a string body without a type; a Uint8Array body gets none.
    const r = await post(port, new TextEncoder().encode('{"a":1}'), c.ct, c.extra);
    t.equal(r.status, c.status, name);
    if (c.status === 200) t.strictSame(r.json, { value: { a: 1 } }, name);
    else t.strictSame(r.json.error, 'unsupported_media_type', name);
  }
});

void t.test('media type is refused before the body is read', async (t) => {
  const { port, results } = await bodyServer(t);
  const conn = await RawConnection.open(t, port);
  // Announce a body and never send it: the answer can only come from the headers.
  await conn.write(head({ 'Content-Type': 'text/plain', 'Content-Length': '500' }));
  const res = await conn.readResponse();
  t.equal(res.status, 415);
  t.equal(JSON.parse(res.body).error, 'unsupported_media_type');
  t.equal(res.headers['connection'], 'close', 'unread body: the connection is not kept for reuse');
  t.ok(await conn.closesWithin(5000), 'server closes the connection');
  t.match(results, [{ ok: false, code: 'unsupported_media_type', message: /Content-Type must be application\/json/ }]);
});

void t.test('bad JSON bodies', async (t) => {
  const { port } = await bodyServer(t);
  const bytes = (...b: number[]) => new Uint8Array(b);
  const enc = (s: string) => new TextEncoder().encode(s);
  const cases: { name: string; body: Uint8Array<ArrayBuffer>; message: RegExp }[] = [
    { name: 'empty body', body: bytes(), message: /empty/ },
    { name: 'not JSON', body: enc('hello'), message: /not valid JSON/ },
    { name: 'truncated JSON', body: enc('{"sid": "a"'), message: /not valid JSON/ },
    { name: 'two JSON values', body: enc('{} {}'), message: /not valid JSON/ },
    { name: 'invalid UTF-8 byte inside a string', body: bytes(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d), message: /UTF-8/ },
    { name: 'overlong UTF-8 encoding', body: bytes(0x22, 0xc0, 0xaf, 0x22), message: /UTF-8/ },
    { name: 'lone surrogate encoded in UTF-8', body: bytes(0x22, 0xed, 0xa0, 0x80, 0x22), message: /UTF-8/ },
    { name: 'UTF-16 body', body: new Uint8Array(Buffer.from('{"a":1}', 'utf16le')), message: /not valid JSON/ },
    { name: 'nested one level too deep', body: enc('['.repeat(65) + ']'.repeat(65)), message: /nested deeper than 64/ },
    { name: 'nested very deep', body: enc('{"a":'.repeat(150) + '1' + '}'.repeat(150)), message: /nested deeper than 64/ },
  ];
  for (const c of cases) {
    const r = await post(port, c.body, 'application/json');
    t.equal(r.status, 400, c.name);
    t.equal(r.json.error, 'bad_json', c.name);
    t.match(r.json.message, c.message, c.name);
  }
});

void t.test('valid bodies at the edges are accepted', async (t) => {
  const { port } = await bodyServer(t, { maxBytes: 4096 });
  const cases: { name: string; text: string; value: unknown }[] = [
    { name: 'exactly 64 levels', text: '['.repeat(64) + ']'.repeat(64), value: JSON.parse('['.repeat(64) + ']'.repeat(64)) },
    { name: 'brackets inside strings do not count', text: JSON.stringify({ s: '[[[['.repeat(100) }), value: { s: '[[[['.repeat(100) } },
    { name: 'escaped quotes inside strings', text: '{"s":"\\"[[[[\\"' + '['.repeat(80) + '"}', value: { s: '"[[[["' + '['.repeat(80) } },
    { name: 'non-ASCII text', text: '{"s":"héllo ✓ 😀"}', value: { s: 'héllo ✓ 😀' } },
    { name: 'a byte order mark is ignored', text: '\ufeff{"a":1}', value: { a: 1 } },
    { name: 'any JSON value (shape is checked later)', text: '[1,2]', value: [1, 2] },
    { name: 'null', text: 'null', value: null },
  ];
  for (const c of cases) {
    const r = await post(port, new TextEncoder().encode(c.text), 'application/json');
    t.equal(r.status, 200, c.name);
    t.strictSame(r.json, { value: c.value }, c.name);
  }
});

void t.test('maxDepth option', async (t) => {
  const { port } = await bodyServer(t, { maxBytes: LIMIT, maxDepth: 2 });
  t.equal((await post(port, '{"a":[1]}', 'application/json')).status, 200, 'depth 2 accepted');
  const r = await post(port, '{"a":[[1]]}', 'application/json');
  t.equal(r.status, 400);
  t.match(r.json.message, /nested deeper than 2/);
  // The shortest text one level too deep (2 brackets a level) is still scanned and refused; a
  // text of at most 2 * maxDepth characters cannot be too deep and skips the scan.
  t.equal((await post(port, '[[[]]]', 'application/json')).status, 400, 'depth 3 in 6 characters refused');
  t.equal((await post(port, '[[]]', 'application/json')).status, 200, 'depth 2 in 4 characters accepted');
});

void t.test('size limit with Content-Length', async (t) => {
  const { port } = await bodyServer(t);
  const exact = `{"s":"${'x'.repeat(LIMIT - 8)}"}`;
  t.equal(Buffer.byteLength(exact), LIMIT);
  t.equal((await post(port, exact, 'application/json')).status, 200, 'exactly the limit is accepted');
  const over = `{"s":"${'x'.repeat(LIMIT - 7)}"}`;
  const r = await post(port, over, 'application/json');
  t.equal(r.status, 413, 'one byte over is too_large');
  t.equal(r.json.error, 'too_large');
  t.match(r.json.message, /larger than 1024 bytes/);
});

void t.test('Content-Length over the limit: 413 at once, without the body being sent', async (t) => {
  const { port, sockets } = await bodyServer(t);
  const conn = await RawConnection.open(t, port);
  await conn.write(head({ 'Content-Type': 'application/json', 'Content-Length': String(10 * 1024 * 1024) }));
  await conn.write('{"s":"');
  const res = await conn.readResponse();
  t.equal(res.status, 413);
  t.equal(JSON.parse(res.body).error, 'too_large');
  t.equal(res.headers['connection'], 'close');
  t.ok(await conn.closesWithin(5000), 'server closes the connection');
  t.ok((sockets[0]?.bytesRead ?? Infinity) < 4096, 'server read little more than the head');
});

void t.test('a Content-Length body in several pieces is read whole', async (t) => {
  const { port, results } = await bodyServer(t);
  const conn = await RawConnection.open(t, port);
  // Cut inside the two bytes of "é": the pieces are joined as bytes before they are decoded.
  const body = Buffer.from('{"s":"héllo","n":[1,2,3]}');
  const cut = body.indexOf(0xc3) + 1;
  await conn.write(head({ 'Content-Type': 'application/json', 'Content-Length': String(body.length) }));
  await conn.write(body.subarray(0, cut));
  await new Promise((r) => setTimeout(r, 20));
  await conn.write(body.subarray(cut, cut + 3));
  await new Promise((r) => setTimeout(r, 20));
  await conn.write(body.subarray(cut + 3));
  const res = await conn.readResponse();
  t.equal(res.status, 200);
  t.strictSame(JSON.parse(res.body), { value: { s: 'héllo', n: [1, 2, 3] } });
  t.equal(res.headers['connection'], 'keep-alive', 'a fully read body keeps the connection');
  t.equal(results.length, 1);
});

void t.test('chunked bodies: limit counted while reading', async (t) => {
  const { port } = await bodyServer(t);
  const send = async (parts: string[]) => {
    const conn = await RawConnection.open(t, port);
    await conn.write(head({ 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }));
    for (const p of parts) await conn.write(chunk(p));
    await conn.write(LAST_CHUNK);
    return { conn, res: await conn.readResponse() };
  };
  const exact = `{"s":"${'x'.repeat(LIMIT - 8)}"}`;
  const ok = await send([exact.slice(0, 500), exact.slice(500)]);
  t.equal(ok.res.status, 200, 'exactly the limit in two chunks is accepted');
  t.equal(ok.res.headers['connection'], 'keep-alive', 'a fully read body keeps the connection');

  const over = `{"s":"${'x'.repeat(LIMIT - 7)}"}`;
  const tooBig = await send([over.slice(0, 500), over.slice(500)]);
  t.equal(tooBig.res.status, 413, 'one byte over in two chunks is too_large');
  t.equal(tooBig.res.headers['connection'], 'close');
  t.ok(await tooBig.conn.closesWithin(5000), 'server closes the connection');
});

void t.test('a 10 MB chunked upload gets 413 before it is all sent, and is not read into memory', async (t) => {
  const { port, sockets } = await bodyServer(t, { maxBytes: DEFAULT_MAX_BODY_BYTES });
  const TOTAL = 10 * 1024 * 1024;
  const piece = chunk(Buffer.alloc(64 * 1024, 0x61));
  const before = process.memoryUsage();
  const conn = await RawConnection.open(t, port);
  await conn.write(head({ 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }));
  const response = conn.readResponse();
  let sent = 0;
  // Bounded: at most TOTAL bytes, and stop as soon as the server answered or went away.
  while (sent < TOTAL && !conn.hasData) {
    if (!(await conn.write(piece))) break;
    sent += piece.length;
  }
  const res = await response;
  t.equal(res.status, 413);
  t.equal(JSON.parse(res.body).error, 'too_large');
  t.equal(res.headers['connection'], 'close');
  t.ok(sent < TOTAL, `answered after ${sent} of ${TOTAL} bytes were sent`);
  t.ok(await conn.closesWithin(5000), 'server closes the connection');
  const read = sockets[0]?.bytesRead ?? Infinity;
  t.ok(read < 2 * 1024 * 1024, `server read ${read} bytes, far below 10 MB`);
  const after = process.memoryUsage();
  const grew = after.rss - before.rss + (after.arrayBuffers - before.arrayBuffers);
  t.ok(grew < 8 * 1024 * 1024, `memory grew by ${grew} bytes, not ~10 MB`);
});

void t.test('a client aborting mid-body resolves (bad_json), with no unhandled rejection', async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (r: unknown) => rejections.push(r);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => process.off('unhandledRejection', onRejection));

  const settled: ReadJsonBodyResult[] = [];
  let arrived: () => void = () => {};
  const { port } = await startServer(t, async (req, res) => {
    const p = readJsonBody(req, { maxBytes: LIMIT });
    arrived();
    const r = await p;
    settled.push(r);
    t.equal(sendError(res, 'bad_json', 'ignored'), false, 'nothing can be written to the dead socket');
  });
  const aborts: { name: string; headers: Record<string, string>; part: Buffer }[] = [
    { name: 'Content-Length body cut short', headers: { 'Content-Length': '500' }, part: Buffer.from('{"sid":') },
    { name: 'chunked body cut short', headers: { 'Transfer-Encoding': 'chunked' }, part: chunk('{"sid":') },
  ];
  for (const a of aborts) {
    const conn = await RawConnection.open(t, port);
    const inHandler = new Promise<void>((resolve) => (arrived = resolve));
    await conn.write(head({ 'Content-Type': 'application/json', ...a.headers }));
    await conn.write(a.part);
    await inHandler;
    conn.socket.destroy();
    await waitFor(() => settled.length > 0);
    const r = settled.shift();
    t.match(r, { ok: false, code: 'bad_json', message: /aborted/ }, a.name);
  }
  await new Promise((r) => setTimeout(r, 50));
  t.strictSame(rejections, [], 'no unhandled rejection');
});

void t.test('a request already aborted before the read resolves (bad_json)', async (t) => {
  const settled: ReadJsonBodyResult[] = [];
  let arrived: () => void = () => {};
  const { port } = await startServer(t, async (req) => {
    arrived();
    // Not events.once: it rejects on the 'error' an aborted request emits to its listeners.
    await new Promise((resolve) => req.once('close', resolve));
    settled.push(await readJsonBody(req, { maxBytes: LIMIT }));
  });
  const conn = await RawConnection.open(t, port);
  const inHandler = new Promise<void>((resolve) => (arrived = resolve));
  await conn.write(head({ 'Content-Type': 'application/json', 'Content-Length': '100' }));
  await inHandler;
  conn.socket.destroy();
  await waitFor(() => settled.length > 0);
  t.match(settled[0], { ok: false, code: 'bad_json', message: /aborted/ });
});

void t.test('a body already consumed by someone else is a programming error (rejects)', async (t) => {
  const outcomes: unknown[] = [];
  const { port } = await startServer(t, async (req, res) => {
    req.resume();
    await once(req, 'end');
    try {
      await readJsonBody(req, { maxBytes: LIMIT });
      outcomes.push('resolved');
    } catch (err) {
      outcomes.push(err);
    }
    res.end();
  });
  await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  t.equal(outcomes.length, 1);
  t.type(outcomes[0], Error);
  t.match(outcomes[0], { message: /already read/ });
});

void t.test('a stream that ends short of its Content-Length resolves (bad_json)', async (t) => {
  // Not reachable over node:http (the parser reports an abort first); covers other stream sources.
  const stream = Object.assign(new PassThrough(), {
    headers: { 'content-type': 'application/json', 'content-length': '10' },
  }) as unknown as IncomingMessage;
  const p = readJsonBody(stream, { maxBytes: LIMIT });
  (stream as unknown as PassThrough).end('{}');
  t.match(await p, { ok: false, code: 'bad_json' });
});

void t.test('a stream longer than its Content-Length stops at the limit (too_large)', async (t) => {
  // Not reachable over node:http (the parser reads no more than Content-Length); other sources.
  const stream = Object.assign(new PassThrough(), {
    headers: { 'content-type': 'application/json', 'content-length': '10' },
  }) as unknown as IncomingMessage;
  const p = readJsonBody(stream, { maxBytes: LIMIT });
  (stream as unknown as PassThrough).write(Buffer.alloc(LIMIT, 0x20));
  (stream as unknown as PassThrough).write('{}');
  t.match(await p, { ok: false, code: 'too_large', message: /larger than 1024 bytes/ });
  t.equal((stream as unknown as PassThrough).isPaused(), true, 'the stream is paused, the rest left unread');
});

void t.test('a stream that fails mid-body resolves (bad_json)', async (t) => {
  const stream = Object.assign(new PassThrough(), {
    headers: { 'content-type': 'application/json' },
  }) as unknown as IncomingMessage;
  const p = readJsonBody(stream, { maxBytes: LIMIT });
  (stream as unknown as PassThrough).write('{"a"');
  (stream as unknown as PassThrough).destroy(new Error('connection lost'));
  t.match(await p, { ok: false, code: 'bad_json', message: /aborted/ });
});

void t.test('a request stream with an encoding set is a programming error (rejects)', async (t) => {
  const outcomes: unknown[] = [];
  const { port } = await startServer(t, async (req, res) => {
    req.setEncoding('utf8');
    try {
      await readJsonBody(req, { maxBytes: LIMIT });
      outcomes.push('resolved');
    } catch (err) {
      outcomes.push(err);
    }
    res.end();
  });
  await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  t.equal(outcomes.length, 1);
  t.match(outcomes[0], { message: /encoding/ });
});

void t.test('invalid limits are a programming error (rejects with RangeError)', async (t) => {
  const stream = Object.assign(new PassThrough(), { headers: { 'content-type': 'application/json' } }) as unknown as IncomingMessage;
  for (const opts of [{ maxBytes: NaN }, { maxBytes: -1 }, { maxBytes: 1.5 }, { maxBytes: 10, maxDepth: 0 }, { maxBytes: 10, maxDepth: Infinity }]) {
    await t.rejects(readJsonBody(stream, opts), RangeError, JSON.stringify(opts));
  }
});

/** Read `text` as a request body from a stream (no server needed). */
async function readText(text: string, opts: { lazy?: boolean; maxDepth?: number } = {}): Promise<ReadJsonBodyResult> {
  const stream = Object.assign(new PassThrough(), { headers: { 'content-type': 'application/json' } }) as unknown as IncomingMessage;
  const p = readJsonBody(stream, { maxBytes: DEFAULT_MAX_BODY_BYTES, ...opts });
  (stream as unknown as PassThrough).end(text);
  return p;
}

void t.test('small_bodies_eager: JSON.parse builds a body up to EAGER_PARSE_MAX_BYTES whole, the depth bound still holds', async (t) => {
  const small = await readText('{"messages":[[1]]}', { lazy: true });
  t.ok(small.ok && Array.isArray((small.value as { messages: unknown }).messages), 'a small body is built whole, also when lazy');
  const big = JSON.stringify({ messages: Array.from({ length: EAGER_PARSE_MAX_BYTES / 4 }, () => [1]) });
  const large = await readText(big, { lazy: true });
  t.ok(large.ok && !Array.isArray((large.value as { messages: unknown }).messages), 'a larger one is built only at the top');

  // Just past twice the bound in characters, and deeper than the bound: refused like the scan refuses.
  const deep = `{"pad":"${'x'.repeat(2 * DEFAULT_MAX_JSON_DEPTH)}","m":${'['.repeat(DEFAULT_MAX_JSON_DEPTH)}${']'.repeat(DEFAULT_MAX_JSON_DEPTH)}}`;
  t.ok(deep.length < EAGER_PARSE_MAX_BYTES);
  t.match(await readText(deep, { lazy: true }), { ok: false, code: 'bad_json', message: /nested deeper than 64/ });
  t.match(await readText(deep), { ok: false, code: 'bad_json', message: /nested deeper than 64/ });
  // Brackets inside strings, escaped quotes included, are not nesting.
  const quoted = `{"s":"\\"${'['.repeat(3 * DEFAULT_MAX_JSON_DEPTH)}\\\\","t":[[["ok"]]]}`;
  t.match(await readText(quoted, { lazy: true }), { ok: true, value: { t: [[['ok']]] } });
  t.match(await readText('{"a":1,}', { lazy: true }), { ok: false, code: 'bad_json', message: /not valid JSON/ });
});
