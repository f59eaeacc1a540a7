/**
 * The child management API (supervisor_SUITE's child_adm, extra_return, hanging_restart_loop,
 * do_not_save_child_specs_for_temporary_children): results and errors as typed values.
 */
import t from 'tap';
import * as genServer from '../lib/otp/gen_server.js';
import { isAlive, type Pid } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { gate, Lab } from './fixtures/crash_worker.js';
import { crash, down, exitWith, pidOf, startTop } from './fixtures/sup_tree.js';

const counts = async (s: sup.SupRef): Promise<number[]> => {
  const c = await sup.countChildren(s);
  return [c.specs, c.active, c.supervisors, c.workers];
};

void t.test('child_adm', async (t) => {
  // start/terminate/restart/delete give OTP's results: ok, not_found, running, already_present, already_started.
  const lab = new Lab();
  const spec = lab.worker('child1');
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [spec]);
  const c1 = await pidOf(s, 'child1');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: c1, type: 'worker' }]);
  t.same(await counts(s), [1, 1, 0, 1]);

  t.same(await sup.startChild(s, spec), { error: { already_started: c1 } });

  t.same(await sup.terminateChild(s, 'hej'), { error: 'not_found' });
  const gone = down(c1);
  t.equal(await sup.terminateChild(s, 'child1'), 'ok');
  t.equal(await gone, 'shutdown');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: undefined, type: 'worker' }]);
  t.same(await counts(s), [1, 0, 0, 1]);
  t.equal(await sup.terminateChild(s, 'child1'), 'ok', 'like deleting something that does not exist, it succeeds');

  t.same(await sup.startChild(s, spec), { error: 'already_present' }, 'OTP\'s bare already_present');

  const r = await sup.restartChild(s, 'child1');
  if (!('ok' in r)) throw new Error('no restart');
  const c2 = r.ok;
  t.not(c2, c1);
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: c2, type: 'worker' }]);
  t.same(await sup.restartChild(s, 'child1'), { error: 'running' });
  t.same(await sup.restartChild(s, 'child2'), { error: 'not_found' });

  t.same(await sup.deleteChild(s, 'child1'), { error: 'running' });
  t.same(await sup.deleteChild(s, 'hej'), { error: 'not_found' });
  t.equal(await sup.terminateChild(s, 'child1'), 'ok');
  t.equal(await sup.deleteChild(s, 'child1'), 'ok');
  t.same(await sup.restartChild(s, 'child1'), { error: 'not_found' });
  t.same(await sup.whichChildren(s), []);
  t.same(await counts(s), [0, 0, 0, 0]);

  const r3 = await sup.startChild(s, spec);
  if (!('ok' in r3)) throw new Error('no start');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: r3.ok, type: 'worker' }]);
  t.same(await sup.terminateChild(s, r3.ok), { error: 'not_found' }, 'a Pid is not an id outside simple_one_for_one');
  t.ok(isAlive(r3.ok));
});

/** `spec` whose start resolves OTP's `{ok, Pid, Info}`: `{ ok: pid, info }`. */
function withInfo(spec: sup.ChildSpec, info: unknown): sup.ChildSpec {
  return { ...spec, start: async (link) => {
    const r = await spec.start(link);
    return 'ok' in r ? { ok: r.ok, info } : r;
  } };
}

void t.test('extra_return', async (t) => {
  // A start that resolves { ok: pid, info }: the supervisor ignores the info and startChild/restartChild return it unchanged.
  const lab = new Lab();
  const spec = withInfo(lab.worker('child1'), 'extra_return');
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [spec]);
  const c1 = await pidOf(s, 'child1');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: c1, type: 'worker' }]);
  t.same(await sup.terminateChild(s, 'hej'), { error: 'not_found' });
  t.same(await sup.deleteChild(s, 'hej'), { error: 'not_found' });
  t.same(await sup.restartChild(s, 'hej'), { error: 'not_found' });
  t.same(await sup.deleteChild(s, 'child1'), { error: 'running' });
  t.same(await sup.restartChild(s, 'child1'), { error: 'running' });
  t.same(await counts(s), [1, 1, 0, 1]);

  const gone = down(c1);
  t.equal(await sup.terminateChild(s, 'child1'), 'ok');
  t.equal(await gone, 'shutdown');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: undefined, type: 'worker' }]);
  t.same(await counts(s), [1, 0, 0, 1]);

  const r2 = await sup.restartChild(s, 'child1');
  const c2 = await pidOf(s, 'child1');
  t.same(r2, { ok: c2, info: 'extra_return' }, 'restartChild returns the info');
  t.same(await counts(s), [1, 1, 0, 1]);

  t.equal(await sup.terminateChild(s, 'child1'), 'ok');
  t.equal(await sup.terminateChild(s, 'child1'), 'ok');
  t.equal(await sup.deleteChild(s, 'child1'), 'ok');
  t.same(await sup.restartChild(s, 'child1'), { error: 'not_found' });
  t.same(await counts(s), [0, 0, 0, 0]);

  const r3 = await sup.startChild(s, spec);
  const c3 = await pidOf(s, 'child1');
  t.same(r3, { ok: c3, info: 'extra_return' }, 'startChild returns the info');
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: c3, type: 'worker' }]);

  // A restart after a crash uses the same start; the info is dropped there, as OTP's restart does.
  await crash(c3);
  t.not(await pidOf(s, 'child1'), c3);
  t.same(await counts(s), [1, 1, 0, 1]);
});

