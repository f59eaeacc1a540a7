/**
 * gen_fsm as a user sees it: one function per state, init results, transitions, bad returns,
 * replies from a later state, stop transitions, terminate, and timers — including the stale timer
 * that fired while its cancel was in flight.
 */
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import type { ExitReason } from '../lib/otp/errors.js';
import * as fsm from '../lib/otp/gen_fsm.js';
import { isAlive, kill, type From } from '../lib/otp/proc_lib.js';
import type { TimerRef } from '../lib/otp/timers.js';
import { down, newSystem, okPid, rejectionOf, settle, type Teardown, QUICK } from './fixtures/otp.js';

type Name = 'idle' | 'armed';

interface Data {
  /** `state:event` for every event a state function saw. */
  readonly log: readonly string[];
  readonly asker?: From<string>;
  readonly timer?: TimerRef;
  /** What `cancelTimer` returned: ms left, 0 (fired and flushed) or false. */
  readonly cancelled?: number | false;
}

interface Peek {
  readonly state: string;
  readonly data: Data;
  readonly live: boolean | undefined;
}

type Ev =
  | { readonly type: 'go' }
  | { readonly type: 'back' }
  | { readonly type: 'arm'; readonly ms: number }
  | { readonly type: 'cancel' }
  | { readonly type: 'timeout' }
  | { readonly type: 'ask'; readonly from: From<string> }
  | { readonly type: 'answer' }
  | { readonly type: 'bad_state' }
  | { readonly type: 'bad_return' }
  | { readonly type: 'throw' }
  | { readonly type: 'stop'; readonly reason: ExitReason }
  | { readonly type: 'peek'; readonly from: From<Peek> };

const BOOM = new Error('boom');

interface Terminated {
  readonly reason: ExitReason;
  readonly state: Name;
  readonly data: Data;
}

const logged = (d: Data, state: string, ev: Ev): Data => ({ ...d, log: [...d.log, `${state}:${ev.type}`] });

/** What both states do alike; `undefined` for the events that make the states differ. */
function common(ev: Ev, d: Data, ctx: fsm.FsmContext<Ev>): fsm.Transition<Name, Data> | undefined {
  const here = ctx.state as Name;
  switch (ev.type) {
    case 'arm':
      return { next: here, data: { ...d, timer: ctx.startTimer(ev.ms, { type: 'timeout' }) } };
    case 'cancel':
      return { next: here, data: { ...d, cancelled: d.timer ? ctx.cancelTimer(d.timer) : undefined } };
    case 'peek':
      ctx.reply(ev.from, { state: ctx.state, data: d, live: d.timer ? ctx.isTimerLive(d.timer) : undefined });
      return { next: here, data: d };
    case 'bad_state':
      return { next: 'nowhere', data: d } as unknown as fsm.Transition<Name, Data>;
    case 'bad_return':
      return 42 as unknown as fsm.Transition<Name, Data>;
    case 'throw':
      throw BOOM;
    case 'stop':
      return { stop: ev.reason, data: { ...d, log: [...d.log, 'stopping'] } };
    case 'go':
    case 'back':
    case 'timeout':
    case 'ask':
    case 'answer':
      return undefined;
  }
}

function machine(terminated: Terminated[] = []): fsm.GenFsm<Data, Name, Data, Ev> {
  return {
    init: (data) => ({ ok: 'idle', data }),
    states: {
      idle(ev, d0, ctx) {
        const d = logged(d0, 'idle', ev);
        const same = common(ev, d, ctx);
        if (same) return same;
        switch (ev.type) {
          case 'go':
            return { next: 'armed', data: d };
          case 'ask':
            // No answer in idle: the caller waits until a later state replies.
            return { next: 'idle', data: { ...d, asker: ev.from } };
          default:
            return { next: 'idle', data: d };
        }
      },
      async armed(ev, d0, ctx) {
        await Promise.resolve();
        const d = logged(d0, 'armed', ev);
        const same = common(ev, d, ctx);
        if (same) return same;
        switch (ev.type) {
          case 'back':
            return { next: 'idle', data: d };
          case 'ask':
            ctx.reply(ev.from, 'armed at once');
            return { next: 'armed', data: d };
          case 'answer':
            if (d.asker) fsm.reply(d.asker, 'answered in armed');
            return { next: 'armed', data: { log: d.log } };
          default:
            return { next: 'armed', data: d };
        }
      },
    },
    terminate(reason, state, data) {
      terminated.push({ reason, state, data });
    },
  };
}

