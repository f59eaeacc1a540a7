/**
 * gen_statem as a user sees it, the cases named as OTP's gen_statem_SUITE names them: starting and
 * stopping in both callback modes, calls and replies, stop_and_reply, state enter calls, the order
 * of inserted, postponed and timeout events, the three timeouts (and which change cancels which),
 * a stale timeout never delivered, hibernate as a no-op.
 */
import t, { type Test } from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import type { ExitReason } from '../lib/otp/errors.js';
import * as statem from '../lib/otp/gen_statem.js';
import { getState, isAlive, kill, type From } from '../lib/otp/proc_lib.js';
import { whereis } from '../lib/otp/registry.js';
import { down, newSystem, okPid, rejectionOf, settle, type Teardown, QUICK } from './fixtures/otp.js';

// ---------------------------------------------------------------------------------------------
// A typed machine in each callback mode: a code lock (OTP's own gen_statem example).
// ---------------------------------------------------------------------------------------------

type LockState = 'locked' | 'open';
type LockEvents = {
  call: 'state' | 'crash' | 'bad_return' | { stop: ExitReason } | { delayed: number };
  reply: string;
  cast: { button: string };
  state_timeout: 'lock';
};
interface LockData {
  readonly code: string;
  readonly pressed: string;
}

const OPEN_MS = 10_000;

const lockStateFunctions: statem.GenStatem<string, LockState, LockData, LockEvents> = {
  callbackMode: 'state_functions',
  init: (code) => ({ ok: 'locked', data: { code, pressed: '' } }),
  states: {
    locked(ev, d) {
      switch (ev.type) {
        case 'cast': {
          const pressed = d.pressed + ev.content.button;
          if (pressed === d.code) {
            return { next: 'open', data: { ...d, pressed: '' }, actions: [{ type: 'state_timeout', time: OPEN_MS, content: 'lock' }] };
          }
          return { keepState: { ...d, pressed: d.code.startsWith(pressed) ? pressed : '' } };
        }
        case 'call':
          return common(ev, 'locked');
        case 'state_timeout':
          return { keepStateAndData: true };
      }
    },
    open(ev, d) {
      switch (ev.type) {
        case 'cast':
          return { keepStateAndData: true, actions: [{ type: 'postpone' }] };
        case 'call':
          return common(ev, 'open');
        case 'state_timeout':
          return { next: 'locked', data: d };
      }
    },
  },
};

/** The same lock with handle_event_function: one function for every state. */
const lockHandleEvent: statem.GenStatem<string, LockState, LockData, LockEvents> = {
  callbackMode: 'handle_event_function',
  init: (code) => ({ ok: 'locked', data: { code, pressed: '' } }),
  handleEvent(ev, state, d, ctx) {
    return lockStateFunctions.states[state](ev, d, ctx);
  },
};

type LockCall = Extract<statem.Event<LockEvents>, { type: 'call' }>;
function common(ev: LockCall, here: LockState): statem.Result<LockState, LockData, LockEvents> {
  const req = ev.content;
  if (req === 'state') return { keepStateAndData: true, actions: [{ type: 'reply', from: ev.from, reply: here }] };
  if (req === 'crash') throw new Error('crash on purpose');
  if (req === 'bad_return') return 'badreturn' as unknown as statem.Result<LockState, LockData, LockEvents>;
  if ('stop' in req) return { stopAndReply: req.stop, replies: [{ type: 'reply', from: ev.from, reply: 'stopped' }] };
  return { keepStateAndData: true }; // delayed: never answered
}

const MODES = [['state_functions', lockStateFunctions], ['handle_event_function', lockHandleEvent]] as const;

/** OTP's do_func_test / do_sync_func_test: the lock opens with its code and locks after OPEN_MS. */
async function doFuncTest(t: Test, pid: statem.StatemRef<LockEvents>, clock: ManualClock): Promise<void> {
  t.equal(await statem.call(pid, 'state'), 'locked');
  for (const button of '1234') statem.cast(pid, { button });
  t.equal(await statem.call(pid, 'state'), 'open');
  clock.advance(OPEN_MS);
  t.equal(await statem.call(pid, 'state'), 'locked');
}

// ---------------------------------------------------------------------------------------------
// A scripted machine (OTP's map_statem): every callback is logged as "state type content".
// ---------------------------------------------------------------------------------------------

type All = {
  call: unknown; reply: unknown; cast: unknown; info: unknown; internal: unknown;
  timeout: unknown; state_timeout: unknown; generic_timeout: unknown; enter: true;
};
type AnyResult = statem.Result<unknown, unknown, All>;
/** What a state does with an event; undefined is keep_state_and_data. */
type Script = (ev: statem.CallbackEvent<unknown, All>, data: unknown) => AnyResult | undefined;

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function logLine(state: unknown, ev: statem.CallbackEvent<unknown, All>): string {
  switch (ev.type) {
    case 'enter': return `${show(state)} enter ${show(ev.oldState)}`;
    case 'generic_timeout': return `${show(state)} generic_timeout:${ev.name} ${show(ev.content)}`;
    case 'call': return `${show(state)} call ${show(ev.content)}`;
    default: return `${show(state)} ${ev.type} ${show(ev.content)}`;
  }
}

