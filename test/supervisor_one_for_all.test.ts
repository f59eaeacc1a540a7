/**
 * one_for_all: when one child is restarted, all the others are stopped (reverse start order) and
 * every child is started again (start order); temporary bystanders are dropped, not restarted.
 */
import t from 'tap';
import * as genServer from '../lib/otp/gen_server.js';
import { isAlive } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { Lab } from './fixtures/crash_worker.js';
import { asWorker, childrenById, crash, down, exitWith, pidOf, report, snapshot, startTop, waitFor } from './fixtures/sup_tree.js';

const flags = (intensity: number): sup.SupFlags => ({ strategy: 'one_for_all', intensity, period: 3600 });

void t.test('one_for_all', async (t) => {
  // When one child crashes, every child is stopped (reverse order) and restarted (start order), from a fresh init.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, flags(2), [lab.worker('child1'), lab.worker('child2'), lab.worker('child3')]);
  const before = await snapshot(s);
  const old = await Promise.all(['child1', 'child2', 'child3'].map((id) => pidOf(s, id)));
  lab.log.length = 0;
  await crash(old[1]);
  const after = await snapshot(s);
  const fresh = await Promise.all(['child1', 'child2', 'child3'].map((id) => pidOf(s, id)));
  for (let i = 0; i < 3; i++) t.not(fresh[i], old[i], `child${i + 1} has a new Pid`);
  t.notOk(old.some((p) => isAlive(p)), 'no old incarnation is alive');
  t.same(lab.log, [
    'terminate:child2:Error: boom',
    'terminate:child3:shutdown', 'terminate:child1:shutdown',
    'init:child1', 'init:child2', 'init:child3',
  ], 'the crashed child, then the others stopped in reverse order, then all started in order');
  t.same(await sup.countChildren(s), { specs: 3, active: 3, supervisors: 0, workers: 3 });
  report(t, before, 'child2 throws', after);

  // Restart frequency: two more restarts within the period exceed intensity 2.
  await crash(fresh[0]);
  await crash(await pidOf(s, 'child3'));
  t.equal(await exited, 'shutdown');
});

void t.test('one_for_all_escalation', async (t) => {
  // A child whose restart keeps failing makes the supervisor give up: the others are stopped and it exits with shutdown.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child2' && n > 1;
  const { sup: s, exited } = await startTop(t, flags(4), [lab.worker('child1'), lab.worker('child2')]);
  const before = await snapshot(s);
  const c2 = await pidOf(s, 'child2');
  await crash(await pidOf(s, 'child1'));
  t.equal(await exited, 'shutdown');
  t.notOk(isAlive(c2));
  t.equal(lab.inits('child2'), 5, 'first start plus 4 failed restarts');
  t.equal(lab.inits('child1'), 5, 'child1 is started again on every retry: each retry restarts the whole group');
  report(t, before, 'child1 throws; child2 never starts again', await snapshot(undefined));
});

void t.test('one_for_all_other_child_fails_restart', async (t) => {
  // If a sibling fails to start during the group restart, the children already restarted are stopped and the group is retried.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child2' && n === 2;
  const { sup: s, logger } = await startTop(t, flags(3), [lab.worker('child1'), lab.worker('child2')]);
  const before = await snapshot(s);
  lab.log.length = 0;
  await crash(await pidOf(s, 'child1'));
  await waitFor(() => lab.inits('child2') === 3, 'the retry');
  const rows = await childrenById(s);
  t.same(lab.log, [
    'terminate:child1:Error: boom', 'terminate:child2:shutdown',
    'init:child1', 'init_failed:child2',
    'terminate:child1:shutdown',
    'init:child1', 'init:child2',
  ], 'child1 restarted, child2 failed, child1 stopped again, then both restarted');
  t.ok(typeof rows.get('child1')?.pid === 'object' && typeof rows.get('child2')?.pid === 'object', 'both running');
  t.same(logger.reports().map((r) => `${r.errorContext}:${r.child ?? ''}:${r.action}`), [
    'child_terminated:child1:restart', 'start_error:child2:retry',
  ]);
  report(t, before, 'child1 throws; child2 fails its first restart', await snapshot(s));
});

void t.test('temporary_bystander', async (t) => {
  // A temporary child stopped because a sibling was restarted is not restarted: its spec is dropped.
  const lab = new Lab();
  const { sup: s } = await startTop(t, flags(2), [lab.worker('child1'), lab.worker('child2', { restart: 'temporary' })]);
  const before = await snapshot(s);
  await exitWith(await pidOf(s, 'child1'), 'normal');
  const rows = await sup.whichChildren(s);
  t.same(rows.map((r) => r.id), ['child1']);
  t.equal(lab.inits('child2'), 1);
  t.ok(isAlive(s), 'the supervisor is still alive');
  report(t, before, 'child1 (permanent) exits normal', await snapshot(s));
});

void t.test('messages sent to the restarted group: old Pids drop them, new ones start clean', async (t) => {
  // Every child restarts from init, so a sibling's counter starts again at 0 and casts to its old Pid are lost.
  const lab = new Lab();
  const { sup: s } = await startTop(t, flags(2), [lab.worker('child1'), lab.worker('child2')]);
  const c2 = asWorker(await pidOf(s, 'child2'));
  genServer.cast(c2, { op: 'inc' });
  t.equal(await genServer.call(c2, { op: 'get' }), 1);
  const gone = down(c2);
  await crash(await pidOf(s, 'child1'));
  t.equal(await gone, 'shutdown', 'the sibling was stopped with reason shutdown');
  genServer.cast(c2, { op: 'inc' });
  t.equal(await genServer.call(asWorker(await pidOf(s, 'child2')), { op: 'get' }), 0);
});
