/**
 * gen_server as a user sees it: init results, call/cast/info, deferred replies, stop results,
 * terminate on every kind of stop (and not on kill), and how a call fails.
 */
import t from 'tap';
import { OtpError, type ExitReason } from '../lib/otp/errors.js';
import { ManualClock } from '../lib/otp/clock.js';
import * as gs from '../lib/otp/gen_server.js';
import { isAlive, kill, shutdown, type From } from '../lib/otp/proc_lib.js';
import type { TimerRef } from '../lib/otp/timers.js';
import { deferred, down, newSystem, okPid, recordingLogger, rejectionOf, settle, type Teardown, QUICK } from './fixtures/otp.js';

// ---------------------------------------------------------------------------------------------
// A probe server: every callback result a user can return, chosen by the request.
// ---------------------------------------------------------------------------------------------

interface S {
  readonly n: number;
  readonly held: readonly From<Reply>[];
}
type Call = 'get' | 'hold' | 'stop_reply' | 'stop_noreply' | 'throw' | 'reject' | 'bad';
type Cast = 'inc' | 'release' | 'throw' | 'reject' | 'stop' | 'bad';
type Info = 'inc' | 'stop';
type Reply = number | string;

interface Seen {
  readonly terminated: { reason: ExitReason; state: S }[];
  readonly order: string[];
}

const BOOM = new Error('boom');

function probe(seen: Seen): gs.GenServer<number, S, Call, Reply, Cast, Info> {
  return {
    init: (n) => ({ ok: { n, held: [] } }),
    async handleCall(req, from, s) {
      switch (req) {
        case 'get':
          return { reply: s.n, state: s };
        case 'hold':
          return { noreply: true, state: { ...s, held: [...s.held, from] } };
        case 'stop_reply':
          return { stop: 'normal', reply: 'bye', state: s };
        case 'stop_noreply':
          return { stop: 'normal', state: { ...s, n: s.n + 100 } };
        case 'throw':
          throw BOOM;
        case 'reject':
          await Promise.resolve();
          throw BOOM;
        case 'bad':
          return 42 as unknown as gs.CallResult<S, Reply>;
      }
    },
    async handleCast(msg, s) {
      switch (msg) {
        case 'inc':
          return { noreply: true, state: { ...s, n: s.n + 1 } };
        case 'release':
          for (const from of s.held) gs.reply(from, s.n);
          return { noreply: true, state: { ...s, held: [] } };
        case 'throw':
          throw BOOM;
        case 'reject':
          await new Promise((resolve) => setImmediate(resolve));
          throw BOOM;
        case 'stop':
          return { stop: { shutdown: 'asked' }, state: s };
        case 'bad':
          return { nonsense: true } as unknown as gs.NoReplyResult<S>;
      }
    },
    handleInfo(msg, s) {
      switch (msg) {
        case 'inc':
          return { noreply: true, state: { ...s, n: s.n + 10 } };
        case 'stop':
          return { stop: 'info_stop', state: s };
      }
    },
    terminate(reason, state) {
      seen.terminated.push({ reason, state });
      seen.order.push('terminate');
    },
  };
}

const newSeen = (): Seen => ({ terminated: [], order: [] });

async function startProbe(t: Teardown, n = 0, seen: Seen = newSeen(), logger = recordingLogger()) {
  const system = newSystem(t);
  const pid = okPid(await gs.start(system, probe(seen), n, {
    logger,
    onExit: (_pid, reason) => seen.order.push(`exit:${typeof reason === 'string' ? reason : 'abnormal'}`),
  }));
  return { system, pid, seen, logger };
}

// ---------------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------------

