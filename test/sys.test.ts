/**
 * sys, as OTP's sys_SUITE and gen_server_SUITE exercise it: get_state, replace_state, get_status
 * (call_format_status), suspend/resume, trace and stats, on a gen_server, a gen_fsm and a
 * supervised child. Every request is served in mailbox order, and also while suspended.
 */
import t from 'tap';
import { ManualClock } from '../lib/otp/clock.js';
import * as fsm from '../lib/otp/gen_fsm.js';
import * as gs from '../lib/otp/gen_server.js';
import * as proc from '../lib/otp/proc_lib.js';
import * as sys from '../lib/otp/sys.js';
import * as sup from '../supervisors/supervisor.js';
import { newSystem, okPid, rejectionOf, settle, type Teardown, QUICK } from './fixtures/otp.js';

const counter: gs.GenServer<number, number, 'get', number, 'inc'> = {
  init: (n) => ({ ok: n }),
  handleCall: (_get, _from, n) => ({ reply: n, state: n }),
  handleCast: (_inc, n) => ({ noreply: true, state: n + 1 }),
};

async function startCounter(t: Teardown, opts: proc.StartOptions = {}) {
  const system = newSystem(t);
  return { system, pid: okPid(await gs.start(system, counter, 0, opts)) };
}

void t.test('get_state: the state after everything sent before', QUICK, async (t) => {
  const { pid } = await startCounter(t);
  gs.cast(pid, 'inc');
  t.equal(await sys.getState(pid), 1);
});

void t.test('replace_state', (t) => {
  void t.test('the function\'s result is the new state, between two messages', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    gs.cast(pid, 'inc');
    t.equal(await sys.replaceState(pid, (n: number) => n + 100), 101);
    gs.cast(pid, 'inc');
    t.equal(await gs.call(pid, 'get'), 102);
  });

  void t.test('a function that throws leaves the state as it was and rejects with what it threw', QUICK, async (t) => {
    const { pid } = await startCounter(t);
    const boom = new Error('boom');
    const err = await rejectionOf(sys.replaceState(pid, () => {
      throw boom;
    }));
    t.equal(err, boom);
    t.equal(await gs.call(pid, 'get'), 0);
    t.equal(proc.isAlive(pid), true, 'the process lives on');
  });

  void t.test('a gen_fsm\'s state is { state, data }', QUICK, async (t) => {
    const system = newSystem(t);
    const m: fsm.GenFsm<void, 'a' | 'b', number, 'flip'> = {
      init: () => ({ ok: 'a', data: 0 }),
      states: { a: (_e, n) => ({ next: 'b', data: n + 1 }), b: (_e, n) => ({ next: 'a', data: n + 1 }) },
    };
    const f = okPid(await fsm.start(system, m, undefined));
    await sys.replaceState(f, (s: { state: string; data: number }) => ({ state: 'b', data: s.data + 10 }));
    fsm.sendEvent(f, 'flip');
    t.same(await sys.getState(f), { state: 'a', data: 11 }, 'the event ran in b, the replaced state');
  });
  t.end();
});

void t.test('get_status (call_format_status): name, behaviour, status, parent, state', (t) => {
  void t.test('a registered server', QUICK, async (t) => {
    const { pid } = await startCounter(t, { name: 'counter' });
    gs.cast(pid, 'inc');
    const st = await sys.getStatus(pid);
    t.match(st, { pid, name: 'counter', registeredName: 'counter', behaviour: 'gen_server', status: 'running', parent: undefined, state: 1, trapExit: false, links: [] });
  });

  void t.test('a supervised child names its supervisor as parent', QUICK, async (t) => {
    const system = newSystem(t);
    const r = await sup.startSupervisor(system, {}, [{ id: 'c', start: (link) => gs.startLink(link, counter, 5, { label: 'top/c' }) }], { name: 'top' });
    if (!('ok' in r)) throw new Error('no supervisor');
    t.teardown(() => sup.stop(r.ok));
    const [row] = await sup.whichChildren(r.ok);
    const child = row?.pid as proc.Pid<never>;
    const st = await sys.getStatus(child);
    t.equal(st.parent, r.ok, 'its parent is the supervisor');
    t.equal(st.name, 'top/c', 'it prints as its label');
    t.equal(st.state, 5);
    t.equal((await sys.getStatus(r.ok)).name, 'top');
  });
  t.end();
});

void t.test('suspend: only system messages are handled; resume handles what waited, in order', QUICK, async (t) => {
  const { pid } = await startCounter(t);
  await sys.suspend(pid);
  gs.cast(pid, 'inc');
  gs.cast(pid, 'inc');
  let answered: number | undefined;
  const call = gs.call(pid, 'get').then((n) => (answered = n));
  await settle();
  t.equal(answered, undefined, 'the call waits');
  t.equal(await sys.getState(pid), 0, 'system messages are still served: the casts have not run');
  t.equal((await sys.getStatus(pid)).status, 'suspended');
  gs.cast(pid, 'inc');
  await sys.resume(pid);
  t.equal(await call, 2, 'the casts ran first, then the call, in arrival order');
  t.equal(await gs.call(pid, 'get'), 3, 'and what came after');
  t.equal((await sys.getStatus(pid)).status, 'running');
});

void t.test('suspend: a supervisor shutdown still stops a suspended process', QUICK, async (t) => {
  const { pid } = await startCounter(t);
  await sys.suspend(pid);
  await gs.stop(pid, 'shutdown');
  t.equal(proc.isAlive(pid), false);
});

void t.test('trace: the hook sees each message, each new state and the exit; off again, nothing', QUICK, async (t) => {
  const { pid } = await startCounter(t);
  const rec = sys.recorder();
  await sys.trace(pid, rec);
  gs.cast(pid, 'inc');
  await gs.call(pid, 'get');
  t.match(rec.events, [
    { type: 'in', msg: { tag: 'cast', msg: 'inc' } },
    { type: 'state', state: 1 },
    { type: 'in', msg: { tag: 'call', request: 'get' } },
    { type: 'state', state: 1 },
  ]);
  await sys.trace(pid, false);
  gs.cast(pid, 'inc');
  await gs.call(pid, 'get');
  t.equal(rec.events.length, 4, 'off: nothing more');
  const again = sys.recorder();
  await sys.trace(pid, again);
  await gs.stop(pid, 'normal');
  t.same(again.events, [{ type: 'exit', reason: 'normal' }]);
});

void t.test('stats: start time and now on the process clock, messages in, reductions', QUICK, async (t) => {
  const clock = new ManualClock();
  clock.advance(1000);
  const { pid } = await startCounter(t, { clock });
  gs.cast(pid, 'inc');
  gs.cast(pid, 'inc');
  await gs.call(pid, 'get');
  clock.advance(500);
  const s = await sys.statistics(pid);
  t.same(s, { startTime: 1000, currentTime: 1500, messagesIn: 5, reductions: 3 }, 'init + 3 messages + this request in; 3 handled');
});

void t.test('a dead process: ERR_OTP_NOPROC', QUICK, async (t) => {
  const { pid } = await startCounter(t);
  await gs.stop(pid);
  t.equal((await rejectionOf(sys.getStatus(pid))).code, 'ERR_OTP_NOPROC');
});