async function startMachine(t: Teardown, opts: { clock?: ManualClock; terminated?: Terminated[] } = {}) {
  const system = newSystem(t);
  const pid = okPid(await fsm.start(system, machine(opts.terminated), { log: [] }, opts.clock ? { clock: opts.clock } : {}));
  return { system, pid };
}

const peek = (pid: fsm.FsmRef<Ev>): Promise<Peek> => fsm.syncSendEvent(pid, (from: From<Peek>): Ev => ({ type: 'peek', from }), 1000);

// ---------------------------------------------------------------------------------------------

void t.test('init', (t) => {
  void t.test('{ ok: state, data } starts in that state with that data', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    t.match(await peek(pid), { state: 'idle', data: { log: ['idle:peek'] } });
  });

  void t.test('{ stop } and { ignore } are start\'s { error } and { ignore }', QUICK, async (t) => {
    const system = newSystem(t);
    const base = machine();
    t.same(await fsm.start(system, { ...base, init: () => ({ stop: 'no' }) }, { log: [] }), { error: 'no' });
    t.same(await fsm.start(system, { ...base, init: () => ({ ignore: true }) }, { log: [] }), { ignore: true });
  });

  void t.test('an unknown initial state is { error: ERR_OTP_BAD_RETURN } with bad_return_from_state_function', QUICK, async (t) => {
    const system = newSystem(t);
    const bad = { ok: 'nowhere', data: { log: [] } } as unknown as fsm.FsmInitResult<Name, Data>;
    const r = await fsm.start(system, { ...machine(), init: () => bad }, { log: [] });
    t.match(r, { error: { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_from_state_function: bad } } });
  });

  void t.test('a throwing init is { error } with the thrown error', QUICK, async (t) => {
    const system = newSystem(t);
    const r = await fsm.start(system, { ...machine(), init: () => { throw BOOM; } }, { log: [] });
    t.ok('error' in r && r.error === BOOM);
  });
  t.end();
});

void t.test('each event goes to the function of the current state, which names the next', QUICK, async (t) => {
  const { pid } = await startMachine(t);
  fsm.sendEvent(pid, { type: 'back' });
  fsm.sendEvent(pid, { type: 'go' });
  fsm.sendEvent(pid, { type: 'go' });
  fsm.sendEvent(pid, { type: 'back' });
  fsm.sendEvent(pid, { type: 'go' });
  const p = await peek(pid);
  t.equal(p.state, 'armed');
  t.same(p.data.log, ['idle:back', 'idle:go', 'armed:go', 'armed:back', 'idle:go', 'armed:peek']);
});

void t.test('bad returns crash the FSM with bad_return_from_state_function; terminate sees the last state', (t) => {
  void t.test('a next state with no function', QUICK, async (t) => {
    const terminated: Terminated[] = [];
    const { pid } = await startMachine(t, { terminated });
    fsm.sendEvent(pid, { type: 'go' });
    const gone = down(pid);
    fsm.sendEvent(pid, { type: 'bad_state' });
    t.match(await gone, {
      code: 'ERR_OTP_BAD_RETURN',
      reason: { bad_return_from_state_function: { next: 'nowhere' } },
    });
    t.match(terminated, [{ reason: { code: 'ERR_OTP_BAD_RETURN' }, state: 'armed', data: { log: ['idle:go'] } }]);
    t.notOk(isAlive(pid));
  });

  void t.test('a value that is no transition at all', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    const gone = down(pid);
    fsm.sendEvent(pid, { type: 'bad_return' });
    t.match(await gone, { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_from_state_function: 42 } });
  });
  t.end();
});

