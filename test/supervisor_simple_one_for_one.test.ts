/**
 * simple_one_for_one: dynamic children of one spec, started with extra arguments, kept in a Map
 * keyed by Pid; restarted one by one; stopped all at once when the supervisor stops.
 */
import t from 'tap';
import * as genServer from '../lib/otp/gen_server.js';
import { OtpError } from '../lib/otp/errors.js';
import { isAlive, kill } from '../lib/otp/proc_lib.js';
import { whereis } from '../lib/otp/registry.js';
import * as sup from '../supervisors/supervisor.js';
import { gate, Lab, type WorkerRef } from './fixtures/crash_worker.js';
import { asWorker, crash, down, exitWith, report, snapshot, startTop, waitFor } from './fixtures/sup_tree.js';

const flags = (intensity: number): sup.SupFlags => ({ strategy: 'simple_one_for_one', intensity, period: 3600 });

async function started(s: sup.SupRef<[string]>, tag: string): Promise<WorkerRef> {
  const r = await sup.startChild(s, [tag]);
  if (!('ok' in r)) throw new Error(`startChild failed: ${JSON.stringify(r)}`);
  return asWorker(r.ok);
}

const counts = async (s: sup.SupRef): Promise<number[]> => {
  const c = await sup.countChildren(s);
  return [c.specs, c.active, c.supervisors, c.workers];
};

void t.test('simple_one_for_one', async (t) => {
  // Only the dynamic child that crashed is restarted, with the same extra arguments; the others keep Pid and state.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, flags(2), [lab.dynamicWorker()]);
  const c1 = await started(s, 'a');
  const c2 = await started(s, 'b');
  genServer.cast(c2, { op: 'inc' });
  const before = await snapshot(s);
  await crash(c1);
  const rows = await sup.whichChildren(s);
  t.equal(rows.length, 2);
  t.ok(rows.some((r) => r.pid === c2), 'b is untouched');
  t.notOk(rows.some((r) => r.pid === c1), 'a has a new Pid');
  t.ok(rows.every((r) => r.id === undefined && r.type === 'worker'), 'dynamic children have no id, as in OTP');
  t.same([lab.inits('a'), lab.inits('b')], [2, 1], 'the restart got the same extra argument: a');
  t.equal(await genServer.call(c2, { op: 'get' }), 1);
  t.same(await counts(s), [1, 2, 0, 2]);
  report(t, before, 'a throws', await snapshot(s));

  // Restart frequency: the third restart within the period exceeds 2.
  await crash(c2);
  const again = rows.find((r) => r.pid !== c2)?.pid;
  await crash(asWorker(again));
  t.equal(await exited, 'shutdown');
});

void t.test('simple_one_for_one_escalation', async (t) => {
  // A dynamic child whose restart keeps failing makes the supervisor stop all the others and exit.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'a' && n > 1;
  const { sup: s, exited, logger } = await startTop(t, flags(4), [lab.dynamicWorker()]);
  const c1 = await started(s, 'a');
  const c2 = await started(s, 'b');
  const before = await snapshot(s);
  await crash(c1);
  t.equal(await exited, 'shutdown');
  t.notOk(isAlive(c2));
  t.equal(lab.inits('a'), 5);
  t.same(lab.entries('terminate:'), ['terminate:a:Error: boom', 'terminate:b:shutdown']);
  t.equal(logger.reports().filter((r) => r.errorContext === 'start_error').length, 4);
  report(t, before, 'a throws; a never starts again', await snapshot(undefined));
});

void t.test('simple_one_for_one_extra', async (t) => {
  // Dynamic children whose start resolves { ok: pid, info }: startChild returns the info; restarts work as usual.
  const lab = new Lab();
  const base = lab.dynamicWorker();
  const spec: sup.ChildSpec<[string]> = {
    id: 'worker',
    start: async (link, tag) => {
      const r = await base.start(link, tag);
      return 'ok' in r ? { ok: r.ok, info: 'extra_info' } : r;
    },
  };
  const { sup: s, exited } = await startTop(t, flags(2), [spec]);
  const r1 = await sup.startChild(s, ['a']);
  const r2 = await sup.startChild(s, ['b']);
  t.match(r1, { ok: Object, info: 'extra_info' }, 'startChild returns the info');
  t.match(r2, { ok: Object, info: 'extra_info' });
  if (!('ok' in r1) || !('ok' in r2)) throw new Error('no start');
  const c1 = r1.ok;
  const c2 = r2.ok;
  await crash(c1);
  const rows = await sup.whichChildren(s);
  t.equal(rows.length, 2);
  t.ok(rows.some((r) => r.pid === c2), 'b is untouched');
  t.same(await counts(s), [1, 2, 0, 2]);
  await crash(c2);
  const again = (await sup.whichChildren(s))[0]?.pid;
  await crash(asWorker(again));
  t.equal(await exited, 'shutdown', 'the third restart within the period exceeds intensity 2');
});