interface Scripted {
  readonly pid: statem.StatemRef<All>;
  readonly log: string[];
  readonly clock: ManualClock;
  readonly terminated: { reason: ExitReason; state: unknown; data: unknown }[];
  /** Everything sent before has been handled (sys:get_state goes through the mailbox). */
  sync(): Promise<unknown>;
}

async function scripted(
  t: Teardown, states: Record<string, Script>,
  init: { state?: unknown; data?: unknown; actions?: statem.Action<All>[] } = {},
): Promise<Scripted> {
  const system = newSystem(t);
  const clock = new ManualClock();
  const log: string[] = [];
  const terminated: Scripted['terminated'] = [];
  const behaviour: statem.GenStatem<void, unknown, unknown, All> = {
    callbackMode: 'handle_event_function',
    stateEnter: true,
    init: () => ({ ok: init.state ?? 'start', data: init.data, ...(init.actions ? { actions: init.actions } : {}) }),
    handleEvent(ev, state, data) {
      log.push(logLine(state, ev));
      const key = typeof state === 'string' ? state : show(state);
      return states[key]?.(ev, data) ?? { keepStateAndData: true };
    },
    terminate(reason, state, data) {
      terminated.push({ reason, state, data });
    },
  };
  const pid = okPid(await statem.start(system, behaviour, undefined, { clock }));
  return { pid, log, clock, terminated, sync: () => getState(pid) };
}

const cast = (s: Scripted, content: unknown): void => statem.cast(s.pid, content);
const lines = (s: Scripted): string[] => s.log.filter((l) => !l.includes(' enter '));

// ---------------------------------------------------------------------------------------------
// start, stop, abnormal: in both callback modes
// ---------------------------------------------------------------------------------------------

for (const [mode, lock] of MODES) {
  void t.test(`start (${mode})`, (t) => {
    void t.test('start1: what happens if a machine is started and used: it answers calls, moves on casts and timeouts, stops', QUICK, async (t) => {
      const system = newSystem(t);
      const clock = new ManualClock();
      const pid = okPid(await statem.start(system, lock, '1234', { clock }));
      await doFuncTest(t, pid, clock);
      await statem.stop(pid);
      t.notOk(isAlive(pid));
    });
    void t.test('start4: what happens if init returns ignore: start is { ignore }', QUICK, async (t) => {
      const system = newSystem(t);
      t.same(await statem.start(system, { ...lock, init: () => ({ ignore: true }) }, ''), { ignore: true });
    });
    void t.test('start5: what happens if init returns stop: start is { error: reason }', QUICK, async (t) => {
      const system = newSystem(t);
      t.same(await statem.start(system, { ...lock, init: () => ({ stop: 'stopped' }) }, ''), { error: 'stopped' });
    });
    void t.test('start6: what happens if a machine is started linked: it works, and the link hears its exit once, after terminate', QUICK, async (t) => {
      const system = newSystem(t);
      const clock = new ManualClock();
      const events: string[] = [];
      const link = { parent: system, onExit: (_pid: unknown, reason: ExitReason) => { events.push(`exit ${JSON.stringify(reason)}`); } };
      const pid = okPid(await statem.startLink(link, { ...lock, terminate: () => { events.push('terminate'); } }, '1234', { clock }));
      await doFuncTest(t, pid, clock);
      await statem.stop(pid, 'shutdown');
      t.same(events, ['terminate', 'exit "shutdown"']);
    });
    void t.test('start8: what happens if a name is taken: { error: { already_started: pid } }, and the name reaches the machine', QUICK, async (t) => {
      const system = newSystem(t);
      const clock = new ManualClock();
      const pid = okPid(await statem.start(system, lock, '1234', { name: 'my_stm', clock }));
      t.same(await statem.start(system, lock, '1234', { name: 'my_stm' }), { error: { already_started: pid } });
      await doFuncTest(t, whereis(system, 'my_stm') as statem.StatemRef<LockEvents>, clock);
      await statem.stop(pid);
    });
    void t.test('bad init: what happens if init returns something else: { error } with bad_return_from_init', QUICK, async (t) => {
      const system = newSystem(t);
      const bad = { ok: 'nowhere' } as unknown as statem.InitResult<LockState, LockData, LockEvents>;
      t.match(await statem.start(system, { ...lock, init: () => bad }, ''), {
        error: { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_from_init: bad } },
      });
    });
    t.end();
  });

  void t.test(`stop (${mode})`, (t) => {
    void t.test('stop1: what happens if a machine is stopped: terminate runs with normal, it is gone, a second stop resolves', QUICK, async (t) => {
      const system = newSystem(t);
      const seen: ExitReason[] = [];
      const pid = okPid(await statem.start(system, { ...lock, terminate: (r: ExitReason) => { seen.push(r); } }, ''));
      await statem.stop(pid);
      t.notOk(isAlive(pid));
      t.same(seen, ['normal']);
      await statem.stop(pid); // OTP exits noproc here; proc_lib's stop resolves (docs/otp.md)
    });
    void t.test('stop2: what happens if it is stopped with another reason: terminate sees that reason, the state and the data', QUICK, async (t) => {
      const system = newSystem(t);
      const seen: unknown[] = [];
      const pid = okPid(await statem.start(system, { ...lock, terminate: (r: ExitReason, s: LockState, d: LockData) => { seen.push([r, s, d]); } }, '12'));
      statem.cast(pid, { button: '1' });
      await statem.stop(pid, 'other_reason');
      t.same(seen, [['other_reason', 'locked', { code: '12', pressed: '1' }]]);
    });
    t.end();
  });

  void t.test(`abnormal (${mode})`, (t) => {
    void t.test('abnormal1: what happens if a call is not answered in time: ERR_OTP_TIMEOUT, the machine lives on', QUICK, async (t) => {
      const system = newSystem(t);
      const pid = okPid(await statem.start(system, lock, ''));
      t.match(await rejectionOf(statem.call(pid, { delayed: 1 }, 10)), { code: 'ERR_OTP_TIMEOUT' });
      t.equal(await statem.call(pid, 'state'), 'locked');
      await statem.stop(pid);
    });
    void t.test('abnormal2: what happens if a callback returns garbage: the machine crashes with bad_return_from_state_function, the caller hears at once', QUICK, async (t) => {
      const system = newSystem(t);
      const pid = okPid(await statem.start(system, lock, ''));
      const gone = down(pid);
      t.match(await rejectionOf(statem.call(pid, 'bad_return')), {
        code: 'ERR_OTP_EXIT', reason: { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_from_state_function: 'badreturn' } },
      });
      t.match(await gone, { code: 'ERR_OTP_BAD_RETURN' });
    });
    void t.test('abnormal3: what happens if a callback throws: the machine exits with the error, terminate sees the state', QUICK, async (t) => {
      const system = newSystem(t);
      const seen: unknown[] = [];
      const pid = okPid(await statem.start(system, { ...lock, terminate: (r: ExitReason, s: LockState) => { seen.push([r, s]); } }, ''));
      t.match(await rejectionOf(statem.call(pid, 'crash')), { code: 'ERR_OTP_EXIT', reason: { message: 'crash on purpose' } });
      t.match(seen, [[{ message: 'crash on purpose' }, 'locked']]);
    });
    t.end();
  });
}

