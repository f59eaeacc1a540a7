/**
 * rest_for_one: when a child is restarted, the children started after it are stopped (reverse
 * order) and restarted with it; the children started before it are not touched.
 */
import t from 'tap';
import * as genServer from '../lib/otp/gen_server.js';
import { isAlive } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { Lab } from './fixtures/crash_worker.js';
import { asWorker, crash, pidOf, report, snapshot, startTop, waitFor } from './fixtures/sup_tree.js';

const flags = (intensity: number): sup.SupFlags => ({ strategy: 'rest_for_one', intensity, period: 3600 });

void t.test('rest_for_one', async (t) => {
  // The crashed child and those after it are restarted; the one before keeps its Pid and state.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, flags(2), [lab.worker('child1'), lab.worker('child2'), lab.worker('child3')]);
  const before = await snapshot(s);
  const c1 = await pidOf(s, 'child1');
  const c2 = await pidOf(s, 'child2');
  const c3 = await pidOf(s, 'child3');
  genServer.cast(asWorker(c1), { op: 'inc' });
  lab.log.length = 0;
  await crash(c2);
  const after = await snapshot(s);
  t.equal(await pidOf(s, 'child1'), c1, 'child1 untouched');
  t.equal(await genServer.call(asWorker(c1), { op: 'get' }), 1, 'and kept its state');
  t.not(await pidOf(s, 'child2'), c2);
  t.not(await pidOf(s, 'child3'), c3);
  t.notOk(isAlive(c3));
  t.same(lab.log, ['terminate:child2:Error: boom', 'terminate:child3:shutdown', 'init:child2', 'init:child3']);
  t.same([lab.inits('child1'), lab.inits('child2'), lab.inits('child3')], [1, 2, 2]);
  t.same(await sup.countChildren(s), { specs: 3, active: 3, supervisors: 0, workers: 3 });
  report(t, before, 'child2 throws', after);

  // Restart frequency: the last child, then the middle one; the third restart exceeds 2.
  await crash(await pidOf(s, 'child3'));
  t.equal(await pidOf(s, 'child1'), c1);
  await crash(await pidOf(s, 'child2'));
  t.equal(await exited, 'shutdown');
});

void t.test('rest_for_one_escalation', async (t) => {
  // A later child whose restart keeps failing exhausts the intensity: the supervisor stops everything and exits.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child2' && n > 1;
  const { sup: s, exited } = await startTop(t, flags(4), [lab.worker('child1'), lab.worker('child2')]);
  const before = await snapshot(s);
  await crash(await pidOf(s, 'child1'));
  t.equal(await exited, 'shutdown');
  t.equal(lab.inits('child1'), 2, 'child1 is restarted once: the retries start from the failed child2');
  t.equal(lab.inits('child2'), 5);
  report(t, before, 'child1 throws; child2 never starts again', await snapshot(undefined));
});

void t.test('rest_for_one_other_child_fails_restart', async (t) => {
  // If a later child fails to start during the restart, only it and those after it are retried, not the earlier ones.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child2' && n === 2;
  const { sup: s } = await startTop(t, flags(3), [lab.worker('child1'), lab.worker('child2'), lab.worker('child3')]);
  const before = await snapshot(s);
  lab.log.length = 0;
  await crash(await pidOf(s, 'child1'));
  await waitFor(() => lab.inits('child3') === 2, 'the retry');
  t.same(lab.log, [
    'terminate:child1:Error: boom', 'terminate:child3:shutdown', 'terminate:child2:shutdown',
    'init:child1', 'init_failed:child2',
    'init:child2', 'init:child3',
  ], 'the retry restarts child2 and child3, not child1');
  t.same([lab.inits('child1'), lab.inits('child2'), lab.inits('child3')], [2, 3, 2]);
  t.same((await sup.whichChildren(s)).map((r) => typeof r.pid), ['object', 'object', 'object']);
  report(t, before, 'child1 throws; child2 fails its first restart', await snapshot(s));
});

void t.test('messages to the children before the crashed one are all handled', async (t) => {
  // Children started before the crashed one keep their mailbox: every cast sent during the restart is handled.
  const lab = new Lab();
  const { sup: s } = await startTop(t, flags(5), [lab.worker('child1'), lab.worker('child2'), lab.worker('child3')]);
  const c1 = asWorker(await pidOf(s, 'child1'));
  let crashed: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < 200; i++) {
    genServer.cast(c1, { op: 'inc' });
    if (i === 50) crashed = crash(await pidOf(s, 'child2'));
    if (i === 150) {
      await crashed;
      crashed = crash(await pidOf(s, 'child3'), 'reject');
    }
  }
  await crashed;
  t.equal(await genServer.call(c1, { op: 'get' }), 200);
  t.same([lab.inits('child1'), lab.inits('child2'), lab.inits('child3')], [1, 2, 3]);
});
