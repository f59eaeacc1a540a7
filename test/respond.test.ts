import t from 'tap';
import { HTTP_STATUS, type WireErrorCode } from '../lib/comet/errors.js';
import { JSON_CONTENT_TYPE, isWritable, sendError, sendJson } from '../lib/http/respond.js';
import { readJsonBody } from '../lib/http/body.js';
import { head, RawConnection, startServer } from './fixtures/wire-http.js';

const body = '{"a":1}';
const post = (extra: Record<string, string> = {}) =>
  head({ 'Content-Type': 'application/json', 'Content-Length': String(body.length), ...extra }) + body;

void t.test('sendJson writes JSON with the fixed headers', async (t) => {
  const returned: boolean[] = [];
  const { port } = await startServer(t, (_req, res) => {
    returned.push(sendJson(res, 201, { hello: ['wörld', 1] }, { 'X-Extra': 'yes', 'Content-Type': 'text/html', 'Cache-Control': 'max-age=60' }));
  });
  const conn = await RawConnection.open(t, port);
  await conn.write(post());
  const res = await conn.readResponse();
  t.equal(res.status, 201);
  t.strictSame(JSON.parse(res.body), { hello: ['wörld', 1] });
  t.equal(res.headers['content-type'], JSON_CONTENT_TYPE, 'our Content-Type wins');
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  t.equal(res.headers['cache-control'], 'no-store', 'our Cache-Control wins');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
  t.equal(res.headers['content-length'], String(Buffer.byteLength(res.body)), 'length in bytes, not chars');
  t.equal(res.headers['x-extra'], 'yes', 'extra headers kept');
  t.strictSame(returned, [true]);
});

void t.test('sendError: every code has its status and the {error, message} body', async (t) => {
  const codes = Object.keys(HTTP_STATUS) as WireErrorCode[];
  let next: WireErrorCode = 'bad_json';
  const { port } = await startServer(t, async (req, res) => {
    await readJsonBody(req, { maxBytes: 1024 });
    sendError(res, next, `because ${next}`);
  });
  for (const code of codes) {
    next = code;
    const conn = await RawConnection.open(t, port);
    await conn.write(post());
    const res = await conn.readResponse();
    t.equal(res.status, HTTP_STATUS[code], `${code}: status`);
    t.strictSame(JSON.parse(res.body), { error: code, message: `because ${code}` }, `${code}: body`);
    t.equal(res.headers['content-type'], JSON_CONTENT_TYPE, `${code}: content type`);
    t.equal(res.headers['cache-control'], 'no-store', `${code}: no-store`);
    t.equal(res.headers['allow'], code === 'method_not_allowed' ? 'POST' : undefined, `${code}: Allow only on 405`);
    t.equal(res.headers['connection'], code === 'too_large' ? 'close' : 'keep-alive', `${code}: connection`);
  }
});

void t.test('405 Allow can be given by the caller', async (t) => {
  const { port } = await startServer(t, (_req, res) => {
    sendError(res, 'method_not_allowed', 'use POST', { Allow: 'POST, OPTIONS' });
  });
  const res = await fetch(`http://127.0.0.1:${port}/comet`);
  t.equal(res.status, 405);
  t.equal(res.headers.get('allow'), 'POST, OPTIONS');
});

void t.test('keep-alive after an error on a fully read request; close after 413', async (t) => {
  const { port, sockets } = await startServer(t, async (req, res) => {
    await readJsonBody(req, { maxBytes: 1024 });
    if (req.headers['x-code'] === 'too_large') sendError(res, 'too_large', 'big');
    else sendError(res, 'bad_request', 'no');
  });
  const conn = await RawConnection.open(t, port);
  await conn.write(post());
  t.equal((await conn.readResponse()).status, 400);
  await conn.write(post());
  t.equal((await conn.readResponse()).status, 400, 'same connection serves a second request');
  await conn.write(post({ 'X-Code': 'too_large' }));
  const res = await conn.readResponse();
  t.equal(res.status, 413);
  t.equal(res.headers['connection'], 'close');
  t.ok(await conn.closesWithin(5000), '413 closes the connection');
  t.equal(sockets.length, 1, 'all three on one connection');
});