void t.test('init', (t) => {
  void t.test('{ ok } starts a running server holding the init state', QUICK, async (t) => {
    const { pid } = await startProbe(t, 7);
    t.ok(isAlive(pid));
    t.equal(await gs.call(pid, 'get'), 7);
  });

  void t.test('init gets the args and a context whose self is the pid start returns', QUICK, async (t) => {
    const system = newSystem(t);
    let self: unknown;
    const pid = okPid(await gs.start(system, {
      init: (args: { x: number }, ctx) => {
        self = ctx.self;
        return { ok: args.x };
      },
      handleCall: (_r: 'get', _f, x) => ({ reply: x, state: x }),
    }, { x: 3 }));
    t.equal(self, pid);
    t.equal(await gs.call(pid, 'get'), 3);
  });

  void t.test('{ stop } makes start resolve { error: reason }; the process is gone, terminate not run', QUICK, async (t) => {
    const system = newSystem(t);
    let terminated = false;
    let self: gs.ServerContext<never>['self'] | undefined;
    const r = await gs.start(system, {
      init: (_: void, ctx) => {
        self = ctx.self;
        return { stop: 'no_config' };
      },
      terminate: () => {
        terminated = true;
      },
    }, undefined);
    t.same(r, { error: 'no_config' });
    t.equal(terminated, false);
    t.ok(self && !isAlive(self));
  });

  void t.test('{ ignore } makes start resolve { ignore: true }', QUICK, async (t) => {
    const system = newSystem(t);
    t.same(await gs.start(system, { init: () => ({ ignore: true }) }, undefined), { ignore: true });
  });

  void t.test('a throwing init makes start resolve { error } with the thrown error', QUICK, async (t) => {
    const system = newSystem(t);
    const r = await gs.start(system, { init: () => { throw BOOM; } }, undefined);
    t.ok('error' in r && r.error === BOOM);
  });

  void t.test('a rejecting async init makes start resolve { error } with the rejection', QUICK, async (t) => {
    const system = newSystem(t);
    const r = await gs.start(system, {
      init: async () => {
        await Promise.resolve();
        throw BOOM;
      },
    }, undefined);
    t.ok('error' in r && r.error === BOOM);
  });

  void t.test('a bad return is { error: ERR_OTP_BAD_RETURN } carrying the value', QUICK, async (t) => {
    const system = newSystem(t);
    const r = await gs.start(system, { init: () => 'ok' as unknown as gs.InitResult<number> }, undefined);
    t.ok('error' in r);
    if (!('error' in r)) return;
    t.ok(r.error instanceof OtpError);
    t.match(r.error, { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_value: 'ok' } });
  });
  t.end();
});

void t.test('startLink: the link hears of the exit, with the reason, after terminate', QUICK, async (t) => {
  const system = newSystem(t);
  const seen = newSeen();
  const pid = okPid(await gs.startLink({
    parent: system,
    onExit: (who, reason) => seen.order.push(`exit:${String(who === pid)}:${typeof reason === 'string' ? reason : 'abnormal'}`),
  }, probe(seen), 0));
  gs.info(pid, 'stop');
  await down(pid);
  t.same(seen.order, ['terminate', 'exit:true:info_stop']);
});

// ---------------------------------------------------------------------------------------------
// call, cast, info
// ---------------------------------------------------------------------------------------------

void t.test('call, cast and info', (t) => {
  void t.test('casts and infos are handled in mailbox order, before a later call', QUICK, async (t) => {
    const { pid } = await startProbe(t, 0);
    gs.cast(pid, 'inc');
    gs.info(pid, 'inc');
    gs.cast(pid, 'inc');
    t.equal(await gs.call(pid, 'get'), 12);
  });

  void t.test('DEFAULT_CALL_TIMEOUT is OTP\'s 5000 ms', (t) => {
    t.equal(gs.DEFAULT_CALL_TIMEOUT, 5000);
    t.end();
  });

  void t.test('an info message with no handleInfo is logged and dropped; the server keeps running', QUICK, async (t) => {
    const system = newSystem(t);
    const logger = recordingLogger();
    const pid = okPid(await gs.start(system, {
      init: () => ({ ok: 1 }),
      handleCall: (_r: 'get', _f, n: number) => ({ reply: n, state: n }),
    }, undefined, { logger }));
    gs.info(pid as gs.ServerRef<'get', number, never, string>, 'stray');
    t.equal(await gs.call(pid, 'get'), 1);
    t.ok(logger.entries.some((e) => e.level === 'warn' && /unexpected info/.test(e.msg ?? '')));
  });

  void t.test('a cast to a server without handleCast is a crash with ERR_OTP_BAD_RETURN', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start(system, { init: () => ({ ok: 0 }) }, undefined));
    const gone = down(pid);
    gs.cast(pid as gs.ServerRef<never, never, 'x'>, 'x');
    t.match(await gone, { code: 'ERR_OTP_BAD_RETURN' });
  });

  void t.test('a call to a server without handleCall fails the caller with the crash', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start<void, number, 'x', number, never, never>(system, { init: () => ({ ok: 0 }) }, undefined));
    const err = await rejectionOf(gs.call(pid, 'x', 60_000));
    t.equal(err.code, 'ERR_OTP_EXIT');
    t.match(err.reason, { code: 'ERR_OTP_BAD_RETURN' });
  });

  void t.test('a bad return from handleCall / handleCast is a crash with ERR_OTP_BAD_RETURN and the value', QUICK, async (t) => {
    const a = await startProbe(t, 0);
    const err = await rejectionOf(gs.call(a.pid, 'bad', 60_000));
    t.match(err, { code: 'ERR_OTP_EXIT', reason: { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_value: 42 } } });
    t.match(a.seen.terminated, [{ reason: { code: 'ERR_OTP_BAD_RETURN' } }]);

    const b = await startProbe(t, 0);
    const gone = down(b.pid);
    gs.cast(b.pid, 'bad');
    t.match(await gone, { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_value: { nonsense: true } } });
  });

  void t.test('a handleCall result with a state but no reply, noreply or stop is ERR_OTP_BAD_RETURN', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start(system, {
      init: () => ({ ok: 0 }),
      handleCall: (_r: 'x', _f, n: number) => ({ state: n }) as unknown as gs.CallResult<number, number>,
    }, undefined));
    t.match(await rejectionOf(gs.call(pid, 'x', 60_000)), {
      code: 'ERR_OTP_EXIT',
      reason: { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_value: { state: 0 } } },
    });
  });

  void t.test('cast and info to a dead server are dropped without an error', QUICK, async (t) => {
    const { pid } = await startProbe(t, 0);
    await gs.stop(pid);
    t.doesNotThrow(() => {
      gs.cast(pid, 'inc');
      gs.info(pid, 'inc');
    });
    t.notOk(isAlive(pid));
  });
  t.end();
});