void t.test('unexpected_message', async (t) => {
  // An info message the supervisor does not know is logged and dropped: the supervisor and its children carry on.
  const lab = new Lab();
  const { sup: s, logger, exited } = await startTop(t, {}, [lab.worker('a')]);
  const a = await pidOf(s, 'a');
  const anyInfo = s as unknown as genServer.ServerRef<never, never, never, unknown>;
  genServer.info(anyInfo, { hello: 'world' });
  genServer.info(anyInfo, undefined);
  t.same(await counts(s), [1, 1, 0, 1]);
  t.equal(await pidOf(s, 'a'), a, 'the child was not touched');
  t.ok(isAlive(s), 'the supervisor is running');
  const logged = logger.entries.filter((e) => e.msg === 'Supervisor received unexpected message');
  t.equal(logged.length, 2);
  t.match(logged[0], { level: 'error', obj: { message: '{"hello":"world"}' } });
  let stopped = false;
  void exited.then(() => {
    stopped = true;
  });
  await sup.countChildren(s);
  t.notOk(stopped, 'the supervisor did not exit');
});

void t.test('unexpected_call: an unknown call or cast crashes the supervisor, as OTP\'s function_clause does', async (t) => {
  // OTP's supervisor has no catch-all handle_call/handle_cast: the supervisor exits, its children stopped first.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, {}, [lab.worker('a')]);
  const anyCall = s as unknown as genServer.ServerRef<unknown, unknown, unknown>;
  await t.rejects(genServer.call(anyCall, { tag: 'no_such_request' }), { code: 'ERR_OTP_EXIT', reason: 'function_clause' });
  t.equal(await exited, 'function_clause');
  t.same(lab.log, ['init:a', 'terminate:a:shutdown'], 'its child was stopped first');

  const again = await startTop(t, {}, [lab.worker('b')]);
  genServer.cast(again.sup as unknown as genServer.ServerRef<unknown, unknown, unknown>, 'hello');
  t.equal(await again.exited, 'function_clause');
});

void t.test('restart_child failing returns the reason and leaves the child not running', async (t) => {
  // A failed restartChild is a value naming the child; the supervisor does not retry an API restart.
  const lab = new Lab();
  const { sup: s } = await startTop(t, {}, [lab.worker('child1')]);
  await sup.terminateChild(s, 'child1');
  lab.failWhen = () => true;
  t.same(await sup.restartChild(s, 'child1'), { error: { failed_to_start_child: 'child1', reason: 'init_failed' } });
  t.same(await sup.whichChildren(s), [{ id: 'child1', pid: undefined, type: 'worker' }]);
  lab.failWhen = () => false;
  lab.ignoreWhen = () => true;
  t.same(await sup.restartChild(s, 'child1'), { ignore: true });
  t.same(await sup.startChild(s, lab.worker('other')), { ignore: true });
  t.same(await sup.whichChildren(s), [{ id: 'other', pid: undefined, type: 'worker' }, { id: 'child1', pid: undefined, type: 'worker' }]);
  lab.failWhen = (id) => id === 'third';
  t.same(await sup.startChild(s, lab.worker('third')), { error: { failed_to_start_child: 'third', reason: 'init_failed' } });
  t.equal((await sup.whichChildren(s)).length, 2, 'a child that failed to start is not kept');
});