void t.test('syncSendEvent', (t) => {
  void t.test('a state that does not answer leaves the caller waiting; a later state replies', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    let answered = false;
    const asked = fsm.syncSendEvent(pid, (from: From<string>): Ev => ({ type: 'ask', from }), 60_000).then((v) => {
      answered = true;
      return v;
    });
    fsm.sendEvent(pid, { type: 'go' });
    t.equal((await peek(pid)).state, 'armed');
    t.equal(answered, false, 'idle did not answer');
    fsm.sendEvent(pid, { type: 'answer' });
    t.equal(await asked, 'answered in armed');
  });

  void t.test('a state may answer at once', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    fsm.sendEvent(pid, { type: 'go' });
    t.equal(await fsm.syncSendEvent(pid, (from: From<string>): Ev => ({ type: 'ask', from }), 1000), 'armed at once');
  });

  void t.test('ERR_OTP_TIMEOUT when no state answers in time; ERR_OTP_NOPROC once the FSM is gone', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    t.match(await rejectionOf(fsm.syncSendEvent(pid, (from: From<string>): Ev => ({ type: 'ask', from }), 30)), { code: 'ERR_OTP_TIMEOUT' });
    await fsm.stop(pid);
    t.match(await rejectionOf(peek(pid)), { code: 'ERR_OTP_NOPROC' });
  });

  void t.test('ERR_OTP_EXIT at once when the FSM stops before answering', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    const asked = rejectionOf(fsm.syncSendEvent(pid, (from: From<string>): Ev => ({ type: 'ask', from }), 60_000));
    fsm.sendEvent(pid, { type: 'stop', reason: 'gave_up' });
    t.match(await asked, { code: 'ERR_OTP_EXIT', reason: 'gave_up' });
  });
  t.end();
});

void t.test('stopping and terminate', (t) => {
  void t.test('a { stop, data } transition runs terminate with the reason, the state name and the new data', QUICK, async (t) => {
    const terminated: Terminated[] = [];
    const { pid } = await startMachine(t, { terminated });
    fsm.sendEvent(pid, { type: 'go' });
    const gone = down(pid);
    fsm.sendEvent(pid, { type: 'stop', reason: 'normal' });
    t.equal(await gone, 'normal');
    t.same(terminated, [{ reason: 'normal', state: 'armed', data: { log: ['idle:go', 'armed:stop', 'stopping'] } }]);
  });

  void t.test('gen_fsm.stop runs terminate with the current state and data, then resolves', QUICK, async (t) => {
    const terminated: Terminated[] = [];
    const { pid } = await startMachine(t, { terminated });
    fsm.sendEvent(pid, { type: 'go' });
    await fsm.stop(pid, 'shutdown');
    t.same(terminated, [{ reason: 'shutdown', state: 'armed', data: { log: ['idle:go'] } }]);
    t.notOk(isAlive(pid));
  });

  void t.test('a crash runs terminate with the error, the state name and the last data', QUICK, async (t) => {
    const terminated: Terminated[] = [];
    const { pid } = await startMachine(t, { terminated });
    fsm.sendEvent(pid, { type: 'go' });
    const gone = down(pid);
    fsm.sendEvent(pid, { type: 'throw' });
    t.equal(await gone, BOOM);
    t.same(terminated, [{ reason: BOOM, state: 'armed', data: { log: ['idle:go'] } }]);
  });

  void t.test('kill runs no terminate', QUICK, async (t) => {
    const terminated: Terminated[] = [];
    const { pid } = await startMachine(t, { terminated });
    const gone = down(pid);
    kill(pid);
    t.equal(await gone, 'killed');
    await settle();
    t.same(terminated, []);
  });

  void t.test('an event to a stopped FSM is dropped', QUICK, async (t) => {
    const { pid } = await startMachine(t);
    await fsm.stop(pid);
    t.doesNotThrow(() => fsm.sendEvent(pid, { type: 'go' }));
  });
  t.end();
});