// ---------------------------------------------------------------------------------------------
// deferred reply
// ---------------------------------------------------------------------------------------------

void t.test('{ noreply } then reply(from) answers the caller later; others are served meanwhile', QUICK, async (t) => {
  const { pid } = await startProbe(t, 5);
  let answered = false;
  const held = gs.call(pid, 'hold', 60_000).then((v) => {
    answered = true;
    return v;
  });
  gs.cast(pid, 'inc');
  // A second caller gets its answer while the first is still held: the server is not blocked.
  t.equal(await gs.call(pid, 'get'), 6);
  t.equal(answered, false);
  gs.cast(pid, 'release');
  t.equal(await held, 6);
});

// ---------------------------------------------------------------------------------------------
// stop results
// ---------------------------------------------------------------------------------------------

void t.test('stop results', (t) => {
  void t.test('{ stop, reply } answers the caller, then terminate runs with the reason and the state', QUICK, async (t) => {
    const { pid, seen } = await startProbe(t, 4);
    const gone = down(pid);
    t.equal(await gs.call(pid, 'stop_reply'), 'bye');
    t.equal(await gone, 'normal');
    t.match(seen.terminated, [{ reason: 'normal', state: { n: 4 } }]);
    t.notOk(isAlive(pid));
  });

  void t.test('{ stop } without reply: the caller gets ERR_OTP_EXIT with the reason; terminate sees the new state', QUICK, async (t) => {
    const { pid, seen } = await startProbe(t, 4);
    const err = await rejectionOf(gs.call(pid, 'stop_noreply', 60_000));
    t.match(err, { code: 'ERR_OTP_EXIT', reason: 'normal' });
    t.match(seen.terminated, [{ reason: 'normal', state: { n: 104 } }]);
  });

  void t.test('{ stop } from handleCast and handleInfo runs terminate with the reason', QUICK, async (t) => {
    const a = await startProbe(t, 1);
    const goneA = down(a.pid);
    gs.cast(a.pid, 'stop');
    t.same(await goneA, { shutdown: 'asked' });
    t.same(a.seen.terminated, [{ reason: { shutdown: 'asked' }, state: { n: 1, held: [] } }]);

    const b = await startProbe(t, 2);
    const goneB = down(b.pid);
    gs.info(b.pid, 'stop');
    t.equal(await goneB, 'info_stop');
    t.same(b.seen.terminated, [{ reason: 'info_stop', state: { n: 2, held: [] } }]);
  });
  t.end();
});

// ---------------------------------------------------------------------------------------------
// terminate runs on every stop, except kill
// ---------------------------------------------------------------------------------------------

