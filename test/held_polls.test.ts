/**
 * The handler's table of requests in flight by sid (lib/http/held_polls.ts): one table for the
 * per-session bound (`maxConnectionsPerSession`) and for what `heldCount` and `dropHeldPoll` read.
 * A request leaves it on every way out: answered, its socket dead while held, its call failed,
 * refused over the bound; and a session with several requests in flight counts each one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { ApiReply, CometApi, SocketWatch } from '../lib/comet/api.js';
import { createHandler } from '../lib/http/handler.js';
import { EMPTY_KEYS_SWEPT_PAST, HeldPolls } from '../lib/http/held_polls.js';
import { nullLogger } from '../lib/otp/logger.js';

interface Pending {
  readonly body: unknown;
  readonly socket: SocketWatch;
  readonly resolve: (r: ApiReply) => void;
  readonly reject: (e: unknown) => void;
  gone: number;
}

/** An API whose every request waits until the test answers it. */
function heldApi(): { api: CometApi; pending: Pending[] } {
  const pending: Pending[] = [];
  const handleJson = (body: unknown, socket: SocketWatch): Promise<ApiReply> => new Promise((resolve, reject) => {
    const p: Pending = { body, socket, resolve, reject, gone: 0 };
    socket.onClosed(() => p.gone++);
    pending.push(p);
  });
  const unused = (): never => {
    throw new Error('not used');
  };
  return { api: { handleJson, handleSetup: unused, handleRequest: unused, handlePacket: unused, broadcast: unused }, pending };
}

async function serve(t: { teardown(fn: () => unknown): void }, api: CometApi, held: HeldPolls): Promise<number> {
  const server = http.createServer(createHandler(api, {
    path: '/comet', maxBodyBytes: 65_536, cors: false, logger: nullLogger, isClosing: () => false,
    inFlight: held, maxConnectionsPerSession: 2,
  }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return (server.address() as AddressInfo).port;
}

/** A POST of `body` on its own connection; `req` to abort it. */
function post(port: number, body: unknown): { req: http.ClientRequest; status: Promise<number> } {
  const text = JSON.stringify(body);
  const req = http.request({ port, host: '127.0.0.1', path: '/comet', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } });
  const status = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
  });
  req.end(text);
  return { req, status };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

const OK: ApiReply = { status: 200, body: { rid: 1 as never, packets: [] } };

void t.test('every way out leaves the table empty', async (t) => {
  const { api, pending } = heldApi();
  const held = new HeldPolls();
  const port = await serve(t, api, held);

  // Answered.
  const a = post(port, { sid: 's1', rid: 1 });
  await until(() => pending.length === 1, 'the first request');
  t.equal(held.size, 1, 'held while it waits');
  t.equal(held.count('s1'), 1);
  pending[0]?.resolve(OK);
  t.equal(await a.status, 200);
  await until(() => held.sessions === 0, 'the answered request to leave');
  t.equal(held.size, 0);

  // The socket dies while the request is held: the FSM's watch is told once, then its answer.
  const b = post(port, { sid: 's2', rid: 1 });
  await until(() => pending.length === 2, 'the second request');
  b.req.destroy();
  await until(() => pending[1]?.gone === 1, 'the watch to hear of the close');
  t.equal(held.sessions, 0, 'gone from the table with its socket');
  t.equal(held.size, 0, 'and no longer held');
  pending[1]?.resolve(OK);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(held.size, 0, 'a late answer does not count it again');

  // The call fails (a bug): 503, and out of the table.
  const c = post(port, { sid: 's3', rid: 1 });
  await until(() => pending.length === 3, 'the third request');
  pending[2]?.reject(new Error('bug'));
  t.equal(await c.status, 503);
  await until(() => held.sessions === 0, 'the failed request to leave');
  t.equal(held.size, 0);
});

