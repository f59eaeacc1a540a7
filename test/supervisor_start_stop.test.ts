/**
 * Starting and stopping a supervisor (supervisor_SUITE's sup_start and sup_stop groups): children
 * start in order and stop in reverse order; a failing start fails the supervisor with the reason;
 * bad flags and specs are refused with named values; shutdown times are honoured.
 */
import t from 'tap';
import { stopSystem } from '../lib/otp/nact.js';
import { isAlive, type Link } from '../lib/otp/proc_lib.js';
import * as sup from '../supervisors/supervisor.js';
import { gate, Lab } from './fixtures/crash_worker.js';
import { down, newSystem, pidOf, startTop, waitFor } from './fixtures/sup_tree.js';

void t.test('sup_start_normal: children start in order and stop in reverse order', async (t) => {
  // Start order is spec order; stopping the supervisor runs every child's terminate, last started first, with reason shutdown.
  const lab = new Lab();
  const { sup: s, exited } = await startTop(t, { strategy: 'one_for_one', intensity: 2, period: 3600 }, [lab.worker('a'), lab.worker('b'), lab.worker('c')]);
  t.same(lab.log, ['init:a', 'init:b', 'init:c']);
  t.same((await sup.whichChildren(s)).map((r) => r.id), ['c', 'b', 'a'], 'whichChildren lists the most recent first, as OTP');
  await sup.stop(s);
  t.same(lab.log.slice(3), ['terminate:c:shutdown', 'terminate:b:shutdown', 'terminate:a:shutdown']);
  t.equal(await exited, 'shutdown');
});

void t.test('dynamically added children stop before the static ones', async (t) => {
  // A child added with startChild is the last in start order, so it is the first to stop.
  const lab = new Lab();
  const { sup: s } = await startTop(t, {}, [lab.worker('a')]);
  t.ok('ok' in (await sup.startChild(s, lab.worker('b'))));
  await sup.stop(s);
  t.same(lab.entries('terminate:'), ['terminate:b:shutdown', 'terminate:a:shutdown']);
});

void t.test('sup_start_fail', async (t) => {
  // A child that fails to start fails the supervisor's start with the reason; children already started are stopped in reverse order.
  const lab = new Lab();
  lab.failWhen = (id) => id === 'c';
  const system = newSystem(t);
  const logger = { entries: [] as object[], debug() {}, info() {}, warn() {}, error(o: object) { this.entries.push(o); } };
  const r = await sup.startSupervisor(system, {}, [lab.worker('a'), lab.worker('b'), lab.worker('c'), lab.worker('d')], { logger });
  t.same(r, { error: { shutdown: { failed_to_start_child: 'c', reason: 'init_failed' } } });
  t.same(lab.log, ['init:a', 'init:b', 'init_failed:c', 'terminate:b:shutdown', 'terminate:a:shutdown']);
  t.equal(lab.inits('d'), 0, 'the children after the failed one never start');
  t.match(logger.entries, [{ errorContext: 'start_error', child: 'c', reason: 'init_failed', action: 'abort' }]);
});

void t.test('sup_start_error_return', async (t) => {
  // A start function that throws, or returns something that is not a StartResult, is a failed start too.
  const system = newSystem(t);
  const boom = await sup.startSupervisor(system, {}, [{ id: 'x', start: () => Promise.reject(new Error('no')) }]);
  t.match(boom, { error: { shutdown: { failed_to_start_child: 'x', reason: { message: 'no' } } } });
  const odd = await sup.startSupervisor(system, {}, [{ id: 'y', start: () => Promise.resolve(42 as never) }]);
  t.same(odd, { error: { shutdown: { failed_to_start_child: 'y', reason: { bad_return_value: 42 } } } });
});

void t.test('sup_start_ignore_child', async (t) => {
  // A child whose init returns ignore keeps its spec (not running); a temporary one is forgotten.
  const lab = new Lab();
  lab.ignoreWhen = (id) => id.startsWith('ign');
  const { sup: s } = await startTop(t, {}, [lab.worker('ign1'), lab.worker('ign2', { restart: 'temporary' }), lab.worker('c')]);
  const rows = await sup.whichChildren(s);
  t.same(rows.map((r) => [r.id, typeof r.pid]), [['c', 'object'], ['ign1', 'undefined']]);
  t.same(await sup.countChildren(s), { specs: 2, active: 1, supervisors: 0, workers: 2 });
  t.same(await sup.startChild(s, lab.worker('ign3')), { ignore: true });
  t.same(await sup.startChild(s, lab.worker('ign4', { restart: 'temporary' })), { ignore: true });
  t.same((await sup.whichChildren(s)).map((r) => r.id), ['ign3', 'c', 'ign1'], 'ign3 kept, temporary ign4 not');
});

