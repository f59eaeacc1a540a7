/**
 * Nested supervisors: a supervisor is a child like any other (its exit reason `shutdown` is what
 * its parent sees), restarts propagate upward only when an intensity is exceeded, and a breach at
 * the top stops the whole tree and tells the embedder why.
 */
import t from 'tap';
import { isAlive, type Pid } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { Lab } from './fixtures/crash_worker.js';
import { asWorker, childrenById, crash, down, newSystem, pidOf, RecordingLogger, report, snapshot, startTop, supSpec } from './fixtures/sup_tree.js';
import { diffTrees, renderTree, supervisionTree } from '../supervisors/tree.js';

async function subSup(s: sup.SupRef, id: string): Promise<sup.SupRef> {
  return (await pidOf(s, id)) as sup.SupRef;
}

void t.test('tree', async (t) => {
  // Only the crashed worker restarts; a sub-supervisor past its intensity restarts, and under one_for_all its sibling subtree too.
  const lab = new Lab();
  const { sup: top } = await startTop(t, { strategy: 'one_for_all', intensity: 4, period: 3600 }, [
    supSpec('supchild1', { strategy: 'one_for_one', intensity: 4, period: 3600 }, [lab.worker('child1'), lab.worker('child2')]),
    supSpec('supchild2', { strategy: 'one_for_one', intensity: 1, period: 3600 }, [lab.worker('child3'), lab.worker('child4')]),
  ]);
  t.same(await sup.countChildren(top), { specs: 2, active: 2, supervisors: 2, workers: 0 });
  const sup1 = await subSup(top, 'supchild1');
  const sup2 = await subSup(top, 'supchild2');
  const [c1, c2] = [await pidOf(sup1, 'child1'), await pidOf(sup1, 'child2')];
  const c3 = await pidOf(sup2, 'child3');
  const before = await snapshot(top);

  await crash(await pidOf(sup2, 'child4'));
  t.equal(await pidOf(sup1, 'child1'), c1);
  t.equal(await pidOf(sup1, 'child2'), c2);
  t.equal(await pidOf(sup2, 'child3'), c3);
  t.equal(await subSup(top, 'supchild2'), sup2, 'supchild2 handled it alone');
  t.equal(lab.inits('child4'), 2);
  const mid = await snapshot(top);
  report(t, before, 'child4 throws', mid);

  // Second restart in supchild2 exceeds its intensity 1: supchild2 exits shutdown, top (one_for_all) restarts both subtrees.
  const sup2Gone = down(sup2);
  await crash(c3);
  t.equal(await sup2Gone, 'shutdown', 'supchild2 gave up with reason shutdown');
  const newSup2 = await subSup(top, 'supchild2');
  const newSup1 = await subSup(top, 'supchild1');
  t.not(newSup2, sup2);
  t.not(newSup1, sup1, 'one_for_all at the top restarts the sibling subtree as well');
  t.notOk(isAlive(c1) || isAlive(c2) || isAlive(c3), 'every old worker is gone');
  t.same((await sup.whichChildren(newSup1)).map((r) => r.id), ['child2', 'child1']);
  t.same([lab.inits('child1'), lab.inits('child2'), lab.inits('child3'), lab.inits('child4')], [2, 2, 2, 3]);
  report(t, mid, 'child3 throws: supchild2 exceeds intensity 1', await snapshot(top));
});

