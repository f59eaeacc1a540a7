/**
 * Automatic shutdown (supervisor_SUITE's significant-child cases): under `auto_shutdown`, the exit
 * of a `significant` child that is not restarted stops the supervisor with reason shutdown, its
 * other children first; non-significant children never do, and neither does `terminateChild`.
 */
import t from 'tap';
import { isAlive } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { Lab } from './fixtures/crash_worker.js';
import { asWorker, crash, exitWith, pidOf, startTop } from './fixtures/sup_tree.js';

const MODES = ['never', 'any_significant', 'all_significant'] as const;

void t.test('nonsignificant_temporary', async (t) => {
  // Exits of a non-significant temporary child never stop the supervisor, whatever its auto_shutdown.
  for (const mode of MODES) {
    const lab = new Lab();
    const { sup: s } = await startTop(t, { auto_shutdown: mode }, []);
    const child = lab.worker('child1', { restart: 'temporary' });
    for (const how of ['supervisor', 'abnormal', 'normal'] as const) {
      const r = await sup.startChild(s, child);
      if (!('ok' in r)) throw new Error('no start');
      if (how === 'supervisor') await sup.terminateChild(s, 'child1');
      else if (how === 'abnormal') await crash(r.ok);
      else await exitWith(r.ok, 'normal');
      await sup.countChildren(s);
      t.ok(isAlive(s), `${mode}: still running after a ${how} exit`);
    }
  }
});

void t.test('significant_temporary', async (t) => {
  // any_significant: one significant temporary child exiting (any reason) stops the supervisor; all_significant: the last one does.
  for (const reason of ['normal', 'abnormal'] as const) {
    const lab = new Lab();
    const { sup: s, exited } = await startTop(t, { auto_shutdown: 'any_significant' }, [
      { ...lab.worker('child1', { restart: 'temporary' }), significant: true },
      lab.worker('other'),
    ]);
    const c1 = await pidOf(s, 'child1');
    if (reason === 'normal') await exitWith(c1, 'normal');
    else await crash(c1);
    t.equal(await exited, 'shutdown', `any_significant, ${reason} exit`);
    t.same(lab.entries('terminate:other'), ['terminate:other:shutdown'], 'the other children were stopped first');
  }

  const lab = new Lab();
  const significant = (id: string): sup.ChildSpec => ({ ...lab.worker(id, { restart: 'temporary' }), significant: true });
  const { sup: s, exited } = await startTop(t, { auto_shutdown: 'all_significant' }, [significant('child1'), significant('child2')]);
  let stopped = false;
  void exited.then(() => {
    stopped = true;
  });
  await exitWith(await pidOf(s, 'child1'), 'normal');
  await sup.countChildren(s);
  t.notOk(stopped, 'all_significant: child2 is still running');
  await crash(await pidOf(s, 'child2'));
  t.equal(await exited, 'shutdown', 'all_significant: the last significant child exited');
});

void t.test('significant_transient', async (t) => {
  // A significant transient child is restarted after an abnormal exit; its normal or shutdown exit stops the supervisor.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, { intensity: 5, auto_shutdown: 'any_significant' }, [
    { ...lab.worker('child1', { restart: 'transient' }), significant: true },
  ]);
  const c1 = await pidOf(s, 'child1');
  await crash(c1);
  const c2 = await pidOf(s, 'child1');
  t.not(c2, c1, 'restarted after an abnormal exit, no shutdown');
  t.equal(await sup.terminateChild(s, 'child1'), 'ok');
  t.ok(isAlive(s), 'terminateChild does not trigger it');
  const r = await sup.restartChild(s, 'child1');
  await exitWith(asWorker('ok' in r ? r.ok : undefined), { shutdown: 'done' });
  t.equal(await exited, 'shutdown');
});

void t.test('significant_simple', async (t) => {
  // simple_one_for_one + all_significant: the supervisor stops when its last significant dynamic child has exited.
  const lab = new Lab();
  const spec: sup.ChildSpec<[string]> = { ...lab.dynamicWorker({ restart: 'temporary' }), significant: true };
  const { sup: s, exited } = await startTop(t, { strategy: 'simple_one_for_one', auto_shutdown: 'all_significant' }, [spec]);
  const a = await sup.startChild(s, ['a']);
  const b = await sup.startChild(s, ['b']);
  if (!('ok' in a) || !('ok' in b)) throw new Error('no start');
  await exitWith(a.ok, 'normal');
  await sup.countChildren(s);
  t.ok(isAlive(s), 'b is still running');
  await exitWith(b.ok, 'normal');
  t.equal(await exited, 'shutdown');
});