void t.test('sup_flags', async (t) => {
  // Invalid flags are refused as { supervisor_data: ... } before anything starts.
  const system = newSystem(t);
  const bad = (flags: unknown): Promise<sup.SupStartResult> => sup.startSupervisor(system, flags as sup.SupFlags, []);
  t.same(await bad({ strategy: 'none_for_one' }), { error: { supervisor_data: { invalid_strategy: 'none_for_one' } } });
  t.same(await bad({ intensity: -1 }), { error: { supervisor_data: { invalid_intensity: -1 } } });
  t.same(await bad({ intensity: Infinity }), { error: { supervisor_data: { invalid_intensity: Infinity } } });
  t.same(await bad({ period: 0 }), { error: { supervisor_data: { invalid_period: 0 } } });
  t.same(await bad({ period: 1.5 }), { error: { supervisor_data: { invalid_period: 1.5 } } });
  t.same(await bad(null), { error: { supervisor_data: { invalid_type: null } } });
  // Flags other than a map: OTP's `{one_for_one, 2}` is an array here; a Date or a Map is no map of flags either.
  t.same(await bad(['one_for_one', 2]), { error: { supervisor_data: { invalid_type: ['one_for_one', 2] } } });
  const date = new Date(0);
  const invalidType = (r: sup.SupStartResult): unknown => ('error' in r ? (r.error as { supervisor_data?: { invalid_type?: unknown } }).supervisor_data?.invalid_type : undefined);
  t.equal(invalidType(await bad(date)), date, 'a Date is invalid_type');
  const map = new Map([['strategy', 'one_for_all']]);
  t.equal(invalidType(await bad(map)), map, 'a Map is invalid_type');
  t.same(await bad('one_for_one'), { error: { supervisor_data: { invalid_type: 'one_for_one' } } });
  t.same(await bad({ auto_shutdown: 'sometimes' }), { error: { supervisor_data: { invalid_auto_shutdown: 'sometimes' } } });
  const ok = await bad({ silly_flag: true });
  t.ok('ok' in ok, 'unknown flags are ignored, as in OTP');
  if ('ok' in ok) await sup.stop(ok.ok);
});

void t.test('child_specs', async (t) => {
  // Invalid child specs are refused as { start_spec: ... } at start, and as the bare error from startChild.
  const lab = new Lab();
  const system = newSystem(t);
  const w = lab.worker('child');
  const cases: [unknown, sup.ChildSpecError][] = [
    [{ ...w, restart: 'prmanent' }, { invalid_restart_type: 'prmanent' }],
    [{ ...w, shutdown: -10 }, { invalid_shutdown: -10 }],
    [{ ...w, shutdown: 'never' }, { invalid_shutdown: 'never' }],
    [{ ...w, type: 'wrker' }, { invalid_child_type: 'wrker' }],
    [{ ...w, start: 'mfa' }, { invalid_mfa: 'mfa' }],
    [{ start: w.start }, 'missing_id'],
    [{ id: 'x' }, 'missing_start'],
    [{ ...w, id: 7 }, { invalid_id: 7 }],
    ['child4', { invalid_child_spec: 'child4' }],
    [{ ...w, restart: 'transient', significant: true }, { bad_combination: { auto_shutdown: 'never', significant: true } }],
    [{ ...w, significant: 'yes' }, { invalid_significant: 'yes' }],
  ];
  for (const [spec, error] of cases) {
    t.same(await sup.startSupervisor(system, {}, [spec as sup.ChildSpec]), { error: { start_spec: error } }, JSON.stringify(error));
  }
  t.same(await sup.startSupervisor(system, {}, [w, lab.worker('child')]), { error: { start_spec: { duplicate_child_name: 'child' } } });
  t.same(await sup.startSupervisor(system, { strategy: 'simple_one_for_one' }, []), { error: { bad_start_spec: [] } });
  t.same(await sup.startSupervisor(system, { strategy: 'simple_one_for_one' }, [w, w]), { error: { bad_start_spec: [w, w] } });
  t.same(sup.checkChildSpecs([{ ...w, significant: true }]), { error: { bad_combination: { restart: 'permanent', significant: true } } });
  t.same(sup.checkChildSpecs([w, { ...w, id: 'other', type: 'supervisor' }]), { ok: [
    { id: 'child', start: w.start, restart: 'permanent', significant: false, shutdown: 5000, type: 'worker' },
    { id: 'other', start: w.start, restart: 'permanent', significant: false, shutdown: 'infinity', type: 'supervisor' },
  ] });
  t.equal(lab.inits('child'), 0, 'nothing was started');

  const { sup: s } = await startTop(t, {}, [], { system });
  for (const [spec, error] of cases) t.same(await sup.startChild(s, spec as sup.ChildSpec), { error }, `startChild ${JSON.stringify(error)}`);
});