void t.test('timers', (t) => {
  void t.test('a timer\'s event comes once the clock reaches it, to the state current then', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    fsm.sendEvent(pid, { type: 'go' });
    t.equal((await peek(pid)).live, true);
    clock.advance(999);
    t.notOk((await peek(pid)).data.log.includes('armed:timeout'));
    clock.advance(1);
    const p = await peek(pid);
    t.ok(p.data.log.includes('armed:timeout'), 'delivered to armed, where the FSM was when it fired');
    t.equal(p.live, false, 'a delivered timer is no longer live');
  });

  void t.test('cancel before it fires: the time left, the event never comes; a second cancel is false', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    fsm.sendEvent(pid, { type: 'cancel' });
    t.equal((await peek(pid)).data.cancelled, 1000);
    clock.advance(10_000);
    fsm.sendEvent(pid, { type: 'cancel' });
    const p = await peek(pid);
    t.equal(p.data.cancelled, false);
    t.equal(p.live, false);
    t.notOk(p.data.log.includes('idle:timeout'));
  });

  void t.test('cancel after the event was delivered is false', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 5 });
    await peek(pid);
    clock.advance(5);
    fsm.sendEvent(pid, { type: 'cancel' });
    const p = await peek(pid);
    t.ok(p.data.log.includes('idle:timeout'));
    t.equal(p.data.cancelled, false);
  });

  // OTP's gen_fsm:cancel_timer flushes a timeout already in the mailbox. Here the race is built
  // deterministically: the cancel event is queued first, then the clock fires the timer in the
  // same tick, so its timeout sits in the mailbox behind the cancel when the cancel runs.
  void t.test('THE STALE TIMER: fired, queued behind the event that cancels it, never delivered', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    await peek(pid);
    fsm.sendEvent(pid, { type: 'cancel' });
    clock.advance(1000);
    t.equal(clock.pendingCount, 0, 'the timer fired: its timeout is in the mailbox');
    const p = await peek(pid);
    t.equal(p.data.cancelled, 0, 'cancel found the timer fired, not yet delivered: flushed, 0 ms left');
    t.same(p.data.log, ['idle:arm', 'idle:peek', 'idle:cancel', 'idle:peek'], 'no timeout event reached the state function');
  });

  void t.test('the stale timer across a state change: the new state never sees it either', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    await peek(pid);
    fsm.sendEvent(pid, { type: 'go' });
    fsm.sendEvent(pid, { type: 'cancel' });
    clock.advance(1000);
    const p = await peek(pid);
    t.equal(p.state, 'armed');
    t.same(p.data.log, ['idle:arm', 'idle:peek', 'idle:go', 'armed:cancel', 'armed:peek']);
  });

  // gen_fsm:cancel_timer/1: erlang:cancel_timer's time left; for a timer that fired and whose
  // timeout is still in the mailbox, the flush and 0; for one already handled or cancelled, false.
  void t.test('cancel_timer: the time left in ms, 0 for a fired timeout it flushed, false when none is left', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    await peek(pid);
    clock.advance(400);
    fsm.sendEvent(pid, { type: 'cancel' });
    t.equal((await peek(pid)).data.cancelled, 600, 'cancelled 400 ms in: 600 ms were left');

    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    await peek(pid);
    fsm.sendEvent(pid, { type: 'cancel' });
    clock.advance(1000);
    const flushed = await peek(pid);
    t.equal(flushed.data.cancelled, 0, 'fired, its timeout queued behind the cancel: flushed, 0');
    t.notOk(flushed.data.log.includes('idle:timeout'), 'and never delivered');

    fsm.sendEvent(pid, { type: 'cancel' });
    t.equal((await peek(pid)).data.cancelled, false, 'nothing left to cancel: false');
  });

  void t.test('timers die with the FSM', QUICK, async (t) => {
    const clock = new ManualClock();
    const { pid } = await startMachine(t, { clock });
    fsm.sendEvent(pid, { type: 'arm', ms: 1000 });
    fsm.sendEvent(pid, { type: 'arm', ms: 2000 });
    await peek(pid);
    t.equal(clock.pendingCount, 2);
    await fsm.stop(pid);
    t.equal(clock.pendingCount, 0);
    t.doesNotThrow(() => clock.advance(5000));
  });
  t.end();
});