void t.test('shutdown: what happens if a call asks to stop with {shutdown, reason}: replied, then exit with it; later calls are noproc', QUICK, async (t) => {
  const system = newSystem(t);
  const pid = okPid(await statem.start(system, lockStateFunctions, ''));
  const gone = down(pid);
  t.equal(await statem.call(pid, { stop: { shutdown: 'reason' } }), 'stopped');
  t.same(await gone, { shutdown: 'reason' });
  t.match(await rejectionOf(statem.call(pid, 'state')), { code: 'ERR_OTP_NOPROC' });
});

void t.test('kill: what happens if a machine is killed: no terminate, its timeouts die with it', QUICK, async (t) => {
  const s = await scripted(t, { start: () => ({ keepStateAndData: true, actions: [{ type: 'state_timeout', time: 10, content: 'x' }] }) });
  cast(s, 'arm');
  await s.sync();
  t.equal(statem.timeouts(s.pid).length, 1);
  kill(s.pid);
  t.same(statem.timeouts(s.pid), []);
  s.clock.advance(10);
  await settle();
  t.same(s.terminated, []);
  t.same(lines(s), ['start cast arm']);
});

// ---------------------------------------------------------------------------------------------
// Calls, replies, stop_and_reply
// ---------------------------------------------------------------------------------------------

void t.test('call_format: what happens if a machine is called: a { type: call, from, content } event, answered by a reply action from any later state', QUICK, async (t) => {
  let kept: From<unknown> | undefined;
  const s = await scripted(t, {
    start(ev) {
      if (ev.type !== 'call') return undefined;
      if (ev.content === 'now') return { keepStateAndData: true, actions: [{ type: 'reply', from: ev.from, reply: 'at once' }] };
      kept = ev.from;
      return { next: 'later', data: undefined };
    },
    later(ev) {
      if (ev.type === 'cast' && kept) return { keepStateAndData: true, actions: [{ type: 'reply', from: kept, reply: 'from later' }] };
      return undefined;
    },
  });
  t.equal(await statem.call(s.pid, 'now'), 'at once');
  const waiting = statem.call(s.pid, 'wait'); // DEFAULT_CALL_TIMEOUT is infinity, as OTP's call/2
  await s.sync();
  cast(s, 'answer');
  t.equal(await waiting, 'from later');
  t.equal(statem.DEFAULT_CALL_TIMEOUT, Infinity);
});