void t.test('escalation through two levels', async (t) => {
  // A worker crashing too often stops its supervisor; that supervisor, restarted too often, stops the top, which reports shutdown.
  const lab = new Lab();
  const midSpec = supSpec('mid', { strategy: 'one_for_one', intensity: 1, period: 5 }, [lab.worker('w1'), lab.worker('w2')]);
  const { sup: s, exited, logger } = await startTop(t, { strategy: 'one_for_one', intensity: 1, period: 5 }, [lab.worker('top_worker'), midSpec]);
  const before = await snapshot(s);
  const mid1 = await subSup(s, 'mid');
  const topWorker = await pidOf(s, 'top_worker');

  // Level 1: w1 crashes twice within 5 s -> mid gives up; top restarts mid (1 restart: within top's intensity).
  const mid1Gone = down(mid1);
  await crash(await pidOf(mid1, 'w1'));
  await crash(await pidOf(mid1, 'w1'));
  t.equal(await mid1Gone, 'shutdown');
  const mid2 = await subSup(s, 'mid');
  t.not(mid2, mid1, 'mid was restarted by top');
  t.notOk(isAlive(mid1));
  t.equal(await pidOf(s, 'top_worker'), topWorker, 'top_worker untouched (one_for_one)');
  const afterFirst = await snapshot(s);
  report(t, before, 'w1 throws twice: mid exceeds intensity 1, top restarts mid', afterFirst);

  // Level 2: the same again -> top's second restart within 5 s exceeds its intensity: the tree stops.
  await crash(await pidOf(mid2, 'w1'));
  const w1 = await pidOf(mid2, 'w1'); // mid2 has restarted w1
  lab.log.length = 0;
  await crash(w1);
  t.equal(await exited, 'shutdown', 'the embedder hears shutdown from the top');
  t.notOk(isAlive(s));
  t.notOk(isAlive(topWorker));
  t.same(lab.log, [
    'terminate:w1:Error: boom', 'terminate:w2:shutdown', // mid2 gives up, stopping w2
    'terminate:top_worker:shutdown', // top gives up, stopping what is left
  ]);
  const reports = logger.reports();
  t.match(reports.at(-1), { errorContext: 'shutdown', child: 'mid', reason: 'reached_max_restart_intensity' });
  t.match(reports.at(-2), { errorContext: 'child_terminated', child: 'mid', reason: 'shutdown', action: 'restart' });
  report(t, afterFirst, 'w1 throws twice more: mid gives up again, top exceeds intensity 1', await snapshot(undefined));
});

void t.test('a failing sub-supervisor start escalates with the reason', async (t) => {
  // A subtree that cannot start (a worker's init fails) fails the parent's start, naming the child, after stopping what started.
  const lab = new Lab();
  lab.failWhen = (id) => id === 'bad';
  const system = newSystem(t);
  const r = await sup.startSupervisor(system, {}, [
    lab.worker('first'),
    supSpec('sub', {}, [lab.worker('ok1'), lab.worker('bad')]),
  ]);
  t.same(r, {
    error: { shutdown: { failed_to_start_child: 'sub', reason: { shutdown: { failed_to_start_child: 'bad', reason: 'init_failed' } } } },
  });
  t.same(lab.log, ['init:first', 'init:ok1', 'init_failed:bad', 'terminate:ok1:shutdown', 'terminate:first:shutdown']);
});

void t.test('a child supervisor defaults to shutdown infinity, and stopping the top stops the tree bottom-up in reverse order', async (t) => {
  // Each supervisor stops its own children (reverse order) before it exits, so every terminate in the tree runs.
  const lab = new Lab();
  const { sup: s } = await startTop(t, {}, [
    lab.worker('a'),
    supSpec('sub', {}, [lab.worker('b1'), lab.worker('b2')]),
    lab.worker('c'),
  ]);
  t.match(await sup.getChildspec(s, 'sub'), { ok: { type: 'supervisor', shutdown: 'infinity' } });
  const rows = await childrenById(s);
  const subPid = rows.get('sub')?.pid as Pid<never>;
  await sup.stop(s);
  t.notOk(isAlive(subPid));
  t.same(lab.entries('terminate:'), ['terminate:c:shutdown', 'terminate:b2:shutdown', 'terminate:b1:shutdown', 'terminate:a:shutdown']);
});

