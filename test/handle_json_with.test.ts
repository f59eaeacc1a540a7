// handleJsonWith, the HTTP handler's way into the API: the reply goes to a waiter, never before
// the call returns (the FSM tells its caller from inside its handler, and the reply must be written
// after that handler), with every other reply of the turn from the check phase (written in one
// burst), the socket watch let go first, a session that ended told as 404.
import t, { type Test } from 'tap';
import { createCometApi, REPLY_BURST_MAX, type ApiReply, type ReplyWaiter, type SocketWatch } from '../lib/comet/api.js';
import type { ConnectionEvent, RequestOutcome } from '../lib/comet/connection.js';
import type { SessionCallWaiter, SessionRouter } from '../lib/comet/session_router.js';
import { SessionTable } from '../lib/comet/sessions.js';
import { ManualClock } from '../lib/otp/clock.js';
import { OtpError } from '../lib/otp/errors.js';
import { startSystem, stopSystem } from '../lib/otp/nact.js';
import type { From } from '../lib/otp/proc_lib.js';

/** The check phase of this turn: where the API hands over the turn's replies. */
const checkPhase = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Answer = { outcome: RequestOutcome } | { error: unknown };

/** A router whose session answers inside `callWith`, as an FSM replies from inside its handler. */
function routerAnswering(answer: () => Answer, log: string[], withCallWith = true): SessionRouter {
  const callWith = <R>(_sid: string, make: (from: From<R>) => ConnectionEvent, _ms: number, waiter: SessionCallWaiter<R>): void => {
    make({} as From<R>);
    const a = answer();
    log.push('fsm replied');
    if ('outcome' in a) waiter.resolved(a.outcome as R);
    else waiter.rejected(a.error);
    log.push('fsm handler done');
  };
  return {
    call: <R>(sid: string, make: (from: From<R>) => ConnectionEvent, ms: number): Promise<R> => new Promise((resolve, reject) => {
      callWith(sid, make, ms, { resolved: resolve, rejected: reject });
    }),
    ...(withCallWith ? { callWith } : {}),
    cast: () => true,
  };
}

function api(t: Test, router: SessionRouter) {
  const system = startSystem();
  t.teardown(() => stopSystem(system));
  return createCometApi({
    system, router, sessions: new SessionTable(), wait: 1000, inactivity: 1000, maxSessions: 10, clock: new ManualClock(),
    isClosing: () => false,
  });
}

function socket(log: string[]): SocketWatch {
  return {
    onClosed: () => {
      log.push('watching');
      return () => log.push('unwatched');
    },
  };
}

function waiter(log: string[]): ReplyWaiter & { reply?: ApiReply } {
  const w: ReplyWaiter & { reply?: ApiReply } = {
    replied(reply) {
      log.push(`replied ${reply.status}`);
      w.reply = reply;
    },
    failed(err) {
      log.push(`failed ${String(err)}`);
    },
  };
  return w;
}

const packets = (json: string): RequestOutcome => ({ kind: 'packets', rid: 1 as never, response: { json, bytes: json.length, written: () => () => {} } });
const REQUEST = { sid: 's', rid: 1, messages: [] };

void t.test('the reply reaches the waiter after the FSM handler, the watch let go first', async (t) => {
  const log: string[] = [];
  const a = api(t, routerAnswering(() => ({ outcome: packets('{"rid":1,"packets":[]}') }), log));
  const w = waiter(log);
  a.handleJsonWith?.(REQUEST, socket(log), w);
  log.push('returned');
  await checkPhase();
  t.same(log, ['watching', 'fsm replied', 'fsm handler done', 'returned', 'unwatched', 'replied 200']);
  t.match(w.reply, { status: 200, json: '{"rid":1,"packets":[]}' });
});

void t.test('a session that ended before replying is 404 unknown_session; a timeout is 503', async (t) => {
  for (const [code, status] of [['ERR_OTP_EXIT', 404], ['ERR_OTP_NOPROC', 404], ['ERR_OTP_TIMEOUT', 503]] as const) {
    const log: string[] = [];
    const a = api(t, routerAnswering(() => ({ error: new OtpError(code, 'x') }), log));
    const w = waiter(log);
    a.handleJsonWith?.(REQUEST, socket(log), w);
    await checkPhase();
    t.equal(w.reply?.status, status, code);
    t.same(log.slice(-2), ['unwatched', `replied ${status}`]);
  }
});