void t.test('stop_and_reply: what happens if a state stops with replies: every caller is answered, then the machine exits with the reason', QUICK, async (t) => {
  let first: From<unknown> | undefined;
  const s = await scripted(t, {
    start(ev, data) {
      if (ev.type !== 'call') return undefined;
      first = ev.from;
      return { next: 'wait', data };
    },
    wait(ev) {
      if (ev.type !== 'call' || !first) return undefined;
      return { stopAndReply: 'reason', replies: [{ type: 'reply', from: first, reply: 'reply1' }, { type: 'reply', from: ev.from, reply: 'reply2' }], data: 'last' };
    },
  });
  const gone = down(s.pid);
  const r1 = statem.call(s.pid, 'echo');
  const r2 = statem.call(s.pid, 'stop');
  t.same(await Promise.all([r1, r2]), ['reply1', 'reply2']);
  t.equal(await gone, 'reason');
  t.match(s.terminated, [{ reason: 'reason', state: 'wait', data: 'last' }]);
  t.match(await rejectionOf(statem.call(s.pid, 'hej')), { code: 'ERR_OTP_NOPROC' });
});

void t.test('event_types: what happens if each kind of event arrives: the callback sees its OTP type and content', QUICK, async (t) => {
  const s = await scripted(t, {
    start(ev) {
      if (ev.type === 'cast' && ev.content === 'go') {
        return {
          keepStateAndData: true,
          actions: [
            { type: 'next_event', event: { type: 'internal', content: 'i' } },
            { type: 'state_timeout', time: 10, content: 's' },
            { type: 'generic_timeout', name: 'g', time: 20, content: 'g' },
          ],
        };
      }
      if (ev.type === 'call') return { keepStateAndData: true, actions: [{ type: 'reply', from: ev.from, reply: 'ok' }] };
      if (ev.type === 'generic_timeout') return { keepStateAndData: true, actions: [{ type: 'timeout', time: 30, content: 'e' }] };
      return undefined;
    },
  });
  statem.info(s.pid, 'msg');
  t.equal(await statem.call(s.pid, 'req'), 'ok');
  cast(s, 'go');
  await s.sync();
  s.clock.advance(10);
  s.clock.advance(10);
  await s.sync();
  s.clock.advance(30); // nothing happened for 30 ms after the generic timeout: the event timeout
  await s.sync();
  t.same(s.log, [
    'start enter start', 'start info msg', 'start call req', 'start cast go', 'start internal i',
    'start state_timeout s', 'start generic_timeout:g g', 'start timeout e',
  ]);
});

// ---------------------------------------------------------------------------------------------
// State enter calls
// ---------------------------------------------------------------------------------------------

void t.test('state_enter', (t) => {
  void t.test('what happens on entering a state: the initial state, every state change and repeat_state make an enter call; keep_state and a next to the same state do not', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev, data) {
        if (ev.type !== 'cast') return undefined;
        switch (ev.content) {
          case 'same': return { next: 'start', data };
          case 'keep': return { keepState: data };
          case 'repeat': return { repeatStateAndData: true };
          case 'go': return { next: 'other', data };
          default: return undefined;
        }
      },
    });
    for (const c of ['same', 'keep', 'repeat', 'go']) cast(s, c);
    await s.sync();
    t.same(s.log, [
      'start enter start', 'start cast same', 'start cast keep', 'start cast repeat', 'start enter start', 'start cast go', 'other enter start',
    ]);
  });
  void t.test('what happens if an enter call sets timeouts and replies: they apply, appended to the actions of the transition', QUICK, async (t) => {
    let from: From<unknown> | undefined;
    const s = await scripted(t, {
      start(ev, data) {
        if (ev.type !== 'call') return undefined;
        from = ev.from;
        return { next: 'other', data, actions: [{ type: 'state_timeout', time: 50, content: 'from event' }] };
      },
      other(ev) {
        if (ev.type === 'enter' && from) {
          return { keepStateAndData: true, actions: [{ type: 'reply', from, reply: 'entered' }, { type: 'state_timeout', time: 5, content: 'from enter' }] };
        }
        return undefined;
      },
    });
    t.equal(await statem.call(s.pid, 'go'), 'entered');
    s.clock.advance(5);
    await s.sync();
    s.clock.advance(50);
    await s.sync();
    t.same(lines(s), ['start call go', 'other state_timeout from enter'], 'the last state_timeout set wins');
  });
  void t.test('what happens if an enter call changes state or postpones: the machine crashes (bad_state_enter_…)', QUICK, async (t) => {
    const system = newSystem(t);
    const base: statem.GenStatem<void, 'a' | 'b', number, { cast: 'go' | 'post'; enter: true }> = {
      callbackMode: 'state_functions',
      stateEnter: true,
      init: () => ({ ok: 'a', data: 0 }),
      states: {
        a: (ev) => (ev.type === 'enter' ? { keepStateAndData: true } : { next: 'b', data: ev.content === 'go' ? 1 : 2 }),
        b: (ev, n) => (ev.type === 'enter'
          ? (n === 1 ? { next: 'a', data: n } : { keepStateAndData: true, actions: [{ type: 'postpone' } as unknown as statem.EnterAction<{ cast: 'go' | 'post'; enter: true }>] })
          : { keepStateAndData: true }),
      },
    };
    const p1 = okPid(await statem.start(system, base, undefined));
    const d1 = down(p1);
    statem.cast(p1, 'go');
    t.match(await d1, { code: 'ERR_OTP_BAD_RETURN', reason: { bad_state_enter_return_from_state_function: { next: 'a' } } });
    const p2 = okPid(await statem.start(system, base, undefined));
    const d2 = down(p2);
    statem.cast(p2, 'post');
    t.match(await d2, { code: 'ERR_OTP_BAD_RETURN', reason: { bad_state_enter_action_from_state_function: { type: 'postpone' } } });
  });
  t.end();
});