void t.test('extra arguments are appended to the start call and kept for restarts', async (t) => {
  // startChild's extra arguments are appended to the spec's start call, and kept for restarts.
  const seen: string[] = [];
  const lab = new Lab();
  const base = lab.dynamicWorker();
  const spec: sup.ChildSpec<[string, number]> = {
    id: 'worker',
    start: (link, tag, n) => {
      seen.push(`${tag}/${n}`);
      return base.start(link, tag);
    },
  };
  const { sup: s } = await startTop(t, flags(2), [spec]);
  const r = await sup.startChild(s, ['x', 7]);
  if (!('ok' in r)) throw new Error('no start');
  await crash(r.ok);
  await sup.countChildren(s);
  t.same(seen, ['x/7', 'x/7']);
});

void t.test('simple_one_for_one_shutdown', async (t) => {
  // On shutdown every dynamic child is asked at once (terminates overlap); one stuck past its shutdown time is killed.
  const lab = new Lab();
  const { sup: s, clock, logger } = await startTop(t, flags(2), [lab.dynamicWorker({ shutdown: 1000 })]);
  const tags = ['a', 'b', 'c', 'd'];
  const gates = new Map(tags.map((tag) => [tag, gate()]));
  const pids = new Map<string, WorkerRef>();
  for (const tag of tags) {
    pids.set(tag, await started(s, tag));
    lab.terminateGates.set(tag, gates.get(tag)!);
  }
  const stopped = sup.stop(s);
  await waitFor(() => lab.entries('terminate:').length === 4, 'all four terminates to start');
  t.equal(lab.entries('terminate:').length, 4, 'every child is in terminate before any has finished');
  const done = ['a', 'b', 'c'].map((tag) => down(pids.get(tag)!));
  for (const tag of ['a', 'b', 'c']) gates.get(tag)!.open();
  t.same(await Promise.all(done), ['shutdown', 'shutdown', 'shutdown']);
  const killed = down(pids.get('d')!);
  clock.advance(1000); // d is still in terminate past its shutdown time: killed
  t.equal(await killed, 'killed');
  await stopped;
  t.notOk(isAlive(s));
  t.same(logger.reports().map((r) => `${r.errorContext}:${r.reason}`), ['shutdown_error:killed'], 'the kill is reported');
  gates.get('d')!.open();
});

void t.test('child_adm_simple', async (t) => {
  // restartChild and deleteChild are invalid for simple_one_for_one, and terminateChild takes a Pid, not an id.
  const lab = new Lab();
  const { sup: s, system } = await startTop(t, flags(2), [lab.dynamicWorker()]);
  t.same(await sup.whichChildren(s), []);
  t.same(await counts(s), [1, 0, 0, 0]);
  const c1 = await started(s, 'a');
  t.same(await sup.whichChildren(s), [{ id: undefined, pid: c1, type: 'worker' }]);
  const c2 = await started(s, 'b');
  t.same(await counts(s), [1, 2, 0, 2]);

  t.same(await sup.terminateChild(s, 'worker'), { error: 'simple_one_for_one' });
  t.equal(await sup.terminateChild(s, c1), 'ok');
  t.notOk(isAlive(c1));
  t.same(lab.entries('terminate:'), ['terminate:a:shutdown']);
  t.same(await counts(s), [1, 1, 0, 1]);
  t.equal(await sup.terminateChild(s, c1), 'ok', 'terminating a dead process is ok');
  const stranger = await genServer.start(system, { init: () => ({ ok: 0 }) }, undefined);
  if (!('ok' in stranger)) throw new Error('no stranger');
  t.same(await sup.terminateChild(s, stranger.ok), { error: 'not_found' }, 'a live process that is not our child');
  t.ok(isAlive(stranger.ok));
  await genServer.stop(stranger.ok);

  t.same(await sup.restartChild(s, 'worker'), { error: 'simple_one_for_one' });
  t.same(await sup.deleteChild(s, 'worker'), { error: 'simple_one_for_one' });
  t.same(await sup.startChild(s as sup.SupRef, lab.worker('x')), { error: 'simple_one_for_one' }, 'a spec is not extra arguments');
  t.match(await sup.getChildspec(s, c2), { ok: { id: 'worker', restart: 'permanent', shutdown: 5000, type: 'worker' } });
  t.match(await sup.getChildspec(s, 'worker'), { ok: { id: 'worker' } });
  t.same(await sup.getChildspec(s, c1), { error: 'not_found' });
});