void t.test('a frame that does not decode: its 400 with the turn\'s replies, not before the call returns', async (t) => {
  const log: string[] = [];
  const a = api(t, routerAnswering(() => ({ error: 'unused' }), log));
  const w = waiter(log);
  a.handleJsonWith?.({ nonsense: true }, socket(log), w);
  t.equal(w.reply, undefined, 'not yet');
  await checkPhase();
  t.equal(w.reply?.status, 400);
});

void t.test('a router without callWith: the same reply, through its promise', async (t) => {
  const log: string[] = [];
  const a = api(t, routerAnswering(() => ({ outcome: packets('{"rid":1,"packets":[]}') }), log, false));
  const w = waiter(log);
  a.handleJsonWith?.(REQUEST, socket(log), w);
  for (let i = 0; i < 5 && w.reply === undefined; i++) await checkPhase();
  t.equal(w.reply?.status, 200);
  t.ok(log.indexOf('unwatched') < log.indexOf('replied 200'), 'the watch let go first');
});

void t.test('a waiter that watches the socket itself: told the listener, which casts request_gone with the token', async (t) => {
  const log: string[] = [];
  const casts: unknown[] = [];
  let sent: unknown;
  const router = routerAnswering(() => ({ outcome: packets('{"rid":1,"packets":[]}') }), log);
  const a = api(t, {
    ...router,
    callWith: (sid, make, ms, waiter) => {
      sent = make({} as never);
      void sid;
      void ms;
      void waiter; // held: never answered in this test
    },
    cast: (_sid, ev) => {
      casts.push(ev);
      return true;
    },
  });
  let listener: { socketClosed(): void } | undefined;
  const w = { ...waiter(log), watchSocket: (l: { socketClosed(): void }) => { listener = l; } };
  a.handleJsonWith?.(REQUEST, socket(log), w);
  t.notOk(log.includes('watching'), 'socket.onClosed is not used');
  t.ok(listener, 'the waiter got the listener');
  listener?.socketClosed();
  t.same(casts, [{ type: 'request_gone', token: (sent as { token: unknown }).token }], 'the FSM is told, with the held request\'s token');
});

// Replies written one by one, each from the microtask after its FSM answered, reach a client on
// the same machine tens of microseconds apart and wake it once each (docs/benchmarks.md): the
// replies of a turn are handed over together, once the poll phase has read what was ready.
void t.test('replies_batched_per_turn: the replies of one turn reach their waiters together, from the check phase', async (t) => {
  const log: string[] = [];
  const a = api(t, routerAnswering(() => ({ outcome: packets('{"rid":1,"packets":[]}') }), []));
  const first = waiter(log);
  const second = waiter(log);
  a.handleJsonWith?.(REQUEST, socket([]), first);
  // What else the turn does (more reads, their microtasks) comes before any reply is written.
  setImmediate(() => log.push('an immediate queued before the second request'));
  a.handleJsonWith?.({ ...REQUEST, rid: 2 }, socket([]), second);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  t.same(log, [], 'no reply from a microtask');
  await checkPhase();
  t.same(log, ['replied 200', 'replied 200', 'an immediate queued before the second request'], 'both in one callback, queued by the first');
});

// A burst is capped: past REPLY_BURST_MAX replies waiting, they leave from the next microtask, so
// a broadcast's replies do not wait behind every request the rest of the poll phase reads.
void t.test('replies_burst_max: REPLY_BURST_MAX replies waiting are handed over from the next microtask', async (t) => {
  const log: string[] = [];
  const a = api(t, routerAnswering(() => ({ outcome: packets('{"rid":1,"packets":[]}') }), []));
  const waiters = Array.from({ length: REPLY_BURST_MAX + 1 }, () => waiter(log));
  for (const [i, w] of waiters.entries()) a.handleJsonWith?.({ ...REQUEST, rid: i + 1 }, socket([]), w);
  t.equal(log.length, 0, 'not inside the calls');
  await Promise.resolve();
  t.equal(log.length, REPLY_BURST_MAX + 1, 'every reply told in the burst, with no wait for the check phase');
  // The next reply of the turn waits for the check phase again, as a first one does.
  const late = waiter(log);
  a.handleJsonWith?.({ ...REQUEST, rid: 99 }, socket([]), late);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  t.equal(late.reply, undefined, 'a reply after the burst: not from a microtask');
  await checkPhase();
  t.equal(late.reply?.status, 200, 'but from the check phase');
});