void t.test('a session with several requests in flight: each counted, each leaves, the bound holds', async (t) => {
  const { api, pending } = heldApi();
  const held = new HeldPolls();
  const port = await serve(t, api, held);
  const first = post(port, { sid: 's', rid: 1 });
  const second = post(port, { sid: 's', rid: 2 });
  await until(() => pending.length === 2, 'two requests');
  t.equal(held.count('s'), 2, 'both in flight');
  const third = post(port, { sid: 's', rid: 3 });
  t.equal(await third.status, 503, 'over maxConnectionsPerSession: overloaded');
  t.equal(held.count('s'), 2, 'the refused one never counted');
  t.equal(held.drop('s'), 2, 'drop reaches both while they wait');
  t.equal(await first.status, -1);
  t.equal(await second.status, -1);
  await until(() => held.sessions === 0, 'both to leave');
  t.equal(held.size, 0);
  // Answered in the other order: the array entry shrinks back to one, then to none.
  const x = post(port, { sid: 't', rid: 1 });
  const y = post(port, { sid: 't', rid: 2 });
  await until(() => pending.length === 4, 'two more');
  pending[3]?.resolve(OK);
  t.equal(await y.status, 200);
  await until(() => held.count('t') === 1, 'the second to leave');
  t.equal(held.size, 1, 'the first still held');
  t.equal(held.drop('t'), 1, 'drop finds the one left');
  t.equal(await x.status, -1);
  await until(() => held.sessions === 0, 'the table to empty');
});

void t.test('the table alone: three requests of one session leave in any order', (t) => {
  const held = new HeldPolls();
  const destroyed: string[] = [];
  const request = (name: string, awaitingReply = true) => ({
    res: { socket: { destroy: () => destroyed.push(name) } } as unknown as http.ServerResponse,
    awaitingReply,
  });
  const [a, b, c] = [request('a'), request('b', false), request('c')];
  held.add('s', a);
  held.add('s', b);
  held.add('s', c);
  held.add('other', request('o'));
  t.equal(held.count('s'), 3);
  t.equal(held.drop('s'), 2, 'the two still waiting');
  t.strictSame(destroyed, ['a', 'c']);
  held.delete('s', b); // the middle one
  t.equal(held.count('s'), 2);
  held.delete('s', b); // not in the table any more: nothing changes
  t.equal(held.count('s'), 2);
  held.delete('s', a); // the first one
  t.equal(held.count('s'), 1);
  held.add('s', a); // back, behind c
  t.equal(held.count('s'), 2);
  held.delete('s', c);
  held.delete('s', a);
  t.equal(held.count('s'), 0);
  t.equal(held.sessions, 1, 'only the other session left');
  t.equal(held.count('other'), 1);
  t.end();
});

void t.test('keys_kept_then_swept: a sid keeps its key between requests; keys without requests are swept past the bound', (t) => {
  const held = new HeldPolls();
  const request = () => ({ res: {} as http.ServerResponse, awaitingReply: true });
  // A session's requests coming and going leave its key in place: no Map delete and set (and
  // no rehash) per request.
  const r = request();
  held.add('s', r);
  held.delete('s', r);
  t.equal(held.sessions, 0, 'no session has a request in flight');
  t.equal(held.keys, 1, 'the key stays');
  held.add('s', r);
  t.equal(held.count('s'), 1, 'and takes the next request');
  t.equal(held.keys, 1);
  // Sids that never come back (ended sessions, or made up by a client) are dropped once there
  // are more than the live keys plus the bound, all at once; the live ones stay.
  const total = EMPTY_KEYS_SWEPT_PAST + 10;
  let most = 0;
  for (let i = 0; i < total; i++) {
    const x = request();
    held.add(`gone${i}`, x);
    held.delete(`gone${i}`, x);
    most = Math.max(most, held.keys);
  }
  t.ok(most <= 2 * held.sessions + EMPTY_KEYS_SWEPT_PAST + 1, 'never more than twice the live keys plus the bound');
  t.ok(held.keys < total, 'the keys without requests were swept');
  t.equal(held.sessions, 1);
  t.equal(held.count('s'), 1, 'the live session kept its request');
  held.delete('s', r);
  t.equal(held.count('s'), 0);
  t.end();
});