void t.test('hanging_restart_loop', async (t) => {
  // While a failed restart waits for its retry: already_present, restarting from restart/delete, and terminate stops the loop.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child1' && n > 1;
  const spec = lab.worker('child1');
  const { sup: s } = await startTop(t, { strategy: 'one_for_one', intensity: 8, period: 10 }, [spec]);
  const held = gate();
  lab.initGates.set('child1', held);
  await crash(await pidOf(s, 'child1'));
  // The supervisor is inside the restart (init held): these calls queue before its retry.
  const replies = Promise.all([
    sup.startChild(s, spec), sup.restartChild(s, 'child1'), sup.deleteChild(s, 'child1'),
    sup.whichChildren(s), sup.countChildren(s), sup.terminateChild(s, 'child1'), sup.whichChildren(s),
  ]);
  held.open();
  t.same(await replies, [
    { error: 'already_present' },
    { error: 'restarting' },
    { error: 'restarting' },
    [{ id: 'child1', pid: 'restarting', type: 'worker' }],
    { specs: 1, active: 0, supervisors: 0, workers: 1 },
    'ok',
    [{ id: 'child1', pid: undefined, type: 'worker' }],
  ]);
  t.equal(lab.inits('child1'), 2, 'the queued retry found nothing to restart');
  lab.failWhen = () => false;
  t.ok('ok' in (await sup.restartChild(s, 'child1')));
  t.ok(isAlive(s));
});

void t.test('hanging_restart_loop: the supervisor can be stopped while it retries', async (t) => {
  // A shutdown queued during the retry loop is served between retries (OTP-9549): the supervisor does not hang.
  const lab = new Lab();
  lab.failWhen = (id, n) => id === 'child1' && n > 1;
  const { sup: s, exited } = await startTop(t, { strategy: 'one_for_one', intensity: 1000, period: 10 }, [lab.worker('child1'), lab.worker('child2')]);
  const held = gate();
  lab.initGates.set('child1', held);
  await crash(await pidOf(s, 'child1'));
  const stopped = sup.stop(s);
  held.open();
  await stopped;
  t.equal(await exited, 'shutdown');
  t.ok(lab.inits('child1') < 10, `stopped after ${lab.inits('child1')} inits, not 1000`);
  t.same(lab.entries('terminate:'), ['terminate:child1:Error: boom', 'terminate:child2:shutdown']);
});

void t.test('do_not_save_child_specs_for_temporary_children', async (t) => {
  // After any exit, a temporary child's id is free again; a permanent one is already_started (restarted), a transient one already_present.
  for (const strategy of ['one_for_one', 'one_for_all', 'rest_for_one'] as const) {
    const lab = new Lab();
    const { sup: s } = await startTop(t, { strategy, intensity: 10, period: 3600 }, []);
    const perm = lab.worker('child1');
    const trans = lab.worker('child2', { restart: 'transient' });
    const temp = lab.worker('child3', { restart: 'temporary' });
    for (const how of ['normal', 'abnormal', 'supervisor'] as const) {
      const end = async (p: Pid<never>, id: string): Promise<void> => {
        if (how === 'normal') await exitWith(p, 'normal');
        else if (how === 'abnormal') await crash(p);
        else await sup.terminateChild(s, id);
      };
      for (const [spec, expect] of [[perm, how === 'supervisor' ? 'already_present' : 'already_started'], [trans, how === 'abnormal' ? 'already_started' : 'already_present'], [temp, 'ok']] as const) {
        const r = await sup.startChild(s, spec);
        if (!('ok' in r)) throw new Error(`${strategy}/${how}: ${JSON.stringify(r)}`);
        await end(r.ok, spec.id);
        const again = await sup.startChild(s, spec);
        const got = 'ok' in again ? 'ok' : 'error' in again ? (typeof again.error === 'object' ? Object.keys(again.error)[0] : again.error) : 'ignore';
        t.equal(got, expect, `${strategy}, ${spec.restart ?? 'permanent'} child, ${how} exit`);
        await sup.terminateChild(s, spec.id);
        await sup.deleteChild(s, spec.id);
      }
    }
  }
});

void t.test('an EXIT from a Pid that is not a child is ignored', async (t) => {
  // A stale exit (an older incarnation, a child already stopped by the supervisor) changes nothing.
  const lab = new Lab();
  const { sup: s } = await startTop(t, {}, [lab.worker('a')]);
  const a = await pidOf(s, 'a');
  await crash(a);
  genServer.info(s, { tag: 'EXIT', pid: a, reason: 'late duplicate' });
  genServer.info(s, { tag: 'EXIT', pid: s as unknown as Pid<never>, reason: 'not a child' });
  t.same(await counts(s), [1, 1, 0, 1]);
  t.equal(lab.inits('a'), 2, 'restarted once, for the real exit only');
});