// ---------------------------------------------------------------------------------------------
// Event order: next_event, postpone, timeouts of 0
// ---------------------------------------------------------------------------------------------

void t.test('event_order: what happens if events are inserted, postponed and timed out at 0 together: inserted first, then the postponed, oldest first; the event timeout of 0 never', QUICK, async (t) => {
  const s = await scripted(t, {
    start(ev, data) {
      if (ev.type === 'cast') return { keepStateAndData: true, actions: [{ type: 'postpone' }] };
      if (ev.type !== 'call') return undefined;
      return {
        next: 'buffer', data,
        actions: [
          { type: 'next_event', event: { type: 'internal', content: 3 } },
          { type: 'next_event', event: { type: 'internal', content: 4 } },
          { type: 'timeout', time: 0, content: 5 }, // cancelled by the queued events
          { type: 'reply', from: ev.from, reply: 'ok' },
        ],
      };
    },
  });
  cast(s, 1);
  cast(s, 2);
  t.equal(await statem.call(s.pid, 'buffer'), 'ok');
  cast(s, 6);
  await s.sync();
  t.same(lines(s), ['start cast 1', 'start cast 2', 'start call buffer', 'buffer internal 3', 'buffer internal 4', 'buffer cast 1', 'buffer cast 2', 'buffer cast 6']);
});

void t.test('postpone: what happens if an event is postponed: it is retried after the next state change, not after keep_state or repeat_state', QUICK, async (t) => {
  const s = await scripted(t, {
    start(ev, data) {
      if (ev.type !== 'cast') return undefined;
      switch (ev.content) {
        case 'keep': return { keepStateAndData: true };
        case 'repeat': return { repeatStateAndData: true };
        case 'go': return { next: 'other', data };
        default: return { keepStateAndData: true, actions: [{ type: 'postpone' }] };
      }
    },
    other(ev, data) {
      if (ev.type === 'cast' && ev.content === 'back') return { next: 'start', data };
      return undefined;
    },
  });
  for (const c of ['a', 'b', 'keep', 'repeat', 'go']) cast(s, c);
  await s.sync();
  t.same(lines(s), ['start cast a', 'start cast b', 'start cast keep', 'start cast repeat', 'start cast go', 'other cast a', 'other cast b']);
  s.log.length = 0;
  cast(s, 'back');
  await s.sync();
  t.same(lines(s), ['other cast back'], 'handled in other, nothing is left postponed');
});

void t.test('next_event: what happens if events are inserted: handled next, in list order, before the mailbox; from init too', QUICK, async (t) => {
  const s = await scripted(t, {
    start(ev) {
      if (ev.type === 'cast' && ev.content === 'go') {
        return {
          keepStateAndData: true,
          actions: [
            { type: 'next_event', event: { type: 'internal', content: 'first' } },
            { type: 'next_event', event: { type: 'cast', content: 'second' } },
          ],
        };
      }
      return undefined;
    },
  }, { actions: [{ type: 'next_event', event: { type: 'internal', content: 'from init' } }] });
  cast(s, 'go');
  cast(s, 'after');
  await s.sync();
  t.same(s.log, ['start enter start', 'start internal from init', 'start cast go', 'start internal first', 'start cast second', 'start cast after']);
});

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

