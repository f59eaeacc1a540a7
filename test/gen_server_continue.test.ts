/**
 * gen_server's `{continue, C}` and the Timeout in `{reply, R, S, Timeout}` / `{noreply, S, Timeout}`,
 * as gen_server_SUITE tests them (`continue`, `undef_handle_continue`, `call`'s `call_within`,
 * `info`'s timeout): handle_continue runs before the next message, from init and from every
 * callback; a timeout delivers the info `'timeout'` when no message arrives in time, and any
 * message cancels it.
 */
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import * as gs from '../lib/otp/gen_server.js';
import * as proc from '../lib/otp/proc_lib.js';
import { deferred, down, newSystem, okPid, settle, QUICK } from './fixtures/otp.js';

type Call = 'log' | 'go' | { readonly within: number } | 'crash_in_continue';
type Cast = 'go' | 'other';
type Info = 'go' | gs.TimeoutInfo;
type Cont = 'c1' | 'c2' | 'boom';
type S = readonly string[];

function server(opts: { initContinue?: boolean; initTimeout?: number; terminated?: S[] } = {}): gs.GenServer<void, S, Call, S, Cast, Info, Cont> {
  return {
    init: () => {
      if (opts.initContinue) return { ok: ['init'], continue: 'c1' };
      if (opts.initTimeout !== undefined) return { ok: ['init'], timeout: opts.initTimeout };
      return { ok: ['init'] };
    },
    handleCall(req, _from, log) {
      if (req === 'log') return { reply: log, state: log };
      if (req === 'go') return { reply: [...log, 'call'], state: [...log, 'call'], continue: 'c1' };
      if (req === 'crash_in_continue') return { reply: log, state: [...log, 'before boom'], continue: 'boom' };
      return { reply: log, state: [...log, `within ${req.within}`], timeout: req.within };
    },
    handleCast(msg, log) {
      if (msg === 'go') return { noreply: true, state: [...log, 'cast'], continue: 'c1' };
      return { noreply: true, state: [...log, 'other'] };
    },
    handleInfo(msg, log) {
      if (msg === 'go') return { noreply: true, state: [...log, 'info'], continue: 'c1' };
      return { noreply: true, state: [...log, 'timeout'] };
    },
    handleContinue(cont, log) {
      switch (cont) {
        case 'c1':
          return { noreply: true, state: [...log, 'c1'], continue: 'c2' };
        case 'c2':
          return { noreply: true, state: [...log, 'c2'] };
        case 'boom':
          throw new Error('boom in handleContinue');
      }
    },
    terminate(_reason, log) {
      opts.terminated?.push(log);
    },
  };
}

void t.test('continue', (t) => {
  void t.test('from init: runs before any message, chained continues included', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start(system, server({ initContinue: true }), undefined));
    t.same(await gs.call(pid, 'log'), ['init', 'c1', 'c2']);
  });

  void t.test('from handleCall: the reply first, then the continue, before the next message', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start(system, server(), undefined));
    const replied = gs.call(pid, 'go');
    gs.cast(pid, 'other');
    t.same(await replied, ['init', 'call'], 'the reply was sent before handle_continue ran');
    t.same(await gs.call(pid, 'log'), ['init', 'call', 'c1', 'c2', 'other']);
  });

  void t.test('from handleCast and handleInfo', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start(system, server(), undefined));
    gs.cast(pid, 'go');
    gs.info(pid, 'go');
    t.same(await gs.call(pid, 'log'), ['init', 'cast', 'c1', 'c2', 'info', 'c1', 'c2']);
  });

  void t.test('a crash in handleContinue is a crash: terminate sees the state the callback returned', QUICK, async (t) => {
    const system = newSystem(t);
    const terminated: S[] = [];
    const pid = okPid(await gs.start(system, server({ terminated }), undefined));
    const gone = down(pid);
    await gs.call(pid, 'crash_in_continue');
    t.match(await gone, { message: 'boom in handleContinue' });
    t.same(terminated, [['init', 'before boom']]);
  });
  t.end();
});

void t.test('undef_handle_continue: a continue without handleContinue crashes the server', QUICK, async (t) => {
  const system = newSystem(t);
  const bare: gs.GenServer<void, number, never, never, never, never, 'x'> = { init: () => ({ ok: 0, continue: 'x' }) };
  const gate = deferred<unknown>();
  const pid = okPid(await gs.start(system, bare, undefined, { onExit: (_p, reason) => gate.resolve(reason) }));
  t.match(await gate.promise, { code: 'ERR_OTP_BAD_RETURN', reason: { undef: 'handleContinue' } });
  t.equal(proc.isAlive(pid), false);
});

void t.test('timeout', (t) => {
  void t.test('call_within: {reply, R, S, Timeout} gives a timeout info when no message comes in time', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, server(), undefined, { clock }));
    await gs.call(pid, { within: 1000 });
    clock.advance(999);
    await settle();
    t.same(await stateOf(pid), ['init', 'within 1000'], 'not yet');
    clock.advance(1);
    t.same(await gs.call(pid, 'log'), ['init', 'within 1000', 'timeout']);
  });

  void t.test('any message cancels it', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, server(), undefined, { clock }));
    await gs.call(pid, { within: 1000 });
    clock.advance(500);
    gs.cast(pid, 'other');
    await gs.call(pid, 'log');
    clock.advance(5000);
    t.same(await gs.call(pid, 'log'), ['init', 'within 1000', 'other'], 'no timeout info');
    t.equal(clock.pendingCount, 0, 'the timer is gone');
  });

  void t.test('a timeout that fired behind a message already queued is dropped', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, server(), undefined, { clock }));
    await gs.call(pid, { within: 10 });
    gs.cast(pid, 'other');        // queued first
    clock.advance(10);            // the timeout queues behind it
    t.same(await gs.call(pid, 'log'), ['init', 'within 10', 'other']);
  });

  void t.test('from init: {ok, S, Timeout}; Infinity is no timeout', QUICK, async (t) => {
    const system = newSystem(t);
    const clock = new ManualClock();
    const pid = okPid(await gs.start(system, server({ initTimeout: 100 }), undefined, { clock }));
    clock.advance(100);
    t.same(await gs.call(pid, 'log'), ['init', 'timeout']);
    const never = okPid(await gs.start(system, server({ initTimeout: Infinity }), undefined, { clock }));
    clock.advance(1e12);
    t.same(await gs.call(never, 'log'), ['init']);
  });

  void t.test('a negative timeout is a bad return', QUICK, async (t) => {
    const system = newSystem(t);
    const pid = okPid(await gs.start(system, server(), undefined));
    const gone = down(pid);
    await gs.call(pid, { within: -1 }).catch(() => undefined);
    t.match(await gone, { code: 'ERR_OTP_BAD_RETURN' });
  });
  t.end();
});

void t.test('typed: a timeout needs the timeout info in Info', (t) => {
  const noTimeout: gs.GenServer<void, number, never, never, 'x'> = {
    init: () => ({ ok: 0 }),
    // @ts-expect-error Info does not include 'timeout': a result may not ask for one
    handleCast: (_x, n) => ({ noreply: true, state: n, timeout: 5 }),
  };
  t.ok(noTimeout);
  t.end();
});

const stateOf = (pid: gs.ServerRef<Call, S, Cast, Info>): Promise<unknown> => proc.getState(pid);
