/**
 * one_for_one, and the restart-type matrix (supervisor_SUITE's normal/shutdown/abnormal
 * termination groups): which exits restart a child, which keep or drop its spec, and that only
 * the child that exited is touched.
 */
import t from 'tap';
import * as genServer from '../lib/otp/gen_server.js';
import { OtpError, type ExitReason } from '../lib/otp/errors.js';
import { isAlive, kill } from '../lib/otp/proc_lib.js';
import { whereis } from '../lib/otp/registry.js';
import * as sup from '../supervisors/supervisor.js';
import { Lab } from './fixtures/crash_worker.js';
import { asWorker, crash, down, exitWith, pidOf, report, snapshot, startTop } from './fixtures/sup_tree.js';

const counts = async (s: sup.SupRef): Promise<number[]> => {
  const c = await sup.countChildren(s);
  return [c.specs, c.active, c.supervisors, c.workers];
};

void t.test('permanent_normal', async (t) => {
  // A permanent child that exits normally is restarted anyway.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1')]);
  const before = await snapshot(s);
  const p1 = await pidOf(s, 'child1');
  t.equal(await exitWith(p1, 'normal'), 'normal');
  const p2 = await pidOf(s, 'child1');
  t.not(p2, p1, 'a new incarnation (new Pid)');
  t.equal(lab.inits('child1'), 2, 'from a fresh init');
  t.same(await counts(s), [1, 1, 0, 1]);
  report(t, before, 'child1 exits normal', await snapshot(s));
});

void t.test('permanent_shutdown', async (t) => {
  // A permanent child that exits with shutdown or { shutdown: term } is restarted.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1')]);
  const p1 = await pidOf(s, 'child1');
  await exitWith(p1, 'shutdown');
  const p2 = await pidOf(s, 'child1');
  t.not(p2, p1);
  await exitWith(p2, { shutdown: 'some_info' });
  const p3 = await pidOf(s, 'child1');
  t.not(p3, p2);
  t.equal(lab.inits('child1'), 3);
  t.same(await counts(s), [1, 1, 0, 1]);
});

void t.test('permanent_abnormal', async (t) => {
  // A permanent child whose handler throws is restarted, and the crash is reported with the action.
  const lab = new Lab();
  const { sup: s, logger } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1')]);
  const before = await snapshot(s);
  const p1 = await pidOf(s, 'child1');
  const reason = await crash(p1, 'throw', 'kaboom');
  t.match(reason, { message: 'kaboom' });
  const p2 = await pidOf(s, 'child1');
  t.not(p2, p1);
  t.equal(lab.inits('child1'), 2);
  t.same(await counts(s), [1, 1, 0, 1]);
  const [r] = logger.reports();
  t.match(r, { errorContext: 'child_terminated', child: 'child1', reason: 'Error: kaboom', action: 'restart', strategy: 'one_for_one' });
  report(t, before, 'child1 throws', await snapshot(s));
});

void t.test('transient_normal', async (t) => {
  // A transient child that exits normally is not restarted; its spec stays, not running.
  const lab = new Lab();
  const { sup: s, logger } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1', { restart: 'transient' })]);
  await exitWith(await pidOf(s, 'child1'), 'normal');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: undefined, type: 'worker' }]);
  t.same(await counts(s), [1, 0, 0, 1]);
  t.equal(lab.inits('child1'), 1);
  t.same(logger.reports(), [], 'a normal exit of a transient child is not a crash');
});

void t.test('transient_shutdown', async (t) => {
  // A transient child that exits with shutdown or { shutdown: term } is not restarted.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1', { restart: 'transient' })]);
  await exitWith(await pidOf(s, 'child1'), 'shutdown');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: undefined, type: 'worker' }]);
  const r = await sup.restartChild(s, 'child1');
  t.ok('ok' in r, 'restartChild starts it again');
  await exitWith(await pidOf(s, 'child1'), { shutdown: 'some_info' });
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: undefined, type: 'worker' }]);
  t.same(await counts(s), [1, 0, 0, 1]);
  t.equal(lab.inits('child1'), 2, 'one init from start, one from restartChild, none from the exits');
});