void t.test('terminate', (t) => {
  void t.test('runs on a crash by throw, with the error and the last state, before the link hears', QUICK, async (t) => {
    const { pid, seen, logger } = await startProbe(t, 3);
    gs.cast(pid, 'inc');
    const gone = down(pid);
    gs.cast(pid, 'throw');
    t.equal(await gone, BOOM);
    t.same(seen.terminated, [{ reason: BOOM, state: { n: 4, held: [] } }]);
    t.same(seen.order, ['terminate', 'exit:abnormal']);
    t.ok(logger.entries.some((e) => e.level === 'error' && /crashed/.test(e.msg ?? '')), 'the crash is logged');
  });

  void t.test('runs on a crash by rejected promise', QUICK, async (t) => {
    const { pid, seen } = await startProbe(t, 3);
    const gone = down(pid);
    gs.cast(pid, 'reject');
    t.equal(await gone, BOOM);
    t.same(seen.terminated, [{ reason: BOOM, state: { n: 3, held: [] } }]);
  });

  void t.test('runs on gen_server.stop, which resolves only after terminate; default reason normal', QUICK, async (t) => {
    const { pid, seen } = await startProbe(t, 3);
    const gone = down(pid);
    await gs.stop(pid);
    t.same(seen.terminated, [{ reason: 'normal', state: { n: 3, held: [] } }]);
    t.equal(await gone, 'normal');

    const b = await startProbe(t, 0);
    await gs.stop(b.pid, 'shutdown');
    t.same(b.seen.order, ['terminate', 'exit:shutdown']);
  });

  void t.test('runs on a supervisor\'s shutdown (proc_lib.shutdown), after the messages already queued', QUICK, async (t) => {
    const { pid, seen } = await startProbe(t, 0);
    gs.cast(pid, 'inc');
    gs.cast(pid, 'inc');
    await shutdown(pid, 'shutdown', 1000);
    t.same(seen.terminated, [{ reason: 'shutdown', state: { n: 2, held: [] } }]);
  });

  void t.test('does not run on kill; the exit reason is killed', QUICK, async (t) => {
    const { pid, seen } = await startProbe(t, 0);
    const gone = down(pid);
    kill(pid);
    t.equal(await gone, 'killed');
    await settle();
    t.same(seen.terminated, []);
    t.same(seen.order, ['exit:killed']);
  });

  void t.test('a terminate that throws is logged; the exit keeps its reason', QUICK, async (t) => {
    const system = newSystem(t);
    const logger = recordingLogger();
    const pid = okPid(await gs.start(system, {
      init: () => ({ ok: 0 }),
      terminate: () => { throw new Error('terminate failed'); },
    }, undefined, { logger }));
    const gone = down(pid);
    await gs.stop(pid, 'shutdown');
    t.equal(await gone, 'shutdown');
    t.ok(logger.entries.some((e) => e.level === 'error' && /terminate threw/.test(e.msg ?? '')));
  });
  t.end();
});

// ---------------------------------------------------------------------------------------------
// call failures
// ---------------------------------------------------------------------------------------------

void t.test('call rejections', (t) => {
  void t.test('ERR_OTP_TIMEOUT after the timeout; the server lives on and a late reply is dropped', QUICK, async (t) => {
    const { pid } = await startProbe(t, 1);
    const err = await rejectionOf(gs.call(pid, 'hold', 30));
    t.ok(err instanceof OtpError);
    t.equal(err.code, 'ERR_OTP_TIMEOUT');
    t.ok(isAlive(pid));
    gs.cast(pid, 'release');
    t.equal(await gs.call(pid, 'get'), 1);
  });

  void t.test('ERR_OTP_NOPROC for a dead pid', QUICK, async (t) => {
    const { pid } = await startProbe(t, 0);
    await gs.stop(pid);
    t.match(await rejectionOf(gs.call(pid, 'get')), { code: 'ERR_OTP_NOPROC' });
  });

  // The call timeout is 60 s and this subtest's is 3 s: only an immediate rejection passes.
  void t.test('ERR_OTP_EXIT at once when the server crashes while the call waits', QUICK, async (t) => {
    const { pid } = await startProbe(t, 0);
    const pending = rejectionOf(gs.call(pid, 'hold', 60_000));
    gs.cast(pid, 'throw');
    const err = await pending;
    t.equal(err.code, 'ERR_OTP_EXIT');
    t.equal(err.reason, BOOM);
  });

  void t.test('ERR_OTP_EXIT at once when handleCall itself throws or rejects', QUICK, async (t) => {
    const a = await startProbe(t, 0);
    t.match(await rejectionOf(gs.call(a.pid, 'throw', 60_000)), { code: 'ERR_OTP_EXIT', reason: BOOM });
    const b = await startProbe(t, 0);
    t.match(await rejectionOf(gs.call(b.pid, 'reject', 60_000)), { code: 'ERR_OTP_EXIT', reason: BOOM });
  });

  void t.test('ERR_OTP_EXIT with reason killed when the server is killed while the call waits', QUICK, async (t) => {
    const { pid } = await startProbe(t, 0);
    const pending = rejectionOf(gs.call(pid, 'hold', 60_000));
    await settle();
    kill(pid);
    t.match(await pending, { code: 'ERR_OTP_EXIT', reason: 'killed' });
  });
  t.end();
});