void t.test('state_timeout', (t) => {
  void t.test('what happens if a state timeout is set: it fires in that state after its time; events meanwhile do not cancel it', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev) {
        if (ev.type === 'cast' && ev.content === 'arm') return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: 100, content: 'st' }] };
        return undefined;
      },
    });
    cast(s, 'arm');
    await s.sync();
    s.clock.advance(50);
    cast(s, 'noise');
    await s.sync();
    s.clock.advance(49);
    await s.sync();
    t.same(lines(s), ['start cast arm', 'start cast noise']);
    s.clock.advance(1);
    await s.sync();
    t.same(lines(s), ['start cast arm', 'start cast noise', 'start state_timeout st']);
    t.same(statem.timeouts(s.pid), []);
  });
  void t.test('what happens if the state changes: the state timeout is cancelled; one set by that transition belongs to the new state', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev, data) {
        if (ev.type !== 'cast') return undefined;
        if (ev.content === 'arm') return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: 100, content: 'old' }] };
        if (ev.content === 'go') return { next: 'other', data };
        if (ev.content === 'go+arm') return { next: 'other', data, actions: [{ type: 'state_timeout', time: 100, content: 'new' }] };
        return undefined;
      },
      other(ev, data) {
        if (ev.type === 'cast' && ev.content === 'back') return { next: 'start', data };
        return undefined;
      },
    });
    cast(s, 'arm');
    cast(s, 'go');
    await s.sync();
    t.same(statem.timeouts(s.pid), []);
    s.clock.advance(200);
    cast(s, 'back');
    cast(s, 'arm');
    cast(s, 'go+arm');
    await s.sync();
    s.clock.advance(100);
    await s.sync();
    t.same(lines(s), ['start cast arm', 'start cast go', 'other cast back', 'start cast arm', 'start cast go+arm', 'other state_timeout new']);
  });
  void t.test('what happens if it fired but its message is queued behind the event that changes state: never delivered (the stale timeout)', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev, data) {
        if (ev.type !== 'cast') return undefined;
        if (ev.content === 'arm') return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: 100, content: 'stale' }] };
        if (ev.content === 'go') return { next: 'other', data };
        return undefined;
      },
    });
    cast(s, 'arm');
    await s.sync();
    cast(s, 'go');           // queued first
    s.clock.advance(100);     // the timeout's message queued behind it
    await s.sync();
    await settle();
    t.same(lines(s), ['start cast arm', 'start cast go']);
  });
  void t.test('repeat_state does not cancel it; setting it again restarts it; cancel, Infinity and update do what they say', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev) {
        if (ev.type !== 'cast') return undefined;
        switch (ev.content) {
          case 'arm': return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: 100, content: 'a' }] };
          case 'repeat': return { repeatStateAndData: true };
          case 'cancel': return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: 'cancel' }] };
          case 'infinity': return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: Infinity, content: 'x' }] };
          case 'update': return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: 'update', content: 'updated' }] };
          default: return undefined;
        }
      },
    });
    cast(s, 'arm');
    await s.sync();
    s.clock.advance(60);
    cast(s, 'repeat');
    cast(s, 'arm'); // restarted: due at 160
    await s.sync();
    s.clock.advance(60);
    await s.sync();
    t.same(lines(s), ['start cast arm', 'start cast repeat', 'start cast arm'], 'not at 100: restarted at 60');
    cast(s, 'update');
    await s.sync();
    s.clock.advance(40);
    await s.sync();
    t.same(lines(s).at(-1), 'start state_timeout updated', 'fires at 160 with the updated content');
    cast(s, 'arm');
    cast(s, 'cancel');
    cast(s, 'arm');
    cast(s, 'infinity');
    await s.sync();
    s.clock.advance(1000);
    await s.sync();
    t.notOk(lines(s).slice(5).some((l) => l.includes('state_timeout')), 'cancelled both ways');
    cast(s, 'update'); // none running: as a timeout of 0
    await s.sync();
    t.same(lines(s).slice(-2), ['start cast update', 'start state_timeout updated']);
  });
  void t.test('what happens if the time is absolute: it fires at that clock time; one already past fires at once', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev) {
        if (ev.type === 'cast' && typeof ev.content === 'number') {
          return { keepStateAndData: true, actions: [{ type: 'state_timeout', time: ev.content, abs: true, content: ev.content }] };
        }
        return undefined;
      },
    });
    s.clock.advance(1000);
    cast(s, 1500);
    await s.sync();
    s.clock.advance(499);
    await s.sync();
    t.same(lines(s), ['start cast 1500']);
    s.clock.advance(1);
    await s.sync();
    cast(s, 10);
    await s.sync();
    await s.sync();
    t.same(lines(s), ['start cast 1500', 'start state_timeout 1500', 'start cast 10', 'start state_timeout 10']);
  });
  t.end();
});