void t.test('transient_abnormal', async (t) => {
  // A transient child whose handler rejects is restarted.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1', { restart: 'transient' })]);
  const before = await snapshot(s);
  const p1 = await pidOf(s, 'child1');
  await crash(p1, 'reject');
  t.not(await pidOf(s, 'child1'), p1);
  t.equal(lab.inits('child1'), 2);
  report(t, before, 'child1 rejects', await snapshot(s));
});

void t.test('transient_killed', async (t) => {
  // A transient child that is killed is restarted: 'killed' is an abnormal reason.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1', { restart: 'transient' })]);
  const p1 = await pidOf(s, 'child1');
  const gone = down(p1);
  kill(p1);
  t.equal(await gone, 'killed');
  t.not(await pidOf(s, 'child1'), p1);
  t.same(lab.entries('terminate:'), [], 'a kill runs no terminate');
});

void t.test('the restart decision table (restart type x exit reason)', (t) => {
  // OTP's do_restart clauses: permanent always restarts, transient only after an abnormal exit, temporary never (and is removed).
  const reasons: [string, ExitReason][] = [['normal', 'normal'], ['shutdown', 'shutdown'], ['{shutdown,_}', { shutdown: 'x' }], ['killed', 'killed'], ['error', new Error('boom')], ['other', 'die']];
  const table = Object.fromEntries((['permanent', 'transient', 'temporary'] as const).map((rt) => [rt, reasons.map(([label, r]) => `${label}:${sup.restartDecision(rt, r)}`)]));
  t.same(table, {
    permanent: ['normal:restart', 'shutdown:restart', '{shutdown,_}:restart', 'killed:restart', 'error:restart', 'other:restart'],
    transient: ['normal:keep', 'shutdown:keep', '{shutdown,_}:keep', 'killed:restart', 'error:restart', 'other:restart'],
    temporary: ['normal:remove', 'shutdown:remove', '{shutdown,_}:remove', 'killed:remove', 'error:remove', 'other:remove'],
  });
  t.end();
});

for (const [name, reason] of [['temporary_normal', 'normal'], ['temporary_shutdown', 'shutdown'], ['temporary_abnormal', 'crash']] as const) {
  void t.test(name, async (t) => {
    // A temporary child is never restarted, whatever its exit reason; its spec is deleted.
    const lab = new Lab();
    const { sup: s, logger } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1', { restart: 'temporary' })]);
    const before = await snapshot(s);
    const p1 = await pidOf(s, 'child1');
    if (reason === 'crash') await crash(p1);
    else await exitWith(p1, reason);
    t.same(await sup.whichChildren(s), []);
    t.same(logger.reports().map((r) => r.action), reason === 'crash' ? ['remove'] : [], 'an abnormal exit is reported, with the spec removed');
    t.same(await counts(s), [0, 0, 0, 0]);
    t.equal(lab.inits('child1'), 1);
    const again = await sup.startChild(s, lab.worker('child1', { restart: 'temporary' }));
    t.ok('ok' in again, 'the id is free again');
    if (reason === 'crash') report(t, before, 'child1 (temporary) throws', await snapshot(s));
  });
}

void t.test('one_for_one', async (t) => {
  // Only the child that crashed is restarted; its sibling keeps its Pid and its state.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1'), lab.worker('child2')]);
  const before = await snapshot(s);
  const c1 = await pidOf(s, 'child1');
  const c2 = asWorker(await pidOf(s, 'child2'));
  genServer.cast(c2, { op: 'inc' });
  genServer.cast(c2, { op: 'inc' });
  await crash(c1);
  const after = await snapshot(s);
  t.not(await pidOf(s, 'child1'), c1, 'child1 restarted');
  t.equal(await pidOf(s, 'child2'), c2, 'child2 untouched');
  t.equal(await genServer.call(c2, { op: 'get' }), 2, 'child2 kept its state');
  t.same([lab.inits('child1'), lab.inits('child2')], [2, 1]);
  t.same(await counts(s), [2, 2, 0, 2]);
  report(t, before, 'child1 throws', after);

  // Restart frequency: the third restart within the period exceeds intensity 2.
  await crash(c2);
  await crash(await pidOf(s, 'child1'));
  t.equal(await exited, 'shutdown', 'the supervisor gave up with reason shutdown');
  t.notOk(isAlive(s));
});