void t.test('sup_start_map: the defaults, read back with getChildspec', async (t) => {
  // Omitted fields take OTP's defaults: permanent, worker, 5000 ms for workers, infinity for supervisors.
  const lab = new Lab();
  const { sup: s } = await startTop(t, {}, [
    lab.worker('child1'),
    lab.worker('child2', { shutdown: 'brutal_kill' }),
    { id: 'child3', type: 'supervisor', start: (link: Link) => sup.startLink(link, {}, []) },
  ]);
  t.match(await sup.getChildspec(s, 'child1'), { ok: { id: 'child1', restart: 'permanent', shutdown: 5000, type: 'worker' } });
  t.match(await sup.getChildspec(s, 'child2'), { ok: { shutdown: 'brutal_kill' } });
  t.match(await sup.getChildspec(s, 'child3'), { ok: { restart: 'permanent', shutdown: 'infinity', type: 'supervisor' } });
  t.same(await sup.getChildspec(s, 'child4'), { error: 'not_found' });
  t.equal(sup.DEFAULT_STRATEGY, 'one_for_one');
  t.same([sup.DEFAULT_INTENSITY, sup.DEFAULT_PERIOD, sup.DEFAULT_RESTART, sup.DEFAULT_WORKER_SHUTDOWN, sup.DEFAULT_SUPERVISOR_SHUTDOWN], [1, 5, 'permanent', 5000, 'infinity']);
});

void t.test('sup_stop_timeout', async (t) => {
  // A child stuck in terminate is killed after its shutdown time, reported, and the others still stop in order.
  const lab = new Lab();
  const { sup: s, clock, logger } = await startTop(t, {}, [lab.worker('child1', { shutdown: 1000 }), lab.worker('child2', { shutdown: 1000 })]);
  const c2 = await pidOf(s, 'child2');
  const held = gate();
  lab.terminateGates.set('child2', held);
  const c2Down = down(c2);
  const stopped = sup.stop(s);
  await waitFor(() => lab.entries('terminate:child2').length === 1, 'child2 to enter terminate');
  clock.advance(999);
  t.same(lab.entries('terminate:'), ['terminate:child2:shutdown'], 'child1 waits for child2');
  clock.advance(1);
  t.equal(await c2Down, 'killed');
  await stopped;
  t.same(lab.entries('terminate:'), ['terminate:child2:shutdown', 'terminate:child1:shutdown']);
  t.match(logger.reports(), [{ errorContext: 'shutdown_error', child: 'child2', reason: 'killed', action: 'stopped' }]);
  held.open();
});

void t.test('sup_stop_brutal_kill', async (t) => {
  // A brutal_kill child is killed at once: its terminate does not run; the others' do.
  const lab = new Lab();
  const { sup: s, logger } = await startTop(t, {}, [lab.worker('child1'), lab.worker('child2', { shutdown: 'brutal_kill' })]);
  const c2 = await pidOf(s, 'child2');
  await sup.stop(s);
  t.notOk(isAlive(c2));
  t.same(lab.entries('terminate:'), ['terminate:child1:shutdown']);
  t.same(logger.reports(), [], 'killed is the expected reason for brutal_kill');
});

void t.test('sup_stop_infinity', async (t) => {
  // With shutdown infinity the supervisor waits for a slow terminate as long as it takes.
  const lab = new Lab();
  const { sup: s, clock } = await startTop(t, {}, [lab.worker('child1', { shutdown: 'infinity' })]);
  const held = gate();
  lab.terminateGates.set('child1', held);
  let done = false;
  const stopped = sup.stop(s).then(() => {
    done = true;
  });
  await waitFor(() => lab.entries('terminate:').length === 1, 'terminate to start');
  clock.advance(3_600_000);
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.notOk(done, 'still waiting after an hour');
  held.open();
  await stopped;
  t.ok(done);
});

void t.test('a registered name taken by another process: already_started', async (t) => {
  // Starting a second supervisor under a taken name fails with the holder's Pid.
  const system = newSystem(t);
  const { sup: first } = await startTop(t, {}, [], { system, name: 'the_sup' });
  t.same(await sup.startSupervisor(system, {}, [], { name: 'the_sup' }), { error: { already_started: first } });
});

void t.test('starting under a stopped system fails with ERR_OTP_NOPROC', async (t) => {
  // The parent must be running; the error is a coded OtpError value, not a throw.
  const system = newSystem(t);
  stopSystem(system);
  const r = await sup.startSupervisor(system, {}, []);
  t.match(r, { error: { code: 'ERR_OTP_NOPROC' } });
});