// ---------------------------------------------------------------------------------------------
// kill during a running async handler
// ---------------------------------------------------------------------------------------------

void t.test('kill during an async handler: its result is ignored and nothing more is taken from the mailbox', QUICK, async (t) => {
  const system = newSystem(t);
  const gate = deferred();
  const entered = deferred();
  const handled: string[] = [];
  let terminated = false;
  let exits = 0;
  const pid = okPid(await gs.start(system, {
    init: () => ({ ok: 0 }),
    async handleCast(msg: 'slow' | 'next', n: number) {
      handled.push(msg);
      if (msg === 'slow') {
        entered.resolve();
        await gate.promise;
        return { stop: 'from_the_killed_handler', state: n + 1 };
      }
      return { noreply: true, state: n + 1 };
    },
    terminate: () => {
      terminated = true;
    },
  }, undefined, { onExit: () => exits++ }));
  const gone = down(pid);
  gs.cast(pid, 'slow');
  gs.cast(pid, 'next');
  await entered.promise;
  kill(pid);
  t.equal(await gone, 'killed');
  gate.resolve();
  await settle();
  t.same(handled, ['slow'], 'the queued cast never ran');
  t.equal(terminated, false, 'the handler\'s { stop } was ignored: no terminate');
  t.equal(exits, 1, 'the link heard of one exit');
});

// ---------------------------------------------------------------------------------------------
// timers: sendAfter / cancelTimer
// ---------------------------------------------------------------------------------------------

type TInfo = 'tick';
type TCast = 'arm' | 'cancel';
interface TState {
  readonly ticks: number;
  readonly ref: TimerRef | undefined;
  readonly cancelled: number | false | undefined;
}

function ticker(): gs.GenServer<void, TState, 'get', TState, TCast, TInfo> {
  return {
    init: () => ({ ok: { ticks: 0, ref: undefined, cancelled: undefined } }),
    handleCall: (_r, _f, s) => ({ reply: s, state: s }),
    handleCast(msg, s, ctx) {
      switch (msg) {
        case 'arm':
          return { noreply: true, state: { ...s, ref: ctx.sendAfter(1000, 'tick') } };
        case 'cancel':
          return { noreply: true, state: { ...s, cancelled: s.ref ? ctx.cancelTimer(s.ref) : undefined } };
      }
    },
    handleInfo: (_tick, s) => ({ noreply: true, state: { ...s, ticks: s.ticks + 1 } }),
  };
}

void t.test('sendAfter', (t) => {
  void t.test('delivers the info once the clock reaches the time, not before', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, ticker(), undefined, { clock }));
    gs.cast(pid, 'arm');
    await gs.call(pid, 'get');
    clock.advance(999);
    t.equal((await gs.call(pid, 'get')).ticks, 0);
    clock.advance(1);
    t.equal((await gs.call(pid, 'get')).ticks, 1);
  });

  void t.test('cancelTimer before it fires: the ms left, and the info never comes', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, ticker(), undefined, { clock }));
    gs.cast(pid, 'arm');
    await gs.call(pid, 'get');
    clock.advance(250);
    gs.cast(pid, 'cancel');
    t.equal((await gs.call(pid, 'get')).cancelled, 750);
    clock.advance(5000);
    t.equal((await gs.call(pid, 'get')).ticks, 0);
  });

  void t.test('the stale timer: fired and queued behind a cancel, it is never delivered', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, ticker(), undefined, { clock }));
    gs.cast(pid, 'arm');
    await gs.call(pid, 'get');
    // Same tick: the cancel is queued first, then the timer fires and its info queues behind it.
    gs.cast(pid, 'cancel');
    clock.advance(1000);
    t.equal(clock.pendingCount, 0, 'the timer did fire');
    const s = await gs.call(pid, 'get');
    t.equal(s.cancelled, 0, 'fired and flushed: 0, as gen_fsm:cancel_timer/1');
    t.equal(s.ticks, 0, 'the fired info was flushed');
    gs.cast(pid, 'cancel');
    t.equal((await gs.call(pid, 'get')).cancelled, false, 'a second cancel: false');
  });

  void t.test('timers die with the process', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, ticker(), undefined, { clock }));
    gs.cast(pid, 'arm');
    await gs.call(pid, 'get');
    t.equal(clock.pendingCount, 1);
    await gs.stop(pid);
    t.equal(clock.pendingCount, 0);
  });
  t.end();
});