void t.test('one_for_one_escalation', async (t) => {
  // A child whose restart keeps failing exhausts the intensity: the supervisor stops its other children and exits.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child1' && n > 1;
  const { sup: s, exited, logger } = await startTop(t, { strategy: 'one_for_one', intensity: 4, period: 3600 }, [lab.worker('child1'), lab.worker('child2')]);
  const before = await snapshot(s);
  const c2 = await pidOf(s, 'child2');
  await crash(await pidOf(s, 'child1'));
  t.equal(await exited, 'shutdown');
  t.notOk(isAlive(c2), 'child2 was stopped');
  t.same(lab.entries('terminate:'), ['terminate:child1:Error: boom', 'terminate:child2:shutdown']);
  t.equal(lab.inits('child1'), 5, 'the first start, then 4 failed restarts; the 5th restart exceeds 4');
  const contexts = logger.reports().map((r) => `${r.errorContext}/${r.action}`);
  t.same(contexts, [
    'child_terminated/restart',
    'start_error/retry', 'start_error/retry', 'start_error/retry', 'start_error/retry',
    'shutdown/shutdown',
  ]);
  t.match(logger.reports().at(-1), { child: 'child1', reason: 'reached_max_restart_intensity' });
  report(t, before, 'child1 throws; every restart of child1 fails', await snapshot(undefined));
});

void t.test('messages to siblings during a crash are all handled', async (t) => {
  // A sibling's mailbox is not touched by a crash next to it: every message sent to it is handled.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 5, period: 3600 }, [lab.worker('child1'), lab.worker('child2')]);
  const c2 = asWorker(await pidOf(s, 'child2'));
  const crashes: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    genServer.cast(c2, { op: 'inc' });
    if (i === 100) crashes.push(crash(await pidOf(s, 'child1')));
    if (i === 200) {
      await crashes[0]; // the first crash is over, so pidOf sees the restarted child1
      crashes.push(crash(await pidOf(s, 'child1'), 'reject'));
    }
  }
  await Promise.all(crashes);
  t.equal(await genServer.call(c2, { op: 'get' }), 300);
  t.equal(lab.inits('child1'), 3);
});

void t.test('a restarted child has a new Pid: the old Pid is dead, its registered name moves', async (t) => {
  // Messages to the old Pid are dropped, calls to it reject; the name points at the new incarnation after its init.
  const lab = new Lab();
  const { sup: s, system } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1', { name: 'named_child' })]);
  const old = asWorker(await pidOf(s, 'child1'));
  t.equal(whereis(system, 'named_child'), old);
  t.same((await sup.whichChildren(s))[0], { id: 'child1', pid: old, type: 'worker', name: 'named_child' });
  await crash(old);
  const fresh = asWorker(await pidOf(s, 'child1'));
  t.equal(whereis(system, 'named_child'), fresh, 'the name points at the new incarnation');
  t.same((await sup.whichChildren(s))[0], { id: 'child1', pid: fresh, type: 'worker', name: 'named_child' });
  genServer.cast(old, { op: 'inc' });
  genServer.cast(fresh, { op: 'inc' });
  t.equal(await genServer.call(fresh, { op: 'get' }), 1, 'the cast to the old Pid was dropped, not forwarded');
  const err = await genServer.call(old, { op: 'get' }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof OtpError && err.code === 'ERR_OTP_NOPROC', 'a call to the old Pid rejects with ERR_OTP_NOPROC');
});

void t.test('a call in flight when the child crashes rejects with ERR_OTP_EXIT', async (t) => {
  // The caller learns of the crash at once (a monitor), not after its timeout; the restarted child answers the next call.
  const lab = new Lab();
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('child1')]);
  const c1 = asWorker(await pidOf(s, 'child1'));
  const err = await genServer.call(c1, { op: 'throw', reason: 'in call' }, 60_000).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof OtpError && err.code === 'ERR_OTP_EXIT');
  t.equal(await genServer.call(asWorker(await pidOf(s, 'child1')), { op: 'get' }), 0);
});
