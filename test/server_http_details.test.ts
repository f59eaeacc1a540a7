// HTTP details of the comet endpoint, over raw sockets (RFC 9112 / RFC 9110): the absolute-form
// request-target is served like the origin-form, and `Expect: 100-continue` gets the final
// 405/413/415 when the headers already decide it, `100 Continue` only for a request that will be
// read. Both with `listen()`'s own server and with an embedder's server that forwards
// `checkContinue` to the handler.
import t from 'tap';
import type { Test } from 'tap';
import { startHttp } from './fixtures/http.js';
import { RawSocket, assertStillServes, expectError, requestHead, startProbedServer } from './fixtures/raw_socket.js';

const SETUP = JSON.stringify({ type: 'setup' });

async function rawSetup(t: Test, port: number, target: string): Promise<{ status: number; body: unknown }> {
  const conn = await RawSocket.open(t, port);
  await conn.write(requestHead('POST', target, { 'Content-Type': 'application/json', 'Content-Length': String(SETUP.length) }) + SETUP);
  const r = await conn.readResponse();
  return { status: r.status, body: JSON.parse(r.body) as unknown };
}

void t.test('absolute-form request-target: POST http://host/comet is the comet endpoint', async (t) => {
  const started = await startProbedServer(t);
  for (const target of [
    `http://127.0.0.1:${started.port}/comet`,
    `http://127.0.0.1:${started.port}/comet?x=1`,
    `HTTP://example.com/comet#frag`,
  ]) {
    const r = await rawSetup(t, started.port, target);
    t.equal(r.status, 200, `${target}: 200`);
    t.match(r.body, { sid: String }, `${target}: a session`);
  }
  for (const target of [`http://127.0.0.1:${started.port}/other`, `http://127.0.0.1:${started.port}`, `http://h?/comet`, '*']) {
    const r = await rawSetup(t, started.port, target);
    t.equal(r.status, 404, `${target}: not the endpoint`);
  }
  await assertStillServes(t, started.url, 'absolute-form targets');
});

/** Send a head with `Expect: 100-continue` and no body; the first response the server writes. */
async function expectContinue(t: Test, port: number, method: string, headers: Record<string, string>): Promise<RawSocket> {
  const conn = await RawSocket.open(t, port);
  await conn.write(requestHead(method, '/comet', { Expect: '100-continue', ...headers }));
  return conn;
}

async function continueCases(t: Test, port: number, url: string): Promise<void> {
  const tooBig = await expectContinue(t, port, 'POST', { 'Content-Type': 'application/json', 'Content-Length': String(10 * 1024 * 1024) });
  const big = await tooBig.readResponse();
  expectError(t, big, 413, 'too_large', 'a body over the limit: 413 at once, no 100 first');
  t.ok(await tooBig.closesWithin(), 'and the connection closes (the body is never read)');

  const wrongType = await expectContinue(t, port, 'POST', { 'Content-Type': 'text/plain', 'Content-Length': '16' });
  expectError(t, await wrongType.readResponse(), 415, 'unsupported_media_type', 'a wrong media type: 415, no 100 first');

  const get = await expectContinue(t, port, 'PUT', { 'Content-Type': 'application/json', 'Content-Length': '16' });
  expectError(t, await get.readResponse(), 405, 'method_not_allowed', 'a wrong method: 405, no 100 first');

  const good = await expectContinue(t, port, 'POST', { 'Content-Type': 'application/json', 'Content-Length': String(SETUP.length) });
  const interim = await good.readResponse();
  t.equal(interim.status, 100, 'a request that will be read: 100 Continue');
  await good.write(SETUP);
  const final = await good.readResponse();
  t.equal(final.status, 200, 'then the body is read and answered');
  t.match(JSON.parse(final.body), { sid: String }, 'with a session');
  t.notOk(good.hasData, 'and only one 100 was sent');
  await assertStillServes(t, url, 'Expect: 100-continue');
}

void t.test('Expect: 100-continue with listen(): the final status when the headers decide it, 100 only otherwise', async (t) => {
  const started = await startProbedServer(t);
  await continueCases(t, started.port, started.url);
});

void t.test('Expect: 100-continue on an embedder\'s server that forwards checkContinue to the handler', async (t) => {
  const started = await startProbedServer(t);
  const { server, port } = await startHttp(t, started.comet.handler);
  server.on('checkContinue', started.comet.handler);
  await continueCases(t, port, `http://127.0.0.1:${port}/comet`);
});

void t.test('Expect: 100-continue on an embedder\'s server without checkContinue: node\'s one 100, still served', async (t) => {
  const started = await startProbedServer(t);
  const { port } = await startHttp(t, started.comet.handler);
  const conn = await expectContinue(t, port, 'POST', { 'Content-Type': 'application/json', 'Content-Length': String(SETUP.length) });
  t.equal((await conn.readResponse()).status, 100, 'node sends 100 Continue by itself');
  await conn.write(SETUP);
  t.equal((await conn.readResponse()).status, 200, 'the setup is answered');
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(conn.hasData, 'and the handler sent no second 100');
});