void t.test('event_timeout', (t) => {
  void t.test('what happens if no event comes: the event timeout fires; any event (a cast, an info, another timeout) cancels it', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev) {
        if (ev.type === 'cast' && ev.content === 'arm') {
          return { keepStateAndData: true, actions: [{ type: 'timeout', time: 100, content: 'e' }, { type: 'generic_timeout', name: 'g', time: 50, content: 'g' }] };
        }
        if (ev.type === 'cast' && ev.content === 'idle') return { keepStateAndData: true, actions: [{ type: 'timeout', time: 100, content: 'e' }] };
        return undefined;
      },
    });
    cast(s, 'arm');
    await s.sync();
    s.clock.advance(99);
    statem.info(s.pid, 'noise');
    await s.sync();
    s.clock.advance(1000);
    await s.sync();
    t.same(lines(s), ['start cast arm', 'start generic_timeout:g g', 'start info noise'], 'the generic timeout at 50 cancelled it');
    s.log.length = 0;
    cast(s, 'arm');
    await s.sync();
    s.clock.advance(50); // the generic timeout at 50: an event, it cancels the event timeout
    s.clock.advance(100);
    await s.sync();
    t.same(lines(s), ['start cast arm', 'start generic_timeout:g g']);
    s.log.length = 0;
    cast(s, 'idle');
    await s.sync();
    s.clock.advance(1000);
    await s.sync();
    t.same(lines(s), ['start cast idle', 'start timeout e'], 'no event for its time: it fires');
  });
  void t.test('what happens if it fires while an event is queued ahead of its message: the event cancels it, it is never delivered', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev) {
        if (ev.type === 'cast' && ev.content === 'arm') return { keepStateAndData: true, actions: [{ type: 'timeout', time: 100, content: 'stale' }] };
        return undefined;
      },
    });
    cast(s, 'arm');
    await s.sync();
    cast(s, 'noise');
    s.clock.advance(100);
    await s.sync();
    await settle();
    t.same(lines(s), ['start cast arm', 'start cast noise']);
  });
  void t.test('what happens if it is 0: it is queued at once, unless other events are queued', QUICK, async (t) => {
    const s = await scripted(t, {
      start(ev) {
        if (ev.type === 'cast' && ev.content === 'zero') return { keepStateAndData: true, actions: [{ type: 'timeout', time: 0, content: 'z' }] };
        return undefined;
      },
    });
    cast(s, 'zero');
    cast(s, 'after');
    await s.sync();
    t.same(lines(s), ['start cast zero', 'start timeout z', 'start cast after'], 'before the next mailbox message');
  });
  t.end();
});

void t.test('generic_timeout: what happens if named timeouts are set: each fires by its name, a state change cancels none, cancelling one leaves the others', QUICK, async (t) => {
  const s = await scripted(t, {
    start(ev, data) {
      if (ev.type !== 'cast') return undefined;
      if (ev.content === 'arm') {
        return {
          next: 'other', data,
          actions: [
            { type: 'generic_timeout', name: 'a', time: 100, content: 'A' },
            { type: 'generic_timeout', name: 'b', time: 100, content: 'B' },
            { type: 'generic_timeout', name: 'c', time: 100, content: 'C' },
          ],
        };
      }
      return undefined;
    },
    other(ev, data) {
      if (ev.type !== 'cast') return undefined;
      if (ev.content === 'cancel b') return { next: 'start', data, actions: [{ type: 'generic_timeout', name: 'b', time: 'cancel' }] };
      return undefined;
    },
  });
  cast(s, 'arm');
  cast(s, 'cancel b');
  await s.sync();
  t.same(statem.timeouts(s.pid).map((x) => x.name).sort(), ['a', 'c']);
  s.clock.advance(100);
  await s.sync();
  t.same(lines(s), ['start cast arm', 'other cast cancel b', 'start generic_timeout:a A', 'start generic_timeout:c C']);
});

void t.test('hibernate: what happens if a transition asks to hibernate: nothing (a documented no-op); state, data and timeouts stay', QUICK, async (t) => {
  const s = await scripted(t, {
    start(ev) {
      if (ev.type === 'cast' && ev.content === 'hibernate') {
        return { keepState: 'kept', actions: [{ type: 'hibernate' }, { type: 'state_timeout', time: 10, content: 'woke' }] };
      }
      return undefined;
    },
  });
  cast(s, 'hibernate');
  t.same(await s.sync(), { state: 'start', data: 'kept' });
  s.clock.advance(10);
  await s.sync();
  t.same(lines(s), ['start cast hibernate', 'start state_timeout woke']);
});

void t.test('handle_event_function: what happens if states are objects: a state change is a new state not deeply equal to the old (Erlang\'s =/=)', QUICK, async (t) => {
  const s = await scripted(t, {
    '{"n":1}': (ev) => {
      if (ev.type !== 'cast') return undefined;
      return { next: ev.content === 'same' ? { n: 1 } : { n: 2 }, data: undefined, actions: ev.content === 'same' ? [] : [] };
    },
  }, { state: { n: 1 } });
  cast(s, 'same');
  cast(s, 'change');
  await s.sync();
  t.same(s.log, ['{"n":1} enter {"n":1}', '{"n":1} cast same', '{"n":1} cast change', '{"n":2} enter {"n":1}']);
});

void t.test('bad actions: what happens if an action is not one: the machine crashes with bad_action_from_state_function', QUICK, async (t) => {
  const s = await scripted(t, {
    start: (ev) => (ev.type === 'cast' ? { keepStateAndData: true, actions: [{ type: 'state_timeout', time: -1, content: 'x' }] } : undefined),
  });
  const gone = down(s.pid);
  cast(s, 'x');
  t.match(await gone, { code: 'ERR_OTP_BAD_RETURN', reason: { bad_action_from_state_function: { type: 'state_timeout', time: -1 } } });
});

void t.test('what happens if an inserted event crashes the machine: terminate sees the state and data it was in then', QUICK, async (t) => {
  const s = await scripted(t, {
    start: (ev) => (ev.type === 'cast' ? { next: 'second', data: 'moved', actions: [{ type: 'next_event', event: { type: 'internal', content: 'boom' } }] } : undefined),
    second: (ev) => {
      if (ev.type === 'internal') throw new Error('boom');
      return undefined;
    },
  });
  const gone = down(s.pid);
  cast(s, 'go');
  t.match(await gone, { message: 'boom' });
  t.match(s.terminated, [{ state: 'second', data: 'moved' }]);
});