void t.test('an error sent before a declared body is read closes the connection instead of draining it', async (t) => {
  const { port, sockets } = await startServer(t, (_req, res) => {
    sendError(res, 'method_not_allowed', 'use POST');
  });
  const conn = await RawConnection.open(t, port);
  // 1 MB announced, 10 bytes sent: node would otherwise wait to drain the rest before reuse.
  await conn.write(head({ 'Content-Type': 'application/json', 'Content-Length': String(1024 * 1024) }, '/comet', 'PUT'));
  await conn.write('0123456789');
  const res = await conn.readResponse();
  t.equal(res.status, 405);
  t.equal(res.headers['connection'], 'close');
  t.ok(await conn.closesWithin(5000), 'closed');
  t.ok((sockets[0]?.bytesRead ?? Infinity) < 4096, 'the body was not drained');
});

void t.test('a body-less request keeps the connection after an error', async (t) => {
  const { port } = await startServer(t, (_req, res) => {
    sendError(res, 'method_not_allowed', 'use POST');
  });
  const conn = await RawConnection.open(t, port);
  await conn.write(head({}, '/comet', 'GET'));
  const first = await conn.readResponse();
  t.equal(first.status, 405);
  t.equal(first.headers['connection'], 'keep-alive');
  await conn.write(head({}, '/comet', 'GET'));
  t.equal((await conn.readResponse()).status, 405, 'second request on the same connection');
});

void t.test('writing twice, after headers, or to a dead socket returns false and never throws', async (t) => {
  const outcomes: Record<string, unknown> = {};
  const errors: unknown[] = [];
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const { port } = await startServer(t, async (req, res) => {
    res.on('error', (e) => errors.push(e));
    const mode = req.headers['x-mode'];
    if (mode === 'twice') {
      outcomes['first'] = sendJson(res, 200, { n: 1 });
      outcomes['second'] = sendJson(res, 200, { n: 2 });
      outcomes['errorAfter'] = sendError(res, 'bad_request', 'late');
      outcomes['writableAfter'] = isWritable(res);
    } else if (mode === 'headers') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      outcomes['afterHeaders'] = sendJson(res, 200, { n: 1 });
      res.end('plain');
    } else if (mode === 'dead') {
      try {
        outcomes['writableBefore'] = isWritable(res);
        req.socket.destroy();
        outcomes['socketDead'] = sendJson(res, 200, { n: 1 });
        await new Promise((r) => res.once('close', r));
        outcomes['responseClosed'] = sendError(res, 'bad_request', 'gone');
      } finally {
        done();
      }
    }
  });
  const r1 = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-mode': 'twice' } });
  t.strictSame(await r1.json(), { n: 1 }, 'the first reply is the one sent');
  const r2 = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-mode': 'headers' } });
  t.equal(await r2.text(), 'plain');
  const conn = await RawConnection.open(t, port);
  await conn.write(head({ 'X-Mode': 'dead' }, '/', 'GET'));
  await finished;
  await new Promise((r) => setTimeout(r, 20));
  t.strictSame(outcomes, {
    first: true,
    second: false,
    errorAfter: false,
    writableAfter: false,
    afterHeaders: false,
    writableBefore: true,
    socketDead: false,
    responseClosed: false,
  });
  t.strictSame(errors, [], 'no error emitted on the response');
});

void t.test('a body JSON cannot serialise throws TypeError before anything is written', async (t) => {
  const thrown: unknown[] = [];
  const { port } = await startServer(t, (_req, res) => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const bad of [10n, undefined, cyclic, () => 1]) {
      try {
        sendJson(res, 200, bad);
      } catch (err) {
        thrown.push(err);
      }
    }
    sendError(res, 'bad_request', 'still answerable');
  });
  const res = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(res.status, 400);
  t.strictSame(await res.json(), { error: 'bad_request', message: 'still answerable' });
  t.equal(thrown.length, 4);
  for (const e of thrown) t.type(e, TypeError);
});