void t.test('sup_start_ignore_temporary_child_start_child_simple', async (t) => {
  // A dynamic child whose init returns ignore is not kept: startChild says { ignore: true }.
  const lab = new Lab();
  lab.ignoreWhen = (id) => id === 'ignored';
  const { sup: s } = await startTop(t, flags(2), [lab.dynamicWorker({ restart: 'temporary' })]);
  t.same(await sup.startChild(s, ['ignored']), { ignore: true });
  const c = await started(s, 'a');
  t.same(await sup.whichChildren(s), [{ id: undefined, pid: c, type: 'worker' }]);
  t.same(await counts(s), [1, 1, 0, 1]);
});

void t.test('a failing startChild returns the reason and keeps nothing', async (t) => {
  // The start error is a value naming the spec; no child is stored.
  const lab = new Lab();
  lab.failWhen = (id) => id === 'bad';
  const { sup: s } = await startTop(t, flags(2), [lab.dynamicWorker()]);
  t.same(await sup.startChild(s, ['bad']), { error: { failed_to_start_child: 'worker', reason: 'init_failed' } });
  t.same(await counts(s), [1, 0, 0, 0]);
});

void t.test('temporary dynamic children are dropped on any exit; transient ones only on a normal exit', async (t) => {
  // The restart type decides for dynamic children exactly as for static ones.
  const lab = new Lab();
  const temp = await startTop(t, flags(5), [lab.dynamicWorker({ restart: 'temporary' })]);
  await crash(await started(temp.sup, 't1'));
  await exitWith(await started(temp.sup, 't2'), 'normal');
  t.same(await sup.whichChildren(temp.sup), []);
  const trans = await startTop(t, flags(5), [lab.dynamicWorker({ restart: 'transient' })]);
  await exitWith(await started(trans.sup, 'n1'), { shutdown: 'bye' });
  await crash(await started(trans.sup, 'x1'));
  const rows = await sup.whichChildren(trans.sup);
  t.equal(rows.length, 1);
  t.same([lab.inits('n1'), lab.inits('x1'), lab.inits('t1')], [1, 2, 1]);
});

void t.test('hanging_restart_loop_simple', async (t) => {
  // While a failed restart waits for its retry the child shows as restarting, and can be terminated.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'a' && n > 1;
  const { sup: s } = await startTop(t, flags(8), [lab.dynamicWorker()]);
  const c1 = await started(s, 'a');
  const held = gate();
  lab.initGates.set('a', held);
  await crash(c1);
  // The supervisor is inside the restart (init held): these calls queue before the retry does.
  const rows = sup.whichChildren(s);
  const cnt = sup.countChildren(s);
  const term = sup.terminateChild(s, c1);
  held.open();
  t.same(await rows, [{ id: undefined, pid: 'restarting', type: 'worker' }]);
  t.same(await cnt, { specs: 1, active: 0, supervisors: 0, workers: 1 });
  t.equal(await term, 'ok', 'a restarting child is terminated by its old Pid');
  t.same(await sup.whichChildren(s), [], 'and the queued retry finds nothing to do');
  t.equal(lab.inits('a'), 2);
});

void t.test('count_children and whichChildren with thousands of dynamic children', async (t) => {
  // Thousands of children are cheap to hold, list and count; each exit is found by Pid in O(1).
  const lab = new Lab();
  const { sup: s, system } = await startTop(t, flags(2), [lab.dynamicWorker({ restart: 'temporary', named: true })]);
  const n = 2000;
  const pids: WorkerRef[] = [];
  for (let i = 0; i < n; i++) pids.push(await started(s, `w${i}`));
  const rows = await sup.whichChildren(s);
  t.equal(rows.length, n);
  t.same(await counts(s), [1, n, 0, n]);
  t.equal(rows.find((r) => r.pid === pids[1234])?.name, 'worker:w1234', 'each row carries its registered name');
  t.equal(whereis(system, 'worker:w1234'), pids[1234]);
  const gone = pids.map((p) => down(p));
  for (const p of pids) kill(p);
  await Promise.all(gone);
  t.same(await counts(s), [1, 0, 0, 0]);
});

void t.test('calls to a stopped supervisor reject with ERR_OTP_NOPROC', async (t) => {
  // Every API function fails with a coded error when the supervisor is not running.
  const lab = new Lab();
  const { sup: s } = await startTop(t, flags(2), [lab.dynamicWorker()]);
  await sup.stop(s);
  for (const p of [sup.whichChildren(s), sup.countChildren(s), sup.startChild(s, ['a']), sup.terminateChild(s, 'x')]) {
    const err = await p.then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof OtpError && err.code === 'ERR_OTP_NOPROC');
  }
});