void t.test('async callbacks: what happens if init, a state callback and an enter call return promises: the same transitions, in the same order', QUICK, async (t) => {
  const system = newSystem(t);
  const log: string[] = [];
  type AE = { call: 'where'; reply: string; cast: 'go'; internal: 'next'; enter: true };
  const machine: statem.GenStatem<void, 'a' | 'b', number, AE> = {
    callbackMode: 'state_functions',
    stateEnter: true,
    init: async () => {
      await Promise.resolve();
      return { ok: 'a', data: 0 };
    },
    states: {
      async a(ev, n) {
        await Promise.resolve();
        log.push(`a ${ev.type}`);
        switch (ev.type) {
          case 'enter': return { keepStateAndData: true };
          case 'cast': return { next: 'b', data: n + 1, actions: [{ type: 'next_event', event: { type: 'internal', content: 'next' } }] };
          case 'call': return { keepStateAndData: true, actions: [{ type: 'reply', from: ev.from, reply: 'a' }] };
          case 'internal': return { keepStateAndData: true };
        }
      },
      async b(ev, n) {
        await Promise.resolve();
        log.push(`b ${ev.type}`);
        switch (ev.type) {
          case 'enter': return { keepState: n * 10 };
          case 'call': return { keepStateAndData: true, actions: [{ type: 'reply', from: ev.from, reply: `b ${n}` }] };
          case 'cast':
          case 'internal': return { keepStateAndData: true };
        }
      },
    },
  };
  const pid = okPid(await statem.start(system, machine, undefined));
  statem.cast(pid, 'go');
  t.equal(await statem.call(pid, 'where'), 'b 10');
  t.same(log, ['a enter', 'a cast', 'b enter', 'b internal', 'b call']);
});

void t.test('init actions: what happens if init returns actions: timeouts and inserted events apply to the initial state, a postpone is ignored', QUICK, async (t) => {
  const s = await scripted(t, {}, {
    actions: [{ type: 'postpone' }, { type: 'state_timeout', time: 10, content: 'from init' }, { type: 'next_event', event: { type: 'cast', content: 'inserted' } }],
  });
  await s.sync();
  s.clock.advance(10);
  await s.sync();
  t.same(s.log, ['start enter start', 'start cast inserted', 'start state_timeout from init']);
});

void t.test('what happens if the initial enter call stops the machine: terminate runs, start is { error: reason }', QUICK, async (t) => {
  const system = newSystem(t);
  const seen: unknown[] = [];
  const r = await statem.start(system, {
    callbackMode: 'handle_event_function', stateEnter: true,
    init: () => ({ ok: 'only', data: 1 }),
    handleEvent: () => ({ stop: 'no_thanks', data: 2 }),
    terminate: (reason, state, data) => { seen.push([reason, state, data]); },
  } satisfies statem.GenStatem<void, string, number, { enter: true }>, undefined);
  t.same(r, { error: 'no_thanks' });
  t.same(seen, [['no_thanks', 'only', 2]]);
});

void t.test('what happens if callbackMode is neither mode: start is { error } with bad_return_from_callback_mode', QUICK, async (t) => {
  const system = newSystem(t);
  const bad = { callbackMode: 'state_enter', init: () => ({ ok: 'a', data: 0 }) } as unknown as statem.GenStatem<void, string, number, { cast: 'x' }>;
  t.match(await statem.start(system, bad, undefined), { error: { code: 'ERR_OTP_BAD_RETURN', reason: { bad_return_from_callback_mode: 'state_enter' } } });
});

void t.test('what happens if an action has an unknown type: bad_action_from_state_function', QUICK, async (t) => {
  const s = await scripted(t, {
    start: (ev) => (ev.type === 'cast' ? { keepStateAndData: true, actions: [{ type: 'sleep' } as unknown as statem.Action<All>] } : undefined),
  });
  const gone = down(s.pid);
  cast(s, 'x');
  t.match(await gone, { reason: { bad_action_from_state_function: { type: 'sleep' } } });
});

void t.test('what happens if a timeout is longer than a Node timer takes (2^31 ms): it fires at its time, not early', QUICK, async (t) => {
  const s = await scripted(t, {
    start: (ev) => (ev.type === 'cast' ? { keepStateAndData: true, actions: [{ type: 'generic_timeout', name: 'long', time: 3e9, content: 'late' }] } : undefined),
  });
  cast(s, 'arm');
  await s.sync();
  s.clock.advance(2_147_483_647);
  await s.sync();
  s.clock.advance(3e9 - 2_147_483_647 - 1);
  await s.sync();
  t.same(lines(s), ['start cast arm'], 'not yet');
  s.clock.advance(1);
  await s.sync();
  await s.sync();
  t.same(lines(s), ['start cast arm', 'start generic_timeout:long late']);
});