void t.test('reports name a child by its id under its supervisor\'s path', async (t) => {
  // OTP names the supervisor and the child's id in its reports; here both as a path: comet_sup/connection_sup/worker, not gen_server.N.
  const lab = new Lab();
  const connLog = new RecordingLogger();
  const { sup: top, logger } = await startTop(t, { intensity: 5, period: 5 }, [
    lab.worker('session_ids'),
    supSpec('connection_sup', { strategy: 'simple_one_for_one', intensity: 5, period: 5 }, [lab.dynamicWorker()], { logger: connLog }),
  ], { name: 'comet_sup' });
  const conn = (await subSup(top, 'connection_sup')) as sup.SupRef<[string]>;
  const r = await sup.startChild(conn, ['a']);
  if (!('ok' in r)) throw new Error('no start');
  await crash(r.ok);
  await sup.countChildren(conn);
  t.match(connLog.reports(), [{
    errorContext: 'child_terminated', supervisor: 'comet_sup/connection_sup', child: 'worker',
    childPath: 'comet_sup/connection_sup/worker', action: 'restart',
  }]);
  await crash(await pidOf(top, 'session_ids'));
  await sup.countChildren(top);
  t.match(logger.reports(), [{ supervisor: 'comet_sup', child: 'session_ids', childPath: 'comet_sup/session_ids' }]);

  // A restarted child supervisor keeps its name path.
  await sup.stop(conn, 'boom');
  await sup.countChildren(top);
  const conn2 = (await subSup(top, 'connection_sup')) as sup.SupRef<[string]>;
  t.not(conn2, conn);
  const r2 = await sup.startChild(conn2, ['b']);
  await crash(asWorker('ok' in r2 ? r2.ok : undefined));
  await sup.countChildren(conn2);
  t.match(connLog.reports().at(-1), { supervisor: 'comet_sup/connection_sup', childPath: 'comet_sup/connection_sup/worker' });
  t.notMatch(JSON.stringify(connLog.reports().map((x) => [x.supervisor, x.childPath])), /gen_server/);
});

void t.test('supervisionTree and renderTree: the tree by ids, restarts marked, no gen_server.N', async (t) => {
  // The printer crash-test and crash-demo use: whichChildren, nested supervisors expanded, start order.
  const lab = new Lab();
  const { sup: top } = await startTop(t, { intensity: 5, period: 5 }, [
    lab.worker('session_ids', { name: 'session_ids' }),
    supSpec('connection_sup', { strategy: 'simple_one_for_one', intensity: 5, period: 5 }, [lab.dynamicWorker({ named: true })]),
    lab.worker('metrics'),
  ], { name: 'comet_sup' });
  const conn = (await subSup(top, 'connection_sup')) as sup.SupRef<[string]>;
  await sup.startChild(conn, ['a']);
  const before = await supervisionTree(top, 'comet_sup');
  t.same(renderTree(before), [
    'comet_sup (supervisor)',
    '  session_ids  running',
    '  connection_sup (supervisor)  running',
    '    worker as worker:a  running',
    '  metrics  running',
  ]);
  await crash(await pidOf(top, 'metrics'));
  await sup.countChildren(top);
  const after = await supervisionTree(top, 'comet_sup');
  t.same(renderTree(after, before).at(-1), '  metrics  running  <- restarted');
  t.same(diffTrees(before, after).restarted, ['comet_sup/metrics']);
  t.notMatch(renderTree(after, before).join('\n'), /gen_server/);
  await sup.stop(top);
  t.same(renderTree(await supervisionTree(top, 'comet_sup')), ['comet_sup (supervisor)  stopped']);

  // Unnamed dynamic children share a path: one gone and one new under the same supervisor is a restart.
  const dyn = await startTop(t, { strategy: 'simple_one_for_one', intensity: 5, period: 5 }, [lab.dynamicWorker()]);
  const x = await sup.startChild(dyn.sup, ['x']);
  await sup.startChild(dyn.sup, ['y']);
  const b2 = await supervisionTree(dyn.sup, 'workers');
  await crash(asWorker('ok' in x ? x.ok : undefined));
  await sup.countChildren(dyn.sup);
  const a2 = await supervisionTree(dyn.sup, 'workers');
  t.same(renderTree(a2, b2), ['workers (supervisor)', '  worker  running', '  worker  running  <- restarted']);
  t.same(diffTrees(b2, a2), { restarted: ['workers/worker'], kept: ['workers', 'workers/worker'], added: [], removed: [] });
});
